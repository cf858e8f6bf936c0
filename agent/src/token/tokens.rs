//! The loaded modules, and the public face of signing, login and logout
//! on their tokens.
//!
//! [`Tokens`] owns the [`Module`]s. For every token it signs on, it keeps
//! a [`SlotState`] (sessions, login, key handles: see
//! [`slot`](super::slot)), found by slot and checked by serial. A request
//! whose sessions turn out dead (the token was removed or re-inserted)
//! drops the state and starts once more on a fresh one, unless a PIN was
//! asked already. What happens inside is in [`sign`](super::sign),
//! [`login`](super::login), and, for what each module answer means,
//! [`rv`](super::rv).
//!
//! Each module sits behind a read-write lock: read-held by every
//! operation on it, write-held to re-initialise it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use cryptoki::context::Pkcs11;
use p11agent_proto::{DigestMechanism, HashAlgorithm, Scheme, Token};
use parking_lot::{Mutex, RwLock};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use super::error::TokenError;
use super::found::{KeyLocation, Presence};
use super::isolated::wire::{Reply, Request, WireTokenError};
use super::isolated::{Crash, Isolated};
use super::mechanisms::{Checked, Plan};
use super::module::Module;
use super::raw::RawSign;
use super::sign_error::SignError;
use super::slot::{Logout, SlotState};
use crate::pin::{NoPin, PinSource};

/// The loaded PKCS#11 modules, with what signing needs per token:
/// sessions, login state and key handles. Every method blocks (PKCS#11
/// calls, PIN prompts): never call them on an async worker as is.
pub(crate) struct Tokens {
    modules: Vec<Entry>,
    pub(super) pins: Arc<dyn PinSource>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "modules",
                &self.modules.iter().map(Entry::name).collect::<Vec<_>>(),
            )
            .field("pins", &self.pins)
            .finish()
    }
}

/// A module as [`Tokens::new`] takes it: loaded in this process, or in a
/// helper process of its own (see [`isolated`](super::isolated)).
#[derive(Debug)]
// One per module, made at start: the size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Loaded {
    /// Loaded here: a crash in it is the agent's.
    Local(Module),
    /// Loaded by a helper process, which the agent restarts when it dies.
    Isolated(Isolated),
}

impl Loaded {
    /// Loads the module at `path`, in a helper process when `isolate`,
    /// and scans every token it has.
    pub(crate) fn load_and_scan(
        path: &Path,
        isolate: bool,
    ) -> Result<(Loaded, Vec<super::FoundToken>), TokenError> {
        if !isolate {
            let module = Module::load(path)?;
            let found = module.scan()?;
            return Ok((Loaded::Local(module), found));
        }
        let helper = Isolated::start(path).map_err(|crash| crash.at(path))?;
        match helper.call(&Request::Scan, &NoPin) {
            Ok(Reply::Scanned(found)) => Ok((Loaded::Isolated(helper), found)),
            reply => Err(token_failure(path, reply)),
        }
    }

    /// The module's path.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Loaded::Local(module) => module.path(),
            Loaded::Isolated(helper) => helper.path(),
        }
    }
}

/// One module and what the agent keeps for it.
// One per module, made at start: the size does not matter.
#[allow(clippy::large_enum_variant)]
enum Entry {
    Local(ModuleEntry),
    Isolated {
        /// The module path as [`Token::module`] spells it.
        name: String,
        helper: Isolated,
    },
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Local(entry) => &entry.name,
            Entry::Isolated { name, .. } => name,
        }
    }
}

/// One module, and the state of the tokens signed on in its slots.
pub(super) struct ModuleEntry {
    /// Before `module`, so that dropping an entry closes the sessions
    /// while the module can still answer, then finalises it.
    slots: Mutex<HashMap<u64, Arc<SlotState>>>,
    /// Read-locked by every operation that calls into the module (or
    /// drops its sessions), write-locked to re-initialise it: so a
    /// re-initialisation waits for operations in flight and none starts
    /// during it.
    module: RwLock<Module>,
    /// The module path as [`Token::module`] spells it.
    name: String,
    path: std::path::PathBuf,
    raw_sign: OnceLock<Result<RawSign, String>>,
}

impl Tokens {
    /// Takes over `modules`; PINs come from `pins`.
    pub(crate) fn new(modules: Vec<Loaded>, pins: Arc<dyn PinSource>) -> Tokens {
        let modules = modules
            .into_iter()
            .map(|loaded| match loaded {
                Loaded::Local(module) => Entry::Local(ModuleEntry {
                    name: module.path().display().to_string(),
                    path: module.path().to_path_buf(),
                    module: RwLock::new(module),
                    slots: Mutex::new(HashMap::new()),
                    raw_sign: OnceLock::new(),
                }),
                Loaded::Isolated(helper) => Entry::Isolated {
                    name: helper.path().display().to_string(),
                    helper,
                },
            })
            .collect();
        Tokens { modules, pins }
    }

