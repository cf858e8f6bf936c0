//! The daemon's selection state: policy, remembered choices, the chooser
//! program; and one selection from request to answer.
//!
//! Everything here may block (the chooser waits for a person, the
//! decisions file is written): the service runs it on a thread that may
//! block, never on the async reactor.

use p11agent_proto::{Basis, ChooserMode, Decision, Identity, RememberedChoice, Selection};
use parking_lot::{Mutex, RwLock};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::candidates::{self, ServerRequest};
use super::chooser::{Answer, Chooser};
use super::decide::{self, Candidate, Policy};
use super::decisions::{Choice, Decision as Remembered, Decisions, DecisionsError};
use super::origin::Origin;
use crate::store::{NameParts, Store, Stored};

/// Policy, memory and chooser, shared by every connection.
#[derive(Debug)]
pub(crate) struct Selector {
    policy: Policy,
    decisions: Mutex<Decisions>,
    chooser: Option<Chooser>,
}

/// A selection to make.
#[derive(Debug)]
pub(crate) struct Query {
    /// The server's origin.
    pub origin: Origin,
    /// Its CA list and schemes.
    pub server: ServerRequest,
    /// Who asks a person.
    pub chooser: ChooserMode,
    /// The full id of an identity the client fixed.
    pub fixed: Option<String>,
    /// Whether the selection lists the excluded identities.
    pub explain: bool,
}

struct View<'s> {
    stored: Stored<'s>,
}

impl Candidate for View<'_> {
    fn id(&self) -> &str {
        self.stored.id()
    }

    fn names(&self) -> (&NameParts, &NameParts) {
        self.stored.name_parts()
    }
}

/// The part of a selection made under the store's lock.
struct Draft {
    selection: Selection,
    /// With a prompt, the identities a person chooses among.
    prompt: Vec<Identity>,
}

impl Selector {
    /// A selector with this policy, memory and chooser program.
    pub(crate) fn new(policy: Policy, decisions: Decisions, chooser: Option<Chooser>) -> Self {
        Selector {
            policy,
            decisions: Mutex::new(decisions),
            chooser,
        }
    }

    /// Filters, applies policy, and, when a person must choose and the
    /// agent is to ask, runs the chooser program and remembers the answer
    /// when it says so. The store is read-locked only while deciding, not
    /// while a person chooses.
    pub(crate) fn select(&self, store: &RwLock<Store>, query: Query) -> Selection {
        let now = OffsetDateTime::now_utc();
        let draft = self.draft(&store.read(), &query, now);
        if draft.selection.decision != Decision::Prompt || query.chooser == ChooserMode::Client {
            return draft.selection;
        }
        let mut selection = draft.selection;
        selection.choices.clear();
        let Some(chooser) = &self.chooser else {
            selection.decision = Decision::Declined;
            selection.basis = Basis::NoChooser;
            return selection;
        };
        let (id, remember) = match chooser.choose(&selection.origin, &draft.prompt) {
            Ok(Answer::Send { id, remember }) => (Some(id), remember),
            Ok(Answer::SendNone { remember }) => (None, remember),
            Err(e) => {
                tracing::info!(origin = %selection.origin, error = %e, "chooser cancelled");
                selection.decision = Decision::Declined;
                selection.basis = Basis::ChooserCancelled;
                return selection;
            }
        };
        if remember {
            let choice = id.clone().map_or(Choice::SendNone, Choice::Identity);
            if let Err(e) = self.remember(&query.origin, choice) {
                tracing::warn!(origin = %selection.origin, error = %e, "choice not remembered");
            }
        }
        selection.basis = Basis::Chooser;
        match id {
            None => selection.decision = Decision::Declined,
            Some(id) => {
                let found = store
                    .read()
                    .stored()
                    .find(|s| s.id() == id)
                    .map(|stored| (stored.identity_at(now), encode_chain(&stored)));
                match found {
                    Some((identity, chain)) => {
                        selection.decision = Decision::Selected;
                        selection.identity = Some(identity);
                        selection.chain = chain;
                    }
                    // The token went away while the person chose.
                    None => selection.decision = Decision::Declined,
                }
            }
        }
        selection
    }

