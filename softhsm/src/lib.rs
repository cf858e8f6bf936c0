//! SoftHSM fixtures for p11agent's tests, benchmarks and demo.
//!
//! - [`SoftHsm`]: an isolated SoftHSM environment (its own `softhsm2.conf`
//!   and token directory in a temporary or chosen directory; never the
//!   system configuration), with [`env`](SoftHsm::env) for the process under
//!   test.
//! - [`Token`]: a token in it, with key pairs generated *on the token*
//!   ([`KeyAlgorithm`]: RSA 2048/3072, EC P-256/384/521, Ed25519) and
//!   certificates stored next to them; tokens can be [removed and
//!   re-inserted](Token::remove).
//! - [`Pki`]: a software root CA, an optional intermediate, leaf
//!   certificates described by a [`LeafSpec`] (subject, issuer, serial,
//!   validity, Key Usage, Extended Key Usage, key type), and TLS server
//!   certificates with software keys.
//! - [`P11KitServer`]: a `p11-kit server` serving an environment's tokens
//!   to `p11-kit-client.so`, which can be paused to make that module hang.
//!
//! ```no_run
//! use p11agent_softhsm::{KeyAlgorithm, LeafSpec, Pki, SoftHsm};
//!
//! let hsm = SoftHsm::new()?;                       // removed on drop
//! let token = hsm.create_token("alice", "1234", "12345678")?;
//! let pki = Pki::standard()?;                      // root + intermediate
//! let alice = token.add_identity(
//!     &pki,
//!     &LeafSpec::new("Alice").key(KeyAlgorithm::Rsa2048).issued_by_intermediate(),
//! )?;
//! let expired = token.add_identity(&pki, &LeafSpec::new("Old Alice").expired())?;
//! token.add_ca_certificates(&pki)?;                // root and intermediate, no keys
//! let bulk = token.add_many(&pki, 1000)?;          // one login, ~2.6 s on tmpfs
//! println!("{} on {} via {:?}", alice.subject, hsm.module_path().display(), hsm.env());
//! # Ok::<(), p11agent_softhsm::Error>(())
//! ```
//!
//! # Isolation
//!
//! SoftHSM reads `SOFTHSM2_CONF` only in `C_Initialize`, and all users of
//! one library file in a process share its state. Every PKCS#11 session of
//! this crate therefore runs under a process-wide lock with the module
//! initialised for exactly one environment and finalised afterwards, on a
//! private copy of the module so that an in-process user of the real
//! `libsofthsm2.so` is not disturbed (see [`provisioning_lock`]).
//!
//! # Things SoftHSM 2.6.1 does that tests should know
//!
//! - `CKA_EC_POINT` comes back DER OCTET STRING-wrapped.
//! - Ed25519 key generation accepts `CKA_EC_PARAMS` as the OID 1.3.101.112
//!   or the PrintableString `edwards25519`; the public key keeps what was
//!   given, the private key always gets the PrintableString.
//! - A token's slot id is the low 31 bits of its serial once the module is
//!   re-initialised (right after `C_InitToken` it keeps the free slot's
//!   small id); a token created by another process only appears after the
//!   module is finalised and initialised again.
//! - Every object change rewrites token files; on ext4 each rewrite waits
//!   for the journal (~30 ms per identity) while on tmpfs an identity costs
//!   ~2.5 ms, which is why temporary environments live in `/dev/shm`.
//! - Two threads initialising the same module instance with different
//!   configurations crash the process (SIGSEGV): hence the lock.

pub mod demo;
mod env;
mod error;
mod keys;
mod module;
mod p11kit_server;
mod pki;
mod token;
mod util;

pub use env::{SoftHsm, StoredCertificate, TokenInventory, TokenSummary, TMPDIR_ENV};
pub use error::{Error, Result};
pub use keys::{GeneratedKey, KeyAlg, KeyAlgorithm, PublicKey};
pub use module::{module_path, provisioning_lock, ProvisioningLock, CONF_ENV, MODULE_ENV};
pub use p11kit_server::{
    p11kit_client_module, P11KitServer, P11KIT_CLIENT_ENV, P11KIT_ENV, SERVER_ADDRESS_ENV,
};
pub use pki::{Eku, IssuedBy, KeyUsage, LeafSpec, Pki, SoftwareIdentity};
pub use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};
pub use token::{Provisioned, Provisioner, Token};
pub use util::{pem_decode_all, rfc4514, sha256};

/// Re-export of the cryptoki version this crate uses, for inspecting tokens
/// inside [`SoftHsm::with_pkcs11`] and [`Token::provision`].
pub use cryptoki;
