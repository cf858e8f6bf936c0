//! p11agent: a PKCS#11 smartcard signing agent.
//!
//! The library behind the `p11agent` binary. Its layers point down only
//! (docs/ARCHITECTURE.md):
//!
//! - [`cli`]: the command line, the one public entry point;
//! - `daemon` wires the parts together from the `config` settings;
//! - `server`: the Unix-socket transport over the service;
//! - `service`: the agent itself, one handle over its private state;
//! - `select`: client-certificate selection, policy, remembered choices;
//! - `store`: the identities found on the tokens, queryable;
//! - `token`: PKCS#11 modules, sessions, logins and signatures;
//! - `pin`, `process`: PIN sources and child processes, used from below;
//! - `memory`: how the daemon uses the C allocator.
//!
//! Only the command line, and the chooser program's contract (which other
//! programs implement), are public.

pub mod cli;
mod config;
mod daemon;
mod memory;
mod pin;
mod process;
pub mod select;
mod server;
mod service;
mod store;
mod token;
