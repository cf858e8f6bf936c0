//! What each request does, one file per command: decode the request's
//! members into the service's terms, call the service, encode its answer
//! or map its error (`errors.rs`).

pub(super) mod choose;
pub(super) mod decisions;
pub(super) mod forget;
pub(super) mod hello;
pub(super) mod list;
pub(super) mod login;
pub(super) mod logout;
pub(super) mod select;
pub(super) mod show;
pub(super) mod sign;
pub(super) mod sign_digest;
pub(super) mod status;
pub(super) mod tokens;
pub(super) mod watch;

mod shared;

use p11agent_proto::{ErrorCode, Request, Response};

pub(crate) use shared::Context;

/// Whether `request` is served on the extra socket, which a remote shell
/// reaches through `ssh -R`: what reads the store and what signs (under
/// purpose binding and confirmation, as anywhere), never what changes
/// the agent's state (logins, remembered choices), signs a bare digest
/// (its policy names local programs), or streams events.
pub(crate) fn served_remotely(request: &Request) -> bool {
    matches!(
        request,
        Request::Hello { .. }
            | Request::Status
            | Request::Tokens
            | Request::List { .. }
            | Request::Show { .. }
            | Request::Select { .. }
            | Request::Sign { .. }
    )
}

/// Runs a request that follows the handshake. `watch` is served by the
/// connection itself, which it turns into an event stream.
pub(crate) fn dispatch(context: &Context<'_>, request: Request) -> Response {
    match request {
        Request::Hello { .. } => hello::run(),
        Request::Status => status::run(context),
        Request::Tokens => tokens::run(context),
        Request::List { filter } => list::run(context, &filter),
        Request::Show { id } => show::run(context, &id),
        Request::Sign {
            id,
            scheme,
            message,
        } => sign::run(context, &id, scheme, &message),
        Request::SignDigest {
            id,
            mechanism,
            hash,
            digest,
        } => sign_digest::run(context, &id, mechanism, hash, &digest),
        Request::Login { token, pin } => login::run(context, token.as_deref(), pin),
        Request::Logout { token } => logout::run(context, token.as_deref()),
        Request::Select {
            origin,
            ca_names,
            schemes,
            chooser,
            id,
            explain,
        } => select::run(
            context,
            select::Asked {
                origin: &origin,
                ca_names: &ca_names,
                schemes,
                chooser,
                id,
                explain,
            },
        ),
        Request::Choose {
            origin,
            id,
            remember,
        } => choose::run(context, &origin, id.as_deref(), remember),
        Request::Decisions => decisions::run(context),
        Request::Forget { origin } => forget::run(context, origin.as_deref()),
        Request::Watch => Response::error(
            ErrorCode::Internal,
            "watch is served by the connection, not dispatched",
        ),
        // A request the protocol crate knows and this agent does not
        // serve yet: what a client of a newer protocol crate may send.
        other => Response::error(
            ErrorCode::UnknownRequest,
            format!("this agent does not serve {:?} requests", other.op()),
        ),
    }
}
