//! Public-key material of certificates and key objects, in a normal form
//! in which "the same key" means "equal values": the basis of pairing a
//! certificate with a key whose `CKA_ID` differs.

use x509_parser::asn1_rs::{oid, Any, Class, Oid, Tag};
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_SIG_ED25519,
    OID_SIG_ED448,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// GnuPG's OID for Ed25519, which no registry lists.
const OID_GNUPG_ED25519: Oid<'static> = oid!(1.3.6 .1 .4 .1 .11591 .15 .1);

/// An Edwards curve, as used by `CKK_EC_EDWARDS` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum EdwardsCurve {
    /// Ed25519 (OID 1.3.101.112, or the name `edwards25519`).
    Ed25519,
    /// Ed448 (OID 1.3.101.113, or the name `edwards448`).
    Ed448,
}

impl EdwardsCurve {
    /// The length of a public key (an encoded point) on the curve.
    fn point_len(self) -> usize {
        match self {
            EdwardsCurve::Ed25519 => 32,
            EdwardsCurve::Ed448 => 57,
        }
    }
}

/// A public key in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum PublicKeyMaterial {
    /// An RSA key; both integers big-endian without leading zero bytes.
    Rsa {
        /// The modulus.
        modulus: Vec<u8>,
        /// The public exponent.
        exponent: Vec<u8>,
    },
    /// A Weierstrass-curve EC key: the encoded point (`04 || X || Y`, or
    /// compressed), not wrapped in an OCTET STRING.
    Ec {
        /// The encoded point.
        point: Vec<u8>,
    },
    /// An Edwards-curve key.
    Edwards {
        /// The curve.
        curve: EdwardsCurve,
        /// The encoded point.
        point: Vec<u8>,
    },
}

/// The kind of key a PKCS#11 key object says it is (`CKA_KEY_TYPE`),
/// reduced to what pairing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// `CKK_RSA`.
    Rsa,
    /// `CKK_EC` (ECDSA).
    Ec,
    /// `CKK_EC_EDWARDS` (EdDSA).
    Edwards,
    /// Any other key type.
    Other,
}

/// The public-key attributes read from one key object; `None` where the
/// object lacks the attribute or the token refused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyAttributes {
    /// `CKA_KEY_TYPE`.
    pub kind: Option<KeyKind>,
    /// `CKA_MODULUS`.
    pub modulus: Option<Vec<u8>>,
    /// `CKA_PUBLIC_EXPONENT`.
    pub public_exponent: Option<Vec<u8>>,
    /// `CKA_EC_PARAMS`.
    pub ec_params: Option<Vec<u8>>,
    /// `CKA_EC_POINT`.
    pub ec_point: Option<Vec<u8>>,
}

/// Why a certificate's public key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SpkiError {
    /// The certificate is not valid DER X.509.
    #[error("the certificate cannot be parsed: {0}")]
    Certificate(String),
    /// The SubjectPublicKeyInfo does not hold a valid key of its algorithm.
    #[error("the certificate's public key cannot be parsed: {0}")]
    PublicKey(String),
}

/// The public key of a DER certificate, or `Ok(None)` when its algorithm
/// is not one the agent pairs (DSA, GOST, post-quantum, ...).
pub(super) fn certificate_public_key(der: &[u8]) -> Result<Option<PublicKeyMaterial>, SpkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| SpkiError::Certificate(e.to_string()))?;
    spki_public_key(cert.public_key())
}

/// The public key in a parsed SubjectPublicKeyInfo, or `Ok(None)` for an
/// algorithm the agent does not pair.
pub(super) fn spki_public_key(
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<Option<PublicKeyMaterial>, SpkiError> {
    let key_bits: &[u8] = &spki.subject_public_key.data;
    let algorithm = &spki.algorithm.algorithm;
    let material = if *algorithm == OID_PKCS1_RSAENCRYPTION || *algorithm == OID_PKCS1_RSASSAPSS {
        let (_, rsa) =
            RSAPublicKey::from_der(key_bits).map_err(|e| SpkiError::PublicKey(e.to_string()))?;
        rsa_material(rsa.modulus, rsa.exponent)
    } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        non_empty(key_bits).map(|point| PublicKeyMaterial::Ec { point })
    } else if *algorithm == OID_SIG_ED25519 {
        edwards_material(EdwardsCurve::Ed25519, key_bits)
    } else if *algorithm == OID_SIG_ED448 {
        edwards_material(EdwardsCurve::Ed448, key_bits)
    } else {
        None
    };
    Ok(material)
}

