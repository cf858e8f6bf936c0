//! What every command shares: the service and its caller, and the
//! decoding and encoding helpers that turn wire values into the
//! service's terms and its answers back into responses.

use std::path::Path;
use std::sync::Arc;

use p11agent_proto::{ErrorCode, Response};

use crate::select::origin::Origin;
use crate::server::errors;
use crate::server::reply::Reply;
use crate::service::{Agent, Caller, Peer, ServiceError, Waiter};

/// What a command may use: the service, and who asks on which socket.
pub(crate) struct Context<'a> {
    /// The agent service.
    pub(crate) agent: &'a Agent,
    /// The client.
    pub(crate) peer: &'a Peer,
    /// How the client is answered while a token call hangs.
    pub(crate) reply: &'a Arc<Reply>,
    /// The socket the client connected to.
    pub(crate) socket: &'a Path,
}

impl Context<'_> {
    /// The caller, as the service sees it.
    pub(super) fn caller(&self) -> Caller<'_> {
        Caller {
            peer: self.peer,
            waiter: Some(Arc::clone(self.reply) as Arc<dyn Waiter>),
        }
    }
}

/// The answer for a service call: `ok` encoded, or the error mapped.
pub(super) fn answer<T>(
    result: Result<T, ServiceError>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(e) => errors::response(&e),
    }
}

/// The origin a client named, or the error response (boxed: a
/// `Response` is large).
pub(super) fn parse_origin(text: &str) -> Result<Origin, Box<Response>> {
    Origin::parse(text).map_err(|e| {
        Box::new(Response::error(
            ErrorCode::InvalidOrigin,
            format!("origin {text:?}: {e}"),
        ))
    })
}

/// Standard base64, or the `malformed` answer naming `what`.
pub(super) fn base64(what: &str, text: &str) -> Result<Vec<u8>, Box<Response>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| {
            Box::new(Response::error(
                ErrorCode::Malformed,
                format!("{what} is not base64: {e}"),
            ))
        })
}
