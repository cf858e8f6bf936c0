//! The records the agent reports: identities (a certificate, and its key
//! when one is present) and the tokens they live on.

use serde::{Deserialize, Serialize};

use crate::key::{Curve, KeyType};

/// A certificate found on a token, with its private key when one is present.
///
/// The field names are a public contract: `p11agent list --json` prints
/// these records, and scripts rely on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Lower-case hex SHA-256 of the certificate's DER encoding.
    pub id: String,
    /// Subject distinguished name, RFC 4514.
    pub subject: String,
    /// Issuer distinguished name, RFC 4514.
    pub issuer: String,
    /// Serial number: lower-case hex of its integer value, without the
    /// DER sign byte (as `openssl x509 -serial` prints it, up to case).
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// The algorithm family of the certified key.
    pub key_type: KeyType,
    /// Key size in bits: the modulus for RSA, the field size for curves
    /// (for an EC key on another curve, as far as its public point tells);
    /// 0 when unknown, as for [`KeyType::Other`].
    pub key_bits: u32,
    /// The named curve of an EC key; `None` for RSA, Ed25519 and
    /// [`KeyType::Other`], and for EC keys on a curve other than P-256,
    /// P-384 and P-521 (or without a named curve).
    pub curve: Option<Curve>,
    /// Key Usage bit names (`digitalSignature`, `keyEncipherment`, ...);
    /// `None` when the extension is absent.
    pub key_usage: Option<Vec<String>>,
    /// Extended Key Usage purposes as dotted OIDs; `None` when absent.
    pub extended_key_usage: Option<Vec<String>>,
    /// Whether the token holds the private key for this certificate.
    pub has_private_key: bool,
    /// The token the certificate was found on.
    pub token: Token,
    /// RFC 7512 PKCS#11 URI of the certificate object.
    pub cert_uri: String,
    /// RFC 7512 PKCS#11 URI of the private key; `None` without a key.
    pub key_uri: Option<String>,
    /// Whether this identity may be offered for TLS client authentication.
    pub client_auth: ClientAuth,
    /// The TLS signature schemes the agent can make with this identity's
    /// key on its token: those the key type allows and the token's
    /// mechanism list supports. Empty without a key.
    pub schemes: Vec<crate::Scheme>,
    /// Whether its token is inserted. An identity of a removed token stays
    /// listed (when the agent remembers absent tokens) with `false`, so a
    /// request for it can say which token to insert.
    #[serde(default = "present_by_default")]
    pub present: bool,
}

fn present_by_default() -> bool {
    true
}

/// Where a token sits: its identifying fields and the slot and module
/// through which the agent reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Token {
    /// The token label (`CK_TOKEN_INFO.label`, trailing blanks removed).
    pub label: String,
    /// The token serial number.
    pub serial: String,
    /// The token manufacturer.
    pub manufacturer: String,
    /// The token model.
    pub model: String,
    /// The slot id within its module.
    pub slot: u64,
    /// Path of the PKCS#11 module that provides the token.
    pub module: String,
}

/// A token with the number of objects the agent found on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// The token.
    #[serde(flatten)]
    pub token: Token,
    /// Number of X.509 certificate objects.
    pub certificates: usize,
    /// Number of private keys found (or inferred from public keys before
    /// login; see the store documentation).
    pub keys: usize,
    /// Whether the token can be used now.
    #[serde(default)]
    pub status: TokenStatus,
}

/// Whether a token can be used now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenStatus {
    /// Inserted, and its module answers.
    #[default]
    Present,
    /// Removed; its identities are remembered until it comes back.
    Absent,
    /// Its module does not answer in time (hung or failing); the agent
    /// keeps trying.
    Unavailable,
}

impl TokenStatus {
    /// The name as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Present => "present",
            TokenStatus::Absent => "absent",
            TokenStatus::Unavailable => "unavailable",
        }
    }
}

/// Whether an identity may be used for TLS client authentication, and
/// why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuth {
    /// True when no reason excludes the identity.
    pub usable: bool,
    /// Every reason that excludes the identity; empty when usable.
    pub reasons: Vec<Reason>,
}

impl ClientAuth {
    /// Builds the verdict from the reasons that apply.
    pub fn from_reasons(reasons: Vec<Reason>) -> Self {
        ClientAuth {
            usable: reasons.is_empty(),
            reasons,
        }
    }
}

/// Why an identity cannot be used for client authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// No private key for the certificate was found on its token.
    NoPrivateKey,
    /// The key's algorithm or curve is one the agent cannot sign with
    /// (e.g. brainpool, Ed448).
    UnsupportedKey,
    /// The certificate's validity ended.
    Expired,
    /// The certificate's validity has not begun.
    NotYetValid,
    /// Key Usage is present and lacks digitalSignature.
    KeyUsage,
    /// Extended Key Usage is present and lacks clientAuth and
    /// anyExtendedKeyUsage.
    ExtendedKeyUsage,
    /// Selection only: no name in the server's CA list is the issuer of
    /// the certificate or of any certificate in its chain.
    IssuerNotAccepted,
    /// Selection only: the key can make none of the server's signature
    /// schemes (TLS 1.3 binds ECDSA schemes to curves).
    NoCommonScheme,
    /// Selection only: the token holding the key is not present.
    TokenAbsent,
}

impl Reason {
    /// The reason code as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoPrivateKey => "no_private_key",
            Reason::UnsupportedKey => "unsupported_key",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::KeyUsage => "key_usage",
            Reason::ExtendedKeyUsage => "extended_key_usage",
            Reason::IssuerNotAccepted => "issuer_not_accepted",
            Reason::NoCommonScheme => "no_common_scheme",
            Reason::TokenAbsent => "token_absent",
        }
    }
}
