//! What kind of key an identity has: its algorithm family and curve.

use serde::{Deserialize, Serialize};

/// The algorithm family of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyType {
    /// RSA.
    Rsa,
    /// An elliptic-curve key (id-ecPublicKey): ECDSA over a NIST prime
    /// curve, or over another curve when `curve` is `None`.
    Ec,
    /// EdDSA over Curve25519.
    Ed25519,
    /// A key algorithm the agent cannot sign with.
    Other,
}

impl KeyType {
    /// The name used on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ec => "ec",
            KeyType::Ed25519 => "ed25519",
            KeyType::Other => "other",
        }
    }
}

/// A named elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384 (secp384r1).
    #[serde(rename = "P-384")]
    P384,
    /// NIST P-521 (secp521r1).
    #[serde(rename = "P-521")]
    P521,
}

impl Curve {
    /// The curve's name as printed (`P-256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}
