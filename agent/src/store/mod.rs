//! The identity store: every certificate found on the tokens, ready to be
//! listed, filtered and looked up.
//!
//! All parsing happens in [`Store::insert_token`]; a query only checks the
//! validity period against the time it is given and copies records out,
//! so listing thousands of identities stays well under a millisecond per
//! hundred.
//!
//! Rules:
//!
//! * A token is known by its module path, slot and token serial. Inserting
//!   a token replaces whatever was stored for that same triple; a
//!   different token in the same slot (a swapped card) is a different
//!   token, so callers that see a slot change drop the old one with
//!   [`Store::remove_slot`] or [`Store::remove_token`].
//! * Every certificate object becomes one identity. A certificate whose
//!   key the agent cannot sign with (brainpool, Ed448, ...) is listed
//!   like any other, with key type `ec` without a curve or `other` (see
//!   [`cert`]), and is never usable for client authentication
//!   ([`Reason::UnsupportedKey`](p11agent_proto::Reason::UnsupportedKey)).
//!   Only a certificate that cannot be read at all is logged with a
//!   warning and skipped; the token's certificate count still includes
//!   it.
//! * The same certificate on two tokens (or twice on one) gives two
//!   identities with the same id. Listing shows both. [`Store::get`]
//!   treats an id as naming a certificate, so such duplicates are not
//!   ambiguous: it returns the copy that is usable for client
//!   authentication, else one with a private key, else the first in
//!   listing order.
//! * Listing order: by token (label, serial, slot, then module path),
//!   then by subject, then by id (then by certificate URI).

pub(crate) mod cert;
pub(crate) mod chain;
pub(crate) mod eku;
pub(crate) mod names;
pub(crate) mod usability;

#[cfg(test)]
pub(crate) mod test_certs;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use p11agent_proto::{ClientAuth, Filter, Identity, Token, TokenStatus, TokenSummary};
use time::OffsetDateTime;

use crate::token::found::{FoundToken, KeyLocation};

pub(crate) use cert::ParsedCertificate;
pub(crate) use chain::ChainCert;
pub(crate) use names::NameParts;
pub(crate) use usability::Usability;

/// The fewest hex digits [`Store::get`] accepts as an id prefix.
pub(crate) const MIN_ID_PREFIX: usize = 8;

/// Why [`Store::get`] found no single identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LookupError {
    /// No identity's id starts with the digits given.
    #[error("no identity matches {0}")]
    NotFound(String),
    /// The prefix matches more than one certificate.
    #[error("{prefix} matches {} certificates; give more digits", ids.len())]
    Ambiguous {
        /// The prefix as normalised (lower case, colons removed).
        prefix: String,
        /// The distinct ids that match, in ascending order.
        ids: Vec<String>,
    },
    /// Fewer than [`MIN_ID_PREFIX`] hex digits were given.
    #[error("an id prefix needs at least {MIN_ID_PREFIX} hex digits, got {0}")]
    TooShort(usize),
}

/// An identity as `show` gives it: see [`Store::get`].
#[derive(Debug, PartialEq)]
pub(crate) struct Shown<'a> {
    pub identity: Identity,
    pub der: &'a [u8],
    pub chain: Vec<&'a [u8]>,
}

/// An identity as signing sees it: see [`Store::signing_key`].
#[derive(Debug)]
pub(crate) struct SigningKey {
    /// The full id.
    pub id: String,
    /// The subject.
    pub subject: String,
    /// Where its private key lives, if it has one.
    pub key: Option<KeyLocation>,
}

/// Every identity on every token, parsed.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Tokens in listing order.
    tokens: Vec<TokenEntry>,
    /// CA certificates from the configured CA folder, for chains.
    ca_folder: Vec<Arc<ChainCert>>,
}

/// One token and what was found on it.
#[derive(Debug)]
struct TokenEntry {
    token: Token,
    /// False once the token was removed: its identities stay listed (see
    /// [`Store::mark_absent`]) until it comes back or is forgotten.
    present: bool,
    /// Certificate objects found, readable or not.
    certificates: usize,
    keys: usize,
    /// Identities in listing order (subject, id, certificate URI).
    entries: Vec<Entry>,
}

