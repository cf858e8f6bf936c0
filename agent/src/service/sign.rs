//! A signature, from the identity's id to the audit line: of a message
//! (`sign`), or of a digest the client made (`sign_digest`).
//!
//! The path of both through the service, in order: find the identity and
//! its key (one store lookup), check the request is admitted — a
//! message by the key's purpose, a digest by the digest policy — check
//! its token is present, ask the person when the identity needs each
//! signature confirmed, sign on the token (which checks the scheme or
//! mechanism against the key before touching the token), note the
//! token's last use for the idle logout, and record one audit line
//! whatever the outcome.

use std::fmt;

use p11agent_proto::{DigestMechanism, HashAlgorithm, Scheme};

use super::agent::{Agent, Caller};
use super::audit::{Action, Record};
use super::error::ServiceError;

/// What is to be signed.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    /// A message, hashed as the TLS scheme says.
    Message { scheme: Scheme, message: &'a [u8] },
    /// A digest the client made.
    Digest {
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: &'a [u8],
    },
}

impl fmt::Display for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Message { scheme, message } => write!(f, "{scheme}, {} bytes", message.len()),
            Input::Digest {
                mechanism, hash, ..
            } => write!(f, "{} over a {} digest", mechanism.as_str(), hash.as_str()),
        }
    }
}

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
        self.signature(caller, id, Input::Message { scheme, message })
    }

    /// Signs `digest`, which `hash` made, with the identity `id` under
    /// `mechanism`, when the digest policy admits the caller's program
    /// for the identity; returns the signature (ECDSA in DER, as
    /// [`Agent::sign`]).
    ///
    /// Blocks, as [`Agent::sign`].
    pub(crate) fn sign_digest(
        &self,
        caller: &Caller<'_>,
        id: &str,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        self.signature(
            caller,
            id,
            Input::Digest {
                mechanism,
                hash,
                digest,
            },
        )
    }

    /// The signature of `input`, with its audit line and, for a refusal,
    /// its log line.
    fn signature(
        &self,
        caller: &Caller<'_>,
        id: &str,
        input: Input<'_>,
    ) -> Result<Vec<u8>, ServiceError> {
        let mut found = None;
        let result = self.signature_inner(caller, id, input, &mut found);
        if let Err(e) = &result {
            // A program refused by the digest policy may be one the user
            // wants to allow, and the line says how: it must stand out.
            if matches!(e, ServiceError::DigestNotAllowed(_)) {
                tracing::warn!(identity = id, signing = %input, "{e}");
            } else {
                tracing::info!(identity = id, signing = %input, result = (self.inner.error_code)(e).as_str(), message = %e, "signature refused");
            }
        }
        let action = match input {
            Input::Message { .. } => Action::Sign,
            Input::Digest { .. } => Action::SignDigest,
        };
        if self.inner.audit.wants(action) {
            self.inner
                .audit
                .record(self.audit_record(caller, id, input, &result, found.as_ref()));
        }
        result
    }

    /// The audit record of a signature's `result`.
    fn audit_record(
        &self,
        caller: &Caller<'_>,
        id: &str,
        input: Input<'_>,
        result: &Result<Vec<u8>, ServiceError>,
        found: Option<&(String, String)>,
    ) -> Record {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => (self.inner.error_code)(e).as_str(),
        };
        let record = match input {
            Input::Message { scheme, message } => Record::new(Action::Sign, caller.peer, outcome)
                .scheme(scheme.as_str())
                .message(message),
            Input::Digest {
                mechanism,
                hash,
                digest,
            } => Record::new(Action::SignDigest, caller.peer, outcome).digest(
                mechanism.as_str(),
                hash.as_str(),
                digest,
            ),
        };
        let record = match found {
            Some((full_id, subject)) => record.identity(full_id, Some(subject)),
            None => record.identity(id, None),
        };
        match result {
            Err(e) => record.detail(e.to_string()),
            Ok(_) => record,
        }
    }

    /// The signature, or why not; sets `found` to the identity's full id
    /// and subject once it is found, for the audit line.
    fn signature_inner(
        &self,
        caller: &Caller<'_>,
        id: &str,
        input: Input<'_>,
        found: &mut Option<(String, String)>,
    ) -> Result<Vec<u8>, ServiceError> {
        let now = time::OffsetDateTime::now_utc();
        let signing = self.inner.store.read().signing_key(id, now)?;
        let subject = found.insert((signing.id, signing.subject)).1.clone();
        let key = signing
            .key
            .ok_or_else(|| ServiceError::NoPrivateKey { id: id.to_owned() })?;
        match input {
            Input::Message { message, .. } => self.inner.purposes.of(&key.id).allows(message)?,
            Input::Digest { .. } => {
                self.inner
                    .digest_policy
                    .admits(caller.peer, &key.id, &subject)?;
            }
        }
        if !key.present {
            return Err(ServiceError::TokenAbsent(Box::new(key.token)));
        }
        if self.inner.purposes.needs_confirmation(&key.id) {
            self.confirm(caller, &subject, input)?;
        }
        let signature = self.on_token(caller, &key.token, |tokens| match input {
            Input::Message { scheme, message } => tokens.sign(&key, scheme, message),
            Input::Digest {
                mechanism,
                hash,
                digest,
            } => tokens.sign_digest(&key, mechanism, hash, digest),
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
        input: Input<'_>,
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
            "{who} (uid {}) asks to sign with\n{subject}\n({input}).\n\nAllow it?",
            peer.uid
        );
        match pinentry.confirm(&text) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::Denied),
            Err(e) => Err(ServiceError::ConfirmationFailed(e)),
        }
    }
}
