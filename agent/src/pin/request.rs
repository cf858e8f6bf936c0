//! What asking for a PIN means: which login it is for, what the person
//! should see, and how it can fail; and the source that never has one.

use p11agent_proto::Token;
use secrecy::SecretString;

/// Which login the PIN is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinKind {
    /// The token's user login (`C_Login` with `CKU_USER`).
    User,
    /// A context-specific login for a key with `CKA_ALWAYS_AUTHENTICATE`,
    /// before one signature.
    ContextSpecific,
}

/// What the person being asked should see.
#[derive(Debug, Clone)]
pub(crate) struct PinRequest<'a> {
    /// The token whose PIN is wanted.
    pub token: &'a Token,
    /// Which login.
    pub kind: PinKind,
    /// A warning from the token's flags, e.g. "2 tries left" or "final
    /// try", shown with the prompt.
    pub warning: Option<String>,
}

/// Why no PIN was obtained.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PinError {
    /// No source can give a PIN (none configured, or the configured file
    /// is missing).
    #[error("no PIN available: {0}")]
    Unavailable(String),
    /// The person cancelled the prompt.
    #[error("PIN entry cancelled")]
    Cancelled,
    /// The source failed (pinentry crashed, unreadable file, ...).
    #[error("PIN source failed: {0}")]
    Failed(String),
}

/// Something that can produce a PIN for a token.
pub(crate) trait PinSource: Send + Sync + std::fmt::Debug {
    /// A PIN for `request`. Called on a blocking thread; may prompt.
    fn pin(&self, request: &PinRequest<'_>) -> Result<SecretString, PinError>;
}

/// The source used when none is configured: it never has a PIN, which is
/// right for tokens with a PIN pad and otherwise tells the user what to
/// configure.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoPin;

impl PinSource for NoPin {
    fn pin(&self, request: &PinRequest<'_>) -> Result<SecretString, PinError> {
        Err(PinError::Unavailable(format!(
            "token \"{}\" needs a PIN but no PIN source is configured; \
             start the agent with --pinentry PROGRAM (e.g. --pinentry /usr/bin/pinentry) \
             or --pin-file FILE",
            request.token.label
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pin_says_what_to_configure() {
        let token = Token {
            label: "card".into(),
            serial: "1".into(),
            manufacturer: String::new(),
            model: String::new(),
            slot: 0,
            module: String::new(),
        };
        let request = PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        };
        match NoPin.pin(&request) {
            Err(PinError::Unavailable(msg)) => {
                assert!(
                    msg.contains("--pin-file") && msg.contains("--pinentry"),
                    "{msg}"
                );
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
