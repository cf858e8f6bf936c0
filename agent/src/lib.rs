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

/// Entry points for the fuzzer (`fuzz/`), which runs what the agent does
/// with bytes a token gives it. Not an API: hidden, and free to change.
#[doc(hidden)]
pub mod fuzzing {
    use crate::token::found::{FoundCertificate, FoundToken};

    /// Stores `der` as a token's certificate object (`CKA_VALUE`) with a
    /// paired key, as a scan hands it to the store, then lists, queries
    /// and builds the chain of what was stored: the store's whole path
    /// for a certificate a token (or an attacker behind one) supplies.
    pub fn store_certificate(der: &[u8]) {
        let token = p11agent_proto::Token {
            label: "fuzz".into(),
            serial: "1".into(),
            manufacturer: "fuzz".into(),
            model: "fuzz".into(),
            slot: 0,
            module: "/fuzz.so".into(),
        };
        let mut store = crate::store::Store::new();
        store.insert_token(FoundToken {
            token: token.clone(),
            certificates: vec![FoundCertificate {
                der: der.to_vec(),
                cert_uri: "pkcs11:object=c".into(),
                key_uri: Some("pkcs11:object=k".into()),
                key_id: Some(vec![1]),
            }],
            key_count: 1,
            schemes: p11agent_proto::Scheme::ALL.to_vec(),
        });
        let now = time::OffsetDateTime::now_utc();
        for stored in store.stored() {
            let _ = stored.identity_at(now);
            let _ = stored.presented_chain();
        }
        let _ = store.query(&p11agent_proto::Filter::default(), now);
        let _ = store.identities_of(&token);
    }
}
