//! TLS signature schemes, by their IANA names.

use serde::{Deserialize, Serialize};

use crate::key::{Curve, KeyType};

/// A TLS 1.2/1.3 signature scheme the agent can sign with, named as in
/// the IANA TLS SignatureScheme registry (and rustls' `SignatureScheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, salt length 32.
    RsaPssRsaeSha256,
    /// RSASSA-PSS with SHA-384, MGF1 with SHA-384, salt length 48.
    RsaPssRsaeSha384,
    /// RSASSA-PSS with SHA-512, MGF1 with SHA-512, salt length 64.
    RsaPssRsaeSha512,
    /// ECDSA on P-256 with SHA-256; DER-encoded signature.
    EcdsaSecp256r1Sha256,
    /// ECDSA on P-384 with SHA-384; DER-encoded signature.
    EcdsaSecp384r1Sha384,
    /// ECDSA on P-521 with SHA-512; DER-encoded signature.
    EcdsaSecp521r1Sha512,
    /// EdDSA on Curve25519 (PureEdDSA).
    Ed25519,
}

impl Scheme {
    /// Every scheme, in the order the agent prefers them.
    pub const ALL: [Scheme; 10] = [
        Scheme::Ed25519,
        Scheme::EcdsaSecp256r1Sha256,
        Scheme::EcdsaSecp384r1Sha384,
        Scheme::EcdsaSecp521r1Sha512,
        Scheme::RsaPssRsaeSha256,
        Scheme::RsaPssRsaeSha384,
        Scheme::RsaPssRsaeSha512,
        Scheme::RsaPkcs1Sha256,
        Scheme::RsaPkcs1Sha384,
        Scheme::RsaPkcs1Sha512,
    ];

