//! `hello`: the version handshake.

use p11agent_proto::{Response, PROTOCOL_VERSION};

/// The agent's side of the handshake.
pub(crate) fn run() -> Response {
    Response::Hello {
        version: PROTOCOL_VERSION,
        agent: super::super::agent_name(),
    }
}
