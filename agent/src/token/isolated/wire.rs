//! What the agent and a module helper say to each other on a channel:
//! one request, then replies until the final one, each a frame of a
//! little-endian `u32` length and a postcard body. Both ends are this
//! binary, so the messages are the token layer's own types.
//!
//! While a request runs, the helper may ask for a PIN ([`Reply::NeedPin`])
//! and waits for [`Request::PinAnswer`] on the same channel: the agent's
//! PIN source (pinentry, a PIN file) stays in the agent. Frames that
//! carried a PIN are zeroed when dropped, on both sides.

use std::io::{self, Read, Write};

use p11agent_proto::{DigestMechanism, HashAlgorithm, Scheme, Token};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pin::PinError;
use crate::token::found::{FoundToken, KeyLocation, Presence};
use crate::token::SignError;

/// The largest frame either end accepts: a scan of 10,000 identities
/// is about 10 MiB.
const MAX_FRAME: usize = 256 << 20;

/// What the agent asks a helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Every token's certificates and keys (`Module::scan`).
    Scan,
    /// The tokens present now (`Module::present_tokens`).
    PresentTokens,
    /// `Module::object_fingerprint` of a slot.
    ObjectFingerprint(u64),
    /// One token's certificates and keys (`Module::scan_slot`).
    ScanSlot(u64),
    /// `Tokens::reinitialize`.
    Reinitialize,
    /// `Tokens::sign`.
    Sign {
        /// The key.
        key: KeyLocation,
        /// The scheme.
        scheme: Scheme,
        /// The message.
        message: Vec<u8>,
    },
    /// `Tokens::sign_digest`.
    SignDigest {
        /// The key.
        key: KeyLocation,
        /// The mechanism.
        mechanism: DigestMechanism,
        /// The hash that made the digest.
        hash: HashAlgorithm,
        /// The digest.
        digest: Vec<u8>,
    },
    /// `Tokens::login`.
    Login {
        /// The token.
        token: Token,
        /// The PIN the client gave, if any.
        pin: Option<Zeroizing<String>>,
    },
    /// `Tokens::logout`.
    Logout(Token),
    /// `Tokens::forget`.
    Forget(Token),
    /// The answer to [`Reply::NeedPin`].
    PinAnswer(Result<Zeroizing<String>, WirePinError>),
}

/// What a helper answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// To [`Request::Scan`].
    Scanned(Vec<FoundToken>),
    /// To [`Request::PresentTokens`].
    Present(Presence),
    /// To [`Request::ObjectFingerprint`].
    Fingerprint(u64),
    /// To [`Request::ScanSlot`].
    ScannedSlot(FoundToken),
    /// To a request that returns nothing.
    Done,
    /// To a signature request.
    Signature(Vec<u8>),
    /// To [`Request::Logout`]: whether it was logged in.
    LoggedOut(bool),
    /// A scan, poll or re-initialisation failed.
    TokenFailed(WireTokenError),
    /// A signature, login or logout failed.
    SignFailed(SignError),
    /// Not final: the request needs a PIN; answer with
    /// [`Request::PinAnswer`].
    NeedPin {
        /// The token.
        token: Token,
        /// A context-specific login rather than the user's.
        context_specific: bool,
        /// What the token's flags say about the tries left.
        warning: Option<String>,
    },
}

/// A failed scan or poll, as the agent needs to tell them apart.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireTokenError {
    /// `TokenError::TokenNotInitialized`: no token to scan yet.
    TokenNotInitialized {
        /// The slot.
        slot: u64,
    },
    /// Anything else, with its causes.
    Other(String),
}

/// A [`PinError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WirePinError {
    /// [`PinError::Unavailable`].
    Unavailable(String),
    /// [`PinError::Cancelled`].
    Cancelled,
    /// [`PinError::Failed`].
    Failed(String),
}

impl From<&PinError> for WirePinError {
    fn from(error: &PinError) -> WirePinError {
        match error {
            PinError::Unavailable(s) => WirePinError::Unavailable(s.clone()),
            PinError::Cancelled => WirePinError::Cancelled,
            PinError::Failed(s) => WirePinError::Failed(s.clone()),
        }
    }
}

impl From<WirePinError> for PinError {
    fn from(error: WirePinError) -> PinError {
        match error {
            WirePinError::Unavailable(s) => PinError::Unavailable(s),
            WirePinError::Cancelled => PinError::Cancelled,
            WirePinError::Failed(s) => PinError::Failed(s),
        }
    }
}

/// Writes `message` as one frame, with one write.
pub(crate) fn write_frame(to: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    let mut frame = Zeroizing::new(Vec::with_capacity(FIRST_READ));
    frame.extend_from_slice(&[0; 4]);
    postcard::to_io(message, &mut *frame).map_err(invalid)?;
    let len = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    to.write_all(&frame)
}

/// How much the first read of a frame asks for: a signature's request
/// or reply, PINs and errors fit, so they take one read.
const FIRST_READ: usize = 4096;

