//! Hashing in the module (pure Rust): `C_Digest*`, and the hash of a
//! hash-and-sign mechanism whose message goes to the agent as a digest.

use cryptoki_sys::*;
use p11agent_client::proto::HashAlgorithm;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A hash under way.
#[derive(Debug, Clone)]
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn new(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            _ => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The hasher of a digest mechanism; `None` for other mechanisms.
    pub(crate) fn for_mechanism(mechanism: CK_MECHANISM_TYPE) -> Option<Self> {
        let hash = match mechanism {
            CKM_SHA256 => HashAlgorithm::Sha256,
            CKM_SHA384 => HashAlgorithm::Sha384,
            CKM_SHA512 => HashAlgorithm::Sha512,
            _ => return None,
        };
        Some(Hasher::new(hash))
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Hasher::Sha256(_) => 32,
            Hasher::Sha384(_) => 48,
            Hasher::Sha512(_) => 64,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_parts_equal_the_whole() {
        for mechanism in [CKM_SHA256, CKM_SHA384, CKM_SHA512] {
            let mut parts = Hasher::for_mechanism(mechanism).expect("digest");
            parts.update(b"ab");
            parts.update(b"c");
            let mut whole = Hasher::for_mechanism(mechanism).expect("digest");
            whole.update(b"abc");
            let len = parts.len();
            let digest = parts.finish();
            assert_eq!(digest.len(), len);
            assert_eq!(digest, whole.finish());
        }
        let sha256 = Hasher::for_mechanism(CKM_SHA256).expect("digest").finish();
        assert_eq!(
            hex::encode(sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Hasher::for_mechanism(CKM_SHA_1).is_none());
    }
}
