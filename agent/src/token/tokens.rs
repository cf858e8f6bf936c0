//! Signing, login and logout on the tokens of the loaded modules.
//!
//! [`Tokens`] owns the [`Module`]s. For every token it signs on, it keeps
//! a [`SlotState`]:
//!
//! - an *anchor* session that stays open while the token is present, so
//!   the token's login (which PKCS#11 ends when the process's last
//!   session on the token closes) survives pool sessions being closed
//!   after errors; logins and logouts go through it;
//! - a pool of at most [`POOL_SIZE`] read-only sessions for signatures:
//!   signatures on one token run in parallel on different sessions,
//!   signatures on different tokens never share a lock. A session is
//!   returned after use, or closed when it failed in a way that leaves it
//!   unusable (`CKR_SESSION_HANDLE_INVALID`, `CKR_DEVICE_REMOVED`, ...)
//!   or with an operation still active;
//! - the handles of the private keys already found (with their
//!   `CKA_ALWAYS_AUTHENTICATE`), so a signature is one `C_SignInit` and
//!   one `C_Sign` once the key has been used.
//!
//! A slot state belongs to one token serial. A new session first checks
//! that the slot still holds that serial; a session that finds the token
//! gone drops the whole state (sessions, login, key handles), and the
//! signature is tried once more from scratch, so a re-inserted card asks
//! for its PIN again and a different card in the slot answers
//! "token absent".
//!
//! PINs: asked from the [`PinSource`] only when a login is needed, passed
//! straight into `C_Login` and dropped (zeroized) right after; never
//! logged, stored or cached. A wrong PIN is never retried: the error
//! carries the token's PIN flags (few tries left, final try, locked).
//! Requests that queued behind a failed login share its failure instead
//! of trying again.
//!
//! Keys with `CKA_ALWAYS_AUTHENTICATE`: `C_SignInit`, then
//! `C_Login(CKU_CONTEXT_SPECIFIC)` (a PIN asked as
//! [`PinKind::ContextSpecific`]), then a single-part `C_Sign` through the
//! module's function list (see [`raw_sign`](super::raw_sign): cryptoki
//! 0.12 has no single-part `C_Sign` without its own `C_SignInit`).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use cryptoki::context::Pkcs11;
use cryptoki::error::Error as CryptokiError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use p11agent_proto::{Scheme, Token};
use parking_lot::{Condvar, Mutex, RwLock};
use secrecy::SecretString;

use super::error::TokenError;
use super::found::KeyLocation;
use super::mechanisms::{signing_mechanisms, Plan};
use super::module::Module;
use super::raw_sign::RawSign;
use super::rv::Meaning;
use super::scan::trim_padding;
use super::sign_error::SignError;
use crate::pin::{PinError, PinKind, PinRequest, PinSource};

/// Most sessions the agent opens for signatures on one token (besides the
/// one that holds its login).
pub const POOL_SIZE: usize = 4;

/// The loaded PKCS#11 modules, with what signing needs per token:
/// sessions, login state and key handles. Every method blocks (PKCS#11
/// calls, PIN prompts): call them from `spawn_blocking`.
pub struct Tokens {
    modules: Vec<ModuleEntry>,
    pins: Arc<dyn PinSource>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "modules",
                &self.modules.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .field("pins", &self.pins)
            .finish()
    }
}

struct ModuleEntry {
    /// Read-locked by every operation that calls into the module (or
    /// drops its sessions), write-locked to re-initialise it: so a
    /// re-initialisation waits for operations in flight and none starts
    /// during it.
    module: RwLock<Module>,
    /// The module path as [`Token::module`] spells it.
    name: String,
    path: std::path::PathBuf,
    slots: Mutex<HashMap<u64, Arc<SlotState>>>,
    raw_sign: OnceLock<Result<RawSign, String>>,
}

impl Tokens {
    /// Takes over `modules`; PINs come from `pins`.
    pub fn new(modules: Vec<Module>, pins: Arc<dyn PinSource>) -> Tokens {
        let modules = modules
            .into_iter()
            .map(|module| ModuleEntry {
                name: module.path().display().to_string(),
                path: module.path().to_path_buf(),
                module: RwLock::new(module),
                slots: Mutex::new(HashMap::new()),
                raw_sign: OnceLock::new(),
            })
            .collect();
        Tokens { modules, pins }
    }

