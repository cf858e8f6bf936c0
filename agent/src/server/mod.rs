//! The Unix-socket server: a thin transport over the agent service.
//!
//! Binding a private socket, refusing other users, reading frames,
//! decoding each request, calling the service, and encoding its answer
//! or mapping its typed error to the protocol's code. No command here
//! touches tokens, the store or the audit trail: the service does.
//!
//! Modelled on mini-redis: `listener.rs` accepts under a connection cap
//! and stops on shutdown, `connection.rs` owns the framing of one
//! client, `limits.rs` the timeouts and the idle connections the
//! listener may reclaim, `reply.rs` the answers to clients stuck in a
//! hung module, `errors.rs` the error code of each failure, `cmd/` one
//! file per request.

mod cmd;
mod connection;
mod errors;
mod limits;
mod listener;
mod peer;
mod reply;
mod socket;

pub(crate) use errors::code as error_code;
pub(crate) use limits::Timeouts;
pub(crate) use listener::serve;
pub(crate) use socket::{bind, SocketError};

/// How the server runs, resolved from flags and configuration.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// How long a client may take over a frame, and stay idle.
    pub(crate) timeouts: Timeouts,
    /// Other users allowed to connect.
    pub(crate) allowed_uids: Vec<u32>,
}

/// `p11agent x.y.z`, as the agent introduces itself.
fn agent_name() -> String {
    format!("p11agent {}", env!("CARGO_PKG_VERSION"))
}