/// One identity with everything a query needs precomputed.
#[derive(Debug)]
struct Entry {
    /// The record, with a placeholder `client_auth` that queries replace.
    identity: Identity,
    /// The certificate (its DER and raw names).
    cert: Arc<ChainCert>,
    /// The certificates above it, nearest first (see [`chain`]); rebuilt
    /// whenever the store changes.
    chain: Vec<Arc<ChainCert>>,
    /// Subject and issuer parts for auto-select rule filters.
    names: (NameParts, NameParts),
    /// `CKA_ID` of the private key, for signing.
    key_id: Option<Vec<u8>>,
    usability: Usability,
    subject_lower: String,
    issuer_lower: String,
}

impl Entry {
    /// The record with its verdict at `now`.
    fn identity_at(&self, now: OffsetDateTime) -> Identity {
        let mut identity = self.identity.clone();
        identity.client_auth = self.usability.client_auth(now);
        identity
    }
}

/// A filter with its text fields normalised once per query.
struct Matcher<'a> {
    filter: &'a Filter,
    subject: Option<String>,
    issuer: Option<String>,
    fingerprint: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(filter: &'a Filter) -> Self {
        Matcher {
            filter,
            subject: filter.subject.as_deref().map(str::to_lowercase),
            issuer: filter.issuer.as_deref().map(str::to_lowercase),
            fingerprint: filter.fingerprint.as_deref().map(normalise_id),
        }
    }

    fn token_matches(&self, token: &Token) -> bool {
        self.filter
            .token
            .as_deref()
            .is_none_or(|t| token.label == t || token.serial == t)
    }

    fn entry_matches(&self, entry: &Entry, now: OffsetDateTime) -> bool {
        let f = self.filter;
        let id = &entry.identity;
        self.subject
            .as_deref()
            .is_none_or(|s| entry.subject_lower.contains(s))
            && self
                .issuer
                .as_deref()
                .is_none_or(|s| entry.issuer_lower.contains(s))
            && f.subject_exact.as_deref().is_none_or(|s| id.subject == s)
            && f.issuer_exact.as_deref().is_none_or(|s| id.issuer == s)
            && self
                .fingerprint
                .as_deref()
                .is_none_or(|p| id.id.starts_with(p))
            && f.key_type.is_none_or(|k| id.key_type == k)
            && f.has_key.is_none_or(|h| id.has_private_key == h)
            && f.client_auth
                .is_none_or(|u| entry.usability.is_usable(now) == u)
            && f.present.is_none_or(|p| id.present == p)
    }
}

