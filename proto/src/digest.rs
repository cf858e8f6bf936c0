//! Signatures over a digest the client computed: what a PKCS#11 module's
//! raw mechanisms (`CKM_ECDSA`, `CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS`) ask
//! for. The agent cannot see the message behind a digest, so it admits
//! these only under an explicit policy (see the crate README).

use serde::{Deserialize, Serialize};

/// The hash function that made a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgorithm {
    /// Every hash the protocol names.
    pub const ALL: [HashAlgorithm; 3] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The length of its digests in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
}

/// How a digest is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DigestMechanism {
    /// RSASSA-PKCS1-v1_5: the agent wraps the digest in the DigestInfo
    /// of its hash and signs that.
    RsaPkcs1,
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the
    /// digest (what TLS 1.3 and every TLS stack use).
    RsaPss,
    /// ECDSA over the digest as given; the signature is DER, as in
    /// `sign`.
    Ecdsa,
}

impl DigestMechanism {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestMechanism::RsaPkcs1 => "rsa_pkcs1",
            DigestMechanism::RsaPss => "rsa_pss",
            DigestMechanism::Ecdsa => "ecdsa",
        }
    }
}
