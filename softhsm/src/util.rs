//! Small helpers: PEM, random bytes, fingerprints, RFC 4514 names.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use pem::{EncodeConfig, LineEnding, Pem};
use sha2::{Digest, Sha256};
use x509_parser::asn1_rs::Oid;
use x509_parser::oid_registry::{
    OID_DOMAIN_COMPONENT, OID_USERID, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME,
    OID_X509_LOCALITY_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_ORGANIZATION_NAME,
    OID_X509_STATE_OR_PROVINCE_NAME, OID_X509_STREET_ADDRESS,
};
use x509_parser::x509::X509Name;
use yasna::models::TaggedDerValue;

use crate::error::{Error, Result};

/// Encodes DER as PEM with the given label (`CERTIFICATE`, `PRIVATE KEY`),
/// with Unix line endings like the PEM files rcgen and OpenSSL write (the
/// pem crate's default is CRLF).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &Pem::new(label, der),
        EncodeConfig::new().set_line_ending(LineEnding::LF),
    )
}

/// Decodes every PEM block with the given label, in order.
pub fn pem_decode_all(label: &str, pem: &str) -> Result<Vec<Vec<u8>>> {
    Ok(pem::parse_many(pem)
        .map_err(|e| Error::X509(format!("PEM: {e}")))?
        .into_iter()
        .filter(|block| block.tag() == label)
        .map(Pem::into_contents)
        .collect())
}

/// The file named by the environment variable `var`; `None` when it is
/// unset or empty, and the error `not_found` makes when the file does not
/// exist: an explicit choice that is wrong must not fall back to a search.
pub(crate) fn file_from_env(var: &str, not_found: fn(String) -> Error) -> Result<Option<PathBuf>> {
    let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err(not_found(format!(
            "{var}={} does not exist",
            path.display()
        )))
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `n` unpredictable-enough bytes for serial numbers and ids (not for keys).
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        // RandomState is seeded from the OS once per thread and then varied.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.extend_from_slice(&hasher.finish().to_be_bytes());
    }
    out.truncate(n);
    out
}

/// A positive serial number of `n` random bytes (top bit clear, not zero).
pub(crate) fn random_serial(n: usize) -> Vec<u8> {
    let mut serial = random_bytes(n.max(1));
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

/// Formats a distinguished name as an RFC 4514 string: RDNs in reverse
/// order separated by `,`, multi-valued RDNs joined by `+`, short names for
/// the common attribute types, UTF-8 values escaped as RFC 4514 asks, and
/// `OID=#hex` for values that are not strings.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = SHORT_NAMES
                        .iter()
                        .find(|(oid, _)| oid == atv.attr_type())
                        .map_or_else(|| atv.attr_type().to_id_string(), |(_, n)| n.to_string());
                    let value = match atv.as_str() {
                        Ok(s) => escape_rfc4514(s),
                        Err(_) => {
                            // BMPString etc.: fall back to the DER of the value.
                            let any = atv.attr_value();
                            let tag = yasna::Tag {
                                tag_class: yasna::TagClass::Universal,
                                tag_number: any.header.tag().0.into(),
                            };
                            let der = yasna::construct_der(|w| {
                                w.write_tagged_der(&TaggedDerValue::from_tag_and_bytes(
                                    tag,
                                    any.as_bytes().to_vec(),
                                ))
                            });
                            format!("#{}", hex::encode(der))
                        }
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The attribute types RFC 4514 section 3 names, by their short names.
static SHORT_NAMES: [(Oid<'static>, &str); 9] = [
    (OID_X509_COMMON_NAME, "CN"),
    (OID_X509_LOCALITY_NAME, "L"),
    (OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
    (OID_X509_ORGANIZATION_NAME, "O"),
    (OID_X509_ORGANIZATIONAL_UNIT, "OU"),
    (OID_X509_COUNTRY_NAME, "C"),
    (OID_X509_STREET_ADDRESS, "STREET"),
    (OID_DOMAIN_COMPONENT, "DC"),
    (OID_USERID, "UID"),
];

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert!(!pem.contains('\r'));
        let back = pem_decode_all("CERTIFICATE", &format!("{pem}{pem}")).expect("decode");
        assert_eq!(back, vec![der.clone(), der]);
    }

    #[test]
    fn rfc4514_short_names() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "example",
        );
        dn.push(DnType::CountryName, "FR");
        dn.push(DnType::StateOrProvinceName, "Rhône");
        dn.push(DnType::LocalityName, "Lyon");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), "1 rue X");
        dn.push(DnType::OrganizationName, "Corp");
        dn.push(DnType::OrganizationalUnitName, "Staff");
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            "alice",
        );
        dn.push(DnType::CustomDnType(vec![1, 2, 3, 4]), "other");
        dn.push(DnType::CommonName, "Alice");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        let key = KeyPair::generate().expect("key");
        let der = params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parses");
        assert_eq!(
            rfc4514(cert.subject()),
            "CN=Alice,1.2.3.4=other,UID=alice,OU=Staff,O=Corp,STREET=1 rue X,L=Lyon,\
             ST=Rhône,C=FR,DC=example"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_rfc4514(" a,b+c "), "\\ a\\,b\\+c\\ ");
        assert_eq!(escape_rfc4514("#x"), "\\#x");
        assert_eq!(escape_rfc4514("Zoë 測試"), "Zoë 測試");
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial(16);
        let b = random_serial(16);
        assert_ne!(a, b);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
    }
}
