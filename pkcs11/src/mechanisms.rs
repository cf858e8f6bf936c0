//! Which mechanisms a key offers, what `C_GetMechanismInfo` says of them,
//! and how a signature with one is asked of the agent: its whole-message
//! `sign` where a TLS scheme is exactly the mechanism, otherwise a digest
//! (`sign_digest`).

use cryptoki_sys::*;
use p11agent_client::proto::{Curve, DigestMechanism, HashAlgorithm, Scheme};

use crate::key::{Key, PublicKey};
use crate::rv::Error;

/// The digest mechanisms every token lists (Java's SunPKCS11 wants them).
pub(crate) const DIGESTS: [CK_MECHANISM_TYPE; 3] = [CKM_SHA256, CKM_SHA384, CKM_SHA512];

const RSA_PKCS1: [CK_MECHANISM_TYPE; 4] = [
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
];
const RSA_PSS: [CK_MECHANISM_TYPE; 4] = [
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];
const ECDSA: [CK_MECHANISM_TYPE; 4] = [
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
];

/// A mechanism's parameters, as far as the module reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Params {
    None,
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_ULONG,
        salt_len: CK_ULONG,
    },
    EdDsa {
        prehash: bool,
        context: bool,
    },
    /// Parameters of a shape the module does not know.
    Other,
}

/// How one signature is asked of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Hash-and-sign: the whole message to `sign` with `scheme` when the
    /// agent has that scheme for the key (and the message is small
    /// enough to send), otherwise its `hash`, signed by `mechanism`.
    HashThenSign {
        hash: HashAlgorithm,
        mechanism: DigestMechanism,
        scheme: Option<Scheme>,
    },
    /// The whole message, to `sign` with this scheme (EdDSA).
    Message(Scheme),
    /// `CKM_ECDSA`: a bare hash, its length telling which.
    RawEcdsa,
    /// `CKM_RSA_PKCS`: a DigestInfo.
    RawRsaPkcs1,
    /// `CKM_RSA_PKCS_PSS`: a bare hash of the parameters' hash.
    RawPss(HashAlgorithm),
}

/// The signing mechanisms of `key`: those its type allows and the agent
/// has a scheme of on its token.
pub(crate) fn for_key(key: &Key) -> Vec<CK_MECHANISM_TYPE> {
    let has = |wanted: fn(&Scheme) -> bool| key.schemes.iter().any(wanted);
    let mut out = Vec::new();
    match key.public {
        PublicKey::Rsa { .. } => {
            if has(|s| scheme_family(*s) == Family::RsaPkcs1) {
                out.extend(RSA_PKCS1);
            }
            if has(|s| scheme_family(*s) == Family::RsaPss) {
                out.extend(RSA_PSS);
            }
        }
        PublicKey::Ec { .. } if has(|s| scheme_family(*s) == Family::Ecdsa) => out.extend(ECDSA),
        PublicKey::Ed25519 { .. } if has(|s| *s == Scheme::Ed25519) => out.push(CKM_EDDSA),
        _ => {}
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Family {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
    EdDsa,
    /// A scheme of a newer protocol version.
    Other,
}

fn scheme_family(scheme: Scheme) -> Family {
    match scheme {
        Scheme::RsaPkcs1Sha256 | Scheme::RsaPkcs1Sha384 | Scheme::RsaPkcs1Sha512 => {
            Family::RsaPkcs1
        }
        Scheme::RsaPssRsaeSha256 | Scheme::RsaPssRsaeSha384 | Scheme::RsaPssRsaeSha512 => {
            Family::RsaPss
        }
        Scheme::EcdsaSecp256r1Sha256
        | Scheme::EcdsaSecp384r1Sha384
        | Scheme::EcdsaSecp521r1Sha512 => Family::Ecdsa,
        Scheme::Ed25519 => Family::EdDsa,
        _ => Family::Other,
    }
}

/// `C_GetMechanismInfo` for `mechanism` on a token holding `keys`;
/// `None` when the token does not offer it.
pub(crate) fn info<'k>(
    mechanism: CK_MECHANISM_TYPE,
    keys: impl Iterator<Item = &'k Key>,
) -> Option<CK_MECHANISM_INFO> {
    if DIGESTS.contains(&mechanism) {
        return Some(CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: CKF_DIGEST,
        });
    }
    let bits = keys
        .filter(|key| for_key(key).contains(&mechanism))
        .map(|key| key.bits() as CK_ULONG);
    let (min, max) = bits.fold(None, |range: Option<(CK_ULONG, CK_ULONG)>, b| {
        Some(range.map_or((b, b), |(lo, hi)| (lo.min(b), hi.max(b))))
    })?;
    let curve_flags = if ECDSA.contains(&mechanism) || mechanism == CKM_EDDSA {
        CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS
    } else {
        0
    };
    Some(CK_MECHANISM_INFO {
        ulMinKeySize: min,
        ulMaxKeySize: max,
        flags: CKF_SIGN | curve_flags,
    })
}

