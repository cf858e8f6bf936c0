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
pub(crate) use listener::{serve, ServerOptions};
pub(crate) use socket::{bind, inherited, SocketError};
