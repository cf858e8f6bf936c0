//! Client library for the p11agent signing agent.
//!
//! [`Client`] is a blocking connection, [`AsyncClient`] the same over
//! tokio. Both perform the version handshake on connect and offer one
//! typed call per request the agent answers; `watch` turns a connection
//! into a stream of the agent's events ([`EventStream`],
//! [`AsyncEventStream`]).
//!
//! The [`tls`] module plugs the agent into rustls 0.23 (ring provider):
//! a client-certificate resolver and signing key whose private-key
//! operations are done by the agent, and a helper that builds a
//! `ClientConfig` for one origin. It is always built (no feature flag):
//! the agent exists to do TLS client authentication, and rustls with
//! ring is a modest dependency.
//!
//! # Reconnecting
//!
//! A client outlives the agent it connected to: when a call finds its
//! connection dead — writing the request fails with `EPIPE` or
//! `ECONNRESET`, or the stream ends (EOF, `ECONNRESET`) before the first
//! byte of the response — the client connects to the same socket again,
//! repeats the `hello` handshake and sends the request once more. That
//! happens once per call and for those transport failures only: never
//! after the agent answered (an `error` response is an answer), and never
//! once part of a response frame has arrived, since the agent was then
//! alive and working on it. When nothing listens on the socket any more,
//! the call fails with [`ClientError::NotRunning`], as `connect` does; the
//! next call tries again.
//!
//! Sending a request a second time is safe because every request is
//! either read-only (`status`, `tokens`, `list`, `show`, `select`,
//! `decisions`), idempotent (`choose` records the same choice again,
//! `forget` and `logout` forget again), or worth doing again: a `sign`
//! repeated after the agent died is a fresh signature over the same
//! message from the new agent, and the first attempt's signature, if one
//! was made, was never delivered to anybody. The exception is `login`,
//! which tries a PIN (the one it carries, or the agent's PIN source's):
//! a PIN is never tried twice without a person asking, since a wrong one
//! counts towards locking the card. So a `login` is sent again only when
//! the first request demonstrably never reached an agent (its write
//! failed), not when the connection broke while it was being answered.
//!
//! ```no_run
//! let mut agent = p11agent_client::Client::connect_default()?;
//! for identity in agent.list(&Default::default())? {
//!     println!("{} {}", identity.id, identity.subject);
//! }
//! # Ok::<(), p11agent_client::ClientError>(())
//! ```

mod asynchronous;
mod blocking;
mod calls;
mod connection;
mod error;
mod events;
mod query;
pub mod tls;
mod transport;

pub use asynchronous::AsyncClient;
pub use blocking::Client;
pub use error::ClientError;
pub use events::{AsyncEventStream, EventStream};
pub use p11agent_proto as proto;
pub use query::{SelectQuery, ShownIdentity};
