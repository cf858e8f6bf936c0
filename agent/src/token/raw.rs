//! The module's own functions, for the two calls cryptoki 0.12 wraps in
//! a way the agent cannot use.
//!
//! **A single-part `C_Sign` on an operation that is already
//! initialised**, which a key with `CKA_ALWAYS_AUTHENTICATE` needs.
//! PKCS#11 wants the context-specific login *between* `C_SignInit` and
//! `C_Sign`. cryptoki's [`Session::sign`] makes both calls at once, and
//! its multi-part API (`sign_init`, `sign_update`, `sign_final`) only
//! works for mechanisms that allow multi-part operation: the raw
//! mechanisms the agent prefers (`CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`, `CKM_EDDSA`) are single-part on most tokens, SoftHSM
//! included. So the agent starts the operation with cryptoki's
//! [`Session::sign_init`], logs in with [`Session::login`]
//! (`CKU_CONTEXT_SPECIFIC`), and finishes it here with [`RawSign`].
//!
//! **`C_GetAttributeValue` in one call.** cryptoki's
//! [`Session::get_attributes`] asks for the lengths of the attributes of
//! variable size, then for their values: two calls per object. SoftHSM
//! checks the object's file on each call, so a scan of 10,000 identities
//! spent half a second in the first calls (issue 14). [`RawAttributes`]
//! reads into buffers made large enough for what a scan asks, and says
//! when they were not, for the caller to read as cryptoki does.
//!
//! Both functions are taken from the module's function list. This and
//! `own_module.rs` are the only `unsafe` code of the agent besides
//! `memory.rs` and the descriptor a module helper receives
//! (`isolated/helper.rs`).
#![allow(unsafe_code)]

use std::path::Path;
use std::ptr;

use cryptoki::context::Function;
use cryptoki::error::{Error as CryptokiError, Rv};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::{
    CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL, CKR_OK,
    CK_ATTRIBUTE, CK_BYTE, CK_FUNCTION_LIST, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE,
    CK_SESSION_INFO, CK_ULONG, CK_UNAVAILABLE_INFORMATION,
};

type CSign = unsafe extern "C" fn(
    CK_SESSION_HANDLE,
    *mut CK_BYTE,
    CK_ULONG,
    *mut CK_BYTE,
    *mut CK_ULONG,
) -> CK_RV;

type CGetAttributeValue =
    unsafe extern "C" fn(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG) -> CK_RV;

/// The function list of the module at `path`, which cryptoki has already
/// loaded and initialised, and the library handle that keeps it valid:
/// `dlopen` of a loaded library returns the loaded instance, so its
/// sessions are the ones cryptoki opened.
fn function_list(path: &Path) -> Result<(cryptoki_sys::Pkcs11, CK_FUNCTION_LIST), String> {
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
    let functions = unsafe { *list };
    Ok((library, functions))
}

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
    /// loaded and initialised.
    pub(crate) fn load(path: &Path) -> Result<RawSign, String> {
        let (library, functions) = function_list(path)?;
        let c_sign = functions
            .C_Sign
            .ok_or_else(|| format!("{} has no C_Sign", path.display()))?;
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

/// A module's `C_GetAttributeValue`.
pub(crate) struct RawAttributes {
    c_get_attribute_value: CGetAttributeValue,
    /// Keeps the library (and so `c_get_attribute_value`) loaded.
    _library: cryptoki_sys::Pkcs11,
}

impl std::fmt::Debug for RawAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAttributes").finish_non_exhaustive()
    }
}

/// What [`RawAttributes::read`] asks for: attribute types, each with a
/// buffer, reused from one object to the next.
#[derive(Debug)]
pub(crate) struct AttributeRequest {
    types: Vec<AttributeType>,
    buffers: Vec<Vec<u8>>,
}

