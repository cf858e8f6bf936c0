//! The rustls client-certificate resolver: asks the agent to select.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{Basis, ChooserMode, Decision, Identity, Reason, Scheme, Selection};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::key::{short_id, AgentSigningKey};
use super::pool::Pool;
use crate::SelectQuery;

/// What a person answered when the application asked them to choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChoice {
    /// Send this identity (its id).
    Send {
        /// The identity id, one of the choices offered.
        id: String,
        /// Remember the answer for the origin.
        remember: bool,
    },
    /// Send no certificate.
    SendNone {
        /// Remember the answer for the origin.
        remember: bool,
    },
}

/// An application's own certificate chooser: given the origin and the
/// identities to choose among, the person's answer, or `None` when they
/// cancelled (nothing is sent, nothing remembered).
pub type Chooser = dyn Fn(&str, &[Identity]) -> Option<UserChoice> + Send + Sync;

/// What the resolver did the last time a server asked for a client
/// certificate; for explaining a refused handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The agent answered (the final answer, after a person chose when
    /// one had to).
    Answered(Box<Selection>),
    /// The agent could not be asked; nothing was sent.
    AgentFailed(String),
    /// The agent's chain for the selected identity was unusable.
    BadChain(String),
}

/// A rustls [`ResolvesClientCert`] that sends what the agent selects.
///
/// rustls does not tell a resolver which server it is talking to, so a
/// resolver is bound to one origin when it is made (see
/// [`client_config_for_origin`](super::client_config_for_origin)).
///
/// When a server asks for a certificate, the resolver sends the agent
/// the origin, the server's CA names and signature schemes, and the
/// agent decides (its candidate filter, auto-select rules, remembered
/// choices; `p11agent explain` shows the same decision). When policy
/// says a person must choose, the application's [`Chooser`] is asked if
/// it set one, and the answer is reported back to the agent so it can be
/// remembered; without one the agent runs its own chooser program, or
/// declines. The chain sent is the one the agent built: the leaf, then
/// the intermediates it found on the tokens or in its CA folder.
///
/// `resolve` blocks on the agent (and on a person, when one chooses):
/// under tokio, drive handshakes from a multi-thread runtime.
pub struct AgentResolver {
    origin: String,
    /// Connections to the agent, shared with the keys handed to rustls.
    agent: Arc<Pool>,
    fixed: Option<String>,
    chooser: Option<Arc<Chooser>>,
    last: Mutex<Option<Resolution>>,
}

impl std::fmt::Debug for AgentResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentResolver")
            .field("origin", &self.origin)
            .field("socket", &self.agent.socket())
            .field("fixed", &self.fixed)
            .field("chooser", &self.chooser.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds an [`AgentResolver`].
#[derive(Clone)]
pub struct AgentResolverBuilder {
    origin: String,
    socket: Option<PathBuf>,
    identity: Option<String>,
    chooser: Option<Arc<Chooser>>,
}

impl std::fmt::Debug for AgentResolverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentResolverBuilder")
            .field("origin", &self.origin)
            .field("socket", &self.socket)
            .field("identity", &self.identity)
            .field("chooser", &self.chooser.is_some())
            .finish()
    }
}

impl AgentResolverBuilder {
    /// Uses the agent at `socket` instead of the default
    /// (`$P11AGENT_SOCK`, else the standard location).
    pub fn socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.socket = Some(socket.into());
        self
    }

    /// Always sends this identity (an id or unique id prefix), as long as
    /// it passes the agent's filter; the server's CA list aside, since
    /// the user named it.
    pub fn identity(mut self, id: impl Into<String>) -> Self {
        self.identity = Some(id.into());
        self
    }

    /// Asks the application's user with `chooser` when a person must
    /// choose, instead of the agent's chooser program.
    pub fn chooser(mut self, chooser: Arc<Chooser>) -> Self {
        self.chooser = Some(chooser);
        self
    }

    /// The resolver. Nothing is asked of the agent until a server asks
    /// for a certificate, so tokens inserted meanwhile are seen.
    pub fn build(self) -> AgentResolver {
        AgentResolver {
            origin: self.origin,
            agent: Arc::new(Pool::new(
                self.socket
                    .unwrap_or_else(p11agent_proto::paths::client_socket),
            )),
            fixed: self.identity,
            chooser: self.chooser,
            last: Mutex::new(None),
        }
    }
}

