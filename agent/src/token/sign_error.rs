//! Why a signature, login or logout failed.

use std::borrow::Cow;

use cryptoki::error::Error as CryptokiError;
use p11agent_proto::{DigestMechanism, HashAlgorithm, Scheme};
use serde::{Deserialize, Serialize};

use super::rv::Meaning;

/// What went wrong while signing with, logging in to or logging out of a
/// token. The server turns each variant into a protocol error code; the
/// `Display` text is meant for the person at the other end and says what
/// to do. It crosses from a module helper to the agent as it is
/// (`isolated/wire.rs`), so that an isolated module's failures read and
/// map to codes exactly as an in-process one's.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub(crate) enum SignError {
    /// The key cannot make the scheme: wrong key type or curve, or the
    /// token lacks a mechanism for it. Nothing was sent to the token.
    #[error(
        "{scheme} cannot be made with this key: {reason}; ask for one of the identity's schemes"
    )]
    UnsupportedScheme {
        /// The scheme asked for.
        scheme: Scheme,
        /// Why not.
        reason: String,
    },

    /// The key cannot sign a digest with the mechanism: wrong key type, or
    /// the token lacks the raw mechanism. Nothing was sent to the token.
    #[error(
        "{} over a {} digest cannot be made with this key: {reason}",
        mechanism.as_str(),
        hash.as_str()
    )]
    UnsupportedDigest {
        /// The mechanism asked for.
        mechanism: DigestMechanism,
        /// The hash that made the digest.
        hash: HashAlgorithm,
        /// Why not.
        reason: String,
    },

    /// The digest is not as long as its hash's digests. Nothing was sent
    /// to the token.
    #[error(
        "the digest is {len} bytes, and a {} digest is {}; \
         send the bare digest, not the message or a DigestInfo",
        hash.as_str(),
        hash.digest_len()
    )]
    DigestLength {
        /// The hash the client named.
        hash: HashAlgorithm,
        /// The length of what it sent.
        len: usize,
    },

    /// No private key with the identity's `CKA_ID` is on the token (after
    /// logging in, where that was needed).
    #[error(
        "no private key with CKA_ID {key_id} on token '{token}'; \
         the key may have been deleted, or the token removed"
    )]
    KeyNotFound {
        /// The token label.
        token: String,
        /// The key's `CKA_ID`, hex.
        key_id: String,
    },

    /// The token is not in its slot (removed, replaced by another token,
    /// or its module is not loaded).
    #[error("token '{token}' is not present: {detail}; insert it and try again")]
    TokenAbsent {
        /// The token label.
        token: String,
        /// What was found instead.
        detail: String,
    },
    /// The token went away while the request used it.
    #[error("token '{token}' was removed during the request ({detail}); insert it and try again")]
    TokenRemoved {
        /// The token label.
        token: String,
        /// What the module answered.
        detail: String,
    },

    /// A PIN is needed and no PIN source can give one.
    #[error(
        "token '{token}' needs a PIN and none is available ({detail}); \
         run `p11agent login` or configure a PIN source"
    )]
    PinRequired {
        /// The token label.
        token: String,
        /// What the PIN source said.
        detail: String,
    },

    /// The PIN source failed (pinentry crashed, unreadable PIN file, ...).
    #[error(
        "cannot get the PIN for token '{token}': {detail}; check the PIN source configuration"
    )]
    PinSourceFailed {
        /// The token label.
        token: String,
        /// What the PIN source said.
        detail: String,
    },

    /// The token rejected the PIN. The agent did not retry.
    #[error(
        "wrong PIN for token '{token}'{}; the agent did not retry",
        warning.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
    )]
    PinIncorrect {
        /// The token label.
        token: String,
        /// What the token's flags say about the tries left, e.g. "one try
        /// left before the PIN locks".
        warning: Option<String>,
    },

    /// The user PIN is locked; signing is impossible until the security
    /// officer unblocks it.
    #[error(
        "the PIN of token '{token}' is locked; \
         unblock it with the security officer's PIN or PUK (e.g. `pkcs11-tool --unlock-pin`)"
    )]
    PinLocked {
        /// The token label.
        token: String,
    },

    /// The person cancelled the PIN prompt.
    #[error("PIN entry for token '{token}' was cancelled; nothing was signed")]
    Cancelled {
        /// The token label.
        token: String,
    },

    /// The token or its module failed.
    #[error("token '{token}' failed in {operation}: {source}")]
    Pkcs11 {
        /// The token label.
        token: String,
        /// The PKCS#11 function or step that failed.
        operation: Cow<'static, str>,
        /// The module's answer.
        #[source]
        #[serde(with = "super::isolated::wire::cryptoki_error")]
        source: CryptokiError,
    },

    /// The module's helper process died during the request (the module
    /// crashed); the agent starts it again for the next request.
    #[error("token '{token}' cannot be used now: its module crashed ({detail}); it is being restarted, try again")]
    ModuleCrashed {
        /// The token label.
        token: String,
        /// How the helper ended.
        detail: String,
    },

    /// The key needs a context-specific login (`CKA_ALWAYS_AUTHENTICATE`)
    /// and the module's `C_Sign` cannot be reached for it.
    #[error("token '{token}': the key needs a PIN for every signature, which this module cannot do here: {detail}")]
    AlwaysAuthenticate {
        /// The token label.
        token: String,
        /// Why not.
        detail: String,
    },

    /// The token's answer has an impossible shape.
    #[error("token '{token}' returned a malformed signature: {detail}")]
    BadSignature {
        /// The token label.
        token: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl SignError {
    /// A failed PKCS#11 call on the token labelled `token`: "token
    /// absent" when the answer means the token left its slot.
    pub(crate) fn pkcs11(token: &str, operation: &'static str, source: CryptokiError) -> SignError {
        match source {
            CryptokiError::Pkcs11(rv, _) if Meaning::of(rv).token_gone() => {
                SignError::TokenAbsent {
                    token: token.to_owned(),
                    detail: format!("{operation} answered {rv}"),
                }
            }
            source => SignError::Pkcs11 {
                token: token.to_owned(),
                operation: Cow::Borrowed(operation),
                source,
            },
        }
    }

    /// What the PKCS#11 return value behind this error means;
    /// [`Meaning::Other`] when there is none.
    pub(crate) fn meaning(&self) -> Meaning {
        match self {
            SignError::Pkcs11 { source, .. } => Meaning::of_error(source),
            _ => Meaning::Other,
        }
    }

    /// Whether the session this error came from is unusable and must be
    /// closed rather than returned to the pool.
    pub(crate) fn ends_session(&self) -> bool {
        self.meaning().ends_session()
    }

    /// A dead-session error that means the token left becomes
    /// [`SignError::TokenRemoved`].
    pub(crate) fn removed_if_gone(self) -> SignError {
        match self {
            SignError::Pkcs11 {
                token,
                operation,
                source: CryptokiError::Pkcs11(rv, _),
            } if Meaning::of(rv).token_gone() => SignError::TokenRemoved {
                token,
                detail: format!("{operation} answered {rv}"),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;
    use cryptoki::error::RvError;

    #[test]
    fn pin_incorrect_message_says_no_retry_and_tries_left() {
        let error = SignError::PinIncorrect {
            token: "x".into(),
            warning: Some("one try left before the PIN locks".into()),
        };
        assert_eq!(
            error.to_string(),
            "wrong PIN for token 'x' (one try left before the PIN locks); the agent did not retry"
        );
        let error = SignError::PinIncorrect {
            token: "x".into(),
            warning: None,
        };
        assert_eq!(
            error.to_string(),
            "wrong PIN for token 'x'; the agent did not retry"
        );
    }

    #[test]
    fn dead_sessions() {
        let error = |rv| SignError::Pkcs11 {
            token: "t".into(),
            operation: "C_Sign".into(),
            source: CryptokiError::Pkcs11(rv, Function::Sign),
        };
        assert!(error(RvError::SessionHandleInvalid).ends_session());
        assert!(error(RvError::DeviceRemoved).ends_session());
        assert!(error(RvError::DeviceError).ends_session());
        assert!(!error(RvError::KeyHandleInvalid).ends_session());
        assert!(!error(RvError::UserNotLoggedIn).ends_session());
    }
}
