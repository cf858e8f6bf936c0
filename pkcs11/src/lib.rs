//! A PKCS#11 module whose tokens, objects and signatures are those of
//! the running p11agent agent: programs that load PKCS#11 modules
//! (browsers, curl, OpenSSL's pkcs11-provider, gnutls, Java, ssh) see
//! every identity of the agent as a certificate, a public key and a
//! private key, and the agent makes every signature.
//!
//! The module is `libp11agent_pkcs11.so`; the README says what it shows,
//! which mechanisms it offers and how each is asked of the agent.
//!
//! Layers: `ffi` is the C interface (the only `unsafe` code); `calls` and
//! `operations` are the functions' bodies in safe Rust; `state` holds
//! everything between `C_Initialize` and `C_Finalize` behind one lock,
//! `agent` the connections, `cache` what the agent's latest listing
//! shows (`slots`, `objects` with their `attributes`, built from `key`);
//! `mechanisms` routes a mechanism to the agent's requests, `sign` and
//! `digest` run the operations, `der` converts; `rv` maps every error
//! to its `CKR_*` value.

mod agent;
mod attributes;
mod cache;
mod calls;
mod der;
mod digest;
mod ffi;
mod key;
mod mechanisms;
mod objects;
mod operations;
mod rv;
mod sessions;
mod sign;
mod slots;
mod state;

/// Marks this library as p11agent's own PKCS#11 module, so that the
/// agent can refuse to load it as a token module (it would sign through
/// itself).
#[allow(unsafe_code, non_upper_case_globals)]
#[no_mangle]
pub static p11agent_pkcs11_module_marker: [u8; 16] = *b"p11agent-pkcs11\0";
