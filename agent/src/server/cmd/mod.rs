//! What each request does, one file per command.

pub mod choose;
pub mod decisions;
pub mod forget;
pub mod hello;
pub mod list;
pub mod login;
pub mod logout;
pub mod select;
pub mod show;
pub mod sign;
pub mod status;
pub mod tokens;

use p11agent_proto::{ErrorCode, Request, Response, Token};

use crate::select::origin::Origin;
use crate::store::LookupError;

use crate::daemon::State;

/// Runs a request that follows the handshake.
pub async fn dispatch(state: &State, request: Request) -> Response {
    match request {
        Request::Hello { .. } => hello::run(),
        Request::Status => status::run(state).await,
        Request::Tokens => tokens::run(state).await,
        Request::List { filter } => list::run(state, &filter).await,
        Request::Show { id } => show::run(state, &id).await,
        Request::Sign {
            id,
            scheme,
            message,
        } => sign::run(state, &id, scheme, &message).await,
        Request::Login { token, pin } => login::run(state, token.as_deref(), pin).await,
        Request::Logout { token } => logout::run(state, token.as_deref()).await,
        Request::Select {
            origin,
            ca_names,
            schemes,
            chooser,
            id,
        } => select::run(state, &origin, &ca_names, schemes, chooser, id.as_deref()).await,
        Request::Choose {
            origin,
            id,
            remember,
        } => choose::run(state, &origin, id.as_deref(), remember).await,
        Request::Decisions => decisions::run(state).await,
        Request::Forget { origin } => forget::run(state, origin.as_deref()).await,
    }
}

/// The origin a client named, or the error response (boxed: a
/// `Response` is large).
pub(crate) fn parse_origin(text: &str) -> Result<Origin, Box<Response>> {
    Origin::parse(text).map_err(|e| {
        Box::new(Response::error(
            ErrorCode::InvalidOrigin,
            format!("origin {text:?}: {e}"),
        ))
    })
}

/// The response for a failed identity lookup.
pub(crate) fn lookup_error(e: LookupError) -> Response {
    match e {
        LookupError::Ambiguous { .. } => Response::error(ErrorCode::Ambiguous, e.to_string()),
        LookupError::NotFound(_) | LookupError::TooShort(_) => {
            Response::error(ErrorCode::NotFound, e.to_string())
        }
    }
}

/// The token a client named by label or serial, or the only token when
/// it named none.
pub(crate) async fn resolve_token(state: &State, name: Option<&str>) -> Result<Token, Response> {
    let tokens: Vec<Token> = state
        .store
        .read()
        .await
        .tokens()
        .into_iter()
        .map(|t| t.token)
        .filter(|t| name.is_none_or(|n| t.label == n || t.serial == n))
        .collect();
    match (tokens.len(), name) {
        (1, _) => Ok(tokens.into_iter().next().expect("one token")),
        (0, Some(n)) => Err(Response::error(
            ErrorCode::TokenNotFound,
            format!("no token has the label or serial {n:?}; see `p11agent tokens`"),
        )),
        (0, None) => Err(Response::error(
            ErrorCode::TokenNotFound,
            "no token is present",
        )),
        (n, _) => Err(Response::error(
            ErrorCode::TokenNotFound,
            format!("{n} tokens match; name one by label or serial (see `p11agent tokens`)"),
        )),
    }
}
