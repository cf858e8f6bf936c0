//! What the agent keeps for one token it signs on: a [`SlotState`].
//!
//! - an *anchor* session that stays open while the token is present, so
//!   the token's login (which PKCS#11 ends when the process's last
//!   session on the token closes) survives pool sessions being closed
//!   after errors; logins and logouts go through it (see
//!   [`login`](super::login));
//! - a pool of at most [`POOL_SIZE`] read-only sessions for signatures:
//!   signatures on one token run in parallel on different sessions,
//!   signatures on different tokens never share a lock. A session is
//!   returned after use, or closed when it failed in a way that leaves it
//!   unusable (`CKR_SESSION_HANDLE_INVALID`, `CKR_DEVICE_REMOVED`, ...,
//!   see [`rv`](super::rv)) or with an operation still active;
//! - the handles of the private keys already found (see
//!   [`sign`](super::sign)).
//!
//! A slot state belongs to one token serial. A new session first checks
//! that the slot still holds that serial; a session that finds the token
//! gone drops the whole state (sessions, login, key handles), and the
//! signature is tried once more from scratch, so a re-inserted card asks
//! for its PIN again and a different card in the slot answers
//! "token absent".

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use cryptoki::context::Pkcs11;
use cryptoki::error::Error as CryptokiError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::{Slot, TokenInfo};
use p11agent_proto::Token;
use parking_lot::{Condvar, Mutex};

use super::mechanisms::signing_mechanisms;
use super::scan::trim_padding;
use super::sign_error::SignError;

/// Most sessions the agent opens for signatures on one token (besides the
/// one that holds its login).
pub(crate) const POOL_SIZE: usize = 4;

/// One token in one slot, as long as it stays there.
pub(super) struct SlotState {
    pkcs11: Pkcs11,
    slot: Slot,
    /// The token, as read from its slot when the state was made.
    pub(super) token: Token,
    /// Its signing mechanisms the agent can use.
    pub(super) mechanisms: Vec<MechanismType>,
    /// Holds the login; used for login, logout and the login state.
    pub(super) anchor: Mutex<Session>,
    pool: Mutex<Pool>,
    returned: Condvar,
    pub(super) keys: Mutex<HashMap<Vec<u8>, FoundKey>>,
    pub(super) login: Mutex<LoginRecord>,
    /// `LoginRecord::attempts`, readable without waiting for the lock.
    pub(super) login_attempts: AtomicU64,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    /// Sessions open, idle or leased.
    open: usize,
}

/// A private key found on a token.
#[derive(Debug, Clone, Copy)]
pub(super) struct FoundKey {
    pub(super) handle: ObjectHandle,
    pub(super) always_authenticate: bool,
}

/// The user logins tried on one token, and how the last one failed.
#[derive(Default)]
pub(super) struct LoginRecord {
    pub(super) attempts: u64,
    pub(super) failure: Option<LoginFailure>,
}

/// How the last user login failed, to share with requests that waited
/// for it.
#[derive(Debug, Clone)]
pub(super) enum LoginFailure {
    Incorrect(Option<String>),
    Locked,
    Cancelled,
    Required(String),
}

impl LoginFailure {
    pub(super) fn of(err: &SignError) -> Option<LoginFailure> {
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

    pub(super) fn error(&self, token: &str) -> SignError {
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

/// What [`SlotState::logout`] found.
pub(super) enum Logout {
    /// The user was logged in, and is no more.
    Done,
    /// The user was not logged in.
    NotLoggedIn,
    /// The token's sessions are dead: its state is to be dropped.
    SessionsDead,
}

impl SlotState {
    /// Checks that the slot holds the token `token` names (by serial) and
    /// opens its anchor session.
    pub(super) fn open(pkcs11: &Pkcs11, token: &Token) -> Result<SlotState, SignError> {
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
    pub(super) fn lease(&self) -> Result<Lease<'_>, SignError> {
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

    pub(super) fn token_info(&self) -> Result<TokenInfo, SignError> {
        self.pkcs11
            .get_token_info(self.slot)
            .map_err(|source| self.error("C_GetTokenInfo", source))
    }

    /// The error for `operation` failing on this token.
    pub(super) fn error(&self, operation: &'static str, source: CryptokiError) -> SignError {
        SignError::pkcs11(&self.token.label, operation, source)
    }
}

/// A pool session lent to one signature; returned to the pool when
/// dropped, unless discarded.
pub(super) struct Lease<'a> {
    state: &'a SlotState,
    session: Option<Session>,
    keep: bool,
}

impl Lease<'_> {
    pub(super) fn session(&self) -> &Session {
        // Present until drop.
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its session until dropped"))
    }

    /// Closes the session instead of returning it.
    pub(super) fn discard(&mut self) {
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