impl AgentResolver {
    /// A builder for a resolver bound to `origin` (`https://host:port`).
    pub fn builder(origin: impl Into<String>) -> AgentResolverBuilder {
        AgentResolverBuilder {
            origin: origin.into(),
            socket: None,
            identity: None,
            chooser: None,
        }
    }

    /// The origin this resolver serves.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        self.agent.socket()
    }

    /// What happened the last time a server asked for a certificate;
    /// `None` when no server has asked.
    pub fn last_resolution(&self) -> Option<Resolution> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn record(&self, resolution: Resolution) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(resolution);
        }
    }

    /// Asks the agent, and the application's chooser when a person must
    /// choose.
    fn ask(
        &self,
        ca_names: &[&[u8]],
        schemes: &[SignatureScheme],
    ) -> Result<Selection, crate::ClientError> {
        let mut query = SelectQuery::new(self.origin.clone());
        query.ca_names = ca_names.iter().map(|n| n.to_vec()).collect();
        query.schemes = Some(
            schemes
                .iter()
                .filter_map(|s| Scheme::from_code(u16::from(*s)))
                .collect(),
        );
        query.id = self.fixed.clone();
        query.chooser = match self.chooser {
            Some(_) => ChooserMode::Client,
            None => ChooserMode::Agent,
        };
        // The handshake waits for this answer: leave out the list of
        // every identity not offered (most of the answer when there are
        // many), and ask for it only when nothing qualifies, to say why.
        query.explain = false;
        // The connection goes back to the pool before a person is asked,
        // which may take minutes.
        let selection = self.agent.run(|agent| {
            let selection = agent.select(&query)?;
            if selection.decision != Decision::None {
                return Ok(selection);
            }
            let mut explained = query.clone();
            explained.explain = true;
            agent.select(&explained)
        })?;
        let Some(chooser) = self.chooser.as_ref() else {
            return Ok(selection);
        };
        if selection.decision != Decision::Prompt {
            return Ok(selection);
        }
        let choices: Vec<Identity> = selection
            .candidates
            .iter()
            .filter(|i| selection.choices.contains(&i.id))
            .cloned()
            .collect();
        let mut declined = selection.clone();
        declined.decision = Decision::Declined;
        declined.basis = Basis::ChooserCancelled;
        match chooser(&selection.origin, &choices) {
            None => Ok(declined),
            Some(UserChoice::SendNone { remember }) => {
                if remember {
                    self.agent
                        .run(|agent| agent.choose(&selection.origin, None, true))?;
                }
                declined.basis = Basis::Chooser;
                Ok(declined)
            }
            Some(UserChoice::Send { id, remember }) => {
                if !choices.iter().any(|c| c.id == id) {
                    return Ok(declined);
                }
                // The chosen identity's chain, through the fixed-id path.
                let mut chosen = self.agent.run(|agent| {
                    if remember {
                        agent.choose(&selection.origin, Some(&id), true)?;
                    }
                    query.id = Some(id);
                    agent.select(&query)
                })?;
                if chosen.decision == Decision::Selected {
                    chosen.basis = Basis::Chooser;
                }
                Ok(chosen)
            }
        }
    }
}

