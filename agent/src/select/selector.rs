//! The daemon's selection state: policy, remembered choices, the chooser
//! program; and one selection from request to answer.

use std::sync::{Arc, Mutex, MutexGuard};

use p11agent_proto::{Basis, ChooserMode, Decision, Identity, RememberedChoice, Selection};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::candidates::{self, ServerRequest};
use super::chooser::{Answer, Chooser};
use super::decide::{self, Candidate, Policy};
use super::decisions::{Choice, Decision as Remembered, Decisions, DecisionsError};

/// Why a choice could not be remembered or forgotten.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The decisions file could not be written.
    #[error(transparent)]
    Decisions(#[from] DecisionsError),
    /// The task that writes it failed.
    #[error("the task saving choices failed: {0}")]
    Task(String),
}
use super::origin::Origin;
use crate::store::NameParts;
use crate::store::{Store, Stored};

/// Policy, memory and chooser, shared by every connection.
#[derive(Debug)]
pub struct Selector {
    policy: Policy,
    decisions: Arc<Mutex<Decisions>>,
    chooser: Option<Arc<Chooser>>,
}

/// A selection to make.
#[derive(Debug)]
pub struct Query {
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
    pub fn new(policy: Policy, decisions: Decisions, chooser: Option<Chooser>) -> Self {
        Selector {
            policy,
            decisions: Arc::new(Mutex::new(decisions)),
            chooser: chooser.map(Arc::new),
        }
    }

    fn decisions(&self) -> MutexGuard<'_, Decisions> {
        // A panic while holding the lock leaves the map itself intact.
        self.decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Filters, applies policy, and, when a person must choose and the
    /// agent is to ask, runs the chooser program (off the reactor) and
    /// remembers the answer when it says so.
    pub async fn select(&self, store: &tokio::sync::RwLock<Store>, query: Query) -> Selection {
        let now = OffsetDateTime::now_utc();
        let draft = {
            let store = store.read().await;
            self.draft(&store, &query, now)
        };
        if draft.selection.decision != Decision::Prompt || query.chooser == ChooserMode::Client {
            return draft.selection;
        }
        let mut selection = draft.selection;
        selection.choices.clear();
        let Some(chooser) = self.chooser.clone() else {
            selection.decision = Decision::Declined;
            selection.basis = Basis::NoChooser;
            return selection;
        };
        let origin = selection.origin.clone();
        let prompt = draft.prompt;
        let answer = tokio::task::spawn_blocking(move || chooser.choose(&origin, &prompt)).await;
        let (id, remember) = match answer {
            Ok(Ok(Answer::Send { id, remember })) => (Some(id), remember),
            Ok(Ok(Answer::SendNone { remember })) => (None, remember),
            Ok(Err(e)) => {
                tracing::info!(origin = %selection.origin, error = %e, "chooser cancelled");
                selection.decision = Decision::Declined;
                selection.basis = Basis::ChooserCancelled;
                return selection;
            }
            Err(e) => {
                tracing::warn!(error = %e, "chooser task failed");
                selection.decision = Decision::Declined;
                selection.basis = Basis::ChooserCancelled;
                return selection;
            }
        };
        if remember {
            let choice = id.clone().map_or(Choice::SendNone, Choice::Identity);
            if let Err(e) = self.remember(&query.origin, choice).await {
                tracing::warn!(origin = %selection.origin, error = %e, "choice not remembered");
            }
        }
        selection.basis = Basis::Chooser;
        match id {
            None => selection.decision = Decision::Declined,
            Some(id) => {
                let guard = store.read().await;
                let found = guard
                    .stored()
                    .find(|s| s.id() == id)
                    .map(|stored| (stored.identity_at(now), encode_chain(&stored)));
                drop(guard);
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
            .decisions()
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

    /// Remembers a choice for an origin (writing the decisions file when
    /// persistent, off the reactor).
    pub async fn remember(
        &self,
        origin: &Origin,
        choice: Choice,
    ) -> Result<Option<RememberedChoice>, MemoryError> {
        let decisions = self.decisions.clone();
        let origin = origin.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let mut decisions = decisions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            decisions.remember(&origin, choice)?;
            let persistent = decisions.is_persistent();
            Ok::<_, DecisionsError>(decisions.get(&origin).map(|d| record(d, persistent, None)))
        })
        .await;
        match result {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(MemoryError::Task(e.to_string())),
        }
    }

    /// The remembered choices, with subjects from the store.
    pub fn remembered(&self, store: &Store) -> Vec<RememberedChoice> {
        let decisions = self.decisions();
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
    pub async fn forget(&self, origin: Option<&Origin>) -> Result<Vec<String>, MemoryError> {
        let decisions = self.decisions.clone();
        let origin = origin.map(Origin::to_string);
        let result = tokio::task::spawn_blocking(move || {
            let mut decisions = decisions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match origin {
                Some(origin) => Ok(if decisions.forget(&origin)? {
                    vec![origin]
                } else {
                    Vec::new()
                }),
                None => {
                    let origins: Vec<String> =
                        decisions.list().iter().map(|d| d.origin.clone()).collect();
                    decisions.forget_all()?;
                    Ok::<_, DecisionsError>(origins)
                }
            }
        })
        .await;
        match result {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(MemoryError::Task(e.to_string())),
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
