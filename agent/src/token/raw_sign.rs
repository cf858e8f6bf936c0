//! A single-part `C_Sign` on an operation that is already initialised:
//! the one PKCS#11 call cryptoki 0.12 does not expose, and which a key
//! with `CKA_ALWAYS_AUTHENTICATE` needs.
//!
//! PKCS#11 wants the context-specific login *between* `C_SignInit` and
//! `C_Sign`. cryptoki's [`Session::sign`] makes both calls at once, and
//! its multi-part API (`sign_init`, `sign_update`, `sign_final`) only
//! works for mechanisms that allow multi-part operation: the raw
//! mechanisms the agent prefers (`CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`, `CKM_EDDSA`) are single-part on most tokens, SoftHSM
//! included. So the agent starts the operation with cryptoki's
//! [`Session::sign_init`], logs in with [`Session::login`]
//! (`CKU_CONTEXT_SPECIFIC`), and finishes it here with the module's own
//! `C_Sign`, taken from its function list.
//!
//! This and `own_module.rs` are the only `unsafe` code of the agent.
#![allow(unsafe_code)]

use std::path::Path;
use std::ptr;

use cryptoki::context::Function;
use cryptoki::error::{Error as CryptokiError, Rv};
use cryptoki::session::Session;
use cryptoki_sys::{CKR_OK, CK_BYTE, CK_FUNCTION_LIST, CK_RV, CK_SESSION_HANDLE, CK_ULONG};

type CSign = unsafe extern "C" fn(
    CK_SESSION_HANDLE,
    *mut CK_BYTE,
    CK_ULONG,
    *mut CK_BYTE,
    *mut CK_ULONG,
) -> CK_RV;

/// A module's `C_Sign`.
pub(crate) struct RawSign {
    c_sign: CSign,
    /// Keeps the library (and so `c_sign`) loaded.
    _library: cryptoki_sys::Pkcs11,
}

impl std::fmt::Debug for RawSign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSign").finish_non_exhaustive()
    }
}

impl RawSign {
    /// Finds `C_Sign` of the module at `path`, which cryptoki has already
    /// loaded and initialised: `dlopen` of a loaded library returns the
    /// loaded instance, so its sessions are the ones cryptoki opened.
    pub(crate) fn load(path: &Path) -> Result<RawSign, String> {
        // SAFETY: the library is already loaded in this process by
        // cryptoki (`Module::load` succeeded for this path), so opening
        // it again runs no initialiser; we only read function pointers.
        let library = unsafe { cryptoki_sys::Pkcs11::new(path) }
            .map_err(|err| format!("cannot open {} again: {err}", path.display()))?;
        let get_function_list = library
            .C_GetFunctionList
            .as_ref()
            .map_err(|err| format!("no C_GetFunctionList in {}: {err}", path.display()))?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: C_GetFunctionList writes a pointer to the module's
        // static function list into `list`.
        let rv = unsafe { get_function_list(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(format!(
                "C_GetFunctionList of {} failed (0x{rv:x})",
                path.display()
            ));
        }
        // SAFETY: `list` is non-null and points to the module's function
        // list, which lives as long as the library stays loaded.
        let c_sign =
            unsafe { (*list).C_Sign }.ok_or_else(|| format!("{} has no C_Sign", path.display()))?;
        Ok(RawSign {
            c_sign,
            _library: library,
        })
    }

    /// `C_Sign` of `data` on `session`, whose signing operation was
    /// initialised (and, where needed, authenticated) already. Asks for
    /// the length first, like cryptoki's [`Session::sign`].
    pub(crate) fn sign(&self, session: &Session, data: &[u8]) -> Result<Vec<u8>, CryptokiError> {
        let data_len = CK_ULONG::try_from(data.len())?;
        let mut len: CK_ULONG = 0;
        // SAFETY: `data` is valid for `data_len` bytes (C_Sign does not
        // write to it despite the `*mut`); a null signature pointer asks
        // for the length only, written into `len`.
        let rv = unsafe {
            (self.c_sign)(
                session.handle(),
                data.as_ptr().cast_mut(),
                data_len,
                ptr::null_mut(),
                &mut len,
            )
        };
        Rv::from(rv).into_result(Function::Sign)?;
        let mut signature = vec![0u8; usize::try_from(len)?];
        // SAFETY: `signature` is valid for `len` bytes, which the module
        // reported as enough; it writes the actual length into `len`.
        let rv = unsafe {
            (self.c_sign)(
                session.handle(),
                data.as_ptr().cast_mut(),
                data_len,
                signature.as_mut_ptr(),
                &mut len,
            )
        };
        Rv::from(rv).into_result(Function::Sign)?;
        signature.truncate(usize::try_from(len)?);
        Ok(signature)
    }
}
