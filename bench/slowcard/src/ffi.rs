//! The C interface, and the only `unsafe` code of the crate: a PKCS#11
//! 2.40 function list whose every function forwards its arguments,
//! unchanged, to the same function of the real module, after the card's
//! delay for that kind of call. [`guard`] runs every body, so that no
//! panic crosses into C.

#![allow(unsafe_code)]
// The PKCS#11 names.
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::Duration;

use cryptoki_sys::*;

use crate::card::Card;

/// The real module, loaded once and never unloaded: its function list
/// must outlive every call a program may still make.
struct Real {
    /// Keeps the library loaded.
    _library: Pkcs11,
    list: &'static CK_FUNCTION_LIST,
}

static REAL: OnceLock<Real> = OnceLock::new();

/// The card, as the environment described it at the first
/// `C_Initialize`.
static CARD: OnceLock<Card> = OnceLock::new();

/// Runs the body of an exported function; a panic becomes
/// `CKR_GENERAL_ERROR`.
fn guard(body: impl FnOnce() -> CK_RV) -> CK_RV {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(CKR_GENERAL_ERROR)
}

/// Runs the body of an exported function that needs the card in the
/// reader, as [`guard`] does, with the card and the real module's
/// functions.
fn with_card(body: impl FnOnce(&'static Card, &'static CK_FUNCTION_LIST) -> CK_RV) -> CK_RV {
    guard(|| match state() {
        None => CKR_CRYPTOKI_NOT_INITIALIZED,
        Some((card, _)) if !card.present() => CKR_DEVICE_REMOVED,
        Some((card, real)) => body(card, real),
    })
}

/// The card and the real module's functions, once `C_Initialize` has
/// set them up.
fn state() -> Option<(&'static Card, &'static CK_FUNCTION_LIST)> {
    Some((CARD.get()?, REAL.get()?.list))
}

/// Reads the card's description and loads the real module, the first
/// time; the same ones afterwards.
fn set_up() -> Result<(&'static Card, &'static CK_FUNCTION_LIST), String> {
    if let Some(state) = state() {
        return Ok(state);
    }
    if CARD.get().is_none() {
        // A thread that lost a race to set it read the same environment.
        let _ = CARD.set(Card::from_env()?);
    }
    let card = CARD.get().ok_or("no card")?;
    let path = &card.module;
    // SAFETY: loading a PKCS#11 module runs its initialisers, as loading
    // it in any program does; nothing else of it runs here.
    let library =
        unsafe { Pkcs11::new(path) }.map_err(|e| format!("loading {}: {e}", path.display()))?;
    let get_list = *library
        .C_GetFunctionList
        .as_ref()
        .map_err(|e| format!("{} has no C_GetFunctionList: {e}", path.display()))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: a module's C_GetFunctionList writes the address of its
    // function list to the place it is given.
    let rv = unsafe { get_list(&mut list) };
    if rv != CKR_OK || list.is_null() {
        return Err(format!(
            "C_GetFunctionList of {} failed ({rv:#x})",
            path.display()
        ));
    }
    if std::ptr::eq(list.cast_const(), &raw const FUNCTION_LIST) {
        return Err(format!(
            "{} is this module: each call would forward to itself",
            path.display()
        ));
    }
    // SAFETY: non-NULL, and the module's function list, valid while the
    // library is loaded; REAL keeps it loaded until the process exits.
    let list: &'static CK_FUNCTION_LIST = unsafe { &*list };
    // A thread that lost the race drops its handle; the library stays
    // loaded by the winner's, and both lists are the same one.
    let _ = REAL.set(Real {
        _library: library,
        list,
    });
    state().ok_or_else(|| "the module did not stay loaded".to_owned())
}

/// The PKCS#11 2.40 function list.
#[no_mangle]
pub(crate) extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes NULL or a place for the pointer. The list
        // is immutable; programs only read it.
        match unsafe { list.as_mut() } {
            Some(list) => {
                *list = (&raw const FUNCTION_LIST).cast_mut();
                CKR_OK
            }
            None => CKR_ARGUMENTS_BAD,
        }
    })
}

extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        let (card, real) = match set_up() {
            Ok(state) => state,
            Err(e) => {
                // The program sees only CKR_GENERAL_ERROR; the benchmark's
                // log says why.
                eprintln!("p11agent-bench-slowcard: {e}");
                return CKR_GENERAL_ERROR;
            }
        };
        let Some(initialize) = real.C_Initialize else {
            return CKR_GENERAL_ERROR;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        card.exchange(card.profile.init, || unsafe { initialize(args) })
    })
}

extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        let Some((card, real)) = state() else {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        };
        let Some(finalize) = real.C_Finalize else {
            return CKR_GENERAL_ERROR;
        };
        card.end_sessions();
        // SAFETY: the caller's argument, passed on unchanged.
        unsafe { finalize(reserved) }
    })
}

/// With the card out of the reader, no slot has a token.
extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let Some((card, real)) = state() else {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        };
        card.crash_if_asked("C_GetSlotList");
        if token_present != CK_FALSE && !card.present() {
            // SAFETY: PKCS#11 passes NULL or a count to write.
            return match unsafe { count.as_mut() } {
                Some(count) => {
                    *count = 0;
                    CKR_OK
                }
                None => CKR_ARGUMENTS_BAD,
            };
        }
        let Some(get) = real.C_GetSlotList else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        unsafe { get(token_present, list, count) }
    })
}

/// With the card out of the reader, the token is not present; while the
/// flaky file exists, one call fails as a busy reader's may, and takes
/// the file away.
extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let Some((card, real)) = state() else {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        };
        if !card.present() {
            return CKR_TOKEN_NOT_PRESENT;
        }
        if card.flakes() {
            return CKR_GENERAL_ERROR;
        }
        let Some(get) = real.C_GetTokenInfo else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        unsafe { get(slot, info) }
    })
}

/// With the card out of the reader, the slot says so.
extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let Some((card, real)) = state() else {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        };
        let Some(get) = real.C_GetSlotInfo else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        let rv = unsafe { get(slot, info) };
        if rv == CKR_OK && !card.present() {
            // SAFETY: the real module succeeded, so `info` was a valid
            // place for the information, which it wrote.
            if let Some(info) = unsafe { info.as_mut() } {
                info.flags &= !CKF_TOKEN_PRESENT;
            }
        }
        rv
    })
}

/// Notes the signature time of the key, for `C_Sign`: a card takes
/// longer with RSA than with ECDSA.
extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_card(|card, real| {
        let Some(init) = real.C_SignInit else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        // SAFETY: the caller's arguments, passed on unchanged.
        let rv = unsafe { init(session, mechanism, key) };
        if rv == CKR_OK {
            let delay = match key_type(real, session, key) {
                Some(CKK_RSA) => card.profile.sign_rsa,
                _ => card.profile.sign_ec,
            };
            card.start_signing(session, delay);
        }
        rv
    })
}

/// `CKA_KEY_TYPE` of `key`, asked of the real module directly: the
/// card's driver knows it without asking the card.
fn key_type(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
) -> Option<CK_KEY_TYPE> {
    let get = real.C_GetAttributeValue?;
    let mut value: CK_KEY_TYPE = 0;
    let mut template = CK_ATTRIBUTE {
        type_: CKA_KEY_TYPE,
        pValue: (&raw mut value).cast(),
        ulValueLen: size_of::<CK_KEY_TYPE>() as CK_ULONG,
    };
    // SAFETY: one attribute, whose value points to a CK_KEY_TYPE and
    // says as much; both live across the call.
    let rv = unsafe { get(session, key, &mut template, 1) };
    (rv == CKR_OK).then_some(value)
}

