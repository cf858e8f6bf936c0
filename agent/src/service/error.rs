//! Why a request to the service failed.
//!
//! The variants say what happened in the agent's terms; the server maps
//! each to the protocol's error code (`server/errors.rs`), and the
//! `Display` text is the message the client's user reads, so it says what
//! to do next.

use p11agent_proto::Token;

use super::digest_policy::DigestRefused;
use super::purpose::NotTls;
use crate::pin::PinError;
use crate::select::decisions::DecisionsError;
use crate::store::LookupError;
use crate::token::SignError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// No single identity has the id or prefix given.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The identity's certificate has no private key on its token.
    #[error("identity {id} has no private key on its token")]
    NoPrivateKey {
        /// The id as the client gave it.
        id: String,
    },
    /// The identity's purpose does not allow signing this message.
    #[error(transparent)]
    PurposeRefused(#[from] NotTls),
    /// The digest policy does not list the program for the identity.
    #[error(transparent)]
    DigestNotAllowed(#[from] DigestRefused),
    /// The identity's token was removed.
    #[error("insert token '{}' (serial {}): it was removed", .0.label, .0.serial)]
    TokenAbsent(Box<Token>),
    /// The token's module does not answer.
    #[error(
        "token '{}' cannot be used now: its module {} is unavailable ({problem}); \
         other tokens are not affected",
        token.label,
        token.module
    )]
    ModuleUnavailable {
        /// The token asked for.
        token: Box<Token>,
        /// What the module did (or did not do).
        problem: String,
    },
    /// The token refused or failed.
    #[error(transparent)]
    Token(#[from] SignError),
    /// The identity needs each signature confirmed and nobody can be asked.
    #[error(
        "this identity needs each signature confirmed, and no pinentry program is \
         configured to ask (--pinentry)"
    )]
    NoConfirmation,
    /// The person denied the signature.
    #[error("the signature was denied at the confirmation prompt")]
    Denied,
    /// The confirmation prompt failed.
    #[error("the signature could not be confirmed: {0}")]
    ConfirmationFailed(PinError),
    /// A token named by label or serial is not present.
    #[error("no token has the label or serial {0:?}; see `p11agent tokens`")]
    NoSuchToken(String),
    /// No token is present, and the request named none.
    #[error("no token is present")]
    NoToken,
    /// Several tokens are present, and the request named none.
    #[error("{0} tokens match; name one by label or serial (see `p11agent tokens`)")]
    SeveralTokens(usize),
    /// A choice could not be remembered or forgotten.
    #[error(transparent)]
    Decisions(#[from] DecisionsError),
}
