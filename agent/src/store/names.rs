//! The parts of a distinguished name that client-certificate filters
//! compare (Chromium's `CertPrincipal`): read once per certificate when
//! it enters the store, so that matching a rule costs no parsing.

use p11agent_proto::dn::decode_string;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The parts of a distinguished name that filters look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NameParts {
    /// The common name (CN): the first non-empty one in the encoded name,
    /// as Chromium keeps it.
    pub common_name: Option<String>,
    /// The localities (L), in encoded order. Filters compare only the
    /// first, as Chromium keeps only one.
    pub localities: Vec<String>,
    /// The organisations (O), in encoded order.
    pub organizations: Vec<String>,
    /// The organisational units (OU), in encoded order.
    pub organizational_units: Vec<String>,
}

impl NameParts {
    /// Reads the parts of `name`.
    ///
    /// Values are decoded from every X.500 string type (UTF8String,
    /// PrintableString, IA5String, TeletexString as Latin-1, BMPString,
    /// UniversalString, ...). Empty values are left out, and so are values
    /// that do not decode: Chromium would reject the whole certificate,
    /// but such a value can never equal a filter's string anyway.
    pub(crate) fn from_x509(name: &X509Name<'_>) -> NameParts {
        NameParts {
            common_name: decoded(name.iter_common_name()).into_iter().next(),
            localities: decoded(name.iter_locality()),
            organizations: decoded(name.iter_organization()),
            organizational_units: decoded(name.iter_organizational_unit()),
        }
    }
}

/// The non-empty string values of `attributes`, in order.
fn decoded<'n, 'a: 'n>(
    attributes: impl Iterator<Item = &'n AttributeTypeAndValue<'a>>,
) -> Vec<String> {
    attributes
        .filter_map(|attribute| decode_string(attribute.attr_value()))
        .filter(|value| !value.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names rcgen cannot make (repeated attributes, unusual string
    /// types), written with yasna.
    mod der {
        use x509_parser::asn1_rs::Oid;
        use yasna::models::TaggedDerValue;
        use yasna::Tag;

        pub(super) use x509_parser::oid_registry::{
            OID_X509_COMMON_NAME as CN, OID_X509_COUNTRY_NAME as C, OID_X509_LOCALITY_NAME as L,
            OID_X509_ORGANIZATIONAL_UNIT as OU, OID_X509_ORGANIZATION_NAME as O,
        };
        pub(super) use yasna::tags::{
            TAG_BMPSTRING as BMP, TAG_INTEGER as INTEGER, TAG_PRINTABLESTRING as PRINTABLE,
            TAG_UTF8STRING as UTF8,
        };

        /// One attribute, as an RDN of its own; `value` is written as
        /// given under `tag`, valid for it or not.
        pub(super) fn rdn(oid: Oid<'_>, tag: Tag, value: &[u8]) -> Vec<u8> {
            let raw = |tag, bytes: &[u8]| TaggedDerValue::from_tag_and_bytes(tag, bytes.to_vec());
            yasna::construct_der(|w| {
                w.write_set_of(|w| {
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_tagged_der(&raw(yasna::tags::TAG_OID, oid.as_bytes()));
                        w.next().write_tagged_der(&raw(tag, value));
                    })
                })
            })
        }

        pub(super) fn name(rdns: &[Vec<u8>]) -> Vec<u8> {
            yasna::construct_der(|w| {
                w.write_sequence(|w| {
                    for rdn in rdns {
                        w.next().write_der(rdn);
                    }
                })
            })
        }

        pub(super) fn bmp(text: &str) -> Vec<u8> {
            text.encode_utf16().flat_map(u16::to_be_bytes).collect()
        }
    }

    fn parts_of(der_name: &[u8]) -> NameParts {
        use x509_parser::prelude::FromDer;
        let (rest, parsed) =
            X509Name::from_der(der_name).unwrap_or_else(|e| panic!("test name: {e}"));
        assert!(rest.is_empty());
        NameParts::from_x509(&parsed)
    }

    #[test]
    fn name_parts_from_x509() {
        use der::*;
        let parts = parts_of(&name(&[
            rdn(C, PRINTABLE, b"FR"),
            rdn(L, UTF8, b"Lyon"),
            rdn(O, PRINTABLE, b"Corp"),
            rdn(O, UTF8, "Corp Éditions".as_bytes()),
            rdn(OU, BMP, &bmp("Staff")),
            rdn(OU, UTF8, b""),
            rdn(OU, UTF8, b"Admins"),
            rdn(L, UTF8, b"Paris"),
            // The first non-empty CN is kept, as Chromium does.
            rdn(CN, UTF8, b""),
            rdn(CN, UTF8, b"Alice"),
            rdn(CN, UTF8, b"Alice Again"),
        ]));
        assert_eq!(
            parts,
            NameParts {
                common_name: Some("Alice".to_owned()),
                localities: vec!["Lyon".to_owned(), "Paris".to_owned()],
                organizations: vec!["Corp".to_owned(), "Corp Éditions".to_owned()],
                organizational_units: vec!["Staff".to_owned(), "Admins".to_owned()],
            }
        );

        // Values that are not strings are left out.
        let parts = parts_of(&name(&[rdn(CN, INTEGER, &[1]), rdn(O, BMP, &[0x00])]));
        assert_eq!(parts, NameParts::default());
        assert_eq!(parts_of(&name(&[])), NameParts::default());
    }
}
