//! The little DER the module reads and writes: the DigestInfo programs
//! pass to `CKM_RSA_PKCS`, the agent's ECDSA signatures (DER) turned into
//! the `r || s` PKCS#11 returns, and the encodings of a few attributes.

use p11agent_client::proto::HashAlgorithm;

/// The DigestInfo prefixes (RFC 8017 section 9.2, note 1) of the hashes
/// the agent signs, with the NULL parameters and without them (RFC 4055
/// allows both); the digest follows.
const DIGEST_INFO_PREFIXES: [(HashAlgorithm, &[u8]); 6] = [
    (
        HashAlgorithm::Sha256,
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    ),
    (
        HashAlgorithm::Sha384,
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
    ),
    (
        HashAlgorithm::Sha512,
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    ),
    (
        HashAlgorithm::Sha256,
        &[
            0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x04, 0x20,
        ],
    ),
    (
        HashAlgorithm::Sha384,
        &[
            0x30, 0x3f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x04, 0x30,
        ],
    ),
    (
        HashAlgorithm::Sha512,
        &[
            0x30, 0x4f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x04, 0x40,
        ],
    ),
];

/// The hash and digest of a DigestInfo of SHA-256, SHA-384 or SHA-512;
/// `None` for anything else (another hash, trailing bytes, a bare hash).
pub(crate) fn parse_digest_info(input: &[u8]) -> Option<(HashAlgorithm, &[u8])> {
    DIGEST_INFO_PREFIXES.iter().find_map(|(hash, prefix)| {
        let digest = input.strip_prefix(*prefix)?;
        (digest.len() == hash.digest_len()).then_some((*hash, digest))
    })
}

/// Why an ECDSA signature from the agent could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a DER ECDSA signature for a {field_len}-byte field")]
pub(crate) struct BadEcdsaSignature {
    field_len: usize,
}

/// `r || s`, each left-padded to `field_len` bytes, from a DER
/// `SEQUENCE { INTEGER r, INTEGER s }`.
pub(crate) fn ecdsa_der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>, BadEcdsaSignature> {
    let bad = BadEcdsaSignature { field_len };
    let (body, rest) = element(der, 0x30).ok_or(bad)?;
    if !rest.is_empty() {
        return Err(bad);
    }
    let (r, body) = element(body, 0x02).ok_or(bad)?;
    let (s, body) = element(body, 0x02).ok_or(bad)?;
    if !body.is_empty() {
        return Err(bad);
    }
    let mut out = Vec::with_capacity(2 * field_len);
    for integer in [r, s] {
        let value = strip_leading_zeros(integer);
        if value.len() > field_len {
            return Err(bad);
        }
        out.resize(out.len() + field_len - value.len(), 0);
        out.extend_from_slice(value);
    }
    Ok(out)
}

/// One DER element with `tag` at the start of `input`: its contents and
/// what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (usize::from(len), rest),
        0x81..=0x82 => {
            let n = usize::from(len & 0x7f);
            let bytes = rest.get(..n)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    Some((rest.get(..len)?, &rest[len..]))
}

/// An unsigned big-endian integer without its leading zero bytes.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A DER element: `tag`, the length of `contents`, `contents`.
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(len + 4);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        out.push(0x82);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(contents);
    out
}

/// A DER OCTET STRING, as `CKA_EC_POINT` wraps the point.
pub(crate) fn octet_string(contents: &[u8]) -> Vec<u8> {
    encode(0x04, contents)
}

/// A DER INTEGER from its contents octets as a certificate holds them
/// (`CKA_SERIAL_NUMBER`).
pub(crate) fn integer(contents: &[u8]) -> Vec<u8> {
    encode(0x02, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_info(digest: &[u8]) -> Vec<u8> {
        let mut input = DIGEST_INFO_PREFIXES[0].1.to_vec();
        input.extend_from_slice(digest);
        input
    }

    #[test]
    fn digest_infos_of_the_three_hashes_parse() {
        let digest = [7u8; 32];
        assert_eq!(
            parse_digest_info(&sha256_info(&digest)),
            Some((HashAlgorithm::Sha256, &digest[..]))
        );
        for (hash, prefix) in DIGEST_INFO_PREFIXES {
            let mut input = prefix.to_vec();
            input.extend(vec![1u8; hash.digest_len()]);
            assert_eq!(parse_digest_info(&input).map(|(h, _)| h), Some(hash));
        }
    }

    #[test]
    fn other_inputs_are_no_digest_info() {
        assert_eq!(parse_digest_info(&[7u8; 32]), None, "a bare hash");
        let mut long = sha256_info(&[7u8; 32]);
        long.push(0);
        assert_eq!(parse_digest_info(&long), None, "trailing bytes");
        assert_eq!(parse_digest_info(&sha256_info(&[7u8; 31])), None);
        // SHA-1's DigestInfo.
        let sha1 = [
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ];
        let mut input = sha1.to_vec();
        input.extend([0u8; 20]);
        assert_eq!(parse_digest_info(&input), None);
    }

    #[test]
    fn der_ecdsa_becomes_padded_r_and_s() {
        // r with a sign byte, s shorter than the field.
        let der = [
            0x30, 0x0a, 0x02, 0x04, 0x00, 0x80, 0x01, 0x02, 0x02, 0x02, 0x03, 0x04,
        ];
        let raw = ecdsa_der_to_raw(&der, 4).expect("raw");
        assert_eq!(raw, [0x00, 0x80, 0x01, 0x02, 0x00, 0x00, 0x03, 0x04]);
        // The long length form, as P-521 signatures use it.
        let r = [0x01u8; 66];
        let mut body = encode(0x02, &r);
        body.extend(encode(0x02, &r));
        let der = encode(0x30, &body);
        assert_eq!(der[1], 0x81);
        assert_eq!(ecdsa_der_to_raw(&der, 66).expect("raw").len(), 132);
    }

    #[test]
    fn malformed_ecdsa_signatures_are_refused() {
        let good = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x06];
        assert!(ecdsa_der_to_raw(&good, 32).is_ok());
        assert!(ecdsa_der_to_raw(&good[..7], 32).is_err(), "cut short");
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(ecdsa_der_to_raw(&trailing, 32).is_err(), "trailing");
        let too_big = encode(0x30, &[encode(0x02, &[1; 33]), encode(0x02, &[1])].concat());
        assert!(
            ecdsa_der_to_raw(&too_big, 32).is_err(),
            "r beyond the field"
        );
        assert!(ecdsa_der_to_raw(&[0u8; 64], 32).is_err(), "raw, not DER");
    }

    #[test]
    fn encodings() {
        assert_eq!(octet_string(&[4, 1]), [0x04, 0x02, 0x04, 0x01]);
        assert_eq!(integer(&[0x00, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(&encode(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
