//! The Unix-socket server: binding a private socket, refusing other
//! users, reading frames and dispatching requests to one handler per
//! command.
//!
//! Modelled on mini-redis: `listener.rs` accepts under a connection cap
//! and stops on shutdown, `connection.rs` owns the framing of one
//! client, `limits.rs` the timeouts and the idle connections the
//! listener may reclaim, `rescue.rs` the answers to clients stuck in a
//! hung module, `cmd/` holds what each request does.

pub mod cmd;
mod connection;
mod limits;
mod listener;
mod peer;
pub mod rescue;
mod socket;

pub use connection::{decode_request, BadRequest};
pub use listener::{serve, MAX_CONNECTIONS};
pub use socket::{bind, BoundSocket, SocketError};
