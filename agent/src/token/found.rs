//! What a scan of one token yields, and where a stored identity's key
//! lives when it is signed with: the seam between the PKCS#11 layer and
//! the store. Nothing here refers to PKCS#11 types.

use p11agent_proto::{Curve, KeyType, Scheme, Token};
use serde::{Deserialize, Serialize};

/// Everything found on one token. Like the rest of this file, it crosses
/// from a module helper to the agent as it is (`isolated/wire.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FoundToken {
    /// The token's identifying fields, slot and module.
    pub token: Token,
    /// Every X.509 certificate object on the token.
    pub certificates: Vec<FoundCertificate>,
    /// Number of private keys on the token: visible private-key objects,
    /// or, before login, public-key objects standing in for them.
    pub key_count: usize,
    /// The signature schemes whose mechanisms the token offers, for any
    /// key type; an identity can use those its key type also allows.
    pub schemes: Vec<Scheme>,
}

/// What one poll of a module found: the tokens present, and the slots
/// whose token the module said is gone (`CKR_TOKEN_NOT_PRESENT`,
/// `CKR_DEVICE_REMOVED`, ...), as opposed to a token merely missing from
/// this poll, which may be back at the next (another process rewriting
/// its files, a reader busy).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Presence {
    /// The initialised tokens present.
    pub tokens: Vec<Token>,
    /// Slots whose token is definitely gone.
    pub gone: Vec<u64>,
}

/// One certificate object and, when paired, its private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FoundCertificate {
    /// The certificate's DER encoding (`CKA_VALUE`).
    pub der: Vec<u8>,
    /// RFC 7512 URI of the certificate object.
    pub cert_uri: String,
    /// RFC 7512 URI of the paired private key; `None` when no key pairs
    /// with the certificate.
    pub key_uri: Option<String>,
    /// `CKA_ID` of the paired private key (present exactly when
    /// `key_uri` is), by which signing finds the key.
    pub key_id: Option<Vec<u8>>,
}

/// Where an identity's private key lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyLocation {
    /// The identity id (full).
    pub id: String,
    /// The token holding the key.
    pub token: Token,
    /// The key's `CKA_ID`.
    pub key_id: Vec<u8>,
    /// The key's type.
    pub key_type: KeyType,
    /// The key's curve, for EC keys.
    pub curve: Option<Curve>,
    /// The schemes the key can make on its token.
    pub schemes: Vec<Scheme>,
    /// Whether the token is inserted.
    pub present: bool,
}