/// Lower case, colons and surrounding white space removed.
fn normalise_id(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether two records describe the same token: module, slot and serial.
fn same_token(a: &Token, b: &Token) -> bool {
    a.slot == b.slot && a.serial == b.serial && a.module == b.module
}

/// Listing order of tokens.
fn token_order(a: &Token, b: &Token) -> Ordering {
    (&a.label, &a.serial, a.slot, &a.module).cmp(&(&b.label, &b.serial, b.slot, &b.module))
}

/// Listing order of identities within a token.
fn entry_order(a: &Entry, b: &Entry) -> Ordering {
    let (a, b) = (&a.identity, &b.identity);
    (&a.subject, &a.id, &a.cert_uri).cmp(&(&b.subject, &b.id, &b.cert_uri))
}

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Store::default()
    }

    /// Stores what a scan found on one token, replacing everything stored
    /// before for the same token (same module, slot and serial).
    ///
    /// Each certificate is parsed here; one that cannot be read is logged
    /// with a warning and skipped, and the others are stored regardless.
    pub(crate) fn insert_token(&mut self, found: FoundToken) {
        let FoundToken {
            token,
            certificates,
            key_count,
            schemes,
        } = found;
        // The same token remembered as absent may come back in another
        // slot: the fresh scan replaces it.
        let replaced = |t: &TokenEntry| {
            same_token(&t.token, &token)
                || (!t.present && t.token.module == token.module && t.token.serial == token.serial)
        };
        // Keys seen before (after a login) stay known when this scan, made
        // without a login, cannot see them: a private key is usually
        // CKA_PRIVATE, and a card put back or a module re-initialised has
        // logged out. Signing then logs in (asking for the PIN) and finds
        // the key, or says it is gone.
        let known_keys: HashMap<String, (Vec<u8>, Option<String>)> = self
            .tokens
            .iter()
            .filter(|t| replaced(t))
            .flat_map(|t| t.entries.iter())
            .filter_map(|e| {
                let key_id = e.key_id.clone()?;
                Some((e.identity.id.clone(), (key_id, e.identity.key_uri.clone())))
            })
            .collect();
        self.tokens.retain(|t| !replaced(t));

        let certificate_count = certificates.len();
        let mut entries = Vec::with_capacity(certificate_count);
        for mut found_cert in certificates {
            let parsed = match ParsedCertificate::from_der(found_cert.der) {
                Ok(parsed) => parsed,
                Err(error) => {
                    tracing::warn!(
                        token = %token.label,
                        slot = token.slot,
                        cert_uri = %found_cert.cert_uri,
                        %error,
                        "skipping certificate"
                    );
                    continue;
                }
            };
            if found_cert.key_id.is_none() {
                if let Some((key_id, key_uri)) = known_keys.get(&parsed.id) {
                    found_cert.key_id = Some(key_id.clone());
                    found_cert.key_uri = key_uri.clone();
                }
            }
            let usability = Usability::new(
                found_cert.key_uri.is_some(),
                parsed.key_type,
                parsed.curve,
                parsed.key_usage.as_deref(),
                parsed.extended_key_usage.as_deref(),
                parsed.not_before,
                parsed.not_after,
            );
            let key_schemes = match found_cert.key_id {
                Some(_) => schemes
                    .iter()
                    .copied()
                    .filter(|s| {
                        s.fits(parsed.key_type, parsed.curve) && s.fits_rsa_bits(parsed.key_bits)
                    })
                    .collect(),
                None => Vec::new(),
            };
            let identity = parsed.identity(
                token.clone(),
                found_cert.cert_uri,
                found_cert.key_uri,
                ClientAuth::from_reasons(Vec::new()),
                key_schemes,
            );
            let cert = Arc::new(ChainCert {
                der: parsed.der.into(),
                subject: parsed.subject_der.into(),
                issuer: parsed.issuer_der.into(),
                issuer_key: identity.issuer.to_lowercase().into(),
                may_issue: parsed.may_issue,
            });
            entries.push(Entry {
                key_id: found_cert.key_id,
                subject_lower: identity.subject.to_lowercase(),
                issuer_lower: identity.issuer.to_lowercase(),
                identity,
                cert,
                chain: Vec::new(),
                names: (parsed.subject_parts, parsed.issuer_parts),
                usability,
            });
        }
        entries.sort_by(entry_order);

        let position = self
            .tokens
            .partition_point(|t| token_order(&t.token, &token) == Ordering::Less);
        self.tokens.insert(
            position,
            TokenEntry {
                token,
                present: true,
                certificates: certificate_count,
                keys: key_count,
                entries,
            },
        );
        self.rebuild_chains();
    }

    /// Sets the CA certificates of the configured CA folder, used with
    /// those on the tokens to build chains.
    pub(crate) fn set_ca_folder(&mut self, certificates: Vec<Arc<ChainCert>>) {
        self.ca_folder = certificates;
        self.rebuild_chains();
    }

    /// Recomputes every identity's chain: a token's CA certificate can
    /// complete the chains of identities on other tokens, so any change
    /// may change any chain. One pass with an index by subject name.
    fn rebuild_chains(&mut self) {
        let issuers = {
            let pool = self
                .tokens
                .iter()
                .flat_map(|t| t.entries.iter().map(|e| &e.cert))
                .chain(self.ca_folder.iter());
            chain::Issuers::new(pool)
        };
        for entry in self.tokens.iter_mut().flat_map(|t| t.entries.iter_mut()) {
            entry.chain = issuers.chain(&entry.cert);
        }
    }

    /// Forgets the token with the same module, slot and serial as `token`.
    /// Returns whether one was stored.
    pub(crate) fn remove_token(&mut self, token: &Token) -> bool {
        let before = self.tokens.len();
        self.tokens.retain(|t| !same_token(&t.token, token));
        self.rebuild_chains();
        self.tokens.len() != before
    }

    /// Marks the token with the same module, slot and serial as `token`
    /// as removed: its identities stay listed with `present: false`, so
    /// that a request for one can name the token to insert. Returns
    /// whether it was stored and present.
    pub(crate) fn mark_absent(&mut self, token: &Token) -> bool {
        match self
            .tokens
            .iter_mut()
            .find(|t| t.present && same_token(&t.token, token))
        {
            Some(entry) => {
                entry.present = false;
                for e in &mut entry.entries {
                    e.identity.present = false;
                }
                true
            }
            None => false,
        }
    }

    /// The tokens present as stored, in listing order: all of them, or
    /// those of one module.
    pub(crate) fn present_tokens(&self, module: Option<&str>) -> Vec<Token> {
        self.tokens
            .iter()
            .filter(|t| t.present && module.is_none_or(|m| t.token.module == m))
            .map(|t| t.token.clone())
            .collect()
    }

    /// The ids and subjects of the identities stored for `token`.
    pub(crate) fn identities_of(&self, token: &Token) -> Vec<(String, String)> {
        self.tokens
            .iter()
            .filter(|t| same_token(&t.token, token))
            .flat_map(|t| t.entries.iter())
            .map(|e| (e.identity.id.clone(), e.identity.subject.clone()))
            .collect()
    }

    /// The ids and subjects of the identities of `token` while it is
    /// stored as present; `None` when it is not (never seen, or absent).
    pub(crate) fn present_identities_of(&self, token: &Token) -> Option<Vec<(String, String)>> {
        self.tokens
            .iter()
            .find(|t| t.present && same_token(&t.token, token))
            .map(|t| {
                t.entries
                    .iter()
                    .map(|e| (e.identity.id.clone(), e.identity.subject.clone()))
                    .collect()
            })
    }

    /// The stored tokens in listing order, with the number of certificate
    /// objects found on each (readable or not) and the key count the scan
    /// reported.
    pub(crate) fn tokens(&self) -> Vec<TokenSummary> {
        self.tokens
            .iter()
            .map(|t| TokenSummary {
                token: t.token.clone(),
                certificates: t.certificates,
                keys: t.keys,
                status: if t.present {
                    TokenStatus::Present
                } else {
                    TokenStatus::Absent
                },
            })
            .collect()
    }

    /// The identities that satisfy every condition of `filter`, with
    /// client-auth verdicts as of `now`, in listing order.
    ///
    /// `subject` and `issuer` are case-insensitive substrings;
    /// `subject_exact` and `issuer_exact` compare the RFC 4514 string as
    /// is; `fingerprint` is a prefix of the id, colons and case ignored;
    /// `token` equals the token label or the token serial.
    pub(crate) fn query(&self, filter: &Filter, now: OffsetDateTime) -> Vec<Identity> {
        let matcher = Matcher::new(filter);
        self.tokens
            .iter()
            .filter(|t| matcher.token_matches(&t.token))
            .flat_map(|t| t.entries.iter())
            .filter(|e| matcher.entry_matches(e, now))
            .map(|e| e.identity_at(now))
            .collect()
    }

    /// One identity, its certificate's DER and the DER of the CA
    /// certificates above it (nearest first), by full id or by a unique
    /// prefix of at least [`MIN_ID_PREFIX`] hex digits (colons and case
    /// ignored).
    ///
    /// The prefix must match exactly one certificate. When that
    /// certificate is stored more than once (on several tokens), the copy
    /// returned is the one usable for client authentication at `now`, else
    /// one with a private key, else the first in listing order.
    pub(crate) fn get(
        &self,
        id_or_prefix: &str,
        now: OffsetDateTime,
    ) -> Result<Shown<'_>, LookupError> {
        let entry = self.find(id_or_prefix, now)?;
        Ok(Shown {
            identity: entry.identity_at(now),
            der: &entry.cert.der,
            chain: entry.chain.iter().map(|c| &*c.der).collect(),
        })
    }

    /// What signing with an identity needs, found once: its full id and
    /// subject (for the audit trail), and where its private key lives
    /// (`None` when it has none). The copy [`Store::get`] would return.
    pub(crate) fn signing_key(
        &self,
        id_or_prefix: &str,
        now: OffsetDateTime,
    ) -> Result<SigningKey, LookupError> {
        let entry = self.find(id_or_prefix, now)?;
        let identity = &entry.identity;
        Ok(SigningKey {
            id: identity.id.clone(),
            subject: identity.subject.clone(),
            key: entry.key_id.as_ref().map(|key_id| KeyLocation {
                id: identity.id.clone(),
                token: identity.token.clone(),
                key_id: key_id.clone(),
                key_type: identity.key_type,
                curve: identity.curve,
                schemes: identity.schemes.clone(),
                present: identity.present,
            }),
        })
    }

    /// The entry an id or prefix names; see [`Store::get`].
    fn find(&self, id_or_prefix: &str, now: OffsetDateTime) -> Result<&Entry, LookupError> {
        let prefix = normalise_id(id_or_prefix);
        if prefix.len() < MIN_ID_PREFIX {
            return Err(LookupError::TooShort(prefix.len()));
        }
        let mut best: Option<(&Entry, (bool, bool, bool))> = None;
        let mut ids: Vec<&str> = Vec::new();
        for entry in self
            .entries()
            .filter(|e| e.identity.id.starts_with(&prefix))
        {
            if !ids.contains(&entry.identity.id.as_str()) {
                ids.push(&entry.identity.id);
            }
            let rank = (
                entry.identity.present,
                entry.usability.is_usable(now),
                entry.identity.has_private_key,
            );
            if best.is_none_or(|(_, best_rank)| rank > best_rank) {
                best = Some((entry, rank));
            }
        }
        match (ids.len(), best) {
            (1, Some((entry, _))) => Ok(entry),
            (0, _) | (_, None) => Err(LookupError::NotFound(prefix)),
            _ => {
                let mut ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
                ids.sort();
                Err(LookupError::Ambiguous { prefix, ids })
            }
        }
    }

    /// Number of stored identities (on all tokens, duplicates included).
    pub(crate) fn len(&self) -> usize {
        self.tokens.iter().map(|t| t.entries.len()).sum()
    }

    /// Number of stored tokens.
    pub(crate) fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Every entry in listing order.
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.tokens.iter().flat_map(|t| t.entries.iter())
    }

    /// Every stored identity in listing order, as selection reads it.
    pub(crate) fn stored(&self) -> impl Iterator<Item = Stored<'_>> {
        self.entries().map(|entry| Stored { entry })
    }
}