/// How to make a signature with `mechanism` and `params` by `key`.
pub(crate) fn plan(mechanism: CK_MECHANISM_TYPE, params: Params, key: &Key) -> Result<Plan, Error> {
    if !for_key(key).contains(&mechanism) {
        let known = RSA_PKCS1.contains(&mechanism)
            || RSA_PSS.contains(&mechanism)
            || ECDSA.contains(&mechanism)
            || mechanism == CKM_EDDSA;
        let family_fits = match key.public {
            PublicKey::Rsa { .. } => RSA_PKCS1.contains(&mechanism) || RSA_PSS.contains(&mechanism),
            PublicKey::Ec { .. } => ECDSA.contains(&mechanism),
            PublicKey::Ed25519 { .. } => mechanism == CKM_EDDSA,
        };
        return Err(if known && !family_fits {
            Error::KeyTypeInconsistent
        } else {
            Error::MechanismInvalid
        });
    }
    let scheme_if_offered = |scheme: Scheme| key.schemes.contains(&scheme).then_some(scheme);
    let hashed = |hash, mechanism, scheme: Option<Scheme>| Plan::HashThenSign {
        hash,
        mechanism,
        scheme: scheme.and_then(scheme_if_offered),
    };
    use HashAlgorithm::{Sha256, Sha384, Sha512};
    Ok(match mechanism {
        CKM_RSA_PKCS => Plan::RawRsaPkcs1,
        CKM_RSA_PKCS_PSS => Plan::RawPss(pss_hash(params)?),
        CKM_SHA256_RSA_PKCS => hashed(
            Sha256,
            DigestMechanism::RsaPkcs1,
            Some(Scheme::RsaPkcs1Sha256),
        ),
        CKM_SHA384_RSA_PKCS => hashed(
            Sha384,
            DigestMechanism::RsaPkcs1,
            Some(Scheme::RsaPkcs1Sha384),
        ),
        CKM_SHA512_RSA_PKCS => hashed(
            Sha512,
            DigestMechanism::RsaPkcs1,
            Some(Scheme::RsaPkcs1Sha512),
        ),
        CKM_SHA256_RSA_PKCS_PSS | CKM_SHA384_RSA_PKCS_PSS | CKM_SHA512_RSA_PKCS_PSS => {
            let hash = pss_hash(params)?;
            if hash_mechanism(hash) != pss_outer_hash(mechanism) {
                return Err(Error::MechanismParamInvalid);
            }
            hashed(hash, DigestMechanism::RsaPss, Some(pss_scheme(hash)))
        }
        CKM_ECDSA => Plan::RawEcdsa,
        CKM_ECDSA_SHA256 => hashed(Sha256, DigestMechanism::Ecdsa, ecdsa_scheme(key, Sha256)),
        CKM_ECDSA_SHA384 => hashed(Sha384, DigestMechanism::Ecdsa, ecdsa_scheme(key, Sha384)),
        CKM_ECDSA_SHA512 => hashed(Sha512, DigestMechanism::Ecdsa, ecdsa_scheme(key, Sha512)),
        CKM_EDDSA => match params {
            // Ed25519ph and Ed25519ctx are other schemes than TLS's.
            Params::EdDsa { prehash: true, .. } | Params::EdDsa { context: true, .. } => {
                return Err(Error::MechanismParamInvalid)
            }
            Params::Other | Params::Pss { .. } => return Err(Error::MechanismParamInvalid),
            _ => Plan::Message(Scheme::Ed25519),
        },
        _ => return Err(Error::MechanismInvalid),
    })
}

