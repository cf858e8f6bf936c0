//! Choosing the client certificate for a TLS server from the agent's
//! identities.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use p11agent_proto::{Filter, Identity};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::chain::{self, NamedCert};
use super::key::{short_id, AgentSigningKey};
use super::TlsError;
use crate::{Client, ClientError};

/// What the resolver did the last time a server asked for a client
/// certificate; for explaining a refused handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// This identity was sent.
    Sent {
        /// Its id.
        id: String,
        /// Its subject DN.
        subject: String,
        /// Its issuer DN.
        issuer: String,
    },
    /// No identity fitted; no certificate was sent.
    NoneMatched {
        /// How many identities were considered (usable ones, or the one
        /// fixed by id).
        considered: usize,
        /// The server's CA list, as RFC 4514-style strings (empty: any).
        ca_names: Vec<String>,
        /// The signature schemes the server offered.
        schemes: Vec<String>,
    },
}

/// One identity that may be sent, with what rustls needs for it.
#[derive(Debug)]
struct Candidate {
    identity: Identity,
    leaf: NamedCert,
    /// The issuers found for the leaf, nearest first (root included when
    /// known).
    chain: Vec<NamedCert>,
    key: Arc<AgentSigningKey>,
    certified: Arc<CertifiedKey>,
}

/// A rustls [`ResolvesClientCert`] that offers the agent's identities.
///
/// rustls does not tell a resolver which server it is talking to, so a
/// resolver is bound to one origin when it is made (see
/// [`client_config_for_origin`](super::client_config_for_origin)).
///
/// The identities and their certificates are fetched from the agent
/// once, by [`AgentResolverBuilder::build`]; a token inserted later is
/// seen by the next resolver. When a server asks for a certificate, the
/// resolver picks:
///
/// - the identity fixed with [`AgentResolverBuilder::identity`], when
///   one is, as long as its key can make one of the offered schemes
///   (the user chose it, so the server's CA list is not consulted);
/// - otherwise the first identity, in the agent's order, that is usable
///   for client authentication, whose key can make one of the offered
///   schemes, and whose chain matches the server's CA list: a listed
///   name is the issuer of the leaf or of a certificate in its chain
///   (an empty list accepts any issuer).
///
/// Chains are built upward by name through the other certificates on
/// the tokens (CA certificates are listed as identities without keys)
/// and the extra CA certificates given to the builder. The chain sent
/// is the leaf followed by the intermediates found; self-issued roots
/// are left out, since servers hold their roots themselves.
#[derive(Debug)]
pub struct AgentResolver {
    origin: String,
    socket: PathBuf,
    fixed: Option<String>,
    candidates: Vec<Candidate>,
    last: Mutex<Option<Selection>>,
}

/// Builds an [`AgentResolver`].
#[derive(Debug, Clone)]
pub struct AgentResolverBuilder {
    origin: String,
    socket: Option<PathBuf>,
    identity: Option<String>,
    extra_cas: Vec<CertificateDer<'static>>,
}

impl AgentResolverBuilder {
    /// Uses the agent at `socket` instead of the default
    /// (`$P11AGENT_SOCK`, else the standard location).
    pub fn socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.socket = Some(socket.into());
        self
    }

    /// Always sends this identity (an id or unique id prefix).
    pub fn identity(mut self, id: impl Into<String>) -> Self {
        self.identity = Some(id.into());
        self
    }

    /// Adds CA certificates for chain building (e.g. the intermediates
    /// and roots of a `--ca-file`). They are never sent unless they are
    /// intermediates of the chosen leaf.
    pub fn extra_ca_certificates(
        mut self,
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Self {
        self.extra_cas.extend(certs);
        self
    }

    /// Connects to the agent and fetches the identities and certificates.
    pub fn build(self) -> Result<AgentResolver, TlsError> {
        let socket = self
            .socket
            .unwrap_or_else(p11agent_proto::paths::client_socket);
        let mut agent = Client::connect(&socket)?;
        let identities = agent.list(&Filter::default())?;

        let fixed = match &self.identity {
            Some(prefix) => {
                let shown = agent.show(prefix)?;
                if !shown.identity.has_private_key {
                    return Err(TlsError::NoPrivateKey {
                        id: shown.identity.id,
                        subject: shown.identity.subject,
                    });
                }
                Some(shown.identity.id)
            }
            None => None,
        };
        let wanted = |i: &Identity| match &fixed {
            Some(id) => i.id == *id,
            None => i.client_auth.usable,
        };

        // Fetch the candidates' certificates, then those of every
        // certificate on the tokens that may be one of their issuers.
        let mut leaves: Vec<(Identity, NamedCert)> = Vec::new();
        let mut pool: Vec<NamedCert> = Vec::new();
        let mut fetched: HashSet<String> = HashSet::new();
        let mut issuer_names: HashSet<String> = HashSet::new();
        for identity in identities.iter().filter(|i| wanted(i)) {
            let der = agent.show(&identity.id)?.certificate;
            fetched.insert(identity.id.clone());
            issuer_names.insert(identity.issuer.clone());
            if let Some(cert) = NamedCert::parse(der) {
                pool.push(cert.clone());
                leaves.push((identity.clone(), cert));
            }
        }
        loop {
            let next: Vec<&Identity> = identities
                .iter()
                .filter(|i| !fetched.contains(&i.id) && issuer_names.contains(&i.subject))
                .collect();
            if next.is_empty() {
                break;
            }
            for identity in next {
                let der = agent.show(&identity.id)?.certificate;
                fetched.insert(identity.id.clone());
                issuer_names.insert(identity.issuer.clone());
                pool.extend(NamedCert::parse(der));
            }
        }
        pool.extend(
            self.extra_cas
                .into_iter()
                .filter_map(|c| NamedCert::parse(c.as_ref().to_vec())),
        );

        let candidates = leaves
            .into_iter()
            .map(|(identity, leaf)| {
                let chain: Vec<NamedCert> =
                    chain::issuers(&leaf, &pool).into_iter().cloned().collect();
                let key = Arc::new(AgentSigningKey::new(&socket, &identity));
                let mut presented = vec![CertificateDer::from(leaf.der.clone())];
                presented.extend(
                    chain
                        .iter()
                        .filter(|c| !c.self_issued())
                        .map(|c| CertificateDer::from(c.der.clone())),
                );
                let certified = Arc::new(CertifiedKey::new(presented, key.clone()));
                Candidate {
                    identity,
                    leaf,
                    chain,
                    key,
                    certified,
                }
            })
            .collect();
        Ok(AgentResolver {
            origin: self.origin,
            socket,
            fixed,
            candidates,
            last: Mutex::new(None),
        })
    }
}