/// A signature takes the key's time on the card; asking for the
/// signature's length (no output buffer) is answered by the driver.
extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    with_card(|card, real| {
        let Some(sign) = real.C_Sign else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        if !signature.is_null() {
            card.crash_if_asked("C_Sign");
        }
        let delay = signing_delay(card, session, signature);
        // SAFETY: the caller's arguments, passed on unchanged.
        card.exchange(delay, || unsafe {
            sign(session, data, data_len, signature, signature_len)
        })
    })
}

/// As [`C_Sign`], for a signature made in parts.
extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    with_card(|card, real| {
        let Some(finish) = real.C_SignFinal else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        let delay = signing_delay(card, session, signature);
        // SAFETY: the caller's arguments, passed on unchanged.
        card.exchange(delay, || unsafe {
            finish(session, signature, signature_len)
        })
    })
}

/// The card's time for a signature into `signature`; none for a length
/// query.
fn signing_delay(card: &Card, session: CK_SESSION_HANDLE, signature: *mut CK_BYTE) -> Duration {
    if signature.is_null() {
        Duration::ZERO
    } else {
        card.signing_delay(session)
    }
}

extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        let Some((card, real)) = state() else {
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        };
        let Some(close) = real.C_CloseSession else {
            return CKR_FUNCTION_NOT_SUPPORTED;
        };
        card.end_session(session);
        // SAFETY: the caller's argument, passed on unchanged.
        unsafe { close(session) }
    })
}

/// Functions that forward their arguments unchanged: `absent` is what
/// they answer while the card is out of the reader, `costs` the field of
/// the profile they take on the card (else they are answered from the
/// driver's memory, at once).
macro_rules! forward {
    ($(
        $name:ident($($arg:ident: $ty:ty),* $(,)?)
        $(, absent: $absent:ident)?
        $(, costs: $cost:ident)?;
    )*) => {$(
        extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            guard(|| {
                let Some((card, real)) = state() else {
                    return CKR_CRYPTOKI_NOT_INITIALIZED;
                };
                $(if !card.present() {
                    return $absent;
                })?
                let Some(function) = real.$name else {
                    return CKR_FUNCTION_NOT_SUPPORTED;
                };
                let delay = Duration::ZERO $(+ card.profile.$cost)?;
                // SAFETY: the caller's arguments, passed on unchanged to
                // the same function of the real module: the promises the
                // caller made us are the ones that function needs.
                card.exchange(delay, || unsafe { function($($arg),*) })
            })
        }
    )*};
}