/// The public keys a key object's attributes may stand for: none when
/// they do not give the public key (e.g. an EC private key, which has no
/// `CKA_EC_POINT`), usually one, and two when `CKA_EC_POINT` can be read
/// both as a DER OCTET STRING wrapping the point (as PKCS#11 says, and
/// SoftHSM does) and as a raw point (as some tokens do).
pub(super) fn key_public_keys(attrs: &KeyAttributes) -> Vec<PublicKeyMaterial> {
    let kind = attrs.kind.or_else(|| {
        // No CKA_KEY_TYPE: guess from what is there.
        if attrs.modulus.is_some() {
            Some(KeyKind::Rsa)
        } else if attrs.ec_point.is_some() {
            Some(KeyKind::Ec)
        } else {
            None
        }
    });
    match kind {
        Some(KeyKind::Rsa) => match (&attrs.modulus, &attrs.public_exponent) {
            (Some(modulus), Some(exponent)) => {
                rsa_material(modulus, exponent).into_iter().collect()
            }
            _ => Vec::new(),
        },
        Some(KeyKind::Ec) => attrs
            .ec_point
            .as_deref()
            .map(ec_point_readings)
            .unwrap_or_default()
            .into_iter()
            .map(|point| PublicKeyMaterial::Ec { point })
            .collect(),
        Some(KeyKind::Edwards) => {
            let named = attrs
                .ec_params
                .as_deref()
                .and_then(edwards_curve_from_params);
            attrs
                .ec_point
                .as_deref()
                .map(ec_point_readings)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|point| {
                    let curve = named.or_else(|| edwards_curve_from_point_len(point.len()))?;
                    edwards_material(curve, &point)
                })
                .collect()
        }
        Some(KeyKind::Other) | None => Vec::new(),
    }
}

/// The Edwards curve named by a `CKA_EC_PARAMS` value: the OID
/// 1.3.101.112 / 1.3.101.113, the PrintableString `edwards25519` /
/// `edwards448` (as SoftHSM and OpenSC write it), or GnuPG's Ed25519 OID
/// 1.3.6.1.4.1.11591.15.1.
pub(super) fn edwards_curve_from_params(params: &[u8]) -> Option<EdwardsCurve> {
    let (tag, content) = der_value(params)?;
    match tag {
        Tag::Oid => {
            let oid = Oid::new(content.into());
            if oid == OID_SIG_ED25519 || oid == OID_GNUPG_ED25519 {
                Some(EdwardsCurve::Ed25519)
            } else if oid == OID_SIG_ED448 {
                Some(EdwardsCurve::Ed448)
            } else {
                None
            }
        }
        Tag::PrintableString | Tag::Utf8String => match content {
            b"edwards25519" => Some(EdwardsCurve::Ed25519),
            b"edwards448" => Some(EdwardsCurve::Ed448),
            _ => None,
        },
        _ => None,
    }
}

fn edwards_curve_from_point_len(len: usize) -> Option<EdwardsCurve> {
    [EdwardsCurve::Ed25519, EdwardsCurve::Ed448]
        .into_iter()
        .find(|curve| curve.point_len() == len)
}

fn edwards_material(curve: EdwardsCurve, point: &[u8]) -> Option<PublicKeyMaterial> {
    (point.len() == curve.point_len()).then(|| PublicKeyMaterial::Edwards {
        curve,
        point: point.to_vec(),
    })
}

fn rsa_material(modulus: &[u8], exponent: &[u8]) -> Option<PublicKeyMaterial> {
    let modulus = non_empty(strip_leading_zeros(modulus))?;
    let exponent = non_empty(strip_leading_zeros(exponent))?;
    Some(PublicKeyMaterial::Rsa { modulus, exponent })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn non_empty(bytes: &[u8]) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then(|| bytes.to_vec())
}

/// The readings of a `CKA_EC_POINT` value: the content of a DER OCTET
/// STRING when the value is exactly one, and the value itself as a raw
/// point. (A raw uncompressed point starts with 0x04 too, so a value can
/// be both; the caller matches either.)
pub(super) fn ec_point_readings(value: &[u8]) -> Vec<Vec<u8>> {
    let mut readings = Vec::with_capacity(2);
    if let Some((Tag::OctetString, content)) = der_value(value) {
        if !content.is_empty() {
            readings.push(content.to_vec());
        }
    }
    if !value.is_empty() && !readings.iter().any(|r| r == value) {
        readings.push(value.to_vec());
    }
    readings
}

