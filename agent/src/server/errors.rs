//! The protocol's error code for each failure of the service: the one
//! place that decides what a client is told went wrong. The message is
//! the error's own text.

use p11agent_proto::{ErrorCode, Response};

use crate::service::ServiceError;
use crate::store::LookupError;
use crate::token::SignError;

/// The error response for `error`.
pub(crate) fn response(error: &ServiceError) -> Response {
    Response::error(code(error), error.to_string())
}

/// The protocol's code for `error`.
pub(crate) fn code(error: &ServiceError) -> ErrorCode {
    match error {
        ServiceError::Lookup(LookupError::Ambiguous { .. }) => ErrorCode::Ambiguous,
        ServiceError::Lookup(LookupError::NotFound(_) | LookupError::TooShort(_)) => {
            ErrorCode::NotFound
        }
        ServiceError::NoPrivateKey { .. } => ErrorCode::NoPrivateKey,
        ServiceError::PurposeRefused(_) => ErrorCode::PurposeRefused,
        ServiceError::DigestNotAllowed(_) => ErrorCode::DigestNotAllowed,
        ServiceError::TokenAbsent(_) => ErrorCode::TokenAbsent,
        ServiceError::ModuleUnavailable { .. } => ErrorCode::ModuleUnavailable,
        ServiceError::Token(e) => token_code(e),
        ServiceError::NoConfirmation
        | ServiceError::Denied
        | ServiceError::ConfirmationFailed(_) => ErrorCode::Cancelled,
        ServiceError::NoSuchToken(_) | ServiceError::NoToken | ServiceError::SeveralTokens(_) => {
            ErrorCode::TokenNotFound
        }
        ServiceError::Decisions(_) => ErrorCode::DecisionsFailed,
    }
}

/// The protocol's code for a failure on a token.
fn token_code(error: &SignError) -> ErrorCode {
    match error {
        SignError::UnsupportedScheme { .. } | SignError::UnsupportedDigest { .. } => {
            ErrorCode::UnsupportedScheme
        }
        // The request's members contradict each other.
        SignError::DigestLength { .. } => ErrorCode::Malformed,
        SignError::KeyNotFound { .. } => ErrorCode::NoPrivateKey,
        SignError::TokenAbsent { .. } => ErrorCode::TokenAbsent,
        SignError::TokenRemoved { .. } => ErrorCode::TokenRemoved,
        SignError::PinRequired { .. } | SignError::PinSourceFailed { .. } => ErrorCode::PinRequired,
        SignError::PinIncorrect { .. } => ErrorCode::PinIncorrect,
        SignError::PinLocked { .. } => ErrorCode::PinLocked,
        SignError::Cancelled { .. } => ErrorCode::Cancelled,
        SignError::ModuleCrashed { .. } => ErrorCode::ModuleUnavailable,
        SignError::Pkcs11 { .. }
        | SignError::AlwaysAuthenticate { .. }
        | SignError::BadSignature { .. } => ErrorCode::SigningFailed,
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;
    use cryptoki::error::{Error as CryptokiError, RvError};
    use p11agent_proto::{DigestMechanism, HashAlgorithm, Scheme};

    use super::*;
    use crate::service::{DigestPolicy, Peer};

    #[test]
    fn token_codes() {
        let token = || "t".to_owned();
        let cases = [
            (
                SignError::UnsupportedScheme {
                    scheme: Scheme::Ed25519,
                    reason: "x".into(),
                },
                ErrorCode::UnsupportedScheme,
            ),
            (
                SignError::UnsupportedDigest {
                    mechanism: DigestMechanism::Ecdsa,
                    hash: HashAlgorithm::Sha256,
                    reason: "x".into(),
                },
                ErrorCode::UnsupportedScheme,
            ),
            (
                SignError::DigestLength {
                    hash: HashAlgorithm::Sha256,
                    len: 31,
                },
                ErrorCode::Malformed,
            ),
            (
                SignError::KeyNotFound {
                    token: token(),
                    key_id: "01".into(),
                },
                ErrorCode::NoPrivateKey,
            ),
            (
                SignError::TokenAbsent {
                    token: token(),
                    detail: "x".into(),
                },
                ErrorCode::TokenAbsent,
            ),
            (
                SignError::PinRequired {
                    token: token(),
                    detail: "x".into(),
                },
                ErrorCode::PinRequired,
            ),
            (
                SignError::PinIncorrect {
                    token: token(),
                    warning: None,
                },
                ErrorCode::PinIncorrect,
            ),
            (
                SignError::PinLocked { token: token() },
                ErrorCode::PinLocked,
            ),
            (
                SignError::Cancelled { token: token() },
                ErrorCode::Cancelled,
            ),
            (
                SignError::Pkcs11 {
                    token: token(),
                    operation: "C_Sign".into(),
                    source: CryptokiError::Pkcs11(RvError::DeviceError, Function::Sign),
                },
                ErrorCode::SigningFailed,
            ),
        ];
        for (error, expected) in cases {
            let error = ServiceError::Token(error);
            assert_eq!(code(&error), expected, "{error}");
        }
    }

    #[test]
    fn lookup_codes() {
        let not_found = ServiceError::Lookup(LookupError::NotFound("ab".into()));
        assert_eq!(code(&not_found), ErrorCode::NotFound);
        let short = ServiceError::Lookup(LookupError::TooShort(3));
        assert_eq!(code(&short), ErrorCode::NotFound);
        let ambiguous = ServiceError::Lookup(LookupError::Ambiguous {
            prefix: "ab".into(),
            ids: vec!["ab1".into(), "ab2".into()],
        });
        assert_eq!(code(&ambiguous), ErrorCode::Ambiguous);
    }

    #[test]
    fn a_program_the_digest_policy_does_not_list_is_digest_not_allowed() {
        let peer = Peer {
            uid: 1000,
            pid: Some(1),
            exe: Some("/usr/bin/x".into()),
            remote: false,
        };
        let refused = DigestPolicy::default()
            .admits(&peer, "3f2a9c1b", "CN=A")
            .expect_err("refused");
        assert_eq!(
            code(&ServiceError::DigestNotAllowed(refused)),
            ErrorCode::DigestNotAllowed
        );
    }
}