    /// The IANA name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::RsaPkcs1Sha256 => "rsa_pkcs1_sha256",
            Scheme::RsaPkcs1Sha384 => "rsa_pkcs1_sha384",
            Scheme::RsaPkcs1Sha512 => "rsa_pkcs1_sha512",
            Scheme::RsaPssRsaeSha256 => "rsa_pss_rsae_sha256",
            Scheme::RsaPssRsaeSha384 => "rsa_pss_rsae_sha384",
            Scheme::RsaPssRsaeSha512 => "rsa_pss_rsae_sha512",
            Scheme::EcdsaSecp256r1Sha256 => "ecdsa_secp256r1_sha256",
            Scheme::EcdsaSecp384r1Sha384 => "ecdsa_secp384r1_sha384",
            Scheme::EcdsaSecp521r1Sha512 => "ecdsa_secp521r1_sha512",
            Scheme::Ed25519 => "ed25519",
        }
    }

    /// The IANA code point.
    pub fn code(self) -> u16 {
        match self {
            Scheme::RsaPkcs1Sha256 => 0x0401,
            Scheme::RsaPkcs1Sha384 => 0x0501,
            Scheme::RsaPkcs1Sha512 => 0x0601,
            Scheme::RsaPssRsaeSha256 => 0x0804,
            Scheme::RsaPssRsaeSha384 => 0x0805,
            Scheme::RsaPssRsaeSha512 => 0x0806,
            Scheme::EcdsaSecp256r1Sha256 => 0x0403,
            Scheme::EcdsaSecp384r1Sha384 => 0x0503,
            Scheme::EcdsaSecp521r1Sha512 => 0x0603,
            Scheme::Ed25519 => 0x0807,
        }
    }

    /// Whether a key of this type and curve can make this scheme. ECDSA
    /// schemes are bound to their curve, as TLS 1.3 requires (a P-384
    /// key cannot answer with `ecdsa_secp256r1_sha256`).
    pub fn fits(self, key_type: KeyType, curve: Option<Curve>) -> bool {
        match self {
            Scheme::RsaPkcs1Sha256
            | Scheme::RsaPkcs1Sha384
            | Scheme::RsaPkcs1Sha512
            | Scheme::RsaPssRsaeSha256
            | Scheme::RsaPssRsaeSha384
            | Scheme::RsaPssRsaeSha512 => key_type == KeyType::Rsa,
            Scheme::EcdsaSecp256r1Sha256 => curve == Some(Curve::P256),
            Scheme::EcdsaSecp384r1Sha384 => curve == Some(Curve::P384),
            Scheme::EcdsaSecp521r1Sha512 => curve == Some(Curve::P521),
            Scheme::Ed25519 => key_type == KeyType::Ed25519,
        }
    }

    /// Whether an RSA key of `bits` bits is large enough for this
    /// scheme (true for the others, and when the size is unknown, 0):
    /// RSA-PSS, with the salt as long as the hash that TLS 1.3 requires,
    /// needs an encoded message of twice the hash plus 2 bytes (RFC 8017
    /// §9.1.1: RSA-1024 cannot make `rsa_pss_rsae_sha512`); PKCS#1 v1.5
    /// needs the DigestInfo plus 11 bytes (§9.2).
    pub fn fits_rsa_bits(self, bits: u32) -> bool {
        if bits == 0 {
            return true;
        }
        let em_len = bits.saturating_sub(1).div_ceil(8);
        let k = bits.div_ceil(8);
        match self {
            Scheme::RsaPssRsaeSha256 => em_len >= 2 * 32 + 2,
            Scheme::RsaPssRsaeSha384 => em_len >= 2 * 48 + 2,
            Scheme::RsaPssRsaeSha512 => em_len >= 2 * 64 + 2,
            Scheme::RsaPkcs1Sha256 => k >= 19 + 32 + 11,
            Scheme::RsaPkcs1Sha384 => k >= 19 + 48 + 11,
            Scheme::RsaPkcs1Sha512 => k >= 19 + 64 + 11,
            _ => true,
        }
    }

    /// The scheme with this code point, if the agent knows it.
    pub fn from_code(code: u16) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The scheme with this IANA name, if the agent knows it.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_schemes_follow_the_key_size() {
        // RSA-1024: PSS with SHA-512 needs 1034 bits at least.
        assert!(!Scheme::RsaPssRsaeSha512.fits_rsa_bits(1024));
        assert!(Scheme::RsaPssRsaeSha512.fits_rsa_bits(1034));
        assert!(!Scheme::RsaPssRsaeSha512.fits_rsa_bits(1033));
        assert!(Scheme::RsaPssRsaeSha384.fits_rsa_bits(1024));
        assert!(Scheme::RsaPkcs1Sha512.fits_rsa_bits(1024));
        assert!(!Scheme::RsaPkcs1Sha512.fits_rsa_bits(512));
        assert!(!Scheme::RsaPssRsaeSha256.fits_rsa_bits(512));
        for scheme in Scheme::ALL {
            assert!(scheme.fits_rsa_bits(2048), "{scheme:?}");
            assert!(scheme.fits_rsa_bits(0), "{scheme:?}");
        }
        assert!(Scheme::EcdsaSecp256r1Sha256.fits_rsa_bits(1024));
    }

    #[test]
    fn ecdsa_schemes_are_bound_to_their_curve() {
        let p384 = |s: Scheme| s.fits(KeyType::Ec, Some(Curve::P384));
        assert!(p384(Scheme::EcdsaSecp384r1Sha384));
        assert!(!p384(Scheme::EcdsaSecp256r1Sha256));
        assert!(!p384(Scheme::RsaPssRsaeSha256));
        assert!(Scheme::RsaPkcs1Sha512.fits(KeyType::Rsa, None));
        assert!(!Scheme::Ed25519.fits(KeyType::Other, None));
        assert!(!Scheme::EcdsaSecp256r1Sha256.fits(KeyType::Ec, None));
    }

    #[test]
    fn names_and_codes_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.as_str()), Some(s));
            assert_eq!(Scheme::from_code(s.code()), Some(s));
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }
}
