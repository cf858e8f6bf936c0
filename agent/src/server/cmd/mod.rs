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
pub mod watch;

use p11agent_proto::{ErrorCode, Request, Response, Token, TokenStatus};

use std::sync::Arc;

use crate::audit::Peer;
use crate::select::origin::Origin;
use crate::server::rescue::Reply;
use crate::store::LookupError;
use crate::token::SignError;

use crate::daemon::State;

/// Runs a request that follows the handshake, for the client `peer` on
/// the connection behind `reply`.
pub async fn dispatch(
    state: &State,
    peer: &Peer,
    reply: &Arc<Reply>,
    request: Request,
) -> Response {
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
        } => sign::run(state, peer, reply, &id, scheme, &message).await,
        Request::Login { token, pin } => {
            login::run(state, peer, reply, token.as_deref(), pin).await
        }
        Request::Logout { token } => logout::run(state, peer, token.as_deref()).await,
        Request::Select {
            origin,
            ca_names,
            schemes,
            chooser,
            id,
            explain,
        } => {
            let request = select::Asked {
                origin: &origin,
                ca_names: &ca_names,
                schemes,
                chooser,
                id: id.as_deref(),
                explain,
            };
            select::run(state, peer, request).await
        }
        Request::Choose {
            origin,
            id,
            remember,
        } => choose::run(state, &origin, id.as_deref(), remember).await,
        Request::Decisions => decisions::run(state).await,
        Request::Forget { origin } => forget::run(state, origin.as_deref()).await,
        // The connection serves `watch` itself: it outlives one answer.
        Request::Watch => Response::error(
            ErrorCode::Internal,
            "watch is served by the connection, not dispatched",
        ),
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

/// Runs a blocking operation on `token` (a signature, a login) for the
/// connection behind `reply`, on that connection's thread, which stops
/// serving other tasks meanwhile (`block_in_place`: the daemon's
/// multi-threaded runtime moves them elsewhere).
///
/// Refuses at once when the token's module is unavailable. When the
/// module is declared unavailable during the call, the client is
/// answered through `reply` (see `rescue.rs`): a call into a hung module
/// cannot be cancelled, but the client gets its answer, and the
/// connection closes once the call returns.
pub(crate) fn on_token<T>(
    state: &State,
    reply: &Arc<Reply>,
    token: &Token,
    operation: impl FnOnce() -> Result<T, SignError>,
) -> Result<T, Box<Response>> {
    if let Some(problem) = state.health.problem(&token.module) {
        return Err(Box::new(unavailable(token, &problem)));
    }
    let registered = state.rescue.enter(token, reply);
    let result = tokio::task::block_in_place(operation);
    drop(registered);
    result.map_err(|e| Box::new(Response::error(sign_error_code(&e), e.to_string())))
}

/// The protocol's error code for a failed signature, login or logout.
fn sign_error_code(e: &SignError) -> ErrorCode {
    match e {
        SignError::UnsupportedScheme { .. } => ErrorCode::UnsupportedScheme,
        SignError::KeyNotFound { .. } => ErrorCode::NoPrivateKey,
        SignError::TokenAbsent { .. } => ErrorCode::TokenAbsent,
        SignError::TokenRemoved { .. } => ErrorCode::TokenRemoved,
        SignError::PinRequired { .. } | SignError::PinSourceFailed { .. } => ErrorCode::PinRequired,
        SignError::PinIncorrect { .. } => ErrorCode::PinIncorrect,
        SignError::PinLocked { .. } => ErrorCode::PinLocked,
        SignError::Cancelled { .. } => ErrorCode::Cancelled,
        SignError::Pkcs11 { .. }
        | SignError::AlwaysAuthenticate { .. }
        | SignError::BadSignature { .. } => ErrorCode::SigningFailed,
    }
}

/// The answer to a request for `token` while its module is unavailable.
pub(crate) fn unavailable(token: &Token, problem: &str) -> Response {
    Response::error(
        ErrorCode::ModuleUnavailable,
        format!(
            "token '{}' cannot be used now: its module {} is unavailable ({problem}); \
             other tokens are not affected",
            token.label, token.module
        ),
    )
}

/// "insert token LABEL (serial …)", for a request on an absent token.
pub(crate) fn insert_token(token: &Token) -> Response {
    Response::error(
        ErrorCode::TokenAbsent,
        format!(
            "insert token '{}' (serial {}): it was removed",
            token.label, token.serial
        ),
    )
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
        .filter(|t| t.status == TokenStatus::Present)
        .map(|t| t.token)
        .filter(|t| name.is_none_or(|n| t.label == n || t.serial == n))
        .collect();
    let count = tokens.len();
    let mut tokens = tokens.into_iter();
    match (tokens.next(), count, name) {
        (Some(only), 1, _) => Ok(only),
        (_, 0, Some(n)) => Err(Response::error(
            ErrorCode::TokenNotFound,
            format!("no token has the label or serial {n:?}; see `p11agent tokens`"),
        )),
        (_, 0, None) => Err(Response::error(
            ErrorCode::TokenNotFound,
            "no token is present",
        )),
        (_, n, _) => Err(Response::error(
            ErrorCode::TokenNotFound,
            format!("{n} tokens match; name one by label or serial (see `p11agent tokens`)"),
        )),
    }
}
