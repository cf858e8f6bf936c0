//! The module's errors, and the one place that says which `CKR_*` value
//! each of them, and each answer of the agent, is to a program.

use cryptoki_sys::*;
use p11agent_client::proto::ErrorCode;
use p11agent_client::ClientError;

/// Why a call into the module failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("the module is not initialised")]
    NotInitialized,
    #[error("the module is already initialised")]
    AlreadyInitialized,
    #[error("bad arguments")]
    ArgumentsBad,
    #[error("the caller's locking functions cannot be used")]
    CantLock,
    #[error("no such slot")]
    SlotIdInvalid,
    #[error("the slot has no token")]
    TokenNotPresent,
    #[error("no such session")]
    SessionHandleInvalid,
    #[error("sessions must be serial")]
    SessionParallelNotSupported,
    #[error("the object has no such attribute")]
    AttributeTypeInvalid,
    #[error("the attribute's value is a secret of the token")]
    AttributeSensitive,
    #[error("no such object")]
    ObjectHandleInvalid,
    #[error("not a private key")]
    KeyHandleInvalid,
    #[error("the key cannot do this mechanism")]
    KeyTypeInconsistent,
    #[error("another operation of this kind is active")]
    OperationActive,
    #[error("no operation of this kind is active")]
    OperationNotInitialized,
    #[error("unknown or unsupported mechanism")]
    MechanismInvalid,
    #[error("mechanism parameters the agent cannot honour")]
    MechanismParamInvalid,
    #[error("the input is not something the mechanism signs")]
    DataInvalid,
    #[error("the input has the wrong length")]
    DataLenRange,
    #[error("the output buffer needs {0} bytes or items")]
    BufferTooSmall(usize),
    #[error("the module does not do this")]
    FunctionNotSupported,
    #[error("only the user logs in here")]
    UserTypeInvalid,
    #[error("no slot event")]
    NoEvent,
    #[error("the agent's answer did not fit the key")]
    BadSignature,
    #[error(transparent)]
    Agent(#[from] ClientError),
}

impl Error {
    /// The return value a program gets.
    pub(crate) fn rv(&self) -> CK_RV {
        match self {
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::CantLock => CKR_CANT_LOCK,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
            Error::NoEvent => CKR_NO_EVENT,
            Error::BadSignature => CKR_FUNCTION_FAILED,
            Error::Agent(e) => client_rv(e),
        }
    }
}

/// What a failed call to the agent means to a program.
fn client_rv(error: &ClientError) -> CK_RV {
    match error {
        ClientError::Agent { code, .. } => agent_rv(*code),
        // The client already connected again once and repeated the call.
        ClientError::NotRunning { .. } | ClientError::Connect { .. } | ClientError::Frame(_) => {
            CKR_DEVICE_ERROR
        }
        _ => CKR_FUNCTION_FAILED,
    }
}

/// What the agent's error code means to a program.
fn agent_rv(code: ErrorCode) -> CK_RV {
    match code {
        // Policy said no: a program must not retry another way.
        ErrorCode::DigestNotAllowed | ErrorCode::PurposeRefused => CKR_FUNCTION_REJECTED,
        ErrorCode::TokenAbsent | ErrorCode::TokenRemoved => CKR_DEVICE_REMOVED,
        ErrorCode::PinIncorrect => CKR_PIN_INCORRECT,
        ErrorCode::PinLocked => CKR_PIN_LOCKED,
        ErrorCode::Cancelled => CKR_FUNCTION_CANCELED,
        ErrorCode::UnsupportedScheme => CKR_MECHANISM_INVALID,
        // The token's module hangs: the device does not answer.
        ErrorCode::ModuleUnavailable => CKR_DEVICE_ERROR,
        // The identity left the agent between the listing and the call.
        ErrorCode::NotFound | ErrorCode::NoPrivateKey => CKR_KEY_HANDLE_INVALID,
        _ => CKR_FUNCTION_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(code: ErrorCode) -> CK_RV {
        Error::Agent(ClientError::Agent {
            code,
            message: String::new(),
        })
        .rv()
    }

    #[test]
    fn agent_codes_map_as_programs_expect() {
        assert_eq!(agent(ErrorCode::DigestNotAllowed), CKR_FUNCTION_REJECTED);
        assert_eq!(agent(ErrorCode::PurposeRefused), CKR_FUNCTION_REJECTED);
        assert_eq!(agent(ErrorCode::TokenAbsent), CKR_DEVICE_REMOVED);
        assert_eq!(agent(ErrorCode::TokenRemoved), CKR_DEVICE_REMOVED);
        assert_eq!(agent(ErrorCode::PinIncorrect), CKR_PIN_INCORRECT);
        assert_eq!(agent(ErrorCode::PinLocked), CKR_PIN_LOCKED);
        assert_eq!(agent(ErrorCode::Cancelled), CKR_FUNCTION_CANCELED);
        assert_eq!(agent(ErrorCode::UnsupportedScheme), CKR_MECHANISM_INVALID);
        assert_eq!(agent(ErrorCode::SigningFailed), CKR_FUNCTION_FAILED);
        assert_eq!(agent(ErrorCode::UnknownRequest), CKR_FUNCTION_FAILED);
        let gone = Error::Agent(ClientError::NotRunning {
            path: "/nowhere".into(),
            stale: false,
        });
        assert_eq!(gone.rv(), CKR_DEVICE_ERROR);
    }
}
