//! The parts of a distinguished name that client-certificate filters
//! compare (Chromium's `CertPrincipal`): read once per certificate when
//! it enters the store, so that matching a rule costs no parsing.

use p11agent_proto::dn::decode_string;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The parts of a distinguished name that filters look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParts {
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
    pub fn from_x509(name: &X509Name<'_>) -> NameParts {
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
