//! `hello`: the version handshake.

use p11agent_proto::{Response, PROTOCOL_VERSION};

/// The agent's side of the handshake.
pub(crate) fn run() -> Response {
    Response::Hello {
        version: PROTOCOL_VERSION,
        agent: agent_name(),
    }
}

/// `p11agent x.y.z`, as the agent introduces itself.
pub(super) fn agent_name() -> String {
    format!("p11agent {}", env!("CARGO_PKG_VERSION"))
}
