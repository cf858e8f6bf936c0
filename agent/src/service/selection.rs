//! Client-certificate selection as a request runs it: the selector's
//! decision, its audit line, and the remembered choices.

use p11agent_proto::{ChooserMode, RememberedChoice, Scheme, Selection};

use super::agent::Agent;
use super::audit::{Action, Peer, Record};
use super::error::ServiceError;
use crate::select::candidates::ServerRequest;
use crate::select::decisions::Choice;
use crate::select::origin::Origin;
use crate::select::selector::Query;

/// What a TLS server asked for, and how the client wants it decided.
#[derive(Debug)]
pub(crate) struct SelectRequest {
    /// The server's origin.
    pub(crate) origin: Origin,
    /// Its CertificateRequest's CA names, DER.
    pub(crate) ca_names: Vec<Vec<u8>>,
    /// Its signature schemes, when known.
    pub(crate) schemes: Option<Vec<Scheme>>,
    /// Who asks a person.
    pub(crate) chooser: ChooserMode,
    /// An identity the client fixed (id or unique prefix).
    pub(crate) id: Option<String>,
    /// Whether to list the excluded identities.
    pub(crate) explain: bool,
}

impl Agent {
    /// Decides what to send to the server `request` describes, and
    /// audits the decision.
    ///
    /// Blocks when a person must choose and the agent's chooser asks.
    pub(crate) fn select(
        &self,
        peer: &Peer,
        request: SelectRequest,
    ) -> Result<Selection, ServiceError> {
        let fixed = match &request.id {
            Some(id) => Some(self.full_id(id)?),
            None => None,
        };
        let query = Query {
            origin: request.origin,
            server: ServerRequest {
                ca_names: request.ca_names,
                schemes: request.schemes,
            },
            chooser: request.chooser,
            fixed,
            explain: request.explain,
        };
        let selection = self.inner.selector.select(&self.inner.store, query);
        if self.inner.audit.wants(Action::Select) {
            let mut record = Record::new(Action::Select, peer, selection.decision.as_str())
                .origin(&selection.origin)
                .detail(selection.basis.as_str());
            if let Some(identity) = &selection.identity {
                record = record.identity(&identity.id, Some(&identity.subject));
            }
            self.inner.audit.record(record);
        }
        tracing::info!(
            origin = %selection.origin,
            decision = selection.decision.as_str(),
            basis = selection.basis.as_str(),
            identity = selection.identity.as_ref().map(|i| i.id.as_str()),
            candidates = selection.candidates.len(),
            "selection"
        );
        Ok(selection)
    }

    /// Records a person's answer to a prompt for `origin`: identity `id`
    /// or, with `None`, no certificate. Remembered only with `remember`;
    /// returns the record then.
    pub(crate) fn choose(
        &self,
        origin: &Origin,
        id: Option<&str>,
        remember: bool,
    ) -> Result<Option<RememberedChoice>, ServiceError> {
        let choice = match id {
            Some(id) => Choice::Identity(self.full_id(id)?),
            None => Choice::SendNone,
        };
        if !remember {
            return Ok(None);
        }
        Ok(self.inner.selector.remember(origin, choice)?)
    }

    /// The choices remembered per origin, with subjects from the store.
    pub(crate) fn decisions(&self) -> Vec<RememberedChoice> {
        self.inner.selector.remembered(&self.inner.store.read())
    }

    /// Forgets the choice for `origin`, or every choice; returns the
    /// origins forgotten.
    pub(crate) fn forget(&self, origin: Option<&Origin>) -> Result<Vec<String>, ServiceError> {
        Ok(self.inner.selector.forget(origin)?)
    }

    /// The full id of the identity `id` (full id or unique prefix) names.
    fn full_id(&self, id: &str) -> Result<String, ServiceError> {
        let now = time::OffsetDateTime::now_utc();
        let identity = self.inner.store.read().get(id, now)?.identity;
        Ok(identity.id)
    }
}
