//! Which PKCS#11 mechanisms make which TLS signature scheme, and how the
//! agent prepares the input and finishes the output for each.
//!
//! For every scheme the agent prefers the *raw* mechanism, which the most
//! tokens support: it hashes the message itself and hands the token only
//! the digest (`CKM_RSA_PKCS` with a DigestInfo, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`). A token that offers only the *combined* mechanism
//! (`CKM_SHA256_RSA_PKCS`, `CKM_SHA256_RSA_PKCS_PSS`, `CKM_ECDSA_SHA256`,
//! ...) gets the whole message instead. Ed25519 is always PureEdDSA over
//! the whole message (`CKM_EDDSA` without parameters).
//!
//! A digest the client made (`sign_digest`) can only go through the raw
//! mechanisms, which are the only ones that take a digest: the plan is
//! the same as for a scheme the agent hashes, with the client's digest in
//! place of the agent's.

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::slot::Slot;
use p11agent_proto::{DigestMechanism, HashAlgorithm, KeyType, Scheme};
use sha2::Digest as _;

use super::found::KeyLocation;
use super::sign_error::SignError;
use super::signature::ecdsa_raw_to_der;

/// A hash function of the TLS schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The hash the protocol names `hash`; `None` for one this version of
    /// the agent does not know (the protocol's list may grow ahead of it).
    fn of(hash: HashAlgorithm) -> Option<Hash> {
        match hash {
            HashAlgorithm::Sha256 => Some(Hash::Sha256),
            HashAlgorithm::Sha384 => Some(Hash::Sha384),
            HashAlgorithm::Sha512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// The digest of `message`.
    pub(crate) fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    /// The DER `DigestInfo` prefix (RFC 8017 section 9.2, note 1) that
    /// precedes the digest in an RSASSA-PKCS1-v1_5 signature.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The digest length in bytes (also the PSS salt length).
    fn len(self) -> u64 {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn pss_params(self) -> PkcsPssParams {
        let (hash_alg, mgf) = match self {
            Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        };
        PkcsPssParams {
            hash_alg,
            mgf,
            s_len: self.len().into(),
        }
    }
}

/// The family of a scheme, with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
    Ed25519,
}

impl Family {
    fn hash(self) -> Option<Hash> {
        match self {
            Family::RsaPkcs1(hash) | Family::RsaPss(hash) | Family::Ecdsa(hash) => Some(hash),
            Family::Ed25519 => None,
        }
    }

    /// Whether a key of `key`'s type and curve can sign in this family.
    fn fits(self, key: &KeyLocation) -> bool {
        match self {
            Family::RsaPkcs1(_) | Family::RsaPss(_) => key.key_type == KeyType::Rsa,
            // On a curve the agent does not know, the store offers no
            // scheme either: the identity is not usable.
            Family::Ecdsa(_) => key.key_type == KeyType::Ec && key.curve.is_some(),
            Family::Ed25519 => key.key_type == KeyType::Ed25519,
        }
    }
}

/// `scheme`'s family; `None` for a scheme this version of the agent
/// cannot make (the protocol's list may grow ahead of it).
fn family(scheme: Scheme) -> Option<Family> {
    Some(match scheme {
        Scheme::RsaPkcs1Sha256 => Family::RsaPkcs1(Hash::Sha256),
        Scheme::RsaPkcs1Sha384 => Family::RsaPkcs1(Hash::Sha384),
        Scheme::RsaPkcs1Sha512 => Family::RsaPkcs1(Hash::Sha512),
        Scheme::RsaPssRsaeSha256 => Family::RsaPss(Hash::Sha256),
        Scheme::RsaPssRsaeSha384 => Family::RsaPss(Hash::Sha384),
        Scheme::RsaPssRsaeSha512 => Family::RsaPss(Hash::Sha512),
        Scheme::EcdsaSecp256r1Sha256 => Family::Ecdsa(Hash::Sha256),
        Scheme::EcdsaSecp384r1Sha384 => Family::Ecdsa(Hash::Sha384),
        Scheme::EcdsaSecp521r1Sha512 => Family::Ecdsa(Hash::Sha512),
        Scheme::Ed25519 => Family::Ed25519,
        _ => return None,
    })
}

/// The mechanisms that can make `scheme`, preferred first: the raw one
/// (the agent hashes), then the combined one (the token hashes).
fn candidates(family: Family) -> (MechanismType, Option<MechanismType>) {
    match family {
        Family::RsaPkcs1(hash) => (
            MechanismType::RSA_PKCS,
            Some(match hash {
                Hash::Sha256 => MechanismType::SHA256_RSA_PKCS,
                Hash::Sha384 => MechanismType::SHA384_RSA_PKCS,
                Hash::Sha512 => MechanismType::SHA512_RSA_PKCS,
            }),
        ),
        Family::RsaPss(hash) => (
            MechanismType::RSA_PKCS_PSS,
            Some(match hash {
                Hash::Sha256 => MechanismType::SHA256_RSA_PKCS_PSS,
                Hash::Sha384 => MechanismType::SHA384_RSA_PKCS_PSS,
                Hash::Sha512 => MechanismType::SHA512_RSA_PKCS_PSS,
            }),
        ),
        Family::Ecdsa(hash) => (
            MechanismType::ECDSA,
            Some(match hash {
                Hash::Sha256 => MechanismType::ECDSA_SHA256,
                Hash::Sha384 => MechanismType::ECDSA_SHA384,
                Hash::Sha512 => MechanismType::ECDSA_SHA512,
            }),
        ),
        Family::Ed25519 => (MechanismType::EDDSA, None),
    }
}

/// Every mechanism the agent may sign with.
fn relevant(mechanism: MechanismType) -> bool {
    Scheme::ALL.into_iter().filter_map(family).any(|family| {
        let (raw, combined) = candidates(family);
        raw == mechanism || combined == Some(mechanism)
    })
}

/// The signing mechanisms of the token in `slot` that the agent can use:
/// `C_GetMechanismList`, narrowed to the mechanisms of [`Scheme::ALL`]
/// whose `C_GetMechanismInfo` has `CKF_SIGN` (a mechanism whose info
/// cannot be read is kept: the list is the module's promise).
pub(crate) fn signing_mechanisms(
    pkcs11: &Pkcs11,
    slot: Slot,
) -> Result<Vec<MechanismType>, cryptoki::error::Error> {
    let mechanisms = pkcs11.get_mechanism_list(slot)?;
    Ok(mechanisms
        .into_iter()
        .filter(|m| relevant(*m))
        .filter(|m| match pkcs11.get_mechanism_info(slot, *m) {
            Ok(info) => info.sign(),
            Err(err) => {
                tracing::debug!(mechanism = %m, error = %err, "C_GetMechanismInfo failed; assuming the mechanism signs");
                true
            }
        })
        .collect())
}

/// The schemes a token offering `mechanisms` can make, for some key type,
/// in [`Scheme::ALL`] order.
pub(crate) fn schemes(mechanisms: &[MechanismType]) -> Vec<Scheme> {
    Scheme::ALL
        .into_iter()
        .filter(|s| Plan::choose(*s, mechanisms).is_some())
        .collect()
}

/// How one signature is made: which mechanism, what the token is given,
/// and what its answer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    family: Family,
    /// The mechanism used.
    mechanism: MechanismType,
    feed: Feed,
}

