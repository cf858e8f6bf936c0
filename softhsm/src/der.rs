//! The little DER the crate writes and reads by hand: SubjectPublicKeyInfo
//! structures built from PKCS#11 attributes, and splitting a certificate into
//! its parts.

use crate::error::{Error, Result};

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Encodes a tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// A positive INTEGER from big-endian magnitude bytes (as PKCS#11 returns
/// CKA_MODULUS and CKA_PUBLIC_EXPONENT).
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude.iter().take_while(|b| **b == 0).count();
        &magnitude[skip..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

/// Reads one TLV at the start of `input`: returns (tag, content, rest).
pub(crate) fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let bad = || Error::X509("truncated or malformed DER".into());
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV and returns it whole (header included) and the rest.
pub(crate) fn read_element(input: &[u8]) -> Result<(&[u8], &[u8])> {
    let (_, _, rest) = read_tlv(input)?;
    let used = input.len() - rest.len();
    Ok((&input[..used], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(tlv(4, &[1, 2]), vec![4, 2, 1, 2]);
        let long = vec![0u8; 300];
        let enc = tlv(4, &long);
        assert_eq!(&enc[..4], &[4, 0x82, 0x01, 0x2c]);
        let (tag, content, rest) = read_tlv(&enc).expect("parse");
        assert_eq!((tag, content.len(), rest.len()), (4, 300, 0));
    }

    #[test]
    fn integers() {
        assert_eq!(unsigned_integer(&[0x01, 0x00, 0x01]), vec![2, 3, 1, 0, 1]);
        assert_eq!(unsigned_integer(&[0x00, 0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[]), vec![2, 1, 0]);
    }
}
