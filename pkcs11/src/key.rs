//! An identity of the agent as the module holds it: the certificate's
//! parts that attributes show, parsed once when the identity is cached,
//! and the key's public half, size and signature length.

use p11agent_client::proto::{Curve, Identity, KeyType, Scheme};
use percent_encoding::percent_decode_str;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as ParsedKey;

use crate::der;

/// Why an identity is not shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("the certificate does not parse: {0}")]
    Certificate(String),
    #[error("a key the agent cannot sign with")]
    Unsupported,
}

/// The public half of a key the agent signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Modulus and public exponent, unsigned big-endian, no leading zeros.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// The uncompressed point.
    Ec { curve: Curve, point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { point: Vec<u8> },
}

/// The parts of a certificate the module's objects show.
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    pub(crate) der: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
    /// The serial number as a DER INTEGER.
    pub(crate) serial: Vec<u8>,
    pub(crate) spki: Vec<u8>,
    pub(crate) common_name: Option<String>,
    pub(crate) public: PublicKey,
}

impl Certificate {
    /// Parses `der`, the certificate of `identity`.
    pub(crate) fn parse(identity: &Identity, der: Vec<u8>) -> Result<Self, KeyError> {
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|e| KeyError::Certificate(e.to_string()))?;
        let public = public_key(identity, &cert)?;
        let common_name = common_name(&cert);
        let tbs = &cert.tbs_certificate;
        Ok(Certificate {
            subject: tbs.subject.as_raw().to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            serial: der::integer(cert.raw_serial()),
            spki: tbs.subject_pki.raw.to_vec(),
            common_name,
            public,
            der,
        })
    }
}

/// A CA certificate above an identity, parsed for its object.
#[derive(Debug)]
pub(crate) struct Authority {
    pub(crate) der: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
    /// The serial number as a DER INTEGER.
    pub(crate) serial: Vec<u8>,
    pub(crate) common_name: Option<String>,
}

impl Authority {
    pub(crate) fn parse(der: &[u8]) -> Result<Self, KeyError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| KeyError::Certificate(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        Ok(Authority {
            subject: tbs.subject.as_raw().to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            serial: der::integer(cert.raw_serial()),
            common_name: common_name(&cert),
            der: der.to_vec(),
        })
    }
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

fn public_key(identity: &Identity, cert: &X509Certificate<'_>) -> Result<PublicKey, KeyError> {
    let spki = cert.public_key();
    match identity.key_type {
        KeyType::Rsa => match spki.parsed() {
            Ok(ParsedKey::RSA(rsa)) => Ok(PublicKey::Rsa {
                modulus: der::strip_leading_zeros(rsa.modulus).to_vec(),
                exponent: der::strip_leading_zeros(rsa.exponent).to_vec(),
            }),
            _ => Err(KeyError::Unsupported),
        },
        KeyType::Ec => {
            let Some(curve @ (Curve::P256 | Curve::P384 | Curve::P521)) = identity.curve else {
                return Err(KeyError::Unsupported);
            };
            Ok(PublicKey::Ec {
                curve,
                point: spki.subject_public_key.data.to_vec(),
            })
        }
        KeyType::Ed25519 => Ok(PublicKey::Ed25519 {
            point: spki.subject_public_key.data.to_vec(),
        }),
        _ => Err(KeyError::Unsupported),
    }
}

/// A key as signing needs it.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// The identity's id, which names it to the agent.
    pub(crate) id: String,
    pub(crate) public: PublicKey,
    /// The schemes the agent can sign with for it.
    pub(crate) schemes: Vec<Scheme>,
}

impl Key {
    /// The length of the module's signatures: the modulus for RSA,
    /// `r || s` for ECDSA, 64 bytes for Ed25519.
    pub(crate) fn signature_len(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { modulus, .. } => modulus.len(),
            PublicKey::Ec { curve, .. } => 2 * field_len(*curve),
            PublicKey::Ed25519 { .. } => 64,
        }
    }

    /// The key size in bits, as `CKA_MODULUS_BITS` and mechanism
    /// information give it.
    pub(crate) fn bits(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { modulus, .. } => {
                let top = modulus
                    .first()
                    .map_or(0, |b| 8 - b.leading_zeros() as usize);
                (modulus.len().saturating_sub(1)) * 8 + top
            }
            PublicKey::Ec { curve, .. } => match curve {
                Curve::P256 => 256,
                Curve::P384 => 384,
                _ => 521,
            },
            PublicKey::Ed25519 { .. } => 255,
        }
    }
}