/// Reads one frame, in one read when it is short. The two ends take
/// turns (a frame, then the answer to it), so a read never takes bytes
/// of the next frame; any that come are a broken peer. End of input
/// before the frame is `UnexpectedEof`, as anywhere else: the other end
/// is gone.
pub(crate) fn read_frame<T: DeserializeOwned>(from: &mut impl Read) -> io::Result<T> {
    let mut frame = Zeroizing::new(vec![0u8; FIRST_READ]);
    let mut got = 0;
    while got < 4 {
        match from.read(&mut frame[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    if got > 4 + len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bytes after the frame, out of turn",
        ));
    }
    if frame.len() < 4 + len {
        frame.resize(4 + len, 0);
    }
    from.read_exact(&mut frame[got..4 + len])?;
    postcard::from_bytes(&frame[4..4 + len]).map_err(invalid)
}

fn invalid(error: postcard::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// `error` and what caused it: "cannot list the slots of ...: CKR_...".
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// A cryptoki error as its return value and function, so that an
/// isolated module's failure means and reads as an in-process one's.
/// Errors that are not a module's answer (cryptoki's own) cannot come
/// out of a signature; they cross as `CKR_GENERAL_ERROR`.
pub(crate) mod cryptoki_error {
    use cryptoki::context::Function;
    use cryptoki::error::{Error, Rv, RvError};
    use cryptoki_sys::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Answer {
        rv: CK_RV,
        function: String,
    }

    /// Serde's `serialize_with`.
    pub(crate) fn serialize<S: Serializer>(error: &Error, to: S) -> Result<S::Ok, S::Error> {
        let (rv, function) = match error {
            Error::Pkcs11(rv, function) => (code(*rv), format!("{function:?}")),
            _ => (CKR_GENERAL_ERROR, String::new()),
        };
        Answer { rv, function }.serialize(to)
    }

    /// Serde's `deserialize_with`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Error, D::Error> {
        let answer = Answer::deserialize(from)?;
        let rv = match Rv::from(answer.rv) {
            Rv::Error(rv) => rv,
            Rv::Ok => RvError::GeneralError,
        };
        let function = FUNCTIONS
            .iter()
            .find(|f| format!("{f:?}") == answer.function)
            .copied()
            .unwrap_or(Function::Sign);
        Ok(Error::Pkcs11(rv, function))
    }

    /// The `CKR_*` code of `rv`.
    fn code(rv: RvError) -> CK_RV {
        match rv {
            RvError::VendorDefined(code) | RvError::UnknownErrorCode(code) => code,
            rv => KNOWN
                .iter()
                .copied()
                .find(|&code| Rv::from(code) == Rv::Error(rv))
                .unwrap_or(CKR_GENERAL_ERROR),
        }
    }

    /// The functions the token layer calls, by which a failure is told.
    const FUNCTIONS: &[Function] = &[
        Function::Initialize,
        Function::Finalize,
        Function::GetSlotList,
        Function::GetSlotInfo,
        Function::GetTokenInfo,
        Function::GetMechanismList,
        Function::GetMechanismInfo,
        Function::OpenSession,
        Function::CloseSession,
        Function::GetSessionInfo,
        Function::Login,
        Function::Logout,
        Function::GetAttributeValue,
        Function::FindObjectsInit,
        Function::FindObjects,
        Function::FindObjectsFinal,
        Function::SignInit,
        Function::Sign,
        Function::SignUpdate,
        Function::SignFinal,
    ];

    /// Every return value cryptoki knows (its `Rv::from`).
    const KNOWN: &[CK_RV] = &[
        CKR_CANCEL,
        CKR_HOST_MEMORY,
        CKR_SLOT_ID_INVALID,
        CKR_GENERAL_ERROR,
        CKR_FUNCTION_FAILED,
        CKR_ARGUMENTS_BAD,
        CKR_NO_EVENT,
        CKR_NEED_TO_CREATE_THREADS,
        CKR_CANT_LOCK,
        CKR_ATTRIBUTE_READ_ONLY,
        CKR_ATTRIBUTE_SENSITIVE,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_ATTRIBUTE_VALUE_INVALID,
        CKR_ACTION_PROHIBITED,
        CKR_DATA_INVALID,
        CKR_DATA_LEN_RANGE,
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_ENCRYPTED_DATA_INVALID,
        CKR_ENCRYPTED_DATA_LEN_RANGE,
        CKR_FUNCTION_CANCELED,
        CKR_FUNCTION_NOT_PARALLEL,
        CKR_FUNCTION_NOT_SUPPORTED,
        CKR_CURVE_NOT_SUPPORTED,
        CKR_KEY_HANDLE_INVALID,
        CKR_KEY_SIZE_RANGE,
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_KEY_NOT_NEEDED,
        CKR_KEY_CHANGED,
        CKR_KEY_NEEDED,
        CKR_KEY_INDIGESTIBLE,
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        CKR_KEY_NOT_WRAPPABLE,
        CKR_KEY_UNEXTRACTABLE,
        CKR_MECHANISM_INVALID,
        CKR_MECHANISM_PARAM_INVALID,
        CKR_OBJECT_HANDLE_INVALID,
        CKR_OPERATION_ACTIVE,
        CKR_OPERATION_NOT_INITIALIZED,
        CKR_PIN_INCORRECT,
        CKR_PIN_INVALID,
        CKR_PIN_LEN_RANGE,
        CKR_PIN_EXPIRED,
        CKR_PIN_LOCKED,
        CKR_SESSION_CLOSED,
        CKR_SESSION_COUNT,
        CKR_SESSION_HANDLE_INVALID,
        CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        CKR_SESSION_READ_ONLY,
        CKR_SESSION_EXISTS,
        CKR_SESSION_READ_ONLY_EXISTS,
        CKR_SESSION_READ_WRITE_SO_EXISTS,
        CKR_SIGNATURE_INVALID,
        CKR_SIGNATURE_LEN_RANGE,
        CKR_TEMPLATE_INCOMPLETE,
        CKR_TEMPLATE_INCONSISTENT,
        CKR_TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED,
        CKR_TOKEN_WRITE_PROTECTED,
        CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        CKR_UNWRAPPING_KEY_SIZE_RANGE,
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
        CKR_USER_ALREADY_LOGGED_IN,
        CKR_USER_NOT_LOGGED_IN,
        CKR_USER_PIN_NOT_INITIALIZED,
        CKR_USER_TYPE_INVALID,
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        CKR_USER_TOO_MANY_TYPES,
        CKR_WRAPPED_KEY_INVALID,
        CKR_WRAPPED_KEY_LEN_RANGE,
        CKR_WRAPPING_KEY_HANDLE_INVALID,
        CKR_WRAPPING_KEY_SIZE_RANGE,
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        CKR_RANDOM_SEED_NOT_SUPPORTED,
        CKR_RANDOM_NO_RNG,
        CKR_DOMAIN_PARAMS_INVALID,
        CKR_BUFFER_TOO_SMALL,
        CKR_SAVED_STATE_INVALID,
        CKR_INFORMATION_SENSITIVE,
        CKR_STATE_UNSAVEABLE,
        CKR_CRYPTOKI_NOT_INITIALIZED,
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
        CKR_MUTEX_BAD,
        CKR_MUTEX_NOT_LOCKED,
        CKR_NEW_PIN_MODE,
        CKR_NEXT_OTP,
        CKR_EXCEEDED_MAX_ITERATIONS,
        CKR_FIPS_SELF_TEST_FAILED,
        CKR_LIBRARY_LOAD_FAILED,
        CKR_PIN_TOO_WEAK,
        CKR_PUBLIC_KEY_INVALID,
        CKR_FUNCTION_REJECTED,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;
    use cryptoki::error::{Error as CryptokiError, RvError};

    fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let mut buf = Vec::new();
        write_frame(&mut buf, value).expect("write");
        let decoded = read_frame(&mut buf.as_slice()).expect("read");
        decoded
    }

    #[test]
    fn a_module_failure_reads_and_means_the_same_after_crossing() {
        for rv in [
            RvError::DeviceError,
            RvError::PinIncorrect,
            RvError::GeneralError,
            RvError::VendorDefined(0x8000_0123),
        ] {
            let error = SignError::Pkcs11 {
                token: "card".into(),
                operation: "C_Sign".into(),
                source: CryptokiError::Pkcs11(rv, Function::Sign),
            };
            let crossed = round_trip(&error);
            assert_eq!(crossed.to_string(), error.to_string());
            assert_eq!(crossed.meaning(), error.meaning());
        }
    }

    #[test]
    fn a_frame_is_its_length_then_its_body() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::ScanSlot(7)).expect("write");
        assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_le_bytes());
        assert!(matches!(
            read_frame::<Request>(&mut buf.as_slice()),
            Ok(Request::ScanSlot(7))
        ));
    }

    /// A reader that hands out one byte per read, as a slow socket may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn a_frame_longer_than_the_first_read_or_in_pieces_arrives_whole() {
        let big = vec![7u8; 3 * FIRST_READ];
        let mut buf = Vec::new();
        write_frame(&mut buf, &Reply::Signature(big.clone())).expect("write");
        for decoded in [
            read_frame::<Reply>(&mut buf.as_slice()),
            read_frame::<Reply>(&mut Trickle(&buf)),
        ] {
            assert!(matches!(decoded, Ok(Reply::Signature(s)) if s == big));
        }
    }

    #[test]
    fn a_second_frame_out_of_turn_is_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Scan).expect("write");
        write_frame(&mut buf, &Request::Scan).expect("write");
        let err = read_frame::<Request>(&mut buf.as_slice()).expect_err("two frames");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_huge_or_cut_frame_is_refused() {
        let huge = (MAX_FRAME as u32 + 1).to_le_bytes();
        let err = read_frame::<Reply>(&mut huge.as_slice()).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut buf = Vec::new();
        write_frame(&mut buf, &Reply::Signature(vec![1; 64])).expect("write");
        buf.truncate(20);
        let err = read_frame::<Reply>(&mut buf.as_slice()).expect_err("cut");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_frame::<Reply>(&mut [].as_slice()).expect_err("empty");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
