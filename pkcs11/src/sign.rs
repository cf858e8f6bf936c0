//! One signature operation: the input gathered over `C_SignUpdate`, the
//! request it becomes for the agent, and the agent's signature in the
//! form PKCS#11 returns it.

use std::sync::Arc;

use p11agent_client::proto::{DigestMechanism, HashAlgorithm, Scheme};
use p11agent_client::{Client, ClientError};

use crate::der;
use crate::digest::Hasher;
use crate::key::{field_len, Key, PublicKey};
use crate::mechanisms::Plan;
use crate::rv::Error;

/// The largest message sent whole to the agent: its requests are at
/// most 64 KiB, base64 included. A longer one is hashed here and sent
/// as a digest where the mechanism allows.
const MESSAGE_LIMIT: usize = 32 * 1024;

/// The largest input of a raw mechanism (a DigestInfo or a hash).
const RAW_LIMIT: usize = 1024;

/// What is asked of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentSign {
    Message {
        scheme: Scheme,
        message: Vec<u8>,
    },
    Digest {
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: Vec<u8>,
    },
}

impl AgentSign {
    /// The agent's signature, as the agent gives it (DER for ECDSA).
    pub(crate) fn run(&self, client: &mut Client, id: &str) -> Result<Vec<u8>, ClientError> {
        match self {
            AgentSign::Message { scheme, message } => client.sign(id, *scheme, message),
            AgentSign::Digest {
                mechanism,
                hash,
                digest,
            } => client.sign_digest(id, *mechanism, *hash, digest),
        }
    }
}

/// A signature operation under way in a session.
#[derive(Debug)]
pub(crate) struct SignOp {
    pub(crate) key: Arc<Key>,
    plan: Plan,
    /// The hash of the input so far, for hash-and-sign mechanisms.
    hasher: Option<Hasher>,
    /// The input so far; `None` once past [`MESSAGE_LIMIT`] where the
    /// hash stands in for it.
    input: Option<Vec<u8>>,
}

impl SignOp {
    pub(crate) fn new(key: Arc<Key>, plan: Plan) -> Self {
        let hasher = match plan {
            Plan::HashThenSign { hash, .. } => Some(Hasher::new(hash)),
            _ => None,
        };
        SignOp {
            key,
            plan,
            hasher,
            input: Some(Vec::new()),
        }
    }

    /// The length of the signature, known before it is made.
    pub(crate) fn signature_len(&self) -> usize {
        self.key.signature_len()
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(data);
        }
        let limit = match self.plan {
            Plan::HashThenSign { .. } | Plan::Message(_) => MESSAGE_LIMIT,
            _ => RAW_LIMIT,
        };
        match &mut self.input {
            Some(input) if input.len() + data.len() <= limit => input.extend_from_slice(data),
            input if self.hasher.is_some() => *input = None,
            _ => return Err(Error::DataLenRange),
        }
        Ok(())
    }

    /// The request for the agent, from all the input.
    pub(crate) fn finish(self) -> Result<AgentSign, Error> {
        if let Plan::HashThenSign {
            hash,
            mechanism,
            scheme,
        } = self.plan
        {
            return match (scheme, self.input, self.hasher) {
                (Some(scheme), Some(message), _) => Ok(AgentSign::Message { scheme, message }),
                (_, _, Some(hasher)) => Ok(digest(mechanism, hash, hasher.finish())),
                // `new` made the hasher of every hash-and-sign plan.
                (_, _, None) => Err(Error::DataInvalid),
            };
        }
        let input = self.input.unwrap_or_default();
        match self.plan {
            Plan::Message(scheme) => Ok(AgentSign::Message {
                scheme,
                message: input,
            }),
            Plan::RawEcdsa => {
                let hash = match input.len() {
                    32 => HashAlgorithm::Sha256,
                    48 => HashAlgorithm::Sha384,
                    64 => HashAlgorithm::Sha512,
                    _ => return Err(Error::DataLenRange),
                };
                Ok(digest(DigestMechanism::Ecdsa, hash, input))
            }
            Plan::RawRsaPkcs1 => {
                let (hash, digest_bytes) =
                    der::parse_digest_info(&input).ok_or(Error::DataInvalid)?;
                Ok(digest(
                    DigestMechanism::RsaPkcs1,
                    hash,
                    digest_bytes.to_vec(),
                ))
            }
            Plan::RawPss(hash) if input.len() == hash.digest_len() => {
                Ok(digest(DigestMechanism::RsaPss, hash, input))
            }
            Plan::RawPss(_) | Plan::HashThenSign { .. } => Err(Error::DataLenRange),
        }
    }
}

fn digest(mechanism: DigestMechanism, hash: HashAlgorithm, digest: Vec<u8>) -> AgentSign {
    AgentSign::Digest {
        mechanism,
        hash,
        digest,
    }
}

