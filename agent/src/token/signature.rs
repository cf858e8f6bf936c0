//! Signature encodings: a PKCS#11 ECDSA signature (`r || s`, each as wide
//! as the curve's order) to the DER `ECDSA-Sig-Value` TLS sends
//! (RFC 8446 section 4.2.3, RFC 3279 section 2.2.3).

/// The token's ECDSA signature has a shape no `r || s` can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token's ECDSA signature is {len} bytes, not an even, non-zero r || s length")]
pub struct DerError {
    /// The length of what the token returned.
    pub len: usize,
}

/// Converts a raw ECDSA signature `r || s` (two big-endian integers of
/// equal width) to `SEQUENCE { INTEGER r, INTEGER s }` in DER: minimal
/// positive integers (leading zero bytes removed, a zero byte added
/// where the top bit is set).
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, DerError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(DerError { len: raw.len() });
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(r, true);
            w.next().write_bigint_bytes(s, true);
        })
    }))
}

/// The encoder `ecdsa_raw_to_der` had before yasna, kept to compare.
#[cfg(test)]
fn old_ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, DerError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(DerError { len: raw.len() });
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_unsigned_integer(r, &mut body);
    der_unsigned_integer(s, &mut body);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Appends the DER INTEGER for the unsigned big-endian `value`.
#[cfg(test)]
fn der_unsigned_integer(value: &[u8], out: &mut Vec<u8>) {
    let first = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let digits = &value[first..];
    let pad = digits.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(digits.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

/// Appends a DER length (short form below 128, long form above).
#[cfg(test)]
fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        // Fits in 7 bits.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let significant = &bytes[first..];
    // At most size_of::<usize>() bytes.
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_integers() {
        // r = 1, s = 0x80 (needs a zero byte), in 4-byte fields.
        let raw = [0, 0, 0, 1, 0, 0, 0, 0x80];
        assert_eq!(
            ecdsa_raw_to_der(&raw).expect("der"),
            [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80]
        );
    }

    #[test]
    fn zero_is_one_zero_byte() {
        assert_eq!(
            ecdsa_raw_to_der(&[0, 0, 0, 0]).expect("der"),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
    }

    #[test]
    fn p256_width_with_high_bits() {
        let mut raw = vec![0xff; 32];
        raw.extend(std::iter::repeat_n(0x01, 32));
        let der = ecdsa_raw_to_der(&raw).expect("der");
        assert_eq!(der[..2], [0x30, 2 + 33 + 2 + 32]);
        assert_eq!(der[2..5], [0x02, 33, 0x00]);
        assert_eq!(der[5..37], [0xff; 32]);
        assert_eq!(der[37..39], [0x02, 32]);
        assert_eq!(der.len(), 2 + 35 + 34);
    }

    #[test]
    fn p521_needs_a_long_form_length() {
        // 66-byte fields; r has its top bit set in the first non-zero
        // byte after one zero byte, s has leading zeros.
        let mut r = vec![0u8; 66];
        r[1] = 0x80;
        let mut s = vec![0u8; 66];
        s[3] = 0x7f;
        let mut raw = r.clone();
        raw.extend_from_slice(&s);
        let der = ecdsa_raw_to_der(&raw).expect("der");
        let body = (2 + 1 + 65) + (2 + 63);
        assert_eq!(der[..3], [0x30, 0x81, body as u8]);
        assert_eq!(der[3..6], [0x02, 66, 0x00]);
        assert_eq!(der[6], 0x80);
        let s_at = 3 + 2 + 66;
        assert_eq!(der[s_at..s_at + 3], [0x02, 63, 0x7f]);
        assert_eq!(der.len(), 3 + body);
    }

    #[test]
    fn odd_or_empty_lengths_are_refused() {
        assert_eq!(ecdsa_raw_to_der(&[]), Err(DerError { len: 0 }));
        assert_eq!(ecdsa_raw_to_der(&[1, 2, 3]), Err(DerError { len: 3 }));
    }

    #[test]
    fn lengths() {
        let mut out = Vec::new();
        der_length(0x7f, &mut out);
        der_length(0x80, &mut out);
        der_length(0x1234, &mut out);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    /// `r || s` of `width`-byte fields, from the given leading bytes of
    /// each (the rest filled with `fill`).
    fn raw(width: usize, r_lead: &[u8], s_lead: &[u8], fill: u8) -> Vec<u8> {
        let field = |lead: &[u8]| {
            let mut v = lead.to_vec();
            v.resize(width, fill);
            v
        };
        [field(r_lead), field(s_lead)].concat()
    }

    #[test]
    fn yasna_encodes_as_the_old_encoder() {
        let mut cases = Vec::new();
        // The field widths of P-256, P-384 and P-521, and small ones.
        for width in [1, 2, 4, 32, 48, 66] {
            for (r_lead, s_lead) in [
                (&[][..], &[][..]),
                (&[0x80], &[0x7f]),
                (&[0xff], &[0x01]),
                (&[0x00], &[0x00, 0x80]),
                (&[0x00, 0x00, 0x7f], &[0x00, 0x00, 0x00, 0xff]),
                (&[0x01], &[0x00, 0x01]),
            ] {
                for fill in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    cases.push(raw(width, r_lead, s_lead, fill));
                }
            }
        }
        // A P-521 r whose top bit is set after one zero byte and an s of
        // leading zeros, so that the body crosses 127 bytes either way.
        let mut p521 = vec![0u8; 132];
        p521[1] = 0x80;
        p521[66 + 3] = 0x7f;
        cases.push(p521);
        // Past 255 bytes of body: two length bytes.
        cases.push(vec![0xff; 2 * 130]);
        for case in cases {
            assert_eq!(
                ecdsa_raw_to_der(&case),
                old_ecdsa_raw_to_der(&case),
                "{}",
                hex::encode(&case)
            );
        }
        for bad in [&[][..], &[1, 2, 3]] {
            assert_eq!(ecdsa_raw_to_der(bad), old_ecdsa_raw_to_der(bad));
        }
    }
}
