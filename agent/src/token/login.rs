//! Logging in and out of a token, and the PINs that takes.
//!
//! A token's user login goes through its anchor session (see
//! [`slot`](super::slot)) and lasts while that session is open.
//!
//! PINs: asked from the [`PinSource`](crate::pin::PinSource) only when a
//! login is needed, passed straight into `C_Login` and dropped (zeroized)
//! right after; never logged, stored or cached. A wrong PIN is never
//! retried: the error carries the token's PIN flags (few tries left,
//! final try, locked). Requests that queued behind a failed login share
//! its failure instead of trying again.
//!
//! A key with `CKA_ALWAYS_AUTHENTICATE` also needs a context-specific
//! login for each signature, between `C_SignInit` and `C_Sign` (see
//! [`sign`](super::sign)): its PIN is asked as [`PinKind::ContextSpecific`].

use std::sync::atomic::Ordering;

use cryptoki::error::Error as CryptokiError;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::TokenInfo;
use secrecy::SecretString;

use super::rv::Meaning;
use super::sign_error::SignError;
use super::slot::{LoginFailure, Logout, SlotState};
use super::tokens::Tokens;
use crate::pin::{PinError, PinKind, PinRequest};

impl Tokens {
    /// `C_Login(CKU_CONTEXT_SPECIFIC)` on `session`, whose signing
    /// operation is initialised.
    pub(super) fn context_login(
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
    pub(super) fn login_user(
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

impl SlotState {
    /// Whether the token's user is logged in.
    fn logged_in(&self) -> Result<bool, SignError> {
        self.anchor
            .lock()
            .get_session_info()
            .map(|info| logged_in(info.session_state()))
            .map_err(|source| self.error("C_GetSessionInfo", source))
    }

    /// Logs the token's user out, and forgets the key handles found
    /// while logged in.
    pub(super) fn logout(&self) -> Result<Logout, SignError> {
        let anchor = self.anchor.lock();
        let logged_in = match anchor.get_session_info() {
            Ok(info) => logged_in(info.session_state()),
            Err(err) if Meaning::of_error(&err).ends_session() => return Ok(Logout::SessionsDead),
            Err(source) => return Err(self.error("C_GetSessionInfo", source)),
        };
        if !logged_in {
            return Ok(Logout::NotLoggedIn);
        }
        match anchor.logout() {
            Ok(()) => {}
            Err(err) if Meaning::of_error(&err) == Meaning::NotLoggedIn => {}
            Err(source) => return Err(self.error("C_Logout", source)),
        }
        drop(anchor);
        self.keys.lock().clear();
        Ok(Logout::Done)
    }

    fn pin_locked(&self) -> SignError {
        SignError::PinLocked {
            token: self.token.label.clone(),
        }
    }
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
