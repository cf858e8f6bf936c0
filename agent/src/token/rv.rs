//! What each PKCS#11 return value (`CKR_*`) makes the agent do: the one
//! place of the token layer that reads them. The others ask
//! [`Meaning::of`] and the predicates below, never a `CKR_*` code.
//!
//! | return value | [`Meaning`] | what the agent does |
//! | --- | --- | --- |
//! | `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, `CKR_TOKEN_NOT_RECOGNIZED` | `TokenGone` | the request answers "token absent"; a logout drops the token's state; a scan stops reading the token |
//! | `CKR_SLOT_ID_INVALID` | `SlotGone` | the request answers "token absent": its reader went away |
//! | `CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED` | `SessionGone` | the session is closed and the token's state (sessions, login, key handles) dropped; the request starts once more from scratch unless a PIN was asked; a scan stops reading the token |
//! | `CKR_CRYPTOKI_NOT_INITIALIZED` | `NotInitialized` | as `SessionGone` (the module was finalised under the session); from `C_Finalize`: already done, fine |
//! | `CKR_DEVICE_ERROR` | `DeviceError` | as `SessionGone`, except that a scan skips the object and reads on |
//! | `CKR_KEY_HANDLE_INVALID`, `CKR_OBJECT_HANDLE_INVALID`, `CKR_KEY_TYPE_INCONSISTENT` | `StaleHandle` | a remembered key handle is forgotten and the key looked up again |
//! | `CKR_USER_NOT_LOGGED_IN` | `NotLoggedIn` | as `StaleHandle`; a key that was visible before login is signed with once more after logging in; from `C_Logout`: it was not logged in, fine |
//! | `CKR_USER_ALREADY_LOGGED_IN` | `AlreadyLoggedIn` | from `C_Login`: success |
//! | `CKR_PIN_INCORRECT` | `PinIncorrect` | from `C_Login`: "wrong PIN", with what the token's flags now say about the tries left; never retried |
//! | `CKR_PIN_LOCKED` | `PinLocked` | from `C_Login`: "PIN locked" |
//! | `CKR_PIN_LEN_RANGE`, `CKR_PIN_INVALID` | `PinRefused` | from `C_Login`: "wrong PIN" (the token refused its length or characters) |
//! | `CKR_CRYPTOKI_ALREADY_INITIALIZED` | `AlreadyInitialized` | from `C_Initialize`: the module is used as it is, and not finalised by the agent |
//! | any other, or no return value | `Other` | the operation failed: "token failed in C_…"; a scan skips the object and reads on |
//!
//! `TokenGone` counts among the codes that end a session, but a
//! signature or login never gets to act on that: `SignError::pkcs11`
//! turns it into "token absent" where the module answers, so that
//! session goes back to the pool and the state stays until hot-plug
//! forgets the token (and `SignError::TokenRemoved` is never made).

use cryptoki::error::{Error as CryptokiError, RvError};

/// The agent's reading of a PKCS#11 return value (see the table in the
/// [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// The token left its slot.
    TokenGone,
    /// The slot itself is gone (a reader unplugged).
    SlotGone,
    /// The session is closed or unknown to the module.
    SessionGone,
    /// The module is not initialised (finalised meanwhile).
    NotInitialized,
    /// The device failed.
    DeviceError,
    /// A key handle no longer names the key it did.
    StaleHandle,
    /// The operation needs the user logged in.
    NotLoggedIn,
    /// The user is logged in already.
    AlreadyLoggedIn,
    /// The token rejected the PIN.
    PinIncorrect,
    /// The PIN is locked.
    PinLocked,
    /// The token refused the PIN's length or characters.
    PinRefused,
    /// The module was initialised already, by someone else in this
    /// process.
    AlreadyInitialized,
    /// Anything else: a failure of the operation itself.
    Other,
}

impl Meaning {
    /// The meaning of `rv`.
    pub(crate) fn of(rv: RvError) -> Meaning {
        match rv {
            RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::TokenNotRecognized => {
                Meaning::TokenGone
            }
            RvError::SlotIdInvalid => Meaning::SlotGone,
            RvError::SessionHandleInvalid | RvError::SessionClosed => Meaning::SessionGone,
            RvError::CryptokiNotInitialized => Meaning::NotInitialized,
            RvError::DeviceError => Meaning::DeviceError,
            RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::KeyTypeInconsistent => Meaning::StaleHandle,
            RvError::UserNotLoggedIn => Meaning::NotLoggedIn,
            RvError::UserAlreadyLoggedIn => Meaning::AlreadyLoggedIn,
            RvError::PinIncorrect => Meaning::PinIncorrect,
            RvError::PinLocked => Meaning::PinLocked,
            RvError::PinLenRange | RvError::PinInvalid => Meaning::PinRefused,
            RvError::CryptokiAlreadyInitialized => Meaning::AlreadyInitialized,
            _ => Meaning::Other,
        }
    }

