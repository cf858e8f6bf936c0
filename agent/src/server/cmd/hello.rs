//! `hello`: the version handshake.

use p11agent_proto::{Response, PROTOCOL_VERSION};

/// The agent's side of the handshake.
pub fn run() -> Response {
    Response::Hello {
        version: PROTOCOL_VERSION,
        agent: crate::daemon::agent_name(),
    }
}