/// What the token is given to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// The whole message: the token hashes (combined mechanism), or
    /// EdDSA, which signs messages.
    Message,
    /// The agent's digest of the message (raw mechanism).
    AgentDigest,
    /// The client's digest, as given (raw mechanism).
    ClientDigest,
}

/// What a client asked to have signed, checked against the key before
/// the token is touched; the token's mechanisms then give its [`Plan`]
/// ([`Checked::plan`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked<'a> {
    key: &'a KeyLocation,
    asked: Asked,
}

#[derive(Debug, Clone, Copy)]
enum Asked {
    Scheme(Scheme),
    Digest {
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        family: Family,
    },
}

impl Checked<'_> {
    /// The key it was checked against.
    pub(crate) fn key(&self) -> &KeyLocation {
        self.key
    }

    /// The plan on the key's token, which offers `mechanisms`; refused
    /// when the token has no mechanism for it.
    pub(crate) fn plan(&self, mechanisms: &[MechanismType]) -> Result<Plan, SignError> {
        let token = &self.key.token.label;
        match self.asked {
            Asked::Scheme(scheme) => {
                Plan::choose(scheme, mechanisms).ok_or_else(|| SignError::UnsupportedScheme {
                    scheme,
                    reason: format!("token '{token}' has no mechanism for it"),
                })
            }
            Asked::Digest {
                mechanism,
                hash,
                family,
            } => {
                let (raw, _) = candidates(family);
                if mechanisms.contains(&raw) {
                    Ok(Plan {
                        family,
                        mechanism: raw,
                        feed: Feed::ClientDigest,
                    })
                } else {
                    Err(SignError::UnsupportedDigest {
                        mechanism,
                        hash,
                        reason: format!(
                            "token '{token}' does not offer {raw}, the only mechanism \
                             that signs a digest as given"
                        ),
                    })
                }
            }
        }
    }
}