/// The tag and content of the value that spans all of `bytes`, when it
/// is universal and primitive with a one-byte identifier, as every type
/// read here is. Its length must be definite; a long-form length that
/// is not minimal is taken, since tokens are not strict DER writers.
fn der_value(bytes: &[u8]) -> Option<(Tag, &[u8])> {
    let (rest, value) = Any::from_der(bytes).ok()?;
    let simple = value.class() == Class::Universal
        && !value.header.is_constructed()
        && value.header.raw_tag().is_some_and(|tag| tag.len() == 1);
    (rest.is_empty() && simple).then_some((value.tag(), value.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate (openssl req -x509) whose point is
    /// `P256_POINT`.
    const P256_CERT: &str = "308201763082011da0030201020214098fa88ae5595b2d6785521e91b20b07b339585b300a06082a8648ce3d0403023011310f300d06035504030c066563206f6e65301e170d3236313132333039333830355a170d3236313232333039333830355a3011310f300d06035504030c066563206f6e653059301306072a8648ce3d020106082a8648ce3d030107034200042d308e8e582af611c84565ab81a41d35658813d7b9554de75567bb2f80d502381e2bbbd67297ab36fcee0a99ae1366c4a495b13e9dd3cfb1f05a00ee55a1699ba3533051301d0603551d0e041604148b0430344a8484ad1f2e3687a4950909bec2b735301f0603551d230418301680148b0430344a8484ad1f2e3687a4950909bec2b735300f0603551d130101ff040530030101ff300a06082a8648ce3d040302034700304402202938f2445968a8cb3bded8682aa4639bebeea152ec2180b8a1b713ac2ba9fbb902201114d99a9ff077ec994ce38746e84afe810499eb0ddbfc4e439fd5b52fbc5b7f";
    const P256_POINT: &str = "042d308e8e582af611c84565ab81a41d35658813d7b9554de75567bb2f80d502381e2bbbd67297ab36fcee0a99ae1366c4a495b13e9dd3cfb1f05a00ee55a1699b";

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("test hex")
    }

    #[test]
    fn ec_certificate_point_matches_a_wrapped_and_a_raw_ec_point() {
        let cert = certificate_public_key(&unhex(P256_CERT))
            .expect("parses")
            .expect("EC is supported");
        let point = unhex(P256_POINT);
        assert_eq!(
            cert,
            PublicKeyMaterial::Ec {
                point: point.clone()
            }
        );

        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&point);
        for value in [wrapped, point] {
            let attrs = KeyAttributes {
                kind: Some(KeyKind::Ec),
                ec_params: Some(unhex("06082a8648ce3d030107")),
                ec_point: Some(value),
                ..KeyAttributes::default()
            };
            assert!(key_public_keys(&attrs).contains(&cert));
        }
    }

    #[test]
    fn ec_private_key_without_point_has_no_public_key() {
        let attrs = KeyAttributes {
            kind: Some(KeyKind::Ec),
            ec_params: Some(unhex("06082a8648ce3d030107")),
            ..KeyAttributes::default()
        };
        assert!(key_public_keys(&attrs).is_empty());
    }

    #[test]
    fn ec_point_readings_of_ambiguous_values() {
        // 65 bytes, starts 04 3f: both a raw uncompressed point and an
        // OCTET STRING of 63 bytes.
        let mut ambiguous = vec![0x04, 0x3f];
        ambiguous.extend(std::iter::repeat_n(0xab, 63));
        let readings = ec_point_readings(&ambiguous);
        assert_eq!(readings.len(), 2);
        assert_eq!(readings[0], vec![0xab; 63]);
        assert_eq!(readings[1], ambiguous);

        // Long-form length (a P-521 point is 133 bytes).
        let mut p521 = vec![0x04, 0x81, 0x85, 0x04];
        p521.extend(std::iter::repeat_n(0x11, 132));
        let readings = ec_point_readings(&p521);
        assert_eq!(readings[0].len(), 133);

        assert!(ec_point_readings(&[]).is_empty());
    }

    #[test]
    fn rsa_material_ignores_leading_zeros() {
        let attrs = KeyAttributes {
            kind: Some(KeyKind::Rsa),
            modulus: Some(vec![0xc3, 0x01, 0x02]),
            public_exponent: Some(vec![0x00, 0x01, 0x00, 0x01]),
            ..KeyAttributes::default()
        };
        assert_eq!(
            key_public_keys(&attrs),
            vec![PublicKeyMaterial::Rsa {
                modulus: vec![0xc3, 0x01, 0x02],
                exponent: vec![0x01, 0x00, 0x01],
            }]
        );
        // The DER INTEGER form from a certificate has a leading zero.
        assert_eq!(
            rsa_material(&[0x00, 0xc3, 0x01, 0x02], &[0x01, 0x00, 0x01]),
            key_public_keys(&attrs).into_iter().next()
        );
        // Without the exponent (a token that hides it) there is no key.
        let partial = KeyAttributes {
            public_exponent: None,
            ..attrs
        };
        assert!(key_public_keys(&partial).is_empty());
    }

    #[test]
    fn key_type_is_guessed_when_absent() {
        let attrs = KeyAttributes {
            modulus: Some(vec![0xc3]),
            public_exponent: Some(vec![0x03]),
            ..KeyAttributes::default()
        };
        assert_eq!(key_public_keys(&attrs).len(), 1);
    }

    #[test]
    fn edwards_params_as_oid_or_printable_string() {
        assert_eq!(
            edwards_curve_from_params(&unhex("06032b6570")),
            Some(EdwardsCurve::Ed25519)
        );
        assert_eq!(
            edwards_curve_from_params(&unhex("06032b6571")),
            Some(EdwardsCurve::Ed448)
        );
        // As SoftHSM 2.6.1 writes it.
        assert_eq!(
            edwards_curve_from_params(&unhex("130c656477617264733235353139")),
            Some(EdwardsCurve::Ed25519)
        );
        assert_eq!(
            edwards_curve_from_params(b"\x13\x0aedwards448"),
            Some(EdwardsCurve::Ed448)
        );
        assert_eq!(
            edwards_curve_from_params(&unhex("06092b06010401da470f01")),
            Some(EdwardsCurve::Ed25519)
        );
        assert_eq!(
            edwards_curve_from_params(&unhex("06082a8648ce3d030107")),
            None
        );
        assert_eq!(
            edwards_curve_from_params(b"\x13\x0cedwards25519 trailing"),
            None
        );
        assert_eq!(edwards_curve_from_params(&[]), None);
    }

    #[test]
    fn ed25519_key_matches_its_certificate() {
        // SPKI of an Ed25519 key, as in a certificate.
        let spki_der = unhex(
            "302a300506032b65700321007567de2fc1f48e22d00d7e6997fe3040132c4a2ef6d626baf6def59dcaa39bc8",
        );
        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki_der).expect("SPKI parses");
        let cert = spki_public_key(&spki).expect("parses").expect("Ed25519");
        let point = unhex("7567de2fc1f48e22d00d7e6997fe3040132c4a2ef6d626baf6def59dcaa39bc8");
        assert_eq!(
            cert,
            PublicKeyMaterial::Edwards {
                curve: EdwardsCurve::Ed25519,
                point: point.clone()
            }
        );
        let mut wrapped = vec![0x04, 0x20];
        wrapped.extend_from_slice(&point);
        for params in [
            Some(unhex("130c656477617264733235353139")),
            Some(unhex("06032b6570")),
            None,
        ] {
            for value in [wrapped.clone(), point.clone()] {
                let attrs = KeyAttributes {
                    kind: Some(KeyKind::Edwards),
                    ec_params: params.clone(),
                    ec_point: Some(value),
                    ..KeyAttributes::default()
                };
                assert!(key_public_keys(&attrs).contains(&cert), "{params:?}");
            }
        }
        // An Ed448 key never equals it.
        let ed448 = KeyAttributes {
            kind: Some(KeyKind::Edwards),
            ec_params: Some(unhex("06032b6571")),
            ec_point: Some(wrapped),
            ..KeyAttributes::default()
        };
        assert!(!key_public_keys(&ed448).contains(&cert));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            certificate_public_key(b"not a certificate"),
            Err(SpkiError::Certificate(_))
        ));
    }
}
