//! p11agent: a PKCS#11 smartcard signing agent.
//!
//! The library behind the `p11agent` binary: the token layer that talks
//! PKCS#11 ([`token`]), the identity store ([`store`]), the socket server
//! ([`server`]), the event hub that tells watchers what happens
//! ([`events`]), the daemon that ties them together ([`daemon`]) and the
//! command line ([`cli`]).

pub mod audit;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod events;
pub mod hotplug;
pub mod pin;
mod process;
pub mod purpose;
pub mod select;
pub mod server;
pub mod store;
pub mod token;
