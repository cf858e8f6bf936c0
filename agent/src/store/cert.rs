//! The time-independent facts of one certificate, read from its DER.
//!
//! Everything here is computed once, when a token's certificates enter the
//! store; listing only copies the results.
//!
//! Choices worth knowing:
//!
//! * **id**: lower-case hex SHA-256 of the certificate's DER encoding.
//! * **serial**: lower-case hex of the serial number as an integer, an
//!   even number of digits: the DER sign byte (`00` before a first byte
//!   with its top bit set) is dropped, so the string matches what
//!   `openssl x509 -serial` and browsers show, up to case. A negative
//!   serial (which RFC 5280 forbids, and some CAs made) is its magnitude
//!   with a minus sign, as openssl prints it: `-05` for −5.
//! * **validity**: RFC 3339 in UTC with a `Z` suffix
//!   (`2024-01-01T00:00:00Z`); the parsed times are kept as
//!   [`OffsetDateTime`] for usability checks.
//! * **key**: RSA reports the modulus length in bits (leading zero bits
//!   not counted); EC keys naming P-256, P-384 or P-521 report
//!   256/384/521 bits and the curve; Ed25519 (1.3.101.112) reports 256
//!   bits and no curve. An EC key on any other curve (brainpool, ...) or
//!   without a named curve is `ec` with no curve and the field size read
//!   from its public point (0 when the point is neither compressed nor
//!   uncompressed). Any other algorithm (Ed448, DSA, ...) is `other`
//!   with 0 bits. Such certificates are still listed; usability marks
//!   them `unsupported_key`.
//! * **Key Usage**: the set bits by their RFC 5280 names, in bit order;
//!   `None` when the extension is absent. **Extended Key Usage**: every
//!   purpose, in encoded order with repeats removed, anyExtendedKeyUsage
//!   and unknown purposes included (dotted in the identity record);
//!   `None` when absent. A Key Usage or Extended Key Usage extension that is present
//!   but unreadable (or present twice) is an error rather than a guess.
//! * Bytes after the certificate's DER (a token bug) are ignored: the id
//!   and the stored DER cover the certificate alone.

use p11agent_proto::{ClientAuth, Curve, Identity, KeyType, Scheme, Token};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use x509_parser::asn1_rs::{FromDer, Oid};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519, OID_X509_EXT_EXTENDED_KEY_USAGE,
};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use p11agent_proto::dn::format_name;

use super::NameParts;