    /// How many modules there are; they are numbered from 0 in the
    /// order given to [`Tokens::new`].
    pub(crate) fn module_count(&self) -> usize {
        self.modules.len()
    }

    /// The path of module `index` as [`Token::module`] spells it.
    pub(crate) fn module_name(&self, index: usize) -> Option<&str> {
        self.modules.get(index).map(Entry::name)
    }

    /// Whether module `index` runs in a helper process.
    pub(crate) fn is_isolated(&self, index: usize) -> bool {
        matches!(self.modules.get(index), Some(Entry::Isolated { .. }))
    }

    /// Runs `f` on module `index`, loaded in this process, while no
    /// re-initialisation can run.
    pub(crate) fn with_module<T>(
        &self,
        index: usize,
        f: impl FnOnce(&Module) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        match self.modules.get(index) {
            Some(Entry::Local(entry)) => f(&entry.module.read()),
            Some(Entry::Isolated { name, .. }) => Err(TokenError::Remote(format!(
                "PKCS#11 module {name} runs in a helper process"
            ))),
            None => Err(TokenError::NoSuchModule(index)),
        }
    }

    /// The tokens present in module `index` now, and the slots whose
    /// token it says is gone (see [`Module::present_tokens`]).
    pub(crate) fn present_tokens(&self, index: usize) -> Result<Presence, TokenError> {
        match self.modules.get(index) {
            Some(Entry::Isolated { helper, .. }) => {
                match helper.call(&Request::PresentTokens, &NoPin) {
                    Ok(Reply::Present(presence)) => Ok(presence),
                    reply => Err(token_failure(helper.path(), reply)),
                }
            }
            _ => self.with_module(index, Module::present_tokens),
        }
    }

    /// The fingerprint of the objects on the token in `slot` of module
    /// `index` (see [`Module::object_fingerprint`]).
    pub(crate) fn object_fingerprint(&self, index: usize, slot: u64) -> Result<u64, TokenError> {
        match self.modules.get(index) {
            Some(Entry::Isolated { helper, .. }) => {
                match helper.call(&Request::ObjectFingerprint(slot), &NoPin) {
                    Ok(Reply::Fingerprint(fingerprint)) => Ok(fingerprint),
                    reply => Err(token_failure(helper.path(), reply)),
                }
            }
            _ => self.with_module(index, |module| module.object_fingerprint(slot)),
        }
    }

    /// Scans the token in `slot` of module `index`.
    pub(crate) fn scan_slot(
        &self,
        index: usize,
        slot: u64,
    ) -> Result<super::FoundToken, TokenError> {
        match self.modules.get(index) {
            Some(Entry::Isolated { helper, .. }) => {
                match helper.call(&Request::ScanSlot(slot), &NoPin) {
                    Ok(Reply::ScannedSlot(found)) => Ok(found),
                    reply => Err(token_failure(helper.path(), reply)),
                }
            }
            _ => self.with_module(index, |module| module.scan_slot(slot)),
        }
    }

    /// Scans `token` again, e.g. after a login made its private keys
    /// visible.
    pub(crate) fn rescan(&self, token: &Token) -> Result<super::FoundToken, TokenError> {
        let index = self
            .modules
            .iter()
            .position(|m| m.name() == token.module)
            .ok_or_else(|| TokenError::NotLoaded(token.module.clone()))?;
        self.scan_slot(index, token.slot)
    }

    /// Finalises and initialises module `index` again (see
    /// [`Module::reinitialize`]): waits for the operations in flight on it,
    /// drops its sessions and logins, and holds new operations back until
    /// it is done. The other modules are not touched.
    pub(crate) fn reinitialize(&self, index: usize) -> Result<(), TokenError> {
        match self.modules.get(index) {
            Some(Entry::Local(entry)) => {
                let mut module = entry.module.write();
                // Close the sessions while the module can still answer.
                entry.slots.lock().clear();
                module.reinitialize()
            }
            Some(Entry::Isolated { helper, .. }) => {
                match helper.call(&Request::Reinitialize, &NoPin) {
                    Ok(Reply::Done) => Ok(()),
                    reply => Err(token_failure(helper.path(), reply)),
                }
            }
            None => Err(TokenError::NoSuchModule(index)),
        }
    }

