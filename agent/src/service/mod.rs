//! The agent service: everything the agent does, behind one handle.
//!
//! [`Agent`] is a cheap handle over private state (the store, the tokens,
//! selection, health, the audit trail and the event hub). Each operation
//! is one method that runs the whole transaction — look up, check, call
//! the token, update the store — and performs each side effect (audit
//! line, event, store update) in exactly one place:
//!
//! - `sign.rs`: a signature of a message or of a client's digest, from
//!   the identity's id to the audit line; `digest_policy.rs` says which
//!   programs may have digests signed;
//! - `login.rs`: login, logout and logout after idle time;
//! - `selection.rs`: client-certificate selection and remembered choices;
//! - `presence.rs`: tokens arriving and leaving, and module health, which
//!   the watchers in `tasks.rs` report;
//! - `startup.rs`: loading the modules and filling the store.
//!
//! Operations that may block (a token, a person at a prompt, a file) are
//! plain blocking methods: the transport decides on which thread to run
//! them, and never runs them on the async reactor. The service knows
//! nothing of sockets or the wire protocol: callers get typed
//! [`ServiceError`]s, and the transport maps them to its codes.

mod agent;
mod audit;
mod digest_policy;
mod error;
mod events;
mod health;
mod in_flight;
mod login;
mod presence;
mod purpose;
mod selection;
mod sign;
mod startup;
mod tasks;

pub(crate) use agent::{Agent, AgentOptions, Caller, Isolation, WatchOptions};
pub(crate) use audit::{Audit, AuditError, Peer};
pub(crate) use digest_policy::{BadDigestRule, DigestPolicy, DigestRule};
pub(crate) use error::ServiceError;
pub(crate) use events::Subscription;
pub(crate) use in_flight::Waiter;
pub(crate) use purpose::{Purpose, Purposes};
pub(crate) use selection::SelectRequest;

/// How many events a watcher may fall behind before it misses some.
#[cfg(test)]
pub(crate) const EVENT_BACKLOG: usize = events::Events::CAPACITY;