/// The agent's signature as PKCS#11 returns it: `r || s` for ECDSA,
/// exactly the modulus' length for RSA.
pub(crate) fn to_pkcs11(key: &Key, signature: Vec<u8>) -> Result<Vec<u8>, Error> {
    match &key.public {
        PublicKey::Ec { curve, .. } => {
            der::ecdsa_der_to_raw(&signature, field_len(*curve)).map_err(|_| Error::BadSignature)
        }
        PublicKey::Rsa { modulus, .. } if signature.len() <= modulus.len() => {
            let mut out = vec![0; modulus.len() - signature.len()];
            out.extend(signature);
            Ok(out)
        }
        PublicKey::Ed25519 { .. } if signature.len() == 64 => Ok(signature),
        _ => Err(Error::BadSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_client::proto::Curve;

    fn p256() -> Arc<Key> {
        Arc::new(Key {
            id: "k".into(),
            public: PublicKey::Ec {
                curve: Curve::P256,
                point: vec![4; 65],
            },
            schemes: vec![Scheme::EcdsaSecp256r1Sha256],
        })
    }

    fn hashed(scheme: Option<Scheme>) -> Plan {
        Plan::HashThenSign {
            hash: HashAlgorithm::Sha256,
            mechanism: DigestMechanism::Ecdsa,
            scheme,
        }
    }

    #[test]
    fn a_matching_scheme_sends_the_whole_message_in_parts() {
        let mut op = SignOp::new(p256(), hashed(Some(Scheme::EcdsaSecp256r1Sha256)));
        op.update(b"hello ").expect("update");
        op.update(b"world").expect("update");
        assert_eq!(op.signature_len(), 64);
        assert_eq!(
            op.finish().expect("finish"),
            AgentSign::Message {
                scheme: Scheme::EcdsaSecp256r1Sha256,
                message: b"hello world".to_vec(),
            }
        );
    }

    #[test]
    fn without_a_scheme_or_past_the_limit_the_module_hashes() {
        let expected = {
            let mut h = Hasher::new(HashAlgorithm::Sha256);
            h.update(b"abc");
            h.finish()
        };
        let mut op = SignOp::new(p256(), hashed(None));
        op.update(b"abc").expect("update");
        assert_eq!(
            op.finish().expect("finish"),
            digest(DigestMechanism::Ecdsa, HashAlgorithm::Sha256, expected)
        );
        let mut op = SignOp::new(p256(), hashed(Some(Scheme::EcdsaSecp256r1Sha256)));
        let big = vec![7u8; MESSAGE_LIMIT];
        op.update(&big).expect("update");
        op.update(b"more").expect("update");
        assert!(matches!(op.finish(), Ok(AgentSign::Digest { .. })));
    }

    #[test]
    fn raw_inputs_are_checked() {
        let run = |plan, input: &[u8]| {
            let mut op = SignOp::new(p256(), plan);
            op.update(input).and_then(|()| op.finish())
        };
        assert!(matches!(
            run(Plan::RawEcdsa, &[1; 48]),
            Ok(AgentSign::Digest {
                hash: HashAlgorithm::Sha384,
                ..
            })
        ));
        assert!(matches!(
            run(Plan::RawEcdsa, &[1; 20]),
            Err(Error::DataLenRange)
        ));
        assert!(matches!(
            run(Plan::RawRsaPkcs1, &[1; 32]),
            Err(Error::DataInvalid)
        ));
        assert!(matches!(
            run(Plan::RawPss(HashAlgorithm::Sha256), &[1; 48]),
            Err(Error::DataLenRange)
        ));
        assert!(matches!(
            run(Plan::RawEcdsa, &[1; RAW_LIMIT + 1]),
            Err(Error::DataLenRange)
        ));
    }

    #[test]
    fn signatures_are_converted_for_the_key() {
        let der = der::encode(
            0x30,
            &[der::integer(&[0x01; 32]), der::integer(&[0x02; 32])].concat(),
        );
        let raw = to_pkcs11(&p256(), der).expect("raw");
        assert_eq!(raw.len(), 64);
        assert!(matches!(
            to_pkcs11(&p256(), vec![0; 64]),
            Err(Error::BadSignature)
        ));
        let rsa = Key {
            id: "r".into(),
            public: PublicKey::Rsa {
                modulus: vec![0xc0; 4],
                exponent: vec![3],
            },
            schemes: Vec::new(),
        };
        assert_eq!(
            to_pkcs11(&rsa, vec![9, 9, 9]).expect("padded"),
            [0, 9, 9, 9]
        );
        assert!(to_pkcs11(&rsa, vec![1; 5]).is_err());
    }
}