/// A stored identity, read-only, with what client-certificate selection
/// needs beyond the listing record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored<'a> {
    entry: &'a Entry,
}

impl<'a> Stored<'a> {
    /// The identity id.
    pub(crate) fn id(&self) -> &'a str {
        &self.entry.identity.id
    }

    /// The record with its verdict at `now`.
    pub(crate) fn identity_at(&self, now: OffsetDateTime) -> Identity {
        self.entry.identity_at(now)
    }

    /// The record as stored; its `client_auth` is a placeholder.
    pub(crate) fn identity(&self) -> &'a Identity {
        &self.entry.identity
    }

    /// Whether its token is inserted.
    pub(crate) fn present(&self) -> bool {
        self.entry.identity.present
    }

    /// The time-independent and validity reasons that exclude it at
    /// `now` (see [`usability`]).
    pub(crate) fn reasons(&self, now: OffsetDateTime) -> Vec<p11agent_proto::Reason> {
        self.entry.usability.reasons(now)
    }

    /// The DER names a server's CA list may use to accept it: the issuer
    /// of the certificate and of each certificate in its chain.
    pub(crate) fn issuer_names(&self) -> impl Iterator<Item = &'a [u8]> {
        std::iter::once(&*self.entry.cert.issuer).chain(self.entry.chain.iter().map(|c| &*c.issuer))
    }

    /// The subject's and the issuer's name parts, for rule filters.
    pub(crate) fn name_parts(&self) -> (&'a NameParts, &'a NameParts) {
        (&self.entry.names.0, &self.entry.names.1)
    }

    /// [`Stored::issuer_names`] for loose comparison (see
    /// [`chain::name_key`]).
    pub(crate) fn issuer_keys(&self) -> impl Iterator<Item = &'a str> {
        std::iter::once(&*self.entry.cert.issuer_key)
            .chain(self.entry.chain.iter().map(|c| &*c.issuer_key))
    }

    /// What a TLS client presents: the certificate, then its chain
    /// without a self-issued root (servers hold their roots).
    pub(crate) fn presented_chain(&self) -> Vec<&'a [u8]> {
        std::iter::once(&*self.entry.cert.der)
            .chain(
                self.entry
                    .chain
                    .iter()
                    .filter(|c| !c.self_issued())
                    .map(|c| &*c.der),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests;
