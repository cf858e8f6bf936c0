//! A signature, from the identity's id to the audit line.
//!
//! The path of a `sign` request through the service, in order: find the
//! identity and its key (one store lookup), check the key's purpose
//! allows the message, check its token is present, ask the person when
//! the identity needs each signature confirmed, sign on the token (which
//! checks the scheme against the key before touching the token), note the
//! token's last use for the idle logout, and record one audit line
//! whatever the outcome.

use p11agent_proto::Scheme;

use super::agent::{Agent, Caller};
use super::audit::{Action, Record};
use super::error::ServiceError;

impl Agent {
    /// Signs `message` with the identity `id` (full id or unique prefix)
    /// under `scheme`, and returns the signature as TLS sends it.
    ///
    /// Blocks: the token may be slow, ask for a PIN, or the person may be
    /// asked to confirm.
    pub(crate) fn sign(
        &self,
        caller: &Caller<'_>,
        id: &str,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        let mut found = None;
        let result = self.sign_inner(caller, id, scheme, message, &mut found);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => (self.inner.error_code)(e).as_str(),
        };
        let mut record = Record::new(Action::Sign, caller.peer, outcome)
            .scheme(scheme.as_str())
            .message(message);
        record = match &found {
            Some((full_id, subject)) => record.identity(full_id, Some(subject)),
            None => record.identity(id, None),
        };
        if let Err(e) = &result {
            tracing::info!(identity = id, %scheme, result = outcome, message = %e, "signature refused");
            record = record.detail(e.to_string());
        }
        self.inner.audit.record(record);
        result
    }

    /// The signature, or why not; sets `found` to the identity's full id
    /// and subject once it is found, for the audit line.
    fn sign_inner(
        &self,
        caller: &Caller<'_>,
        id: &str,
        scheme: Scheme,
        message: &[u8],
        found: &mut Option<(String, String)>,
    ) -> Result<Vec<u8>, ServiceError> {
        let now = time::OffsetDateTime::now_utc();
        let signing = self.inner.store.read().signing_key(id, now)?;
        *found = Some((signing.id, signing.subject));
        let key = signing
            .key
            .ok_or_else(|| ServiceError::NoPrivateKey { id: id.to_owned() })?;
        self.inner.purposes.of(&key.id).allows(message)?;
        if !key.present {
            return Err(ServiceError::TokenAbsent(Box::new(key.token)));
        }
        if self.inner.purposes.needs_confirmation(&key.id) {
            let subject = found.as_ref().map_or("", |(_, subject)| subject.as_str());
            self.confirm(caller, subject, scheme, message.len())?;
        }
        let signature = self.on_token(caller, &key.token, |tokens| {
            tokens.sign(&key, scheme, message)
        })?;
        self.inner
            .last_use
            .lock()
            .insert(key.token, std::time::Instant::now());
        Ok(signature)
    }

    /// Asks the person to allow this signature (pinentry `CONFIRM`), for
    /// an identity configured with `confirm = true`.
    fn confirm(
        &self,
        caller: &Caller<'_>,
        subject: &str,
        scheme: Scheme,
        len: usize,
    ) -> Result<(), ServiceError> {
        let pinentry = self
            .inner
            .confirm_with
            .as_ref()
            .ok_or(ServiceError::NoConfirmation)?;
        let peer = caller.peer;
        let who = peer
            .exe
            .clone()
            .unwrap_or_else(|| format!("process {}", peer.pid.unwrap_or_default()));
        let text = format!(
            "{who} (uid {}) asks to sign with\n{subject}\n({scheme}, {len} bytes).\n\nAllow it?",
            peer.uid
        );
        match pinentry.confirm(&text) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::Denied),
            Err(e) => Err(ServiceError::ConfirmationFailed(e)),
        }
    }
}