impl AttributeRequest {
    /// Asks for `types`, with a buffer of `variable_size` bytes for each
    /// attribute whose size is not fixed.
    pub(crate) fn new(types: &[AttributeType], variable_size: usize) -> AttributeRequest {
        AttributeRequest {
            types: types.to_vec(),
            buffers: types
                .iter()
                .map(|t| vec![0; t.fixed_size().unwrap_or(variable_size)])
                .collect(),
        }
    }

    /// The types asked for.
    pub(crate) fn types(&self) -> &[AttributeType] {
        &self.types
    }
}

impl RawAttributes {
    /// Finds `C_GetAttributeValue` of the module at `path`, which cryptoki
    /// has already loaded and initialised, and checks that its function
    /// list serves `session`: some modules hand out a new instance with
    /// each function list (p11-kit's client does), one that cryptoki has
    /// not initialised.
    pub(crate) fn load(path: &Path, session: &Session) -> Result<RawAttributes, String> {
        let (library, functions) = function_list(path)?;
        let c_get_attribute_value = functions
            .C_GetAttributeValue
            .ok_or_else(|| format!("{} has no C_GetAttributeValue", path.display()))?;
        let c_get_session_info = functions
            .C_GetSessionInfo
            .ok_or_else(|| format!("{} has no C_GetSessionInfo", path.display()))?;
        let mut info = CK_SESSION_INFO::default();
        // SAFETY: C_GetSessionInfo writes one CK_SESSION_INFO into `info`.
        let rv = unsafe { c_get_session_info(session.handle(), &mut info) };
        if rv != CKR_OK {
            return Err(format!(
                "the function list of {} does not know cryptoki's sessions (0x{rv:x})",
                path.display()
            ));
        }
        Ok(RawAttributes {
            c_get_attribute_value,
            _library: library,
        })
    }

    /// The attributes of `request` that `object` has, in one
    /// `C_GetAttributeValue`, as cryptoki's [`Session::get_attributes`]
    /// gives them: those the object lacks or the token refuses are left
    /// out. `None` when a buffer was too small or a value did not convert,
    /// for the caller to read as cryptoki does; an error for any other
    /// failure of the call.
    pub(crate) fn read(
        &self,
        session: &Session,
        object: ObjectHandle,
        request: &mut AttributeRequest,
    ) -> Result<Option<Vec<Attribute>>, CryptokiError> {
        let mut template: Vec<CK_ATTRIBUTE> = request
            .types
            .iter()
            .zip(request.buffers.iter_mut())
            .map(|(t, buffer)| {
                Ok(CK_ATTRIBUTE {
                    type_: (*t).into(),
                    pValue: buffer.as_mut_ptr().cast(),
                    ulValueLen: CK_ULONG::try_from(buffer.len())?,
                })
            })
            .collect::<Result<_, CryptokiError>>()?;
        let count = CK_ULONG::try_from(template.len())?;
        // SAFETY: every entry of `template` points to a buffer of the
        // length it states, alive and not otherwise borrowed until the
        // call returns; the module writes at most that many bytes into
        // each and the actual lengths into `ulValueLen`.
        let rv = unsafe {
            (self.c_get_attribute_value)(
                session.handle(),
                object.handle(),
                template.as_mut_ptr(),
                count,
            )
        };
        match rv {
            CKR_OK | CKR_ATTRIBUTE_SENSITIVE | CKR_ATTRIBUTE_TYPE_INVALID => {}
            CKR_BUFFER_TOO_SMALL => return Ok(None),
            _ => {
                Rv::from(rv).into_result(Function::GetAttributeValue)?;
                return Ok(None);
            }
        }
        let mut attributes = Vec::with_capacity(template.len());
        for (attribute, buffer) in template.iter().zip(&request.buffers) {
            if attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION {
                continue;
            }
            // A length beyond the buffer is a module bug: do not read it.
            if usize::try_from(attribute.ulValueLen).map_or(true, |len| len > buffer.len()) {
                return Ok(None);
            }
            // The conversion reads `ulValueLen` bytes at `pValue`: within
            // `buffer`, as just checked.
            match Attribute::try_from(*attribute) {
                Ok(value) => attributes.push(value),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(attributes))
    }
}
