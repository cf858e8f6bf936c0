//! Issuer chains by name: which known certificates issued a leaf, for the
//! server's CA list and for the chain the client presents.

/// A certificate with the raw DER of its subject and issuer names.
#[derive(Debug, Clone)]
pub(crate) struct NamedCert {
    pub(crate) der: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
}

impl NamedCert {
    /// Parses `der`; `None` when it is not an X.509 certificate.
    pub(crate) fn parse(der: Vec<u8>) -> Option<NamedCert> {
        let (subject, issuer) = {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
            (
                cert.subject().as_raw().to_vec(),
                cert.issuer().as_raw().to_vec(),
            )
        };
        Some(NamedCert {
            der,
            subject,
            issuer,
        })
    }

    /// Whether the certificate names itself as its issuer (a root).
    pub(crate) fn self_issued(&self) -> bool {
        same_name(&self.subject, &self.issuer)
    }
}

/// The longest chain followed upward from a leaf.
const MAX_DEPTH: usize = 8;

/// The issuers of `leaf` found in `pool`, nearest first, up to and
/// including a self-issued root when the pool has it. Names are matched
/// byte for byte (as TLS CA lists and RFC 5280 chain building in practice
/// do); a certificate is never used twice, so loops end.
pub(crate) fn issuers<'a>(leaf: &NamedCert, pool: &'a [NamedCert]) -> Vec<&'a NamedCert> {
    let mut chain: Vec<&NamedCert> = Vec::new();
    let mut current = leaf;
    while !current.self_issued() && chain.len() < MAX_DEPTH {
        let next = pool.iter().find(|c| {
            same_name(&c.subject, &current.issuer)
                && c.der != leaf.der
                && !chain.iter().any(|seen| seen.der == c.der)
        });
        match next {
            Some(issuer) => {
                chain.push(issuer);
                current = issuer;
            }
            None => break,
        }
    }
    chain
}

/// Whether a name in the server's CA list (`hints`, DER distinguished
/// names) is the issuer of `leaf` or of a certificate in its `chain`. An
/// empty list accepts any issuer.
pub(crate) fn matches_hints(hints: &[&[u8]], leaf: &NamedCert, chain: &[&NamedCert]) -> bool {
    if hints.is_empty() {
        return true;
    }
    std::iter::once(leaf)
        .chain(chain.iter().copied())
        .any(|c| hints.iter().any(|h| same_name(h, &c.issuer)))
}

/// Whether two DER names are the same, tolerating one of them coming
/// without its outer SEQUENCE header (as some TLS stacks send them).
pub(crate) fn same_name(a: &[u8], b: &[u8]) -> bool {
    a == b || sequence_body(a) == Some(b) || sequence_body(b) == Some(a)
}

/// The contents of a DER SEQUENCE, when `der` is exactly one.
fn sequence_body(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (body.len() == len).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(subject: &[u8], issuer: &[u8]) -> NamedCert {
        NamedCert {
            der: [subject, b"/", issuer].concat(),
            subject: subject.to_vec(),
            issuer: issuer.to_vec(),
        }
    }

    #[test]
    fn follows_issuers_up_to_the_root_and_stops_on_loops() {
        let root = cert(b"R", b"R");
        let mid = cert(b"I", b"R");
        let leaf = cert(b"L", b"I");
        let pool = vec![leaf.clone(), mid.clone(), root.clone()];
        let chain = issuers(&leaf, &pool);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].subject, b"I");
        assert!(chain[1].self_issued());
        assert!(matches_hints(&[b"R"], &leaf, &chain));
        assert!(matches_hints(&[b"I"], &leaf, &chain));
        assert!(matches_hints(&[], &leaf, &chain));
        assert!(!matches_hints(&[b"X"], &leaf, &chain));

        let a = cert(b"A", b"B");
        let b = cert(b"B", b"A");
        let leaf = cert(b"L", b"A");
        let pool = vec![a, b];
        assert_eq!(issuers(&leaf, &pool).len(), 2);
    }

    #[test]
    fn names_compare_with_or_without_the_sequence_header() {
        let inner = [0x31, 0x03, 0x30, 0x01, 0x00];
        let outer = [0x30, 0x05, 0x31, 0x03, 0x30, 0x01, 0x00];
        assert!(same_name(&inner, &outer));
        assert!(same_name(&outer, &inner));
        assert!(!same_name(&outer[..6], &inner));
    }
}