forward! {
    C_GetInfo(info: *mut CK_INFO);
    C_GetMechanismList(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG),
        absent: CKR_TOKEN_NOT_PRESENT;
    C_GetMechanismInfo(slot: CK_SLOT_ID, kind: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO),
        absent: CKR_TOKEN_NOT_PRESENT;
    C_InitToken(slot: CK_SLOT_ID, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR),
        absent: CKR_TOKEN_NOT_PRESENT;
    C_InitPIN(session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG),
        absent: CKR_DEVICE_REMOVED;
    C_SetPIN(
        session: CK_SESSION_HANDLE,
        old: *mut CK_UTF8CHAR,
        old_len: CK_ULONG,
        new: *mut CK_UTF8CHAR,
        new_len: CK_ULONG,
    ), absent: CKR_DEVICE_REMOVED;
    C_OpenSession(
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        application: *mut c_void,
        notify: CK_NOTIFY,
        session: *mut CK_SESSION_HANDLE,
    ), absent: CKR_TOKEN_NOT_PRESENT;
    C_CloseAllSessions(slot: CK_SLOT_ID);
    C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO);
    C_GetOperationState(session: CK_SESSION_HANDLE, state: *mut CK_BYTE, state_len: *mut CK_ULONG);
    C_SetOperationState(
        session: CK_SESSION_HANDLE,
        state: *mut CK_BYTE,
        state_len: CK_ULONG,
        encryption_key: CK_OBJECT_HANDLE,
        authentication_key: CK_OBJECT_HANDLE,
    );
    C_Login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG),
        absent: CKR_DEVICE_REMOVED, costs: login;
    C_Logout(session: CK_SESSION_HANDLE);
    C_CreateObject(
        session: CK_SESSION_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        object: *mut CK_OBJECT_HANDLE,
    ), absent: CKR_DEVICE_REMOVED;
    C_CopyObject(
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        copy: *mut CK_OBJECT_HANDLE,
    ), absent: CKR_DEVICE_REMOVED;
    C_DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE), absent: CKR_DEVICE_REMOVED;
    C_GetObjectSize(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, size: *mut CK_ULONG);
    C_GetAttributeValue(
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
    ), absent: CKR_DEVICE_REMOVED, costs: attr;
    C_SetAttributeValue(
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
    ), absent: CKR_DEVICE_REMOVED;
    C_FindObjectsInit(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG),
        absent: CKR_DEVICE_REMOVED, costs: find;
    C_FindObjects(
        session: CK_SESSION_HANDLE,
        objects: *mut CK_OBJECT_HANDLE,
        max: CK_ULONG,
        count: *mut CK_ULONG,
    );
    C_FindObjectsFinal(session: CK_SESSION_HANDLE);
    C_EncryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Encrypt(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_EncryptUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_EncryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Decrypt(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DecryptUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DecryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DigestInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM);
    C_Digest(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_DigestKey(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE);
    C_DigestFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_SignRecoverInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_SignRecover(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_VerifyInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Verify(
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        signature: *mut CK_BYTE,
        signature_len: CK_ULONG,
    );
    C_VerifyUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_VerifyFinal(session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_VerifyRecoverInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_VerifyRecover(
        session: CK_SESSION_HANDLE,
        signature: *mut CK_BYTE,
        signature_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DigestEncryptUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DecryptDigestUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_SignEncryptUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_DecryptVerifyUpdate(
        session: CK_SESSION_HANDLE,
        part: *mut CK_BYTE,
        part_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_GenerateKey(
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE,
    ), absent: CKR_DEVICE_REMOVED;
    C_GenerateKeyPair(
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        public_template: *mut CK_ATTRIBUTE,
        public_count: CK_ULONG,
        private_template: *mut CK_ATTRIBUTE,
        private_count: CK_ULONG,
        public_key: *mut CK_OBJECT_HANDLE,
        private_key: *mut CK_OBJECT_HANDLE,
    ), absent: CKR_DEVICE_REMOVED;
    C_WrapKey(
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG,
    );
    C_UnwrapKey(
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: *mut CK_BYTE,
        wrapped_len: CK_ULONG,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE,
    );
    C_DeriveKey(
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        base_key: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE,
    );
    C_SeedRandom(session: CK_SESSION_HANDLE, seed: *mut CK_BYTE, seed_len: CK_ULONG);
    C_GenerateRandom(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: CK_ULONG);
    C_GetFunctionStatus(session: CK_SESSION_HANDLE);
    C_CancelFunction(session: CK_SESSION_HANDLE);
    C_WaitForSlotEvent(flags: CK_FLAGS, slot: *mut CK_SLOT_ID, reserved: *mut c_void);
}

/// What [`C_GetFunctionList`] gives: every PKCS#11 2.40 function.
static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_general_error() {
        assert_eq!(guard(|| panic!("boom")), CKR_GENERAL_ERROR);
        assert_eq!(guard(|| CKR_OK), CKR_OK);
    }

    #[test]
    fn the_list_is_pkcs11_2_40_and_calls_wait_for_initialisation() {
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
        // SAFETY: this module's own, valid list.
        assert_eq!(unsafe { (*list).version.minor }, 40);
        assert_eq!(C_GetFunctionList(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
        let mut count: CK_ULONG = 0;
        assert_eq!(
            C_GetSlotList(CK_TRUE, std::ptr::null_mut(), &mut count),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
    }
}