    /// How many modules there are; they are numbered from 0 in the
    /// order given to [`Tokens::new`].
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    /// The path of module `index` as [`Token::module`] spells it.
    pub fn module_name(&self, index: usize) -> Option<&str> {
        self.modules.get(index).map(|m| m.name.as_str())
    }

    /// Runs `f` on module `index` while no re-initialisation can run.
    pub fn with_module<T>(
        &self,
        index: usize,
        f: impl FnOnce(&Module) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let entry = self
            .modules
            .get(index)
            .ok_or(TokenError::NoSuchModule(index))?;
        f(&entry.module.read())
    }

    /// Scans `token` again, e.g. after a login made its private keys
    /// visible.
    pub fn rescan(&self, token: &Token) -> Result<super::FoundToken, TokenError> {
        let entry = self
            .modules
            .iter()
            .find(|m| m.name == token.module)
            .ok_or_else(|| TokenError::NotLoaded(token.module.clone()))?;
        entry.module.read().scan_slot(token.slot)
    }

    /// Finalises and initialises module `index` again (see
    /// [`Module::reinitialize`]): waits for the operations in flight on it,
    /// drops its sessions and logins, and holds new operations back until
    /// it is done. The other modules are not touched.
    pub fn reinitialize(&self, index: usize) -> Result<(), TokenError> {
        let entry = self
            .modules
            .get(index)
            .ok_or(TokenError::NoSuchModule(index))?;
        let mut module = entry.module.write();
        // Close the sessions while the module can still answer.
        entry.slots.lock().clear();
        module.reinitialize()
    }

    /// Signs `message` with the key at `key` under `scheme` and returns
    /// the signature as TLS sends it (ECDSA in DER).
    ///
    /// Refuses, before any PIN is asked or key used, a scheme the identity
    /// does not offer, its key type and curve cannot make, or the token
    /// has no mechanism for (see [`Plan::for_key`]). Logs in when the key
    /// is not usable yet (asking the [`PinSource`] once), and makes the
    /// context-specific login a `CKA_ALWAYS_AUTHENTICATE` key needs.
    pub fn sign(
        &self,
        key: &KeyLocation,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let entry = self.entry(&key.token)?;
        let started = Instant::now();
        let signature = self.with_state(entry, &key.token, |state, prompted| {
            let plan = Plan::for_key(key, scheme, &state.mechanisms)?;
            self.sign_in(entry, state, key, &plan, message, prompted)
        })?;
        tracing::debug!(
            token = %key.token.label,
            %scheme,
            elapsed_us = started.elapsed().as_micros(),
            "signed"
        );
        Ok(signature)
    }

    /// Logs in to `token` as its user with `pin`, or, when `pin` is
    /// `None`, with a PIN from the [`PinSource`] (none for a token with a
    /// protected authentication path, whose reader asks). Already being
    /// logged in is success.
    pub fn login(&self, token: &Token, pin: Option<SecretString>) -> Result<(), SignError> {
        let entry = self.entry(token)?;
        let mut pin = pin;
        self.with_state(entry, token, |state, prompted| {
            self.login_user(state, pin.take(), prompted)
        })
    }

    /// Logs out of `token`; returns whether it was logged in. A token the
    /// agent never signed or logged in on, or that is gone, was not.
    pub fn logout(&self, token: &Token) -> Result<bool, SignError> {
        let entry = self.entry(token)?;
        let _module = entry.module.read();
        let Some(state) = entry.existing(token) else {
            return Ok(false);
        };
        let anchor = state.anchor.lock();
        let logged_in = match anchor.get_session_info() {
            Ok(info) => logged_in(info.session_state()),
            Err(err) if Meaning::of_error(&err).ends_session() => {
                drop(anchor);
                entry.evict(&state);
                return Ok(false);
            }
            Err(source) => return Err(state.error("C_GetSessionInfo", source)),
        };
        if !logged_in {
            return Ok(false);
        }
        match anchor.logout() {
            Ok(()) => {}
            Err(err) if Meaning::of_error(&err) == Meaning::NotLoggedIn => {}
            Err(source) => return Err(state.error("C_Logout", source)),
        }
        drop(anchor);
        state.keys.lock().clear();
        tracing::info!(token = %token.label, "logged out");
        Ok(true)
    }

