//! Signing with a private key on its token.
//!
//! A token's [`SlotState`] remembers the handles of the private keys
//! already found, with their `CKA_ALWAYS_AUTHENTICATE`, so a signature is
//! one `C_SignInit` and one `C_Sign` once the key has been used. A handle
//! the token no longer takes (see [`Meaning::stale_handle`]) is
//! forgotten and the key looked up again.
//!
//! Keys with `CKA_ALWAYS_AUTHENTICATE`: `C_SignInit`, then
//! `C_Login(CKU_CONTEXT_SPECIFIC)` (a PIN asked as
//! [`PinKind::ContextSpecific`](crate::pin::PinKind::ContextSpecific),
//! see [`login`](super::login)), then a single-part `C_Sign` through the
//! module's function list (see [`raw`](super::raw): cryptoki
//! 0.12 has no single-part `C_Sign` without its own `C_SignInit`).

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;

use super::found::KeyLocation;
use super::mechanisms::Plan;
use super::rv::Meaning;
use super::sign_error::SignError;
use super::slot::{FoundKey, Lease, SlotState};
use super::tokens::{ModuleEntry, Tokens};

impl Tokens {
    /// Signs `data` (a message, or a client's digest: `plan` knows which)
    /// with `key` on `state`'s token as `plan` says, on a session leased
    /// from its pool.
    pub(super) fn sign_in(
        &self,
        entry: &ModuleEntry,
        state: &SlotState,
        key: &KeyLocation,
        plan: &Plan,
        data: &[u8],
        prompted: &mut bool,
    ) -> Result<Vec<u8>, SignError> {
        tracing::trace!(token = %state.token.label, mechanism = %plan.mechanism_type(), "signing");
        let input = plan.input(data);
        let mut lease = state.lease()?;
        let result = self.sign_on(entry, state, &mut lease, key, plan, &input, prompted);
        if result.as_ref().is_err_and(SignError::ends_session) {
            lease.discard();
        }
        drop(lease);
        plan.output(result?).map_err(|err| SignError::BadSignature {
            token: state.token.label.clone(),
            detail: err.to_string(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_on(
        &self,
        entry: &ModuleEntry,
        state: &SlotState,
        lease: &mut Lease<'_>,
        key: &KeyLocation,
        plan: &Plan,
        input: &[u8],
        prompted: &mut bool,
    ) -> Result<Vec<u8>, SignError> {
        if let Some(found) = state.cached_key(&key.key_id) {
            match self.sign_with(entry, state, lease, found, plan, input, prompted) {
                Err(err) if err.meaning().stale_handle() => state.forget_key(&key.key_id),
                other => return other,
            }
        }
        let found = self.find_key(state, lease, &key.key_id, prompted)?;
        let result = match self.sign_with(entry, state, lease, found, plan, input, prompted) {
            // Some tokens show private keys before login but refuse to use
            // them: log in and try once more.
            // (`login_user` does nothing when another request logged in
            // meanwhile.)
            Err(err) if err.meaning() == Meaning::NotLoggedIn => {
                self.login_user(state, None, prompted)?;
                self.sign_with(entry, state, lease, found, plan, input, prompted)
            }
            other => other,
        };
        if result.is_ok() {
            state.remember_key(&key.key_id, found);
        }
        result
    }

    /// The private key with `key_id`, logging in first when it is not
    /// visible and the token is not logged in.
    fn find_key(
        &self,
        state: &SlotState,
        lease: &Lease<'_>,
        key_id: &[u8],
        prompted: &mut bool,
    ) -> Result<FoundKey, SignError> {
        if let Some(found) = state.find_key(lease.session(), key_id)? {
            return Ok(found);
        }
        // Not visible: log in unless logged in - which another request may
        // have done since the search above, so search again either way.
        self.login_user(state, None, prompted)?;
        if let Some(found) = state.find_key(lease.session(), key_id)? {
            return Ok(found);
        }
        Err(SignError::KeyNotFound {
            token: state.token.label.clone(),
            key_id: hex::encode(key_id),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_with(
        &self,
        entry: &ModuleEntry,
        state: &SlotState,
        lease: &mut Lease<'_>,
        key: FoundKey,
        plan: &Plan,
        input: &[u8],
        prompted: &mut bool,
    ) -> Result<Vec<u8>, SignError> {
        let mechanism = plan.mechanism();
        let session = lease.session();
        if !key.always_authenticate {
            return session
                .sign(&mechanism, key.handle, input)
                .map_err(|source| state.error("C_Sign", source));
        }
        let raw = entry
            .raw_sign()
            .map_err(|detail| SignError::AlwaysAuthenticate {
                token: state.token.label.clone(),
                detail: detail.to_owned(),
            })?;
        session
            .sign_init(&mechanism, key.handle)
            .map_err(|source| state.error("C_SignInit", source))?;
        // An operation is active from here: whatever fails, the session
        // is closed rather than reused.
        let result = self.context_login(state, session, prompted).and_then(|()| {
            raw.sign(session, input)
                .map_err(|source| state.error("C_Sign", source))
        });
        if result.is_err() {
            lease.discard();
        }
        result
    }
}

impl SlotState {
    /// The private key with `key_id`, if the session sees one.
    fn find_key(&self, session: &Session, key_id: &[u8]) -> Result<Option<FoundKey>, SignError> {
        let handles = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(key_id.to_vec()),
            ])
            .map_err(|source| self.error("C_FindObjects", source))?;
        let Some(&handle) = handles.first() else {
            return Ok(None);
        };
        if handles.len() > 1 {
            tracing::warn!(token = %self.token.label, key_id = %hex::encode(key_id), count = handles.len(), "several private keys share a CKA_ID; using the first");
        }
        let always_authenticate = match session
            .get_attributes(handle, &[AttributeType::AlwaysAuthenticate])
        {
            Ok(attributes) => attributes
                .iter()
                .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true))),
            Err(err) => {
                tracing::debug!(token = %self.token.label, error = %err, "CKA_ALWAYS_AUTHENTICATE unreadable; assuming false");
                false
            }
        };
        Ok(Some(FoundKey {
            handle,
            always_authenticate,
        }))
    }

    fn cached_key(&self, key_id: &[u8]) -> Option<FoundKey> {
        self.keys.lock().get(key_id).copied()
    }

    fn remember_key(&self, key_id: &[u8], key: FoundKey) {
        self.keys.lock().insert(key_id.to_vec(), key);
    }

    fn forget_key(&self, key_id: &[u8]) {
        self.keys.lock().remove(key_id);
    }
}