/// The named curves the agent signs with, and their field sizes.
static NAMED_CURVES: [(Oid<'static>, Curve, u32); 3] = [
    (OID_EC_P256, Curve::P256, 256),
    (OID_NIST_EC_P384, Curve::P384, 384),
    (OID_NIST_EC_P521, Curve::P521, 521),
];

/// Key Usage bit names in bit order (RFC 5280 section 4.2.1.3).
const KEY_USAGE_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertError {
    /// The bytes are not an X.509 certificate.
    #[error("not a valid X.509 certificate: {0}")]
    Parse(#[source] X509Error),
    /// The Key Usage extension is malformed or present more than once.
    #[error("unreadable Key Usage extension: {0}")]
    KeyUsage(#[source] X509Error),
    /// The Extended Key Usage extension is malformed or present more than
    /// once.
    #[error("unreadable Extended Key Usage extension: {0}")]
    ExtendedKeyUsage(#[source] X509Error),
    /// An RSA public key that does not parse.
    #[error("malformed RSA public key: {0}")]
    RsaKey(#[source] X509Error),
    /// The Basic Constraints extension is malformed or repeated.
    #[error("invalid basic constraints: {0}")]
    BasicConstraints(X509Error),
    /// A validity time that cannot be written as RFC 3339.
    #[error("validity time cannot be formatted: {0}")]
    Time(#[from] time::error::Format),
}

/// The time-independent facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedCertificate {
    /// The certificate's DER encoding (without any trailing bytes).
    pub der: Vec<u8>,
    /// Lower-case hex SHA-256 of `der`.
    pub id: String,
    /// Subject DN, RFC 4514 (see [`p11agent_proto::dn`]).
    pub subject: String,
    /// Issuer DN, RFC 4514.
    pub issuer: String,
    /// The subject name's DER, as TLS CA lists carry names.
    pub subject_der: Vec<u8>,
    /// The issuer name's DER.
    pub issuer_der: Vec<u8>,
    /// Whether the certificate may issue others: Basic Constraints is
    /// absent (old roots) or says `cA`.
    pub may_issue: bool,
    /// The subject's CN, L, O and OU, for auto-select rule filters.
    pub subject_parts: NameParts,
    /// The issuer's CN, L, O and OU.
    pub issuer_parts: NameParts,
    /// Serial number: lower-case hex of the INTEGER's content octets as
    /// encoded (see the module documentation).
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// `not_before` as RFC 3339 (UTC, `Z`).
    pub not_before_text: String,
    /// `not_after` as RFC 3339 (UTC, `Z`).
    pub not_after_text: String,
    /// The key's algorithm family.
    pub key_type: KeyType,
    /// The key size in bits.
    pub key_bits: u32,
    /// The named curve of an EC key.
    pub curve: Option<Curve>,
    /// Key Usage bit names; `None` when the extension is absent.
    pub key_usage: Option<Vec<String>>,
    /// Extended Key Usage purposes; `None` when absent.
    pub extended_key_usage: Option<Vec<Oid<'static>>>,
}

impl ParsedCertificate {
    /// Reads a certificate from its DER encoding.
    pub(crate) fn from_der(mut der: Vec<u8>) -> Result<Self, CertError> {
        let (parsed, cert_len) = {
            let (rest, cert) = X509Certificate::from_der(&der).map_err(|e| {
                CertError::Parse(match e {
                    x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
                    x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
                })
            })?;
            let cert_len = der.len() - rest.len();
            (Facts::read(&cert)?, cert_len)
        };
        if cert_len < der.len() {
            tracing::debug!(
                extra = der.len() - cert_len,
                "ignoring bytes after the certificate's DER"
            );
            der.truncate(cert_len);
        }
        let id = hex::encode(Sha256::digest(&der));
        Ok(ParsedCertificate {
            der,
            id,
            subject: parsed.subject,
            issuer: parsed.issuer,
            subject_der: parsed.subject_der,
            issuer_der: parsed.issuer_der,
            may_issue: parsed.may_issue,
            subject_parts: parsed.subject_parts,
            issuer_parts: parsed.issuer_parts,
            serial: parsed.serial,
            not_before_text: rfc3339(parsed.not_before)?,
            not_after_text: rfc3339(parsed.not_after)?,
            not_before: parsed.not_before,
            not_after: parsed.not_after,
            key_type: parsed.key_type,
            key_bits: parsed.key_bits,
            curve: parsed.curve,
            key_usage: parsed.key_usage,
            extended_key_usage: parsed.extended_key_usage,
        })
    }

    /// The identity record for this certificate on `token`.
    pub(crate) fn identity(
        &self,
        token: Token,
        cert_uri: String,
        key_uri: Option<String>,
        client_auth: ClientAuth,
        schemes: Vec<Scheme>,
    ) -> Identity {
        Identity {
            id: self.id.clone(),
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            serial: self.serial.clone(),
            not_before: self.not_before_text.clone(),
            not_after: self.not_after_text.clone(),
            key_type: self.key_type,
            key_bits: self.key_bits,
            curve: self.curve,
            key_usage: self.key_usage.clone(),
            extended_key_usage: self
                .extended_key_usage
                .as_ref()
                .map(|oids| oids.iter().map(Oid::to_id_string).collect()),
            has_private_key: key_uri.is_some(),
            token,
            cert_uri,
            key_uri,
            client_auth,
            schemes,
            present: true,
        }
    }
}

/// What is read while the DER is borrowed.
struct Facts {
    subject: String,
    issuer: String,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    may_issue: bool,
    subject_parts: NameParts,
    issuer_parts: NameParts,
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_type: KeyType,
    key_bits: u32,
    curve: Option<Curve>,
    key_usage: Option<Vec<String>>,
    extended_key_usage: Option<Vec<Oid<'static>>>,
}

impl Facts {
    fn read(cert: &X509Certificate<'_>) -> Result<Self, CertError> {
        let (key_type, key_bits, curve) = key_info(cert.public_key())?;
        let validity = cert.validity();
        Ok(Facts {
            subject: format_name(cert.subject()),
            issuer: format_name(cert.issuer()),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_der: cert.issuer().as_raw().to_vec(),
            may_issue: match cert.basic_constraints() {
                Ok(Some(bc)) => bc.value.ca,
                Ok(None) => true,
                Err(e) => return Err(CertError::BasicConstraints(e)),
            },
            subject_parts: NameParts::from_x509(cert.subject()),
            issuer_parts: NameParts::from_x509(cert.issuer()),
            serial: serial_hex(cert.raw_serial()),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key_type,
            key_bits,
            curve,
            key_usage: key_usage(cert)?,
            extended_key_usage: extended_key_usage(cert)?,
        })
    }
}

/// RFC 3339 in UTC.
fn rfc3339(t: OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(UtcOffset::UTC).format(&Rfc3339)
}

/// Key type, size in bits and curve of a SubjectPublicKeyInfo.
///
/// Keys the agent cannot sign with are still described, as far as
/// possible (see the module documentation).
fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> Result<(KeyType, u32, Option<Curve>), CertError> {
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => Ok((KeyType::Rsa, bit_length(rsa.modulus), None)),
            Ok(_) => Err(CertError::RsaKey(X509Error::InvalidSPKI)),
            Err(e) => Err(CertError::RsaKey(e)),
        }
    } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let named = NAMED_CURVES
            .iter()
            .find(|(oid, _, _)| curve.as_ref() == Some(oid));
        Ok(match named {
            Some((_, curve, bits)) => (KeyType::Ec, *bits, Some(*curve)),
            None => (
                KeyType::Ec,
                ec_point_bits(&spki.subject_public_key.data),
                None,
            ),
        })
    } else if *algorithm == OID_SIG_ED25519 {
        Ok((KeyType::Ed25519, 256, None))
    } else {
        Ok((KeyType::Other, 0, None))
    }
}

/// Field size in bits of an EC public point (SEC 1): `04 || X || Y`
/// uncompressed, `02`/`03 || X` compressed; 0 for anything else.
fn ec_point_bits(point: &[u8]) -> u32 {
    let bytes = match point {
        [0x04, rest @ ..] if !rest.is_empty() && rest.len() % 2 == 0 => rest.len() / 2,
        [0x02 | 0x03, rest @ ..] if !rest.is_empty() => rest.len(),
        _ => 0,
    };
    u32::try_from(bytes).map_or(0, |b| b.saturating_mul(8))
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> u32 {
    let Some(first) = bytes.iter().position(|&b| b != 0) else {
        return 0;
    };
    let significant = &bytes[first..];
    let len = u32::try_from(significant.len()).unwrap_or(u32::MAX / 8);
    (len - 1) * 8 + (8 - significant[0].leading_zeros())
}

/// Key Usage bit names, `None` when the extension is absent.
fn key_usage(cert: &X509Certificate<'_>) -> Result<Option<Vec<String>>, CertError> {
    let Some(ku) = cert.key_usage().map_err(CertError::KeyUsage)? else {
        return Ok(None);
    };
    let flags = ku.value.flags;
    Ok(Some(
        KEY_USAGE_NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| flags & (1 << bit) != 0)
            .map(|(_, name)| (*name).to_owned())
            .collect(),
    ))
}

/// Extended Key Usage purposes, `None` when absent.
///
/// Read from the extension's bytes rather than x509-parser's digest of
/// them, which folds the well-known purposes into flags and loses order.
fn extended_key_usage(cert: &X509Certificate<'_>) -> Result<Option<Vec<Oid<'static>>>, CertError> {
    let Some(ext) = cert
        .get_extension_unique(&OID_X509_EXT_EXTENDED_KEY_USAGE)
        .map_err(CertError::ExtendedKeyUsage)?
    else {
        return Ok(None);
    };
    let (_, oids) = <Vec<Oid<'_>>>::from_der(ext.value)
        .map_err(|_| CertError::ExtendedKeyUsage(X509Error::InvalidExtensions))?;
    let mut out: Vec<Oid<'static>> = Vec::with_capacity(oids.len());
    for oid in oids {
        if !out.contains(&oid) {
            out.push(oid.to_owned());
        }
    }
    Ok(Some(out))
}

/// The serial's integer value in hex, from its DER two's complement
/// bytes: leading zero bytes (the sign byte) dropped, one kept for zero;
/// a negative value as `-` and its magnitude.
fn serial_hex(raw: &[u8]) -> String {
    let negative = raw.first().is_some_and(|&b| b & 0x80 != 0);
    let magnitude = if negative {
        // Two's complement: invert, then add one from the right.
        let mut bytes: Vec<u8> = raw.iter().map(|b| !b).collect();
        for byte in bytes.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        bytes
    } else {
        raw.to_vec()
    };
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len().saturating_sub(1));
    let digits = if magnitude.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(&magnitude[start..])
    };
    if negative {
        format!("-{digits}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_certs::*;
    use super::*;
    use rcgen::{
        DnType, DnValue, ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku, SerialNumber,
    };

    fn parse(der: Vec<u8>) -> ParsedCertificate {
        ParsedCertificate::from_der(der).expect("certificate parses")
    }

    #[test]
    fn basic_fields() {
        let mut p = params("Alice");
        p.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x02, 0xab]));
        let der = self_signed(&p);
        let cert = parse(der.clone());
        assert_eq!(cert.id, hex::encode(Sha256::digest(&der)));
        assert_eq!(cert.id.len(), 64);
        assert_eq!(cert.der, der);
        assert_eq!(cert.subject, "CN=Alice");
        assert_eq!(cert.issuer, "CN=Alice");
        assert_eq!(cert.serial, "0102ab");
        assert_eq!(cert.not_before, NOT_BEFORE);
        assert_eq!(cert.not_after, NOT_AFTER);
        assert_eq!(cert.not_before_text, "2024-01-01T00:00:00Z");
        assert_eq!(cert.not_after_text, "2034-01-01T00:00:00Z");
        assert_eq!(cert.key_type, KeyType::Ec);
        assert_eq!(cert.key_bits, 256);
        assert_eq!(cert.curve, Some(Curve::P256));
    }

    #[test]
    fn negative_serials_print_as_openssl_prints_them() {
        assert_eq!(serial_hex(&[0xfb]), "-05");
        assert_eq!(serial_hex(&[0xff]), "-01");
        assert_eq!(serial_hex(&[0x80]), "-80");
        assert_eq!(serial_hex(&[0xff, 0x7f]), "-81");
        assert_eq!(serial_hex(&[0xff, 0x00]), "-0100");
        assert_eq!(serial_hex(&[0x80, 0x00, 0x00]), "-800000");
    }

    #[test]
    fn serial_drops_sign_byte() {
        let mut p = params("Alice");
        p.serial_number = Some(SerialNumber::from_slice(&[0x8f, 0x00, 0x01]));
        let cert = parse(self_signed(&p));
        assert_eq!(cert.serial, "8f0001");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[]), "00");
        assert_eq!(serial_hex(&[0x7f]), "7f");
        assert_eq!(serial_hex(&[0x00, 0x80]), "80");
        assert_eq!(serial_hex(&[0x00, 0x00, 0x7f]), "7f");
    }

    #[test]
    fn generalized_time_validity() {
        let mut p = params("Far");
        p.not_after = time::macros::datetime!(2077-12-31 23:59:59 UTC);
        let cert = parse(self_signed(&p));
        assert_eq!(cert.not_after_text, "2077-12-31T23:59:59Z");
    }

    #[test]
    fn rsa_2048() {
        let cert = parse(for_public_key(&params("RSA"), &FakeRsaKey::new_2048()));
        assert_eq!(cert.key_type, KeyType::Rsa);
        assert_eq!(cert.key_bits, 2048);
        assert_eq!(cert.curve, None);
        assert_eq!(cert.issuer, "CN=Test Issuer");
    }

    #[test]
    fn ec_p384() {
        let cert = parse(self_signed_with(&params("P-384"), &p384_key()));
        assert_eq!(cert.key_type, KeyType::Ec);
        assert_eq!(cert.key_bits, 384);
        assert_eq!(cert.curve, Some(Curve::P384));
    }

    #[test]
    fn ec_p521() {
        let der = self_signed_with(&params("P-521"), &p384_key());
        let cert = parse(patch(&der, DER_OID_P384, DER_OID_P521));
        assert_eq!(cert.key_type, KeyType::Ec);
        assert_eq!(cert.key_bits, 521);
        assert_eq!(cert.curve, Some(Curve::P521));
    }

    #[test]
    fn ed25519() {
        let cert = parse(self_signed_with(&params("Ed"), &ed25519_key()));
        assert_eq!(cert.key_type, KeyType::Ed25519);
        assert_eq!(cert.key_bits, 256);
        assert_eq!(cert.curve, None);
    }

    #[test]
    fn other_algorithm_is_other() {
        let der = self_signed_with(&params("Ed448"), &ed25519_key());
        let cert = parse(patch(&der, DER_OID_ED25519, DER_OID_ED448));
        assert_eq!(cert.key_type, KeyType::Other);
        assert_eq!(cert.key_bits, 0);
        assert_eq!(cert.curve, None);
    }

    #[test]
    fn other_curve_is_ec_without_curve() {
        let der = for_public_key(&params("P-192"), &FakeEcKey::uncompressed(24));
        let cert = parse(patch(&der, DER_OID_P256, DER_OID_P192));
        assert_eq!(cert.key_type, KeyType::Ec);
        assert_eq!(cert.key_bits, 192);
        assert_eq!(cert.curve, None);

        // The size comes from the point, not from the curve's name.
        let der = self_signed(&params("relabelled"));
        let cert = parse(patch(&der, DER_OID_P256, DER_OID_P192));
        assert_eq!(
            (cert.key_type, cert.key_bits, cert.curve),
            (KeyType::Ec, 256, None)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            ParsedCertificate::from_der(b"not a certificate".to_vec()),
            Err(CertError::Parse(_))
        ));
        assert!(matches!(
            ParsedCertificate::from_der(Vec::new()),
            Err(CertError::Parse(_))
        ));
        let der = self_signed(&params("Truncated"));
        assert!(ParsedCertificate::from_der(der[..der.len() - 10].to_vec()).is_err());
    }

    #[test]
    fn trailing_bytes_are_dropped() {
        let der = self_signed(&params("Trailing"));
        let mut padded = der.clone();
        padded.extend([0, 0, 0]);
        let cert = parse(padded);
        assert_eq!(cert.der, der);
        assert_eq!(cert.id, hex::encode(Sha256::digest(&der)));
    }

    #[test]
    fn usages_absent() {
        let cert = parse(self_signed(&params("Plain")));
        assert_eq!(cert.key_usage, None);
        assert_eq!(cert.extended_key_usage, None);
    }

    #[test]
    fn key_usage_names() {
        let mut p = params("KU");
        p.key_usages = vec![
            Ku::DigitalSignature,
            Ku::ContentCommitment,
            Ku::KeyEncipherment,
            Ku::DataEncipherment,
            Ku::KeyAgreement,
            Ku::KeyCertSign,
            Ku::CrlSign,
            Ku::EncipherOnly,
            Ku::DecipherOnly,
        ];
        let cert = parse(self_signed(&p));
        assert_eq!(
            cert.key_usage.as_deref(),
            Some(KEY_USAGE_NAMES.map(String::from).as_slice())
        );

        p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign];
        let cert = parse(self_signed(&p));
        assert_eq!(
            cert.key_usage,
            Some(vec!["keyCertSign".to_owned(), "cRLSign".to_owned()])
        );
    }

    #[test]
    fn extended_key_usage_oids() {
        let mut p = params("EKU");
        p.extended_key_usages = vec![
            Eku::ServerAuth,
            Eku::ClientAuth,
            Eku::Any,
            Eku::Other(vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 2]),
            Eku::EmailProtection,
        ];
        let cert = parse(self_signed(&p));
        let dotted = cert
            .extended_key_usage
            .map(|oids| oids.iter().map(Oid::to_id_string).collect::<Vec<_>>());
        assert_eq!(
            dotted,
            Some(
                [
                    "1.3.6.1.5.5.7.3.1",
                    "1.3.6.1.5.5.7.3.2",
                    "2.5.29.37.0",
                    "1.3.6.1.4.1.311.20.2.2",
                    "1.3.6.1.5.5.7.3.4",
                ]
                .map(String::from)
                .to_vec()
            )
        );
    }

    #[test]
    fn utf8_and_multi_rdn_subject() {
        let mut p = params("ignored");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            DnType::CountryName,
            DnValue::PrintableString("DK".try_into().expect("printable")),
        );
        p.distinguished_name
            .push(DnType::OrganizationName, "Ærøskøbing, A/S");
        p.distinguished_name
            .push(DnType::CommonName, "Zoë Ærøskøbing 測試");
        let cert = parse(self_signed(&p));
        assert_eq!(
            cert.subject,
            r"CN=Zoë Ærøskøbing 測試,O=Ærøskøbing\, A/S,C=DK"
        );
        assert_eq!(cert.issuer, cert.subject);
    }

    #[test]
    fn identity_record() {
        let cert = parse(self_signed(&params("Rec")));
        let token = Token {
            label: "t".into(),
            serial: "s".into(),
            manufacturer: "m".into(),
            model: "mo".into(),
            slot: 3,
            module: "/lib/x.so".into(),
        };
        let id = cert.identity(
            token.clone(),
            "pkcs11:object=c".into(),
            Some("pkcs11:object=k".into()),
            ClientAuth::from_reasons(Vec::new()),
            vec![Scheme::EcdsaSecp256r1Sha256],
        );
        assert_eq!(id.id, cert.id);
        assert!(id.has_private_key);
        assert_eq!(id.token, token);
        assert_eq!(id.not_before, "2024-01-01T00:00:00Z");
        let without = cert.identity(
            token,
            "pkcs11:object=c".into(),
            None,
            ClientAuth::from_reasons(Vec::new()),
            Vec::new(),
        );
        assert!(!without.has_private_key);
    }

    #[test]
    fn ec_point_sizes() {
        let uncompressed = |n: usize| [vec![0x04], vec![0xaa; 2 * n]].concat();
        let compressed = |tag: u8, n: usize| [vec![tag], vec![0xaa; n]].concat();
        assert_eq!(ec_point_bits(&uncompressed(24)), 192);
        assert_eq!(ec_point_bits(&uncompressed(32)), 256);
        assert_eq!(ec_point_bits(&uncompressed(64)), 512);
        assert_eq!(ec_point_bits(&compressed(0x02, 32)), 256);
        assert_eq!(ec_point_bits(&compressed(0x03, 48)), 384);
        assert_eq!(ec_point_bits(&[]), 0);
        assert_eq!(ec_point_bits(&[0x04]), 0);
        assert_eq!(ec_point_bits(&[0x02]), 0);
        assert_eq!(ec_point_bits(&[0x04, 0xaa, 0xbb, 0xcc]), 0);
        assert_eq!(ec_point_bits(&[0x05, 0xaa, 0xbb]), 0);
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x7f, 0xff]), 15);
    }
}