    /// Forgets what the agent holds for `token` (sessions, key handles),
    /// e.g. when it was removed. Its login ends with its last session.
    pub fn forget(&self, token: &Token) {
        if let Ok(entry) = self.entry(token) {
            let _module = entry.module.read();
            if let Some(state) = entry.existing(token) {
                entry.evict(&state);
            }
        }
    }

    fn entry(&self, token: &Token) -> Result<&ModuleEntry, SignError> {
        self.modules
            .iter()
            .find(|m| m.name == token.module)
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

    fn sign_in(
        &self,
        entry: &ModuleEntry,
        state: &SlotState,
        key: &KeyLocation,
        plan: &Plan,
        message: &[u8],
        prompted: &mut bool,
    ) -> Result<Vec<u8>, SignError> {
        tracing::trace!(token = %state.token.label, mechanism = %plan.mechanism_type(), "signing");
        let input = plan.input(message);
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

    /// `C_Login(CKU_CONTEXT_SPECIFIC)` on `session`, whose signing
    /// operation is initialised.
    fn context_login(
        &self,
        state: &SlotState,
        session: &Session,
        prompted: &mut bool,
    ) -> Result<(), SignError> {
        let info = state.token_info()?;
        if info.user_pin_locked() {
            return Err(state.pin_locked());
        }
        let pin = if info.protected_authentication_path() {
            None
        } else {
            *prompted = true;
            Some(self.ask_pin(state, PinKind::ContextSpecific, pin_warning(&info))?)
        };
        let result = session.login(UserType::ContextSpecific, pin.as_ref());
        drop(pin);
        result.map_err(|err| self.login_failed(state, err))
    }

    /// Logs the token's user in, unless already logged in.
    fn login_user(
        &self,
        state: &SlotState,
        pin: Option<SecretString>,
        prompted: &mut bool,
    ) -> Result<(), SignError> {
        let seen = state.login_attempts.load(Ordering::SeqCst);
        let mut record = state.login.lock();
        if state.logged_in()? {
            return Ok(());
        }
        if pin.is_none() && record.attempts != seen {
            // Another request tried while this one waited, and failed:
            // share its outcome rather than try (and prompt) again.
            if let Some(failure) = &record.failure {
                return Err(failure.error(&state.token.label));
            }
        }
        record.attempts += 1;
        state
            .login_attempts
            .store(record.attempts, Ordering::SeqCst);
        let result = self.login_user_now(state, pin, prompted);
        record.failure = match &result {
            Ok(()) => None,
            Err(err) => LoginFailure::of(err),
        };
        result
    }

    fn login_user_now(
        &self,
        state: &SlotState,
        pin: Option<SecretString>,
        prompted: &mut bool,
    ) -> Result<(), SignError> {
        let info = state.token_info()?;
        if info.user_pin_locked() {
            return Err(state.pin_locked());
        }
        let pin = match pin {
            Some(pin) => Some(pin),
            None if info.protected_authentication_path() => None,
            None => {
                *prompted = true;
                Some(self.ask_pin(state, PinKind::User, pin_warning(&info))?)
            }
        };
        let result = state.anchor.lock().login(UserType::User, pin.as_ref());
        drop(pin);
        match result {
            Err(err) if Meaning::of_error(&err) != Meaning::AlreadyLoggedIn => {
                Err(self.login_failed(state, err))
            }
            _ => {
                tracing::info!(token = %state.token.label, "logged in");
                Ok(())
            }
        }
    }

    fn ask_pin(
        &self,
        state: &SlotState,
        kind: PinKind,
        warning: Option<String>,
    ) -> Result<SecretString, SignError> {
        let token = state.token.label.clone();
        self.pins
            .pin(&PinRequest {
                token: &state.token,
                kind,
                warning,
            })
            .map_err(|err| match err {
                PinError::Unavailable(detail) => SignError::PinRequired { token, detail },
                PinError::Cancelled => SignError::Cancelled { token },
                PinError::Failed(detail) => SignError::PinSourceFailed { token, detail },
            })
    }

    /// The error for a failed `C_Login`. A wrong PIN reads the token's
    /// flags again for what they now say about the tries left.
    fn login_failed(&self, state: &SlotState, err: CryptokiError) -> SignError {
        let token = state.token.label.clone();
        match Meaning::of_error(&err) {
            Meaning::PinIncorrect => match state.token_info() {
                Ok(info) if info.user_pin_locked() => SignError::PinLocked { token },
                Ok(info) => SignError::PinIncorrect {
                    token,
                    warning: pin_warning(&info),
                },
                Err(_) => SignError::PinIncorrect {
                    token,
                    warning: None,
                },
            },
            Meaning::PinLocked => SignError::PinLocked { token },
            Meaning::PinRefused => SignError::PinIncorrect {
                token,
                warning: Some("the token refused its length or characters".to_owned()),
            },
            _ => state.error("C_Login", err),
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

    fn raw_sign(&self) -> Result<&RawSign, &str> {
        self.raw_sign
            .get_or_init(|| RawSign::load(&self.path))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// One token in one slot, as long as it stays there.
struct SlotState {
    pkcs11: Pkcs11,
    slot: Slot,
    /// The token, as read from its slot when the state was made.
    token: Token,
    /// Its signing mechanisms the agent can use.
    mechanisms: Vec<MechanismType>,
    /// Holds the login; used for login, logout and the login state.
    anchor: Mutex<Session>,
    pool: Mutex<Pool>,
    returned: Condvar,
    keys: Mutex<HashMap<Vec<u8>, FoundKey>>,
    login: Mutex<LoginRecord>,
    /// `LoginRecord::attempts`, readable without waiting for the lock.
    login_attempts: AtomicU64,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    /// Sessions open, idle or leased.
    open: usize,
}

#[derive(Debug, Clone, Copy)]
struct FoundKey {
    handle: ObjectHandle,
    always_authenticate: bool,
}

#[derive(Default)]
struct LoginRecord {
    attempts: u64,
    failure: Option<LoginFailure>,
}

/// How the last user login failed, to share with requests that waited
/// for it.
#[derive(Debug, Clone)]
enum LoginFailure {
    Incorrect(Option<String>),
    Locked,
    Cancelled,
    Required(String),
}

impl LoginFailure {
    fn of(err: &SignError) -> Option<LoginFailure> {
        match err {
            SignError::PinIncorrect { warning, .. } => {
                Some(LoginFailure::Incorrect(warning.clone()))
            }
            SignError::PinLocked { .. } => Some(LoginFailure::Locked),
            SignError::Cancelled { .. } => Some(LoginFailure::Cancelled),
            SignError::PinRequired { detail, .. } => Some(LoginFailure::Required(detail.clone())),
            _ => None,
        }
    }

    fn error(&self, token: &str) -> SignError {
        let token = token.to_owned();
        match self {
            LoginFailure::Incorrect(warning) => SignError::PinIncorrect {
                token,
                warning: warning.clone(),
            },
            LoginFailure::Locked => SignError::PinLocked { token },
            LoginFailure::Cancelled => SignError::Cancelled { token },
            LoginFailure::Required(detail) => SignError::PinRequired {
                token,
                detail: detail.clone(),
            },
        }
    }
}

impl SlotState {
    /// Checks that the slot holds the token `token` names (by serial) and
    /// opens its anchor session.
    fn open(pkcs11: &Pkcs11, token: &Token) -> Result<SlotState, SignError> {
        let slot = Slot::try_from(token.slot).map_err(|_| SignError::TokenAbsent {
            token: token.label.clone(),
            detail: format!("slot {} does not exist", token.slot),
        })?;
        let present = read_token(pkcs11, slot, token)?;
        let anchor = pkcs11
            .open_ro_session(slot)
            .map_err(|source| SignError::pkcs11(&token.label, "C_OpenSession", source))?;
        let mechanisms = signing_mechanisms(pkcs11, slot)
            .map_err(|source| SignError::pkcs11(&token.label, "C_GetMechanismList", source))?;
        tracing::debug!(token = %token.label, slot = token.slot, ?mechanisms, "token opened for signing");
        Ok(SlotState {
            pkcs11: pkcs11.clone(),
            slot,
            token: Token {
                label: present.label,
                ..token.clone()
            },
            mechanisms,
            anchor: Mutex::new(anchor),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
            keys: Mutex::new(HashMap::new()),
            login: Mutex::new(LoginRecord::default()),
            login_attempts: AtomicU64::new(0),
        })
    }

    /// A session for one signature: an idle one, a new one while fewer
    /// than [`POOL_SIZE`] are open, or the next one returned.
    fn lease(&self) -> Result<Lease<'_>, SignError> {
        let mut pool = self.pool.lock();
        loop {
            if let Some(session) = pool.idle.pop() {
                return Ok(Lease {
                    state: self,
                    session: Some(session),
                    keep: true,
                });
            }
            if pool.open < POOL_SIZE {
                pool.open += 1;
                break;
            }
            self.returned.wait(&mut pool);
        }
        drop(pool);
        let opened = read_token(&self.pkcs11, self.slot, &self.token).and_then(|_| {
            self.pkcs11
                .open_ro_session(self.slot)
                .map_err(|source| self.error("C_OpenSession", source))
        });
        match opened {
            Ok(session) => Ok(Lease {
                state: self,
                session: Some(session),
                keep: true,
            }),
            Err(err) => {
                self.give_back(None);
                Err(err)
            }
        }
    }

    fn give_back(&self, session: Option<Session>) {
        let mut pool = self.pool.lock();
        match session {
            Some(session) => pool.idle.push(session),
            None => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.returned.notify_one();
    }

    fn logged_in(&self) -> Result<bool, SignError> {
        self.anchor
            .lock()
            .get_session_info()
            .map(|info| logged_in(info.session_state()))
            .map_err(|source| self.error("C_GetSessionInfo", source))
    }

    fn token_info(&self) -> Result<TokenInfo, SignError> {
        self.pkcs11
            .get_token_info(self.slot)
            .map_err(|source| self.error("C_GetTokenInfo", source))
    }

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

    fn error(&self, operation: &'static str, source: CryptokiError) -> SignError {
        SignError::pkcs11(&self.token.label, operation, source)
    }

    fn pin_locked(&self) -> SignError {
        SignError::PinLocked {
            token: self.token.label.clone(),
        }
    }
}

/// A pool session lent to one signature; returned to the pool when
/// dropped, unless discarded.
struct Lease<'a> {
    state: &'a SlotState,
    session: Option<Session>,
    keep: bool,
}

impl Lease<'_> {
    fn session(&self) -> &Session {
        // Present until drop.
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its session until dropped"))
    }

    /// Closes the session instead of returning it.
    fn discard(&mut self) {
        self.keep = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if self.keep {
            self.state.give_back(Some(session));
        } else {
            drop(session);
            self.state.give_back(None);
        }
    }
}

/// The token in `slot`, checked to be the one `token` names.
fn read_token(pkcs11: &Pkcs11, slot: Slot, token: &Token) -> Result<Token, SignError> {
    let info = pkcs11
        .get_token_info(slot)
        .map_err(|source| SignError::pkcs11(&token.label, "C_GetTokenInfo", source))?;
    let serial = trim_padding(info.serial_number());
    let label = trim_padding(info.label());
    if serial != token.serial {
        return Err(SignError::TokenAbsent {
            token: token.label.clone(),
            detail: format!(
                "slot {} now holds token '{label}' (serial {serial}, not {})",
                token.slot, token.serial
            ),
        });
    }
    Ok(Token {
        label,
        serial,
        ..token.clone()
    })
}

fn logged_in(state: SessionState) -> bool {
    matches!(state, SessionState::RoUser | SessionState::RwUser)
}

/// What the token's flags say about the PIN tries left.
fn pin_warning(info: &TokenInfo) -> Option<String> {
    if info.user_pin_final_try() {
        Some("one try left before the PIN locks".to_owned())
    } else if info.user_pin_count_low() {
        Some("few tries left: a wrong PIN was entered since the last successful login".to_owned())
    } else {
        None
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