    /// Signs `message` with the key at `key` under `scheme` and returns
    /// the signature as TLS sends it (ECDSA in DER).
    ///
    /// Refuses, before touching the token, a scheme the identity does not
    /// offer or its key type and curve cannot make; before any PIN is
    /// asked or key used, one the token has no mechanism for. Logs in when the key is not usable yet
    /// (asking the [`PinSource`] once), and makes the context-specific
    /// login a `CKA_ALWAYS_AUTHENTICATE` key needs.
    pub(crate) fn sign(
        &self,
        key: &KeyLocation,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let checked = Plan::for_key(key, scheme)?;
        match self.entry(&key.token)? {
            Entry::Local(entry) => self.sign_checked(entry, checked, message),
            Entry::Isolated { helper, .. } => self.remote_sign(
                helper,
                &key.token,
                &Request::Sign {
                    key: key.clone(),
                    scheme,
                    message: message.to_vec(),
                },
            ),
        }
    }

    /// Signs `digest`, which `hash` made, with the key at `key` under
    /// `mechanism` through the token's raw mechanism, as [`Tokens::sign`]
    /// signs a message: the same checks before the token is touched (and
    /// a digest of the wrong length refused), the same login.
    pub(crate) fn sign_digest(
        &self,
        key: &KeyLocation,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let checked = Plan::for_digest(key, mechanism, hash, digest.len())?;
        match self.entry(&key.token)? {
            Entry::Local(entry) => self.sign_checked(entry, checked, digest),
            Entry::Isolated { helper, .. } => self.remote_sign(
                helper,
                &key.token,
                &Request::SignDigest {
                    key: key.clone(),
                    mechanism,
                    hash,
                    digest: digest.to_vec(),
                },
            ),
        }
    }

    /// Signs `data` as `checked` says, on its key's token.
    fn sign_checked(
        &self,
        entry: &ModuleEntry,
        checked: Checked<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let key = checked.key();
        let started = Instant::now();
        let signature = self.with_state(entry, &key.token, |state, prompted| {
            let plan = checked.plan(&state.mechanisms)?;
            self.sign_in(entry, state, key, &plan, data, prompted)
        })?;
        tracing::debug!(
            token = %key.token.label,
            signed = %checked,
            elapsed_us = started.elapsed().as_micros(),
            "signed"
        );
        Ok(signature)
    }

    /// Has the helper make a signature.
    fn remote_sign(
        &self,
        helper: &Isolated,
        token: &Token,
        request: &Request,
    ) -> Result<Vec<u8>, SignError> {
        match helper.call(request, &*self.pins) {
            Ok(Reply::Signature(signature)) => Ok(signature),
            reply => Err(sign_failure(token, reply)),
        }
    }

    /// Logs in to `token` as its user with `pin`, or, when `pin` is
    /// `None`, with a PIN from the [`PinSource`] (none for a token with a
    /// protected authentication path, whose reader asks). Already being
    /// logged in is success.
    pub(crate) fn login(&self, token: &Token, pin: Option<SecretString>) -> Result<(), SignError> {
        let entry = match self.entry(token)? {
            Entry::Local(entry) => entry,
            Entry::Isolated { helper, .. } => {
                let request = Request::Login {
                    token: token.clone(),
                    pin: pin.map(|pin| Zeroizing::new(pin.expose_secret().to_owned())),
                };
                return match helper.call(&request, &*self.pins) {
                    Ok(Reply::Done) => Ok(()),
                    reply => Err(sign_failure(token, reply)),
                };
            }
        };
        let mut pin = pin;
        self.with_state(entry, token, |state, prompted| {
            self.login_user(state, pin.take(), prompted)
        })
    }

    /// Logs out of `token`; returns whether it was logged in. A token the
    /// agent never signed or logged in on, or that is gone, was not.
    pub(crate) fn logout(&self, token: &Token) -> Result<bool, SignError> {
        let entry = match self.entry(token)? {
            Entry::Local(entry) => entry,
            Entry::Isolated { helper, .. } => {
                return match helper.call(&Request::Logout(token.clone()), &*self.pins) {
                    Ok(Reply::LoggedOut(was)) => Ok(was),
                    reply => Err(sign_failure(token, reply)),
                };
            }
        };
        let _module = entry.module.read();
        let Some(state) = entry.existing(token) else {
            return Ok(false);
        };
        match state.logout()? {
            Logout::SessionsDead => {
                entry.evict(&state);
                Ok(false)
            }
            Logout::NotLoggedIn => Ok(false),
            Logout::Done => {
                tracing::info!(token = %token.label, "logged out");
                Ok(true)
            }
        }
    }

    /// Forgets what the agent holds for `token` (sessions, key handles),
    /// e.g. when it was removed. Its login ends with its last session.
    pub(crate) fn forget(&self, token: &Token) {
        match self.entry(token) {
            Ok(Entry::Local(entry)) => {
                let _module = entry.module.read();
                if let Some(state) = entry.existing(token) {
                    entry.evict(&state);
                }
            }
            Ok(Entry::Isolated { helper, .. }) => {
                // A helper that died forgot everything already.
                let _ = helper.call(&Request::Forget(token.clone()), &NoPin);
            }
            Err(_) => {}
        }
    }

