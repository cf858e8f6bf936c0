//! The token layer: PKCS#11 modules, their slots and tokens, and the
//! certificates and keys found on them.
//!
//! - [`Module`] loads and initialises one PKCS#11 module;
//!   [`default_modules`] lists the modules registered with p11-kit;
//!   [`own_module`] recognises p11agent's own forwarding module, which
//!   the agent must never load.
//! - [`Module::scan`] reads every token's certificates and pairs them with
//!   their private keys (by `CKA_ID`, then by public key), yielding
//!   [`FoundToken`]s.
//! - [`Tokens`] owns the modules and signs with their keys (sessions,
//!   login on demand, context-specific login), failing with a
//!   [`SignError`]; a module may be [`Loaded`] in a helper process of
//!   its own ([`isolated`]), behind the same methods.
//! - [`uri`] writes the RFC 7512 PKCS#11 URIs that name the objects.
//! - `rv.rs` says what each PKCS#11 return value (`CKR_*`) makes the
//!   agent do.
//!
//! Everything here blocks; the layers above choose the thread (a watcher's
//! `spawn_blocking`, a connection's own thread).

mod error;
pub(crate) mod found;
pub(crate) mod isolated;
mod login;
mod mechanisms;
mod module;
mod own_module;
pub(crate) mod p11kit;
mod pairing;
mod public_key;
mod raw;
mod rv;
mod scan;
mod sign;
mod sign_error;
pub(crate) mod signature;
mod slot;
mod tokens;
pub(crate) mod uri;

#[cfg(test)]
mod signing_tests;
#[cfg(test)]
mod softhsm_tests;
#[cfg(test)]
mod testing;

pub(crate) use error::TokenError;
pub(crate) use found::FoundToken;
pub(crate) use module::Module;
pub(crate) use own_module::{own_module, OwnModule};
pub(crate) use p11kit::default_modules;
pub(crate) use sign_error::SignError;
pub(crate) use tokens::{Loaded, Tokens};