impl std::fmt::Display for Checked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.asked {
            Asked::Scheme(scheme) => write!(f, "{scheme}"),
            Asked::Digest {
                mechanism, hash, ..
            } => write!(f, "{} over a {} digest", mechanism.as_str(), hash.as_str()),
        }
    }
}

/// "rsa", "ec P-256": the key's type and curve, for refusals.
fn key_description(key: &KeyLocation) -> String {
    format!(
        "{}{}",
        key.key_type.as_str(),
        key.curve
            .map(|c| format!(" {}", c.as_str()))
            .unwrap_or_default()
    )
}

impl Plan {
    /// The one place a scheme is checked against a key: refuses a scheme
    /// the identity does not offer, and one its key type and curve
    /// cannot make even when the identity lists it (a store bug must not
    /// produce a wrong signature). Touches no token: a refused scheme
    /// costs nothing there.
    pub(crate) fn for_key(key: &KeyLocation, scheme: Scheme) -> Result<Checked<'_>, SignError> {
        let refuse = |reason| SignError::UnsupportedScheme { scheme, reason };
        if !key.schemes.contains(&scheme) {
            let offered: Vec<&str> = key.schemes.iter().map(|s| s.as_str()).collect();
            return Err(refuse(if offered.is_empty() {
                "the identity offers no scheme".to_owned()
            } else {
                format!("the identity offers {}", offered.join(", "))
            }));
        }
        if !scheme.fits(key.key_type, key.curve) {
            return Err(refuse(format!("the key is {}", key_description(key))));
        }
        Ok(Checked {
            key,
            asked: Asked::Scheme(scheme),
        })
    }

    /// The one place a digest signature is checked against a key, as
    /// [`Plan::for_key`] checks a scheme: refuses a digest of `len` bytes
    /// that `hash` cannot have made, and a mechanism the key's type
    /// cannot sign with. Touches no token.
    pub(crate) fn for_digest(
        key: &KeyLocation,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        len: usize,
    ) -> Result<Checked<'_>, SignError> {
        let refuse = |reason: String| SignError::UnsupportedDigest {
            mechanism,
            hash,
            reason,
        };
        let Some(known) = Hash::of(hash) else {
            return Err(refuse(
                "this agent does not know the hash; ask for sha256, sha384 or sha512".to_owned(),
            ));
        };
        if len != hash.digest_len() {
            return Err(SignError::DigestLength { hash, len });
        }
        let family =
            match mechanism {
                DigestMechanism::RsaPkcs1 => Family::RsaPkcs1(known),
                DigestMechanism::RsaPss => Family::RsaPss(known),
                DigestMechanism::Ecdsa => Family::Ecdsa(known),
                _ => return Err(refuse(
                    "this agent does not know the mechanism; ask for ecdsa, rsa_pkcs1 or rsa_pss"
                        .to_owned(),
                )),
            };
        if !family.fits(key) {
            return Err(refuse(format!(
                "the key is {}; ecdsa needs an EC key on P-256, P-384 or P-521, \
                 rsa_pkcs1 and rsa_pss an RSA key",
                key_description(key)
            )));
        }
        Ok(Checked {
            key,
            asked: Asked::Digest {
                mechanism,
                hash,
                family,
            },
        })
    }

    /// The plan for `scheme` on a token offering `mechanisms`; `None`
    /// when the token offers no mechanism for it.
    pub(crate) fn choose(scheme: Scheme, mechanisms: &[MechanismType]) -> Option<Plan> {
        let family = family(scheme)?;
        let (raw, combined) = candidates(family);
        if mechanisms.contains(&raw) {
            return Some(Plan {
                family,
                mechanism: raw,
                feed: if family == Family::Ed25519 {
                    Feed::Message
                } else {
                    Feed::AgentDigest
                },
            });
        }
        combined
            .filter(|c| mechanisms.contains(c))
            .map(|mechanism| Plan {
                family,
                mechanism,
                feed: Feed::Message,
            })
    }

    /// The mechanism type used, for messages.
    pub(crate) fn mechanism_type(&self) -> MechanismType {
        self.mechanism
    }

    /// The mechanism with its parameters.
    pub(crate) fn mechanism(&self) -> Mechanism<'static> {
        let raw = self.feed != Feed::Message;
        match self.family {
            Family::RsaPkcs1(hash) => match (raw, hash) {
                (true, _) => Mechanism::RsaPkcs,
                (false, Hash::Sha256) => Mechanism::Sha256RsaPkcs,
                (false, Hash::Sha384) => Mechanism::Sha384RsaPkcs,
                (false, Hash::Sha512) => Mechanism::Sha512RsaPkcs,
            },
            Family::RsaPss(hash) => match (raw, hash) {
                (true, _) => Mechanism::RsaPkcsPss(hash.pss_params()),
                (false, Hash::Sha256) => Mechanism::Sha256RsaPkcsPss(hash.pss_params()),
                (false, Hash::Sha384) => Mechanism::Sha384RsaPkcsPss(hash.pss_params()),
                (false, Hash::Sha512) => Mechanism::Sha512RsaPkcsPss(hash.pss_params()),
            },
            Family::Ecdsa(hash) => match (raw, hash) {
                (true, _) => Mechanism::Ecdsa,
                (false, Hash::Sha256) => Mechanism::EcdsaSha256,
                (false, Hash::Sha384) => Mechanism::EcdsaSha384,
                (false, Hash::Sha512) => Mechanism::EcdsaSha512,
            },
            Family::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        }
    }

    /// What the token signs, from the message (or the client's digest):
    /// the message, the digest, or (PKCS#1 v1.5 with the raw mechanism)
    /// the DER DigestInfo of the digest.
    pub(crate) fn input(&self, data: &[u8]) -> Vec<u8> {
        let (hash, digest) = match (self.feed, self.family.hash()) {
            (Feed::AgentDigest, Some(hash)) => (hash, hash.digest(data)),
            (Feed::ClientDigest, Some(hash)) => (hash, data.to_vec()),
            _ => return data.to_vec(),
        };
        match self.family {
            Family::RsaPkcs1(_) => [hash.digest_info_prefix(), &digest].concat(),
            _ => digest,
        }
    }

    /// The signature as TLS wants it, from the token's answer: ECDSA's
    /// raw `r || s` becomes DER; the others are used as they are.
    pub(crate) fn output(&self, raw: Vec<u8>) -> Result<Vec<u8>, super::signature::DerError> {
        match self.family {
            Family::Ecdsa(_) => ecdsa_raw_to_der(&raw),
            _ => Ok(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{Curve, KeyType, Token};

    const SOFTHSM: [MechanismType; 10] = [
        MechanismType::RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA384_RSA_PKCS,
        MechanismType::SHA512_RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::SHA384_RSA_PKCS_PSS,
        MechanismType::SHA512_RSA_PKCS_PSS,
        MechanismType::ECDSA,
        MechanismType::EDDSA,
    ];

    #[test]
    fn softhsm_offers_every_scheme_with_raw_mechanisms() {
        assert_eq!(schemes(&SOFTHSM), Scheme::ALL.to_vec());
        for scheme in Scheme::ALL {
            let plan = Plan::choose(scheme, &SOFTHSM).expect("plan");
            assert!(
                [
                    MechanismType::RSA_PKCS,
                    MechanismType::RSA_PKCS_PSS,
                    MechanismType::ECDSA,
                    MechanismType::EDDSA
                ]
                .contains(&plan.mechanism_type()),
                "{scheme}: {}",
                plan.mechanism_type()
            );
        }
    }

    #[test]
    fn combined_mechanisms_alone_suffice_and_get_the_message() {
        let only = [MechanismType::SHA384_RSA_PKCS, MechanismType::ECDSA_SHA256];
        assert_eq!(
            schemes(&only),
            vec![Scheme::EcdsaSecp256r1Sha256, Scheme::RsaPkcs1Sha384]
        );
        let plan = Plan::choose(Scheme::RsaPkcs1Sha384, &only).expect("plan");
        assert_eq!(plan.mechanism_type(), MechanismType::SHA384_RSA_PKCS);
        assert_eq!(plan.input(b"hello"), b"hello");
        assert!(Plan::choose(Scheme::RsaPkcs1Sha256, &only).is_none());
    }

    #[test]
    fn no_mechanisms_no_schemes() {
        assert!(schemes(&[]).is_empty());
        assert!(schemes(&[MechanismType::RSA_X_509, MechanismType::SHA256]).is_empty());
        // CKM_EDDSA alone gives Ed25519 only.
        assert_eq!(schemes(&[MechanismType::EDDSA]), vec![Scheme::Ed25519]);
    }

    #[test]
    fn raw_inputs_are_digests_and_digest_infos() {
        let plan = Plan::choose(Scheme::RsaPkcs1Sha256, &SOFTHSM).expect("plan");
        let input = plan.input(b"abc");
        assert_eq!(input.len(), 19 + 32);
        // DigestInfo for SHA-256("abc").
        assert_eq!(
            hex::encode(&input),
            "3031300d060960864801650304020105000420\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let plan = Plan::choose(Scheme::RsaPkcs1Sha512, &SOFTHSM).expect("plan");
        assert_eq!(plan.input(b"abc").len(), 19 + 64);
        let plan = Plan::choose(Scheme::RsaPssRsaeSha384, &SOFTHSM).expect("plan");
        assert_eq!(plan.input(b"abc").len(), 48);
        let plan = Plan::choose(Scheme::EcdsaSecp521r1Sha512, &SOFTHSM).expect("plan");
        assert_eq!(plan.input(b"abc").len(), 64);
        let plan = Plan::choose(Scheme::Ed25519, &SOFTHSM).expect("plan");
        assert_eq!(plan.input(b"abc"), b"abc");
    }

    #[test]
    fn pss_parameters_match_the_hash() {
        let plan = Plan::choose(Scheme::RsaPssRsaeSha512, &SOFTHSM).expect("plan");
        match plan.mechanism() {
            Mechanism::RsaPkcsPss(params) => {
                assert_eq!(params.hash_alg, MechanismType::SHA512);
                assert_eq!(params.mgf, PkcsMgfType::MGF1_SHA512);
                assert_eq!(u64::from(params.s_len), 64);
            }
            other => panic!("unexpected mechanism {other:?}"),
        }
    }

    fn p256_key(schemes: Vec<Scheme>) -> KeyLocation {
        KeyLocation {
            id: "key".into(),
            token: Token {
                label: "t1".into(),
                serial: "1".into(),
                manufacturer: String::new(),
                model: String::new(),
                slot: 0,
                module: "m.so".into(),
            },
            key_id: vec![1],
            key_type: KeyType::Ec,
            curve: Some(Curve::P256),
            schemes,
            present: true,
        }
    }

    /// The plan for `key` and `scheme` on a token with `mechanisms`.
    fn plan(
        key: &KeyLocation,
        scheme: Scheme,
        mechanisms: &[MechanismType],
    ) -> Result<Plan, SignError> {
        Plan::for_key(key, scheme)?.plan(mechanisms)
    }

    fn refusal(result: Result<Plan, SignError>) -> String {
        match result {
            Err(err @ SignError::UnsupportedScheme { .. }) => err.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_key_gets_a_plan_for_the_schemes_it_offers_and_fits() {
        let key = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        let plan = plan(&key, Scheme::EcdsaSecp256r1Sha256, &SOFTHSM).expect("plan");
        assert_eq!(plan.mechanism_type(), MechanismType::ECDSA);
    }

    #[test]
    fn a_scheme_the_identity_does_not_offer_is_refused() {
        let key = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        assert_eq!(
            refusal(plan(&key, Scheme::Ed25519, &SOFTHSM)),
            "ed25519 cannot be made with this key: the identity offers \
             ecdsa_secp256r1_sha256; ask for one of the identity's schemes"
        );
        let none = p256_key(Vec::new());
        assert!(refusal(plan(&none, Scheme::Ed25519, &SOFTHSM))
            .contains(": the identity offers no scheme;"));
    }

    #[test]
    fn a_scheme_listed_for_a_key_that_cannot_make_it_is_refused() {
        let key = p256_key(vec![Scheme::EcdsaSecp384r1Sha384, Scheme::RsaPkcs1Sha256]);
        for scheme in [Scheme::EcdsaSecp384r1Sha384, Scheme::RsaPkcs1Sha256] {
            assert!(
                refusal(plan(&key, scheme, &SOFTHSM))
                    .contains("cannot be made with this key: the key is ec P-256;"),
                "{scheme}"
            );
        }
    }

    #[test]
    fn a_scheme_the_token_has_no_mechanism_for_is_refused() {
        let key = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        assert!(refusal(plan(
            &key,
            Scheme::EcdsaSecp256r1Sha256,
            &[MechanismType::RSA_PKCS]
        ))
        .contains(": token 't1' has no mechanism for it;"));
    }
    fn rsa_key() -> KeyLocation {
        KeyLocation {
            key_type: KeyType::Rsa,
            curve: None,
            schemes: vec![Scheme::RsaPkcs1Sha256, Scheme::RsaPssRsaeSha256],
            ..p256_key(Vec::new())
        }
    }

    fn digest_plan(
        key: &KeyLocation,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        len: usize,
        mechanisms: &[MechanismType],
    ) -> Result<Plan, SignError> {
        Plan::for_digest(key, mechanism, hash, len)?.plan(mechanisms)
    }

    #[test]
    fn digests_go_to_the_raw_mechanisms_as_given() {
        let digest = [0x5a; 32];
        let plan = digest_plan(
            &rsa_key(),
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha256,
            32,
            &SOFTHSM,
        )
        .expect("plan");
        assert!(matches!(plan.mechanism(), Mechanism::RsaPkcs));
        assert_eq!(
            hex::encode(plan.input(&digest)),
            format!("3031300d060960864801650304020105000420{}", "5a".repeat(32))
        );

        let digest = [0x5a; 48];
        let plan = digest_plan(
            &rsa_key(),
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha384,
            48,
            &SOFTHSM,
        )
        .expect("plan");
        match plan.mechanism() {
            Mechanism::RsaPkcsPss(params) => {
                assert_eq!(params.hash_alg, MechanismType::SHA384);
                assert_eq!(params.mgf, PkcsMgfType::MGF1_SHA384);
                assert_eq!(u64::from(params.s_len), 48);
            }
            other => panic!("unexpected mechanism {other:?}"),
        }
        assert_eq!(plan.input(&digest), digest);

        // ECDSA takes any hash on any curve: the digest is what it signs.
        let digest = [0x5a; 64];
        let key = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        let plan = digest_plan(
            &key,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha512,
            64,
            &SOFTHSM,
        )
        .expect("plan");
        assert!(matches!(plan.mechanism(), Mechanism::Ecdsa));
        assert_eq!(plan.input(&digest), digest);
        assert_eq!(
            plan.output(vec![0, 0, 0, 1, 0, 0, 0, 2]).expect("der"),
            [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]
        );
    }

    #[test]
    fn a_digest_of_the_wrong_length_is_refused() {
        for (hash, len) in [
            (HashAlgorithm::Sha256, 31),
            (HashAlgorithm::Sha256, 48),
            (HashAlgorithm::Sha384, 32),
            (HashAlgorithm::Sha512, 0),
            // The DigestInfo instead of the digest.
            (HashAlgorithm::Sha256, 19 + 32),
        ] {
            let err = digest_plan(&rsa_key(), DigestMechanism::RsaPkcs1, hash, len, &SOFTHSM)
                .expect_err("refused");
            assert!(
                matches!(err, SignError::DigestLength { .. }),
                "{hash:?} {len}: {err}"
            );
        }
        let err = Plan::for_digest(
            &rsa_key(),
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha384,
            32,
        )
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the digest is 32 bytes, and a sha384 digest is 48; \
             send the bare digest, not the message or a DigestInfo"
        );
    }

    fn digest_refusal(result: Result<Plan, SignError>) -> String {
        match result {
            Err(err @ SignError::UnsupportedDigest { .. }) => err.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_mechanism_the_key_type_cannot_use_is_refused() {
        let ec = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        for mechanism in [DigestMechanism::RsaPkcs1, DigestMechanism::RsaPss] {
            assert!(digest_refusal(digest_plan(
                &ec,
                mechanism,
                HashAlgorithm::Sha256,
                32,
                &SOFTHSM
            ))
            .contains("digest cannot be made with this key: the key is ec P-256;"));
        }
        assert_eq!(
            digest_refusal(digest_plan(
                &rsa_key(),
                DigestMechanism::Ecdsa,
                HashAlgorithm::Sha256,
                32,
                &SOFTHSM
            )),
            "ecdsa over a sha256 digest cannot be made with this key: the key is rsa; \
             ecdsa needs an EC key on P-256, P-384 or P-521, rsa_pkcs1 and rsa_pss an RSA key"
        );
        // A curve the agent does not know.
        let brainpool = KeyLocation { curve: None, ..ec };
        digest_refusal(digest_plan(
            &brainpool,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha256,
            32,
            &SOFTHSM,
        ));
    }

    #[test]
    fn a_token_with_only_combined_mechanisms_cannot_sign_digests() {
        let combined = [
            MechanismType::SHA256_RSA_PKCS,
            MechanismType::SHA256_RSA_PKCS_PSS,
            MechanismType::ECDSA_SHA256,
        ];
        let ec = p256_key(vec![Scheme::EcdsaSecp256r1Sha256]);
        assert!(digest_refusal(digest_plan(
            &ec,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha256,
            32,
            &combined
        ))
        .contains(": token 't1' does not offer CKM_ECDSA,"));
        for mechanism in [DigestMechanism::RsaPkcs1, DigestMechanism::RsaPss] {
            digest_refusal(digest_plan(
                &rsa_key(),
                mechanism,
                HashAlgorithm::Sha256,
                32,
                &combined,
            ));
        }
    }
}
