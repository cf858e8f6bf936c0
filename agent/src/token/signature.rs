//! Signature encodings: a PKCS#11 ECDSA signature (`r || s`, each as wide
//! as the curve's order) to the DER `ECDSA-Sig-Value` TLS sends
//! (RFC 8446 section 4.2.3, RFC 3279 section 2.2.3).

/// The token's ECDSA signature has a shape no `r || s` can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token's ECDSA signature is {len} bytes, not an even, non-zero r || s length")]
pub(crate) struct DerError {
    /// The length of what the token returned.
    pub len: usize,
}

/// Converts a raw ECDSA signature `r || s` (two big-endian integers of
/// equal width) to `SEQUENCE { INTEGER r, INTEGER s }` in DER: minimal
/// positive integers (leading zero bytes removed, a zero byte added
/// where the top bit is set).
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, DerError> {
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
    fn short_and_long_form_lengths() {
        // Bodies of 0x7f bytes (r padded, s not), 0x80 and 0x1234 bytes:
        // the short form, and the long form with one and two bytes.
        let der = ecdsa_raw_to_der(&raw(61, &[0x80], &[0x01], 0x01)).expect("der");
        assert_eq!(der[..2], [0x30, 0x7f]);
        let der = ecdsa_raw_to_der(&raw(62, &[0x01], &[0x01], 0x01)).expect("der");
        assert_eq!(der[..3], [0x30, 0x81, 0x80]);
        let der = ecdsa_raw_to_der(&raw(2326, &[0x01], &[0x01], 0x01)).expect("der");
        assert_eq!(der[..4], [0x30, 0x82, 0x12, 0x34]);
        assert_eq!(der[4..8], [0x02, 0x82, 0x09, 0x16]);
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

    /// The hand-written encoder this module had before yasna gave, over
    /// these cases, output whose SHA-256 is pinned here.
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
        let mut all = Vec::new();
        for case in &cases {
            all.extend(ecdsa_raw_to_der(case).expect("der"));
        }
        assert_eq!(cases.len(), 182);
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&all)),
            "c060691588682b93d083da3e50c7950061d8aba359c68cde7f10c541ca1da599"
        );
    }
}
