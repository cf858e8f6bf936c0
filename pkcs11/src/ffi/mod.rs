//! The C interface, and the only `unsafe` code of the module: each
//! exported function turns its pointers into Rust values, calls the safe
//! code, and writes the results back. [`guard`] runs every body, so that
//! no panic crosses into C.

#![allow(unsafe_code)]
// The PKCS#11 names.
#![allow(non_snake_case)]

mod crypto;
mod general;
mod lists;
mod objects;
mod unsupported;

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::*;

use crate::calls::{deliver, Out};
use crate::rv::Error;

/// Runs the body of an exported function: its error as its `CKR_*`
/// value, a panic as `CKR_GENERAL_ERROR`.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Error>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => e.rv(),
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// The `len` items at `ptr`, which may be NULL when `len` is 0.
///
/// # Safety
///
/// A non-NULL `ptr` must be valid for reads of `len` items, unchanged
/// while the slice lives (PKCS#11's contract for input buffers).
unsafe fn input<'a, T>(ptr: *const T, len: CK_ULONG) -> Result<&'a [T], Error> {
    let len = usize::try_from(len).map_err(|_| Error::ArgumentsBad)?;
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::ArgumentsBad)
        };
    }
    // SAFETY: non-NULL, and valid for `len` items by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The output buffer at `ptr`, as long as `*len` says; `None` when
/// `ptr` is NULL (the caller asks for the length).
///
/// # Safety
///
/// `len` must be NULL or valid for reads; a non-NULL `ptr` must be valid
/// for writes of `*len` items, and not otherwise used while the slice
/// lives.
unsafe fn output<'a, T>(ptr: *mut T, len: *const CK_ULONG) -> Result<Out<'a, T>, Error> {
    // SAFETY: NULL or valid for reads, by the caller's promise.
    let len = unsafe { len.as_ref() }.ok_or(Error::ArgumentsBad)?;
    if ptr.is_null() {
        return Ok(None);
    }
    let len = usize::try_from(*len).map_err(|_| Error::ArgumentsBad)?;
    // SAFETY: valid for writes of `len` items by the caller's promise;
    // MaybeUninit because the caller need not have initialised them.
    Ok(Some(unsafe {
        std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), len)
    }))
}

/// Writes `value` to `ptr`.
///
/// # Safety
///
/// `ptr` must be NULL or valid for writes.
unsafe fn store<T>(ptr: *mut T, value: T) -> Result<(), Error> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL and valid for writes by the caller's promise.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Writes the length of an output (or the length needed, when the
/// buffer was too small) to `len`.
///
/// # Safety
///
/// As [`store`].
unsafe fn store_len(len: *mut CK_ULONG, result: Result<usize, Error>) -> Result<(), Error> {
    let n = match &result {
        Ok(n) | Err(Error::BufferTooSmall(n)) => *n as CK_ULONG,
        Err(_) => return result.map(drop),
    };
    // SAFETY: as the caller promised.
    unsafe { store(len, n) }?;
    result.map(drop)
}

/// The name of the one interface the module offers.
const INTERFACE_NAME: &CStr = c"PKCS 11";

/// The interfaces: PKCS#11 3.0 first (the default), then 2.40.
struct Interfaces([CK_INTERFACE; 2]);

// SAFETY: the pointers point to immutable statics (the name and the
// function lists), which nobody writes through them.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut().cast(),
        pFunctionList: (&raw const lists::FUNCTION_LIST_3_0).cast_mut().cast(),
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut().cast(),
        pFunctionList: (&raw const lists::FUNCTION_LIST_2_40).cast_mut().cast(),
        flags: 0,
    },
]);

/// The PKCS#11 2.40 function list.
#[no_mangle]
pub(crate) extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes NULL or a place for the pointer. The
        // list is immutable; programs only read it.
        unsafe { store(list, (&raw const lists::FUNCTION_LIST_2_40).cast_mut()) }
    })
}

/// The interfaces the module offers.
#[no_mangle]
pub(crate) extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a count, and NULL or room for `*count`
        // interfaces.
        let out = unsafe { output(list, count) }?;
        let delivered = deliver(&INTERFACES.0, out);
        // SAFETY: `count` was read above, so it is valid.
        unsafe { store_len(count, delivered) }
    })
}

/// One interface, by name (only "PKCS 11"), version and flags; NULLs
/// ask for the default, PKCS#11 3.0.
#[no_mangle]
pub(crate) extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes NULL or a NUL-terminated name.
        let name_fits = name.is_null() || unsafe { CStr::from_ptr(name.cast()) } == INTERFACE_NAME;
        // SAFETY: PKCS#11 passes NULL or a version to read.
        let version = unsafe { version.as_ref() };
        let found = INTERFACES.0.iter().find(|candidate| {
            let list = candidate.pFunctionList.cast::<CK_VERSION>();
            // SAFETY: every function list begins with its version.
            let offered = unsafe { list.read() };
            name_fits
                && version.is_none_or(|v| (v.major, v.minor) == (offered.major, offered.minor))
                && flags & !candidate.flags == 0
        });
        let found = found.ok_or(Error::ArgumentsBad)?;
        // SAFETY: PKCS#11 passes NULL or a place for the pointer; the
        // interface is immutable, programs only read it.
        unsafe { store(interface, std::ptr::from_ref(found).cast_mut()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_general_error() {
        assert_eq!(guard(|| panic!("boom")), CKR_GENERAL_ERROR);
        assert_eq!(guard(|| Err(Error::NoEvent)), CKR_NO_EVENT);
        assert_eq!(guard(|| Ok(())), CKR_OK);
    }

    #[test]
    fn interfaces_are_found_by_name_and_version() {
        let mut found: *mut CK_INTERFACE = std::ptr::null_mut();
        let rv = C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut found, 0);
        assert_eq!(rv, CKR_OK);
        assert_eq!(found.cast_const(), &raw const INTERFACES.0[0]);
        let mut v240 = CK_VERSION {
            major: 2,
            minor: 40,
        };
        let mut name = *b"PKCS 11\0";
        let rv = C_GetInterface(name.as_mut_ptr(), &mut v240, &mut found, 0);
        assert_eq!(rv, CKR_OK);
        assert_eq!(found.cast_const(), &raw const INTERFACES.0[1]);
        let mut other = *b"Vendor\0";
        let rv = C_GetInterface(other.as_mut_ptr(), std::ptr::null_mut(), &mut found, 0);
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        let mut count = 0;
        assert_eq!(C_GetInterfaceList(std::ptr::null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 2);
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
        // SAFETY: the module's own, valid list.
        assert_eq!(unsafe { (*list).version.minor }, 40);
    }
}