    /// The meaning of a cryptoki error: of its return value, or
    /// [`Meaning::Other`] when the module gave none (a failure inside
    /// cryptoki, such as a value that does not fit a `CK_ULONG`).
    pub(crate) fn of_error(err: &CryptokiError) -> Meaning {
        match err {
            CryptokiError::Pkcs11(rv, _) => Meaning::of(*rv),
            _ => Meaning::Other,
        }
    }

    /// Whether the session that answered this is unusable: closed rather
    /// than returned to the pool, and the token's state dropped.
    pub(crate) fn ends_session(self) -> bool {
        matches!(
            self,
            Meaning::TokenGone
                | Meaning::SessionGone
                | Meaning::NotInitialized
                | Meaning::DeviceError
        )
    }

    /// Whether the token is no longer in its slot, which the request
    /// answers as "token absent".
    pub(crate) fn token_gone(self) -> bool {
        matches!(self, Meaning::TokenGone | Meaning::SlotGone)
    }

    /// Whether reading a token's objects further is futile (the token,
    /// its session or its module is gone), so a scan stops rather than
    /// skipping the object.
    pub(crate) fn ends_scan(self) -> bool {
        matches!(
            self,
            Meaning::TokenGone | Meaning::SessionGone | Meaning::NotInitialized
        )
    }

    /// Whether a remembered key handle is to be tried no more.
    pub(crate) fn stale_handle(self) -> bool {
        matches!(self, Meaning::StaleHandle | Meaning::NotLoggedIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    /// Return values with what each makes the agent do:
    /// `[ends_session, token_gone, ends_scan, stale_handle]`.
    const WHAT_EACH_DOES: [(RvError, [bool; 4]); 20] = [
        (RvError::DeviceRemoved, [true, true, true, false]),
        (RvError::TokenNotPresent, [true, true, true, false]),
        (RvError::TokenNotRecognized, [true, true, true, false]),
        (RvError::SlotIdInvalid, [false, true, false, false]),
        (RvError::SessionHandleInvalid, [true, false, true, false]),
        (RvError::SessionClosed, [true, false, true, false]),
        (RvError::CryptokiNotInitialized, [true, false, true, false]),
        (RvError::DeviceError, [true, false, false, false]),
        (RvError::KeyHandleInvalid, [false, false, false, true]),
        (RvError::ObjectHandleInvalid, [false, false, false, true]),
        (RvError::KeyTypeInconsistent, [false, false, false, true]),
        (RvError::UserNotLoggedIn, [false, false, false, true]),
        (RvError::UserAlreadyLoggedIn, [false; 4]),
        (RvError::PinIncorrect, [false; 4]),
        (RvError::PinLocked, [false; 4]),
        (RvError::PinLenRange, [false; 4]),
        (RvError::PinInvalid, [false; 4]),
        (RvError::CryptokiAlreadyInitialized, [false; 4]),
        (RvError::AttributeSensitive, [false; 4]),
        (RvError::GeneralError, [false; 4]),
    ];

    #[test]
    fn what_each_return_value_does() {
        for (rv, expected) in WHAT_EACH_DOES {
            let meaning = Meaning::of(rv);
            let does = [
                meaning.ends_session(),
                meaning.token_gone(),
                meaning.ends_scan(),
                meaning.stale_handle(),
            ];
            assert_eq!(does, expected, "{rv}");
        }
    }

    #[test]
    fn errors_that_end_a_token_scan() {
        for rv in [
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::SessionHandleInvalid,
            RvError::CryptokiNotInitialized,
        ] {
            let err = CryptokiError::Pkcs11(rv, Function::GetAttributeValue);
            assert!(Meaning::of_error(&err).ends_scan(), "{rv}");
        }
        for rv in [
            RvError::AttributeSensitive,
            RvError::ObjectHandleInvalid,
            RvError::GeneralError,
        ] {
            let err = CryptokiError::Pkcs11(rv, Function::GetAttributeValue);
            assert!(!Meaning::of_error(&err).ends_scan(), "{rv}");
        }
        assert!(!Meaning::of_error(&CryptokiError::NotSupported).ends_scan());
    }

    #[test]
    fn errors_without_a_return_value_mean_other() {
        assert_eq!(
            Meaning::of_error(&CryptokiError::NotSupported),
            Meaning::Other
        );
        assert_eq!(
            Meaning::of_error(&CryptokiError::Pkcs11(RvError::PinLocked, Function::Login)),
            Meaning::PinLocked
        );
    }
}
