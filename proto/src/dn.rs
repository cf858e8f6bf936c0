//! RFC 4514 string form of an X.509 distinguished name, shared by the
//! agent's store and the client's reports so that names read the same
//! everywhere.
//!
//! The rules, for a [`X509Name`] as parsed by x509-parser:
//!
//! * RDNs are written in the reverse of their encoded order (the last RDN
//!   of the `RDNSequence` first), separated by `,` with no spaces.
//! * The attributes of a multi-valued RDN are joined by `+`, in encoded
//!   order.
//! * Attribute types use the short names of RFC 4514 section 3 (`CN`, `L`,
//!   `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID`); every other type is
//!   written as its dotted OID (so `emailAddress` is
//!   `1.2.840.113549.1.9.1`).
//! * String values (UTF8String, PrintableString, IA5String, NumericString,
//!   VisibleString, TeletexString read as Latin-1, BMPString,
//!   UniversalString) are decoded to UTF-8 and escaped as in RFC 4514
//!   section 2.4. This holds for dotted-OID types too: RFC 4514 would write
//!   those in `#hex` form, but a readable value is what people search for,
//!   and it is what other tools (Python `cryptography`, for one) print.
//! * Values that are not strings, or strings that fail to decode, are
//!   written as `#` followed by the lower-case hex of the value's DER.
//!
//! Escaping: `"`, `+`, `,`, `;`, `<`, `>` and `\` get a backslash; so do a
//! leading `#` or space and a trailing space; NUL and the other ASCII
//! control characters (U+0001..U+001F, U+007F) are written as `\XX` hex
//! pairs, which RFC 4514 permits and which keeps the string safe to print.
//! Non-ASCII text is kept as is.

use x509_parser::asn1_rs::{Any, FromDer as _, Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The RFC 4514 section 3 short names, by dotted OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Formats `name` as an RFC 4514 string (see the module documentation for
/// the exact rules). An empty name gives the empty string.
pub fn format_name(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::with_capacity(name.as_raw().len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_attribute(&mut out, attribute);
        }
    }
    out
}

/// Appends `type=value` for one attribute.
fn write_attribute(out: &mut String, attribute: &AttributeTypeAndValue<'_>) {
    let oid = attribute.attr_type().to_id_string();
    match SHORT_NAMES.iter().find(|(dotted, _)| *dotted == oid) {
        Some((_, short)) => out.push_str(short),
        None => out.push_str(&oid),
    }
    out.push('=');
    let value = attribute.attr_value();
    match decode_string(value) {
        Some(text) => escape_value(out, &text),
        None => write_hex_value(out, value),
    }
}

/// Decodes a string-typed attribute value to UTF-8; `None` for other
/// types and for strings that do not decode.
pub fn decode_string(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_owned),
        // T.61 proper is a rarely honoured mess; in practice these values
        // hold Latin-1 (or plain ASCII), so read them as such.
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                })
                .collect()
        }
        _ => None,
    }
}

/// Appends `#` and the hex of the value's DER encoding.
fn write_hex_value(out: &mut String, value: &Any<'_>) {
    out.push('#');
    match value.to_der_vec() {
        Ok(der) => out.push_str(&hex::encode(der)),
        // Re-encoding a value that was just parsed does not fail; should it
        // ever, the content octets are the best remaining description.
        Err(_) => out.push_str(&hex::encode(value.data)),
    }
}

/// Appends `value` escaped per RFC 4514 section 2.4.
fn escape_value(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                out.push('\\');
                out.push_str(&format!("{:02x}", u32::from(c)));
            }
            _ => out.push(c),
        }
    }
}

/// Formats a DER distinguished name, as TLS CA lists carry them, by
/// [`format_name`]'s rules.
///
/// A name that comes without its outer SEQUENCE header (as some TLS
/// stacks send CA names) is read too. Bytes that are not a name at all
/// give `#` followed by their hex.
pub fn name_to_string(der: &[u8]) -> String {
    let parse = |bytes: &[u8]| match X509Name::from_der(bytes) {
        Ok((rest, name)) if rest.is_empty() && is_rdn_sequence(bytes) => Some(format_name(&name)),
        _ => None,
    };
    parse(der)
        .or_else(|| parse(&wrap_in_sequence(der)))
        .unwrap_or_else(|| format!("#{}", hex::encode(der)))
}

