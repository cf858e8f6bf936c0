//! The candidate filter: which identities may be offered to a server, and
//! why each of the others may not (DESIGN.md, "Client-certificate
//! selection", rules 1 to 6).
//!
//! An identity is a candidate when no reason applies:
//!
//! - the reasons the store settles for any server
//!   ([`crate::store::usability`]: no private key, unsupported key,
//!   expired, not yet valid, Key Usage, Extended Key Usage);
//! - [`Reason::IssuerNotAccepted`]: the server's CA list is not empty and
//!   names neither the certificate's issuer nor the issuer of any
//!   certificate in its chain, so servers that list only roots and
//!   servers that list only intermediates both work;
//! - [`Reason::NoCommonScheme`]: the server's schemes are known and the
//!   key can make none of them. An identity without a usable key does
//!   not get this reason as well: its first reason already says why;
//! - [`Reason::TokenAbsent`]: its token was removed (the store remembers
//!   the identities of absent tokens).
//!
//! The same certificate stored twice (on two tokens) is one identity
//! here: the copy with the fewest reasons stands for it.

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use p11agent_proto::{Excluded, Reason, Scheme};
use time::OffsetDateTime;

use crate::store::chain::name_key;
use crate::store::{Store, Stored};

/// The server's side of the question.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerRequest {
    /// The `certificate_authorities` DER names; empty accepts any issuer.
    pub ca_names: Vec<Vec<u8>>,
    /// The signature schemes the server accepts, when known.
    pub schemes: Option<Vec<Scheme>>,
}

/// The identities split into candidates and excluded ones.
#[derive(Debug)]
pub(crate) struct Filtered<'s> {
    /// Those that may be offered, in listing order, one per id.
    pub candidates: Vec<Stored<'s>>,
    /// The others, in listing order, one per id, with every reason.
    pub excluded: Vec<(Stored<'s>, Vec<Reason>)>,
}

/// The server's CA list prepared for lookups.
struct CaList<'a> {
    exact: HashSet<&'a [u8]>,
    loose: HashSet<String>,
}

impl<'a> CaList<'a> {
    fn new(names: &'a [Vec<u8>]) -> Option<CaList<'a>> {
        if names.is_empty() {
            return None;
        }
        let mut exact = HashSet::with_capacity(names.len());
        exact.extend(names.iter().map(Vec::as_slice));
        let mut loose = HashSet::with_capacity(names.len());
        loose.extend(names.iter().filter_map(|n| name_key(n)));
        Some(CaList { exact, loose })
    }

    fn accepts(&self, stored: &Stored<'_>) -> bool {
        stored.issuer_names().any(|n| self.exact.contains(n))
            || stored.issuer_keys().any(|k| self.loose.contains(k))
    }
}

/// Sorts every stored identity into candidates and excluded ones for a
/// server, at `now`.
pub(crate) fn filter<'s>(
    store: &'s Store,
    server: &ServerRequest,
    now: OffsetDateTime,
) -> Filtered<'s> {
    let ca_list = CaList::new(&server.ca_names);
    // Per id, in first-seen order: the best copy so far and its reasons.
    let mut best: Vec<(Stored<'s>, Vec<Reason>)> = Vec::new();
    let mut position: HashMap<&'s str, usize> = HashMap::with_capacity(store.len());
    for stored in store.stored() {
        let reasons = reasons(&stored, ca_list.as_ref(), server.schemes.as_deref(), now);
        match position.get(stored.id()) {
            Some(&i) => {
                if reasons.len() < best[i].1.len() {
                    best[i] = (stored, reasons);
                }
            }
            None => {
                position.insert(stored.id(), best.len());
                best.push((stored, reasons));
            }
        }
    }
    let mut filtered = Filtered {
        candidates: Vec::new(),
        excluded: Vec::new(),
    };
    for (stored, reasons) in best {
        if reasons.is_empty() {
            filtered.candidates.push(stored);
        } else {
            filtered.excluded.push((stored, reasons));
        }
    }
    filtered
}

/// An excluded identity as the protocol reports it.
pub(crate) fn excluded((stored, reasons): &(Stored<'_>, Vec<Reason>)) -> Excluded {
    let identity = stored.identity();
    Excluded {
        id: identity.id.clone(),
        subject: identity.subject.clone(),
        issuer: identity.issuer.clone(),
        reasons: reasons.clone(),
    }
}

/// Every reason that excludes one stored copy.
fn reasons(
    stored: &Stored<'_>,
    ca_list: Option<&CaList<'_>>,
    schemes: Option<&[Scheme]>,
    now: OffsetDateTime,
) -> Vec<Reason> {
    let mut reasons = stored.reasons(now);
    if ca_list.is_some_and(|list| !list.accepts(stored)) {
        reasons.push(Reason::IssuerNotAccepted);
    }
    let key_usable = !reasons
        .iter()
        .any(|r| matches!(r, Reason::NoPrivateKey | Reason::UnsupportedKey));
    if let Some(offered) = schemes {
        if key_usable
            && !stored
                .identity()
                .schemes
                .iter()
                .any(|s| offered.contains(s))
        {
            reasons.push(Reason::NoCommonScheme);
        }
    }
    if !stored.present() {
        reasons.push(Reason::TokenAbsent);
    }
    reasons
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use p11agent_proto::Filter;

    use super::*;
    use crate::store::test_certs::*;

    #[test]
    fn thousand_identities_against_a_hundred_ca_names() {
        let mut store = Store::new();
        store.insert_token(found(token("big", "1", 0), thousand_certificates()));
        let all = store.query(&Filter::default(), NOW);

        // 99 names nobody uses and the (self-signed) subject of one
        // identity that has a key.
        let mut ca_names: Vec<Vec<u8>> = (0..99)
            .map(|i| {
                let mut name = rcgen::DistinguishedName::new();
                name.push(rcgen::DnType::CommonName, format!("Noise CA {i}"));
                let mut p = params("noise");
                p.distinguished_name = name;
                let der = self_signed(&p);
                let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parses");
                cert.subject().as_raw().to_vec()
            })
            .collect();
        ca_names.push({
            let der = store.get(&all[4].id, NOW).expect("found").der.to_vec();
            let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parses");
            cert.subject().as_raw().to_vec()
        });
        let server = ServerRequest {
            ca_names,
            schemes: None,
        };
        let started = Instant::now();
        let filtered = filter(&store, &server, NOW);
        let selected = started.elapsed();
        assert_eq!(filtered.candidates.len(), 1);
        assert_eq!(filtered.excluded.len(), 999);
        eprintln!("selection filter over 1000 identities with 100 CA names: {selected:?}");
    }
}