impl AgentResolver {
    /// A builder for a resolver bound to `origin` (`https://host:port`).
    pub fn builder(origin: impl Into<String>) -> AgentResolverBuilder {
        AgentResolverBuilder {
            origin: origin.into(),
            socket: None,
            identity: None,
            extra_cas: Vec::new(),
        }
    }

    /// The origin this resolver serves.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The identities this resolver may send, in the order it tries them.
    pub fn candidates(&self) -> impl Iterator<Item = &Identity> {
        self.candidates.iter().map(|c| &c.identity)
    }

    /// The certificate chain (leaf first, DER) that would be sent for
    /// identity `id`.
    pub fn chain_for(&self, id: &str) -> Option<Vec<CertificateDer<'static>>> {
        self.candidates
            .iter()
            .find(|c| c.identity.id == id)
            .map(|c| c.certified.cert.clone())
    }

    /// What happened the last time a server asked for a certificate;
    /// `None` when no server has asked.
    pub fn last_selection(&self) -> Option<Selection> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn choose(&self, hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<&Candidate> {
        match &self.fixed {
            Some(id) => self
                .candidates
                .iter()
                .find(|c| c.identity.id == *id && c.key.pick_scheme(schemes).is_some()),
            None => self.candidates.iter().find(|c| {
                c.identity.client_auth.usable
                    && c.key.pick_scheme(schemes).is_some()
                    && chain::matches_hints(hints, &c.leaf, &c.chain.iter().collect::<Vec<_>>())
            }),
        }
    }
}

impl ResolvesClientCert for AgentResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let chosen = self.choose(root_hint_subjects, sigschemes);
        let selection = match chosen {
            Some(c) => Selection::Sent {
                id: c.identity.id.clone(),
                subject: c.identity.subject.clone(),
                issuer: c.identity.issuer.clone(),
            },
            None => Selection::NoneMatched {
                considered: self.candidates.len(),
                ca_names: root_hint_subjects.iter().map(|h| name_string(h)).collect(),
                schemes: sigschemes.iter().map(|s| format!("{s:?}")).collect(),
            },
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(selection);
        }
        chosen.map(|c| c.certified.clone())
    }

    fn has_certs(&self) -> bool {
        !self.candidates.is_empty()
    }
}

/// A DER distinguished name as a readable string (hex when unparsable).
fn name_string(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer as _;
    match x509_parser::x509::X509Name::from_der(der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => der.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

impl Selection {
    /// A sentence for the user.
    pub fn describe(&self) -> String {
        match self {
            Selection::Sent { id, subject, .. } => {
                format!("sent identity {} ({subject})", short_id(id))
            }
            Selection::NoneMatched {
                considered,
                ca_names,
                ..
            } => {
                let cas = if ca_names.is_empty() {
                    "any".to_owned()
                } else {
                    ca_names.join("; ")
                };
                match considered {
                    0 => "sent no certificate: the agent has no usable identity".to_owned(),
                    1 => format!(
                        "sent no certificate: the one usable identity was not issued under a CA \
                         the server accepts, or its key cannot make the server's signature \
                         schemes (accepted CAs: {cas})"
                    ),
                    n => format!(
                        "sent no certificate: none of the {n} usable identities was issued under \
                         a CA the server accepts with a key that can make the server's signature \
                         schemes (accepted CAs: {cas})"
                    ),
                }
            }
        }
    }
}

impl From<ClientError> for TlsError {
    fn from(e: ClientError) -> Self {
        TlsError::Agent(e)
    }
}
