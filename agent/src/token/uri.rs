//! PKCS#11 URIs (RFC 7512) naming the objects the agent found.

use std::fmt::Write as _;

use p11agent_proto::Token;
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes written as they are in a path attribute value: RFC 3986
/// `unreserved` and RFC 7512 `pk11-path-res-avail`. Everything else,
/// including `;`, `/`, `?`, `%`, `#`, space and every non-ASCII byte, is
/// percent-encoded.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    // unreserved
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    // pk11-res-avail
    .remove(b':')
    .remove(b'[')
    .remove(b']')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b'=')
    // pk11-path-res-avail
    .remove(b'&');

/// The kind of object a URI names (its `type=` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ObjectKind {
    /// `type=cert`: a certificate.
    Certificate,
    /// `type=private`: a private key.
    PrivateKey,
}

impl ObjectKind {
    /// The RFC 7512 `type` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Certificate => "cert",
            ObjectKind::PrivateKey => "private",
        }
    }
}

/// Percent-encodes a path attribute value (a label, serial, ...) per
/// RFC 7512: unreserved characters and `:[]@!$'()*+,=&` stay, every other
/// byte becomes `%XX` (so UTF-8 text is encoded byte by byte).
pub(crate) fn encode_value(value: &[u8]) -> String {
    percent_encode(value, PATH_VALUE).to_string()
}

/// Percent-encodes an object id (`CKA_ID`): every byte as `%XX`, upper
/// case hex.
pub(crate) fn encode_id(id: &[u8]) -> String {
    let mut out = String::with_capacity(id.len() * 3);
    for byte in id {
        // Writing to a String cannot fail.
        let _ = write!(out, "%{byte:02X}");
    }
    out
}

/// The RFC 7512 URI of an object on `token`:
/// `pkcs11:token=..;manufacturer=..;serial=..;model=..;id=..;object=..;type=..`.
///
/// Token attributes that are empty are left out (they would not narrow
/// the match); `id` is left out when empty and `object` when the label
/// is empty.
pub(crate) fn object_uri(token: &Token, id: &[u8], label: &[u8], kind: ObjectKind) -> String {
    let mut uri = String::from("pkcs11:");
    let mut attrs: Vec<(&str, String)> = Vec::with_capacity(7);
    for (name, value) in [
        ("token", &token.label),
        ("manufacturer", &token.manufacturer),
        ("serial", &token.serial),
        ("model", &token.model),
    ] {
        if !value.is_empty() {
            attrs.push((name, encode_value(value.as_bytes())));
        }
    }
    if !id.is_empty() {
        attrs.push(("id", encode_id(id)));
    }
    if !label.is_empty() {
        attrs.push(("object", encode_value(label)));
    }
    attrs.push(("type", kind.as_str().to_owned()));
    for (i, (name, value)) in attrs.iter().enumerate() {
        if i > 0 {
            uri.push(';');
        }
        uri.push_str(name);
        uri.push('=');
        uri.push_str(value);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(label: &str) -> Token {
        Token {
            label: label.to_owned(),
            serial: "9b8f5e1ba2942e8f".to_owned(),
            manufacturer: "SoftHSM project".to_owned(),
            model: "SoftHSM v2".to_owned(),
            slot: 580136591,
            module: "/usr/lib/softhsm/libsofthsm2.so".to_owned(),
        }
    }

    #[test]
    fn certificate_uri_with_every_attribute() {
        assert_eq!(
            object_uri(&token("t1"), &[0x01, 0xab], b"c1", ObjectKind::Certificate),
            "pkcs11:token=t1;manufacturer=SoftHSM%20project;serial=9b8f5e1ba2942e8f;\
             model=SoftHSM%20v2;id=%01%AB;object=c1;type=cert"
        );
    }

    #[test]
    fn empty_label_and_id_are_left_out() {
        assert_eq!(
            object_uri(&token("t1"), &[], b"", ObjectKind::PrivateKey),
            "pkcs11:token=t1;manufacturer=SoftHSM%20project;serial=9b8f5e1ba2942e8f;\
             model=SoftHSM%20v2;type=private"
        );
        let bare = Token {
            serial: String::new(),
            manufacturer: String::new(),
            model: String::new(),
            ..token("t")
        };
        assert_eq!(
            object_uri(&bare, &[0x30], b"k", ObjectKind::PrivateKey),
            "pkcs11:token=t;id=%30;object=k;type=private"
        );
    }

    #[test]
    fn id_is_always_fully_encoded() {
        assert_eq!(encode_id(b"ab\x00\xff"), "%61%62%00%FF");
        assert_eq!(encode_id(&[]), "");
    }

    #[test]
    fn labels_with_spaces_separators_and_utf8() {
        assert_eq!(encode_value(b"My token"), "My%20token");
        assert_eq!(
            encode_value("a;b/c?d%e#f".as_bytes()),
            "a%3Bb%2Fc%3Fd%25e%23f"
        );
        assert_eq!(
            encode_value("Jürgen's Karte".as_bytes()),
            "J%C3%BCrgen's%20Karte"
        );
        assert_eq!(encode_value("€".as_bytes()), "%E2%82%AC");
        // Non-UTF-8 label bytes are encoded as bytes.
        assert_eq!(encode_value(b"\xff"), "%FF");
        assert_eq!(
            object_uri(
                &token("Carte à puce; n°1"),
                &[1],
                "RSA cert; ü".as_bytes(),
                ObjectKind::Certificate
            ),
            "pkcs11:token=Carte%20%C3%A0%20puce%3B%20n%C2%B01;manufacturer=SoftHSM%20project;\
             serial=9b8f5e1ba2942e8f;model=SoftHSM%20v2;id=%01;object=RSA%20cert%3B%20%C3%BC;type=cert"
        );
    }

    #[test]
    fn rfc7512_path_specials_stay_unencoded() {
        assert_eq!(encode_value(b":[]@!$'()*+,=&"), ":[]@!$'()*+,=&");
        assert_eq!(encode_value(b"AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_value(b"\"<>\\^`{|}"), "%22%3C%3E%5C%5E%60%7B%7C%7D");
        assert_eq!(encode_value(b"\x7f\x01"), "%7F%01");
    }
}