    /// Everything decided from the store and memory alone.
    fn draft(&self, store: &Store, query: &Query, now: OffsetDateTime) -> Draft {
        let filtered = candidates::filter(store, &query.server, now);
        let views: Vec<View<'_>> = filtered
            .candidates
            .iter()
            .map(|&stored| View { stored })
            .collect();
        let mut selection = Selection {
            origin: query.origin.to_string(),
            decision: Decision::None,
            basis: Basis::NoCandidates,
            rule: None,
            identity: None,
            chain: Vec::new(),
            candidates: views.iter().map(|v| v.stored.identity_at(now)).collect(),
            choices: Vec::new(),
            excluded: if query.explain {
                filtered.excluded.iter().map(candidates::excluded).collect()
            } else {
                Vec::new()
            },
        };
        if let Some(fixed) = &query.fixed {
            selection.basis = Basis::Fixed;
            let usable = views.iter().map(|v| v.stored).find(|s| s.id() == fixed);
            // A fixed identity is the client's explicit choice, so a CA
            // list that does not name its issuer does not stop it.
            let usable = usable.or_else(|| {
                filtered
                    .excluded
                    .iter()
                    .find(|(stored, reasons)| {
                        stored.id() == fixed
                            && *reasons == [p11agent_proto::Reason::IssuerNotAccepted]
                    })
                    .map(|(stored, _)| *stored)
            });
            if let Some(stored) = usable {
                selection.decision = Decision::Selected;
                selection.identity = Some(stored.identity_at(now));
                selection.chain = encode_chain(&stored);
            }
            return Draft {
                selection,
                prompt: Vec::new(),
            };
        }
        let remembered = self
            .decisions
            .lock()
            .get(&selection.origin)
            .map(|d| d.choice.clone());
        let outcome = decide::decide(&self.policy, &query.origin, remembered.as_ref(), &views);
        selection.decision = outcome.decision;
        selection.basis = outcome.basis;
        selection.rule = outcome.rule;
        if let Some(stored) = outcome
            .selected
            .and_then(|i| views.get(i))
            .map(|v| v.stored)
        {
            selection.identity = Some(stored.identity_at(now));
            selection.chain = encode_chain(&stored);
        }
        let prompt: Vec<Identity> = outcome
            .choices
            .iter()
            .filter_map(|&i| selection.candidates.get(i).cloned())
            .collect();
        selection.choices = prompt.iter().map(|i| i.id.clone()).collect();
        Draft { selection, prompt }
    }

    /// Remembers a choice for an origin, writing the decisions file when
    /// persistent.
    pub(crate) fn remember(
        &self,
        origin: &Origin,
        choice: Choice,
    ) -> Result<Option<RememberedChoice>, DecisionsError> {
        let origin = origin.to_string();
        let mut decisions = self.decisions.lock();
        decisions.remember(&origin, choice)?;
        let persistent = decisions.is_persistent();
        Ok(decisions.get(&origin).map(|d| record(d, persistent, None)))
    }

    /// The remembered choices, with subjects from the store.
    pub(crate) fn remembered(&self, store: &Store) -> Vec<RememberedChoice> {
        let decisions = self.decisions.lock();
        let persistent = decisions.is_persistent();
        decisions
            .list()
            .into_iter()
            .map(|d| {
                let subject = match &d.choice {
                    Choice::Identity(id) => store
                        .stored()
                        .find(|s| s.id() == id)
                        .map(|s| s.identity().subject.clone()),
                    Choice::SendNone => None,
                };
                record(d, persistent, subject)
            })
            .collect()
    }

    /// Forgets one origin's choice, or all; returns the origins forgotten.
    pub(crate) fn forget(&self, origin: Option<&Origin>) -> Result<Vec<String>, DecisionsError> {
        let mut decisions = self.decisions.lock();
        match origin {
            Some(origin) => {
                let origin = origin.to_string();
                Ok(if decisions.forget(&origin)? {
                    vec![origin]
                } else {
                    Vec::new()
                })
            }
            None => {
                let origins = decisions.list().iter().map(|d| d.origin.clone()).collect();
                decisions.forget_all()?;
                Ok(origins)
            }
        }
    }
}

fn record(d: &Remembered, persistent: bool, subject: Option<String>) -> RememberedChoice {
    RememberedChoice {
        origin: d.origin.clone(),
        id: match &d.choice {
            Choice::Identity(id) => Some(id.clone()),
            Choice::SendNone => None,
        },
        subject,
        decided_at: d
            .decided_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| d.decided_at.to_string()),
        persistent,
    }
}

fn encode_chain(stored: &Stored<'_>) -> Vec<String> {
    use base64::Engine as _;
    stored
        .presented_chain()
        .into_iter()
        .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
        .collect()
}