/// The size of a curve's field elements in bytes (the module holds keys
/// on the three NIST curves only).
pub(crate) fn field_len(curve: Curve) -> usize {
    match curve {
        Curve::P256 => 32,
        Curve::P384 => 48,
        _ => 66,
    }
}

/// `CKA_EC_PARAMS`: the curve's OID, DER.
pub(crate) fn ec_params(public: &PublicKey) -> Option<Vec<u8>> {
    let oid: &[u8] = match public {
        PublicKey::Ec { curve, .. } => match curve {
            Curve::P256 => &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x2b, 0x81, 0x04, 0x00, 0x22],
            _ => &[0x2b, 0x81, 0x04, 0x00, 0x23],
        },
        // id-Ed25519 (RFC 8410), which PKCS#11 3.0 accepts for Edwards keys.
        PublicKey::Ed25519 { .. } => &[0x2b, 0x65, 0x70],
        PublicKey::Rsa { .. } => return None,
    };
    Some(der::encode(0x06, oid))
}

/// The `CKA_ID` and `CKA_LABEL` the token gave the key, from the
/// identity's key URI (`id=`, `object=`), where it names them.
pub(crate) fn uri_id_and_label(key_uri: Option<&str>) -> (Option<Vec<u8>>, Option<String>) {
    let Some(path) = key_uri.and_then(|uri| uri.strip_prefix("pkcs11:")) else {
        return (None, None);
    };
    let path = path.split('?').next().unwrap_or_default();
    let mut id = None;
    let mut label = None;
    for attribute in path.split(';') {
        let Some((name, value)) = attribute.split_once('=') else {
            continue;
        };
        let value: Vec<u8> = percent_decode_str(value).collect();
        match name {
            "id" if !value.is_empty() => id = Some(value),
            "object" if !value.is_empty() => label = String::from_utf8(value).ok(),
            _ => {}
        }
    }
    (id, label)
}

/// The `CKA_ID` of an identity whose key URI names none: the first 20
/// bytes of its id (the certificate's SHA-256), as long as a SHA-1 key
/// id, which is what programs expect there.
pub(crate) fn fallback_id(identity_id: &str) -> Vec<u8> {
    let mut bytes = hex::decode(identity_id).unwrap_or_else(|_| identity_id.as_bytes().to_vec());
    bytes.truncate(20);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_label_come_from_the_key_uri() {
        let uri = "pkcs11:token=card;serial=12;id=%01%A2;object=my%20key;type=private";
        assert_eq!(
            uri_id_and_label(Some(uri)),
            (Some(vec![0x01, 0xa2]), Some("my key".to_owned()))
        );
        assert_eq!(uri_id_and_label(Some("pkcs11:type=private")), (None, None));
        assert_eq!(uri_id_and_label(None), (None, None));
        assert_eq!(uri_id_and_label(Some("file:///x")), (None, None));
    }

    #[test]
    fn the_fallback_id_is_20_bytes_of_the_fingerprint() {
        let id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert_eq!(fallback_id(id), hex::decode(&id[..40]).expect("hex"));
    }

    #[test]
    fn sizes() {
        let rsa = Key {
            id: String::new(),
            public: PublicKey::Rsa {
                modulus: vec![0x80; 256],
                exponent: vec![1, 0, 1],
            },
            schemes: Vec::new(),
        };
        assert_eq!((rsa.signature_len(), rsa.bits()), (256, 2048));
        let ec = Key {
            public: PublicKey::Ec {
                curve: Curve::P521,
                point: Vec::new(),
            },
            ..rsa
        };
        assert_eq!((ec.signature_len(), ec.bits()), (132, 521));
    }
}