/// The certified key for a selected identity.
fn certified(
    agent: &Arc<Pool>,
    selection: &Selection,
) -> Result<Option<Arc<CertifiedKey>>, String> {
    let Some(identity) = selection
        .identity
        .as_ref()
        .filter(|_| selection.decision == Decision::Selected)
    else {
        return Ok(None);
    };
    let chain = selection
        .chain
        .iter()
        .map(|c| STANDARD.decode(c).map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the agent sent a chain that is not base64: {e}"))?;
    if chain.is_empty() {
        return Err("the agent sent an empty chain".to_owned());
    }
    let key = Arc::new(AgentSigningKey::pooled(Arc::clone(agent), identity));
    Ok(Some(Arc::new(CertifiedKey::new(chain, key))))
}

impl ResolvesClientCert for AgentResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let selection = match self.ask(root_hint_subjects, sigschemes) {
            Ok(selection) => selection,
            Err(e) => {
                self.record(Resolution::AgentFailed(e.to_string()));
                return None;
            }
        };
        match certified(&self.agent, &selection) {
            Ok(key) => {
                self.record(Resolution::Answered(Box::new(selection)));
                key
            }
            Err(why) => {
                self.record(Resolution::BadChain(why));
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl Resolution {
    /// Whether a certificate was sent.
    pub fn sent(&self) -> bool {
        matches!(self, Resolution::Answered(s) if s.decision == Decision::Selected)
    }

    /// A sentence for the user: what was sent, or why nothing was.
    pub fn describe(&self) -> String {
        let selection = match self {
            Resolution::AgentFailed(e) => {
                return format!("sent no certificate: the agent could not be asked ({e})")
            }
            Resolution::BadChain(e) => return format!("sent no certificate: {e}"),
            Resolution::Answered(selection) => selection,
        };
        let origin = &selection.origin;
        match (selection.decision, &selection.identity) {
            (Decision::Selected, Some(identity)) => format!(
                "sent identity {} ({}), {}",
                short_id(&identity.id),
                identity.subject,
                basis_phrase(selection.basis, selection.rule)
            ),
            (Decision::None, _) if selection.basis == Basis::Fixed => format!(
                "sent no certificate: the identity given with --id cannot be used ({})",
                excluded_summary(&selection.excluded)
            ),
            (Decision::None, _) => format!(
                "sent no certificate: none of the agent's identities qualifies ({})",
                excluded_summary(&selection.excluded)
            ),
            (Decision::Declined, _) => match selection.basis {
                Basis::Remembered => format!(
                    "sent no certificate: you chose to send none to {origin}; \
                     `p11agent forget {origin}` clears that choice"
                ),
                Basis::NoChooser => format!(
                    "sent no certificate: {} candidate(s) and no auto-select rule for {origin}, \
                     and nobody to ask (configure a chooser, an auto_select rule, or pass --id)",
                    selection.candidates.len()
                ),
                Basis::Chooser => "sent no certificate: you chose to send none".to_owned(),
                _ => "sent no certificate: the choice was cancelled".to_owned(),
            },
            _ => "sent no certificate".to_owned(),
        }
    }
}

fn basis_phrase(basis: Basis, rule: Option<usize>) -> String {
    match (basis, rule) {
        (Basis::Rule, Some(i)) => format!("chosen by auto-select rule #{i}"),
        (Basis::Remembered, _) => "remembered for this origin".to_owned(),
        (Basis::Fixed, _) => "as asked with --id".to_owned(),
        (Basis::SingleCandidate, _) => "the only candidate".to_owned(),
        (Basis::Chooser, _) => "chosen by you".to_owned(),
        (other, _) => other.as_str().replace('_', " "),
    }
}

/// "3 excluded: issuer_not_accepted ×2, expired ×1".
fn excluded_summary(excluded: &[p11agent_proto::Excluded]) -> String {
    if excluded.is_empty() {
        return "the agent has no identities".to_owned();
    }
    let mut counts: Vec<(Reason, usize)> = Vec::new();
    for reason in excluded.iter().flat_map(|e| e.reasons.iter()) {
        match counts.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((*reason, 1)),
        }
    }
    let reasons: Vec<String> = counts
        .iter()
        .map(|(r, n)| format!("{} ×{n}", r.as_str()))
        .collect();
    format!(
        "{} excluded: {}; `p11agent explain` tells why",
        excluded.len(),
        reasons.join(", ")
    )
}