    fn entry(&self, token: &Token) -> Result<&Entry, SignError> {
        self.modules
            .iter()
            .find(|m| m.name() == token.module)
            .ok_or_else(|| SignError::TokenAbsent {
                token: token.label.clone(),
                detail: format!("its module {} is not loaded", token.module),
            })
    }

    /// Runs `f` on the token's state; when it fails because the state's
    /// sessions are dead (token removed or re-inserted) and no PIN was
    /// asked yet, drops the state and runs `f` once more on a fresh one.
    fn with_state<T>(
        &self,
        entry: &ModuleEntry,
        token: &Token,
        mut f: impl FnMut(&SlotState, &mut bool) -> Result<T, SignError>,
    ) -> Result<T, SignError> {
        let module = entry.module.read();
        let mut prompted = false;
        let mut retried = false;
        loop {
            let state = entry.state(module.pkcs11(), token)?;
            match f(&state, &mut prompted) {
                Err(err) if err.ends_session() && !retried && !prompted => {
                    tracing::debug!(token = %token.label, error = %err, "sessions of the token are dead; starting over");
                    entry.evict(&state);
                    retried = true;
                }
                Err(err) if err.ends_session() => {
                    entry.evict(&state);
                    return Err(err.removed_if_gone());
                }
                other => return other.map_err(SignError::removed_if_gone),
            }
        }
    }
}

/// What a helper's reply other than the expected one means for a scan,
/// poll or re-initialisation.
fn token_failure(path: &Path, reply: Result<Reply, Crash>) -> TokenError {
    match reply {
        Err(crash) => crash.at(path),
        Ok(Reply::TokenFailed(WireTokenError::TokenNotInitialized { slot })) => {
            TokenError::TokenNotInitialized {
                path: path.to_path_buf(),
                slot,
            }
        }
        Ok(Reply::TokenFailed(WireTokenError::Other(text))) => TokenError::Remote(text),
        Ok(other) => TokenError::Remote(format!(
            "the helper of PKCS#11 module {} answered out of turn: {other:?}",
            path.display()
        )),
    }
}

/// What a helper's reply other than the expected one means for a
/// signature, login or logout on `token`.
fn sign_failure(token: &Token, reply: Result<Reply, Crash>) -> SignError {
    match reply {
        Ok(Reply::SignFailed(error)) => error,
        Err(Crash(detail)) => SignError::ModuleCrashed {
            token: token.label.clone(),
            detail,
        },
        Ok(Reply::TokenFailed(failure)) => SignError::ModuleCrashed {
            token: token.label.clone(),
            detail: format!("{failure:?}"),
        },
        Ok(other) => SignError::ModuleCrashed {
            token: token.label.clone(),
            detail: format!("its helper answered out of turn ({other:?})"),
        },
    }
}

impl Crash {
    /// The crash as a failure of the module at `path`.
    fn at(self, path: &Path) -> TokenError {
        TokenError::HelperFailed {
            path: path.to_path_buf(),
            detail: self.0,
        }
    }
}

impl ModuleEntry {
    /// The state of the token `token` names, made (after checking the
    /// slot holds that token) when there is none.
    fn state(&self, pkcs11: &Pkcs11, token: &Token) -> Result<Arc<SlotState>, SignError> {
        if let Some(state) = self.existing(token) {
            return Ok(state);
        }
        let made = Arc::new(SlotState::open(pkcs11, token)?);
        let mut slots = self.slots.lock();
        match slots.get(&token.slot) {
            // Another thread made one meanwhile: use it, drop ours.
            Some(state) if state.token.serial == token.serial => Ok(Arc::clone(state)),
            _ => {
                slots.insert(token.slot, Arc::clone(&made));
                Ok(made)
            }
        }
    }

    fn existing(&self, token: &Token) -> Option<Arc<SlotState>> {
        self.slots
            .lock()
            .get(&token.slot)
            .filter(|state| state.token.serial == token.serial)
            .cloned()
    }

    /// Drops `state` (if it is still the slot's): its sessions close as
    /// soon as no request uses them.
    fn evict(&self, state: &Arc<SlotState>) {
        let mut slots = self.slots.lock();
        if slots
            .get(&state.token.slot)
            .is_some_and(|s| Arc::ptr_eq(s, state))
        {
            slots.remove(&state.token.slot);
        }
    }

    /// The module's own `C_Sign`, loaded on first use.
    pub(super) fn raw_sign(&self) -> Result<&RawSign, &str> {
        self.raw_sign
            .get_or_init(|| RawSign::load(&self.path))
            .as_ref()
            .map_err(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn tokens_is_send_and_sync() {
        assert_send_sync::<Tokens>();
    }
}
