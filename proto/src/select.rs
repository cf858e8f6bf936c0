//! Client-certificate selection: what a TLS client tells the agent about
//! a server's CertificateRequest, and the agent's decision.

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, Reason};

/// Who asks a person when policy says a person must choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChooserMode {
    /// The agent runs its configured chooser program; without one it
    /// declines (nothing is sent).
    #[default]
    Agent,
    /// The application asks its user: the agent answers
    /// [`Decision::Prompt`] and the client reports the answer with
    /// [`Request::Choose`](crate::Request::Choose). Reporting tools
    /// (`p11agent select`) use this mode too, and simply show the prompt.
    Client,
}

/// The outcome of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Send [`Selection::identity`].
    Selected,
    /// A person must choose among [`Selection::choices`].
    Prompt,
    /// Send no certificate although candidates exist (the user or a
    /// remembered choice said so, or nobody could be asked).
    Declined,
    /// No identity qualifies: nothing can be sent.
    None,
}

impl Decision {
    /// The name as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Selected => "selected",
            Decision::Prompt => "prompt",
            Decision::Declined => "declined",
            Decision::None => "none",
        }
    }
}

/// What the decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Basis {
    /// The client fixed the identity by id.
    Fixed,
    /// A choice remembered for the origin (a certificate, or none).
    Remembered,
    /// An auto-select rule matched ([`Selection::rule`] is its index).
    Rule,
    /// The only candidate, sent because `send_when_single_candidate`
    /// covers the origin.
    SingleCandidate,
    /// The chooser program's answer.
    Chooser,
    /// No identity passed the candidate filter.
    NoCandidates,
    /// Candidates exist and no rule picks one: a person must choose.
    UserMustChoose,
    /// A person had to choose, but no chooser program is configured.
    NoChooser,
    /// The chooser program was cancelled or failed.
    ChooserCancelled,
}

impl Basis {
    /// The name as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Fixed => "fixed",
            Basis::Remembered => "remembered",
            Basis::Rule => "rule",
            Basis::SingleCandidate => "single_candidate",
            Basis::Chooser => "chooser",
            Basis::NoCandidates => "no_candidates",
            Basis::UserMustChoose => "user_must_choose",
            Basis::NoChooser => "no_chooser",
            Basis::ChooserCancelled => "chooser_cancelled",
        }
    }
}

/// An identity the candidate filter excluded, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// The identity id.
    pub id: String,
    /// Its subject DN (RFC 4514), for reports.
    pub subject: String,
    /// Its issuer DN (RFC 4514), for reports.
    pub issuer: String,
    /// Every reason that applies, in the order of [`Reason`].
    pub reasons: Vec<Reason>,
}

/// The agent's answer to [`Request::Select`](crate::Request::Select).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The origin as the agent normalised it (`scheme://host:port`): the
    /// key under which choices are remembered.
    pub origin: String,
    /// The outcome.
    pub decision: Decision,
    /// Why.
    pub basis: Basis,
    /// The index (from 0) of the auto-select rule that matched, when one
    /// did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// The identity to send, with [`Decision::Selected`].
    pub identity: Option<Identity>,
    /// The certificates to send with [`Decision::Selected`], DER in
    /// standard base64: the leaf, then the intermediates the agent found
    /// on tokens or in its CA folder (self-signed roots left out).
    #[serde(default)]
    pub chain: Vec<String>,
    /// Every identity that passed the candidate filter, in listing order.
    pub candidates: Vec<Identity>,
    /// With [`Decision::Prompt`]: the ids a person chooses among (all
    /// candidates, or those an auto-select rule matched when
    /// `force_prompt_on_multiple_matches` is set).
    #[serde(default)]
    pub choices: Vec<String>,
    /// Every identity the filter excluded, with its reasons.
    pub excluded: Vec<Excluded>,
}

/// A choice remembered for an origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedChoice {
    /// The origin, `scheme://host:port`.
    pub origin: String,
    /// The identity id to send; `None` means "send no certificate".
    pub id: Option<String>,
    /// The identity's subject when it is in the store now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the choice was made, RFC 3339.
    pub decided_at: String,
    /// Whether the choice survives a daemon restart.
    pub persistent: bool,
}