/// Whether `der` is exactly one SEQUENCE whose elements are all SETs.
/// x509-parser accepts a SEQUENCE of anything as an empty name, which
/// would show garbage in a CA list as the empty string.
fn is_rdn_sequence(der: &[u8]) -> bool {
    let Ok((rest, outer)) = Any::from_der(der) else {
        return false;
    };
    if !rest.is_empty() || outer.tag() != Tag::Sequence {
        return false;
    }
    let mut elements = outer.data;
    while !elements.is_empty() {
        match Any::from_der(elements) {
            Ok((next, element)) if element.tag() == Tag::Set => elements = next,
            _ => return false,
        }
    }
    true
}

/// `bytes` as the contents of a DER SEQUENCE.
fn wrap_in_sequence(bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    /// DER tag-length-value with a definite length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// Encodes a dotted OID.
    fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().expect("arc")).collect();
        let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &arc in &arcs[2..] {
            let mut bytes = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                bytes.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            bytes.reverse();
            body.extend(bytes);
        }
        tlv(0x06, &body)
    }

    /// One AttributeTypeAndValue with a value of the given tag.
    fn atv(dotted: &str, tag: u8, value: &[u8]) -> Vec<u8> {
        let mut body = oid(dotted);
        body.extend(tlv(tag, value));
        tlv(0x30, &body)
    }

    /// A Name from RDNs, each a list of encoded attributes, in encoded order.
    fn name(rdns: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            seq.extend(tlv(0x31, &rdn.concat()));
        }
        tlv(0x30, &seq)
    }

    fn format(der: &[u8]) -> String {
        let (rest, parsed) = X509Name::from_der(der).expect("name parses");
        assert!(rest.is_empty());
        format_name(&parsed)
    }

    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const TELETEX: u8 = 0x14;
    const IA5: u8 = 0x16;
    const UNIVERSAL: u8 = 0x1c;
    const BMP: u8 = 0x1e;

    #[test]
    fn rdns_are_reversed() {
        let der = name(&[
            vec![atv("2.5.4.6", PRINTABLE, b"DE")],
            vec![atv("2.5.4.10", UTF8, b"Example")],
            vec![atv("2.5.4.11", UTF8, b"Unit")],
            vec![atv("2.5.4.3", UTF8, b"Alice")],
        ]);
        assert_eq!(format(&der), "CN=Alice,OU=Unit,O=Example,C=DE");
    }

    #[test]
    fn short_names_and_dotted_oids() {
        let der = name(&[
            vec![atv("0.9.2342.19200300.100.1.25", IA5, b"com")],
            vec![atv("0.9.2342.19200300.100.1.25", IA5, b"example")],
            vec![atv("2.5.4.8", UTF8, b"Bavaria")],
            vec![atv("2.5.4.7", UTF8, b"Munich")],
            vec![atv("2.5.4.9", UTF8, b"Main St 1")],
            vec![atv("0.9.2342.19200300.100.1.1", UTF8, b"alice")],
            vec![atv("1.2.840.113549.1.9.1", IA5, b"alice@example.com")],
            vec![atv("2.5.4.5", PRINTABLE, b"1234")],
        ]);
        assert_eq!(
            format(&der),
            "2.5.4.5=1234,1.2.840.113549.1.9.1=alice@example.com,UID=alice,\
             STREET=Main St 1,L=Munich,ST=Bavaria,DC=example,DC=com"
        );
    }

    #[test]
    fn multi_valued_rdn() {
        let der = name(&[
            vec![atv("2.5.4.10", UTF8, b"Example")],
            vec![
                atv("2.5.4.3", UTF8, b"Alice"),
                atv("0.9.2342.19200300.100.1.1", UTF8, b"a1"),
            ],
        ]);
        assert_eq!(format(&der), "CN=Alice+UID=a1,O=Example");
    }

    #[test]
    fn special_characters_are_escaped() {
        let der = name(&[vec![atv("2.5.4.3", UTF8, b"a\"b+c,d;e<f>g\\h=i")]]);
        assert_eq!(format(&der), r#"CN=a\"b\+c\,d\;e\<f\>g\\h=i"#);
    }

    #[test]
    fn leading_and_trailing_specials_are_escaped() {
        let der = name(&[
            vec![atv("2.5.4.3", UTF8, b"#hash")],
            vec![atv("2.5.4.3", UTF8, b" padded ")],
            vec![atv("2.5.4.3", UTF8, b"mid#dle sp")],
            vec![atv("2.5.4.3", UTF8, b"nul\0x")],
            vec![atv("2.5.4.3", UTF8, b" ")],
        ]);
        assert_eq!(
            format(&der),
            r"CN=\ ,CN=nul\00x,CN=mid#dle sp,CN=\ padded\ ,CN=\#hash"
        );
    }

    #[test]
    fn utf8_is_kept() {
        let text = "Zoë Ærøskøbing 測試";
        let der = name(&[
            vec![atv("2.5.4.10", UTF8, "Ærøskøbing".as_bytes())],
            vec![atv("2.5.4.3", UTF8, text.as_bytes())],
        ]);
        assert_eq!(format(&der), format!("CN={text},O=Ærøskøbing"));
    }

    #[test]
    fn other_string_types_decode() {
        let bmp: Vec<u8> = "Zoë 測試"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let universal: Vec<u8> = "Ærø 😀"
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        let der = name(&[
            vec![atv("2.5.4.3", BMP, &bmp)],
            vec![atv("2.5.4.3", UNIVERSAL, &universal)],
            vec![atv("2.5.4.3", TELETEX, b"Zo\xeb")],
        ]);
        assert_eq!(format(&der), "CN=Zoë,CN=Ærø 😀,CN=Zoë 測試");
    }

    #[test]
    fn non_strings_are_hex() {
        // An OCTET STRING value, and a BMPString of odd length.
        let der = name(&[
            vec![atv("2.5.4.3", 0x04, &[0xde, 0xad])],
            vec![atv("2.5.4.3", BMP, &[0x00, 0x41, 0x00])],
        ]);
        assert_eq!(format(&der), "CN=#1e03004100,CN=#0402dead");
    }

    #[test]
    fn empty_name() {
        assert_eq!(format(&name(&[])), "");
    }

    fn tlv_wrapped(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = wrap_in_sequence(content);
        out[0] = tag;
        out
    }

    /// An AttributeTypeAndValue with a UTF8String value, for OIDs whose
    /// arcs after the first two are below 128.
    fn atv_utf8(oid: &[u8], value: &str) -> Vec<u8> {
        let mut body = tlv_wrapped(0x06, oid);
        body.extend(tlv_wrapped(0x0c, value.as_bytes()));
        tlv_wrapped(0x30, &body)
    }

    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    const O_OID: &[u8] = &[0x55, 0x04, 0x0a];
    const C_OID: &[u8] = &[0x55, 0x04, 0x06];

    fn name_der(rdns: &[Vec<u8>]) -> Vec<u8> {
        let set: Vec<u8> = rdns.iter().flat_map(|atv| tlv_wrapped(0x31, atv)).collect();
        tlv_wrapped(0x30, &set)
    }

    #[test]
    fn names_are_rfc_4514_strings() {
        let der = name_der(&[
            atv_utf8(C_OID, "DE"),
            atv_utf8(O_OID, "Example, Inc."),
            atv_utf8(CN_OID, " Root#1"),
        ]);
        assert_eq!(name_to_string(&der), r"CN=\ Root#1,O=Example\, Inc.,C=DE");
        assert_eq!(name_to_string(&name_der(&[])), "");
    }

    #[test]
    fn names_without_the_sequence_header_and_garbage() {
        let der = name_der(&[atv_utf8(CN_OID, "Bare")]);
        assert_eq!(name_to_string(&der[2..]), "CN=Bare");
        assert_eq!(name_to_string(&[0x04, 0x01, 0xff]), "#0401ff");
        // Nothing at all is an empty name without its header.
        assert_eq!(name_to_string(&[]), "");
    }

    #[test]
    fn long_names_are_wrapped_with_long_lengths() {
        let long = "x".repeat(300);
        let der = name_der(&[atv_utf8(CN_OID, &long)]);
        assert_eq!(name_to_string(&der[4..]), format!("CN={long}"));
        assert_eq!(wrap_in_sequence(&der[4..]), der);
    }
}
