//! Initialisation, slots, tokens, mechanisms, sessions and login.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{guard, output, store, store_len};
use crate::rv::Error;
use crate::slots::padded;
use crate::{calls, state};

#[no_mangle]
pub(crate) extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes NULL or a CK_C_INITIALIZE_ARGS.
        if let Some(args) = unsafe { args.cast::<CK_C_INITIALIZE_ARGS>().as_ref() } {
            check_init_args(args)?;
        }
        state::initialize()
    })
}

/// The module locks with the OS's mutexes and never creates a thread,
/// so it accepts `CKF_OS_LOCKING_OK` and
/// `CKF_LIBRARY_CANT_CREATE_OS_THREADS`; it cannot use a program's own
/// mutex functions instead.
fn check_init_args(args: &CK_C_INITIALIZE_ARGS) -> Result<(), Error> {
    if !args.pReserved.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let given = [
        args.CreateMutex.is_some(),
        args.DestroyMutex.is_some(),
        args.LockMutex.is_some(),
        args.UnlockMutex.is_some(),
    ];
    match given {
        [false, false, false, false] => Ok(()),
        [true, true, true, true] if args.flags & CKF_OS_LOCKING_OK != 0 => Ok(()),
        [true, true, true, true] => Err(Error::CantLock),
        _ => Err(Error::ArgumentsBad),
    }
}

#[no_mangle]
pub(crate) extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        state::finalize()
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        let value = CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: padded("p11agent"),
            flags: 0,
            libraryDescription: padded("p11agent signing agent"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        // SAFETY: PKCS#11 passes a place for the information.
        unsafe { store(info, value) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a count, and NULL or room for `*count`.
        let out = unsafe { output(list, count) }?;
        let listed = calls::slot_list(token_present != 0, out);
        // SAFETY: `count` was read above.
        unsafe { store_len(count, listed) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    // SAFETY: PKCS#11 passes a place for the information.
    guard(|| unsafe { store(info, calls::slot_info(slot)?) })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    // SAFETY: PKCS#11 passes a place for the information.
    guard(|| unsafe { store(info, calls::token_info(slot)?) })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a count, and NULL or room for `*count`.
        let out = unsafe { output(list, count) }?;
        let listed = calls::mechanism_list(slot, out);
        // SAFETY: `count` was read above.
        unsafe { store_len(count, listed) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    // SAFETY: PKCS#11 passes a place for the information.
    guard(|| unsafe { store(info, calls::mechanism_info(slot, mechanism)?) })
}

#[no_mangle]
pub(crate) extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    slot: *mut CK_SLOT_ID,
    reserved: *mut c_void,
) -> CK_RV {
    guard(|| {
        if !reserved.is_null() || slot.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let event = state::wait_for_slot_event(flags & CKF_DONT_BLOCK == 0)?;
        // SAFETY: non-NULL, a place for the slot id.
        unsafe { store(slot, event) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        if session.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = calls::open_session(slot, flags)?;
        // SAFETY: non-NULL, a place for the handle.
        unsafe { store(session, handle) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| calls::close_session(session))
}

#[no_mangle]
pub(crate) extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| calls::close_all_sessions(slot))
}

#[no_mangle]
pub(crate) extern "C" fn C_GetSessionInfo(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    // SAFETY: PKCS#11 passes a place for the information.
    guard(|| unsafe { store(info, calls::session_info(session)?) })
}

/// Any PIN, or none: it goes nowhere (the agent has its own PIN source).
#[no_mangle]
pub(crate) extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    _pin: *mut CK_UTF8CHAR,
    _pin_len: CK_ULONG,
) -> CK_RV {
    guard(|| calls::login(session, user))
}

#[no_mangle]
pub(crate) extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| calls::logout(session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: CK_FLAGS, mutexes: bool) -> CK_C_INITIALIZE_ARGS {
        extern "C" fn create(_: *mut *mut c_void) -> CK_RV {
            CKR_OK
        }
        extern "C" fn other(_: *mut c_void) -> CK_RV {
            CKR_OK
        }
        CK_C_INITIALIZE_ARGS {
            CreateMutex: mutexes.then_some(create as _),
            DestroyMutex: mutexes.then_some(other as _),
            LockMutex: mutexes.then_some(other as _),
            UnlockMutex: mutexes.then_some(other as _),
            flags,
            pReserved: std::ptr::null_mut(),
        }
    }

    #[test]
    fn initialize_arguments() {
        let threads = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
        assert!(check_init_args(&args(threads, false)).is_ok());
        assert!(check_init_args(&args(CKF_OS_LOCKING_OK, true)).is_ok());
        assert!(matches!(
            check_init_args(&args(0, true)),
            Err(Error::CantLock)
        ));
        let mut partial = args(0, true);
        partial.LockMutex = None;
        assert!(matches!(
            check_init_args(&partial),
            Err(Error::ArgumentsBad)
        ));
    }
}