/// The hash of PSS parameters the agent can honour: MGF1 with the same
/// hash and a salt as long as the digest, as TLS signs.
fn pss_hash(params: Params) -> Result<HashAlgorithm, Error> {
    let Params::Pss {
        hash,
        mgf,
        salt_len,
    } = params
    else {
        return Err(Error::MechanismParamInvalid);
    };
    let (algorithm, wanted_mgf) = match hash {
        CKM_SHA256 => (HashAlgorithm::Sha256, CKG_MGF1_SHA256),
        CKM_SHA384 => (HashAlgorithm::Sha384, CKG_MGF1_SHA384),
        CKM_SHA512 => (HashAlgorithm::Sha512, CKG_MGF1_SHA512),
        _ => return Err(Error::MechanismParamInvalid),
    };
    if mgf != wanted_mgf || salt_len != algorithm.digest_len() as CK_ULONG {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(algorithm)
}

fn pss_outer_hash(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM_TYPE {
    match mechanism {
        CKM_SHA256_RSA_PKCS_PSS => CKM_SHA256,
        CKM_SHA384_RSA_PKCS_PSS => CKM_SHA384,
        _ => CKM_SHA512,
    }
}

pub(crate) fn hash_mechanism(hash: HashAlgorithm) -> CK_MECHANISM_TYPE {
    match hash {
        HashAlgorithm::Sha256 => CKM_SHA256,
        HashAlgorithm::Sha384 => CKM_SHA384,
        _ => CKM_SHA512,
    }
}

fn pss_scheme(hash: HashAlgorithm) -> Scheme {
    match hash {
        HashAlgorithm::Sha256 => Scheme::RsaPssRsaeSha256,
        HashAlgorithm::Sha384 => Scheme::RsaPssRsaeSha384,
        _ => Scheme::RsaPssRsaeSha512,
    }
}

/// TLS binds each ECDSA scheme to one curve and hash: only that pair
/// goes to the agent's `sign`.
fn ecdsa_scheme(key: &Key, hash: HashAlgorithm) -> Option<Scheme> {
    let PublicKey::Ec { curve, .. } = key.public else {
        return None;
    };
    match (curve, hash) {
        (Curve::P256, HashAlgorithm::Sha256) => Some(Scheme::EcdsaSecp256r1Sha256),
        (Curve::P384, HashAlgorithm::Sha384) => Some(Scheme::EcdsaSecp384r1Sha384),
        (Curve::P521, HashAlgorithm::Sha512) => Some(Scheme::EcdsaSecp521r1Sha512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(public: PublicKey, schemes: &[Scheme]) -> Key {
        Key {
            id: "id".into(),
            public,
            schemes: schemes.to_vec(),
        }
    }

    fn p256() -> Key {
        key(
            PublicKey::Ec {
                curve: Curve::P256,
                point: vec![4; 65],
            },
            &[Scheme::EcdsaSecp256r1Sha256],
        )
    }

    fn rsa(schemes: &[Scheme]) -> Key {
        key(
            PublicKey::Rsa {
                modulus: vec![0xc0; 256],
                exponent: vec![1, 0, 1],
            },
            schemes,
        )
    }

    fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, salt_len: CK_ULONG) -> Params {
        Params::Pss {
            hash,
            mgf,
            salt_len,
        }
    }

    const ALL_RSA: [Scheme; 6] = [
        Scheme::RsaPkcs1Sha256,
        Scheme::RsaPkcs1Sha384,
        Scheme::RsaPkcs1Sha512,
        Scheme::RsaPssRsaeSha256,
        Scheme::RsaPssRsaeSha384,
        Scheme::RsaPssRsaeSha512,
    ];

    #[test]
    fn ecdsa_goes_to_sign_only_for_the_curve_s_own_hash() {
        let key = p256();
        assert_eq!(
            plan(CKM_ECDSA_SHA256, Params::None, &key).expect("plan"),
            Plan::HashThenSign {
                hash: HashAlgorithm::Sha256,
                mechanism: DigestMechanism::Ecdsa,
                scheme: Some(Scheme::EcdsaSecp256r1Sha256),
            }
        );
        assert_eq!(
            plan(CKM_ECDSA_SHA384, Params::None, &key).expect("plan"),
            Plan::HashThenSign {
                hash: HashAlgorithm::Sha384,
                mechanism: DigestMechanism::Ecdsa,
                scheme: None,
            }
        );
        assert_eq!(
            plan(CKM_ECDSA, Params::None, &key).expect("plan"),
            Plan::RawEcdsa
        );
    }

    #[test]
    fn rsa_routes() {
        let key = rsa(&ALL_RSA);
        assert_eq!(
            plan(CKM_SHA384_RSA_PKCS, Params::None, &key).expect("plan"),
            Plan::HashThenSign {
                hash: HashAlgorithm::Sha384,
                mechanism: DigestMechanism::RsaPkcs1,
                scheme: Some(Scheme::RsaPkcs1Sha384),
            }
        );
        assert_eq!(
            plan(
                CKM_SHA256_RSA_PKCS_PSS,
                pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
                &key
            )
            .expect("plan"),
            Plan::HashThenSign {
                hash: HashAlgorithm::Sha256,
                mechanism: DigestMechanism::RsaPss,
                scheme: Some(Scheme::RsaPssRsaeSha256),
            }
        );
        assert_eq!(
            plan(CKM_RSA_PKCS_PSS, pss(CKM_SHA512, CKG_MGF1_SHA512, 64), &key).expect("plan"),
            Plan::RawPss(HashAlgorithm::Sha512)
        );
        assert_eq!(
            plan(CKM_RSA_PKCS, Params::None, &key).expect("plan"),
            Plan::RawRsaPkcs1
        );
    }

    #[test]
    fn pss_parameters_the_agent_cannot_honour_are_refused() {
        let key = rsa(&ALL_RSA);
        for params in [
            Params::None,
            pss(CKM_SHA256, CKG_MGF1_SHA384, 32),
            pss(CKM_SHA256, CKG_MGF1_SHA256, 20),
            pss(CKM_SHA_1, CKG_MGF1_SHA1, 20),
        ] {
            assert!(matches!(
                plan(CKM_RSA_PKCS_PSS, params, &key),
                Err(Error::MechanismParamInvalid)
            ));
        }
        // The mechanism's hash and the parameters' must agree.
        assert!(matches!(
            plan(
                CKM_SHA384_RSA_PKCS_PSS,
                pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
                &key
            ),
            Err(Error::MechanismParamInvalid)
        ));
    }

    #[test]
    fn mechanisms_follow_the_key_and_its_schemes() {
        assert_eq!(for_key(&p256()), ECDSA);
        assert_eq!(for_key(&rsa(&[Scheme::RsaPkcs1Sha256])), RSA_PKCS1);
        assert_eq!(for_key(&rsa(&ALL_RSA)).len(), 8);
        assert!(for_key(&rsa(&[])).is_empty());
        assert!(matches!(
            plan(CKM_ECDSA, Params::None, &rsa(&ALL_RSA)),
            Err(Error::KeyTypeInconsistent)
        ));
        assert!(matches!(
            plan(
                CKM_RSA_PKCS_PSS,
                pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
                &rsa(&ALL_RSA[..3])
            ),
            Err(Error::MechanismInvalid)
        ));
        assert!(matches!(
            plan(CKM_RSA_X_509, Params::None, &rsa(&ALL_RSA)),
            Err(Error::MechanismInvalid)
        ));
    }

    #[test]
    fn mechanism_info_spans_the_keys() {
        let keys = [rsa(&ALL_RSA), p256()];
        let rsa = info(CKM_SHA256_RSA_PKCS, keys.iter()).expect("offered");
        assert_eq!((rsa.ulMinKeySize, rsa.ulMaxKeySize), (2048, 2048));
        assert_eq!(rsa.flags, CKF_SIGN);
        let ecdsa = info(CKM_ECDSA, keys.iter()).expect("offered");
        assert_ne!(ecdsa.flags & CKF_EC_NAMEDCURVE, 0);
        assert!(info(CKM_EDDSA, keys.iter()).is_none());
        assert_eq!(
            info(CKM_SHA384, keys.iter()).expect("digest").flags,
            CKF_DIGEST
        );
    }

    #[test]
    fn eddsa_is_pure_ed25519_only() {
        let key = key(
            PublicKey::Ed25519 { point: vec![0; 32] },
            &[Scheme::Ed25519],
        );
        assert_eq!(
            plan(CKM_EDDSA, Params::None, &key).expect("plan"),
            Plan::Message(Scheme::Ed25519)
        );
        let prehash = Params::EdDsa {
            prehash: true,
            context: false,
        };
        assert!(matches!(
            plan(CKM_EDDSA, prehash, &key),
            Err(Error::MechanismParamInvalid)
        ));
    }
}
