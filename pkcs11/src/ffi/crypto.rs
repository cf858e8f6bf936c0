//! Digests and signatures.

use std::mem::size_of;

use cryptoki_sys::*;

use super::{guard, input, output, store_len};
use crate::mechanisms::Params;
use crate::operations;
use crate::rv::Error;

/// The mechanism a program passed, with the parameters the module reads.
///
/// # Safety
///
/// `mechanism` must be NULL or point to a `CK_MECHANISM` whose
/// parameters are `ulParameterLen` bytes at `pParameter`.
unsafe fn mechanism(mechanism: *const CK_MECHANISM) -> Result<(CK_MECHANISM_TYPE, Params), Error> {
    // SAFETY: NULL or valid, by the caller's promise.
    let mechanism = unsafe { mechanism.as_ref() }.ok_or(Error::ArgumentsBad)?;
    let (ty, ptr, len) = (
        mechanism.mechanism,
        mechanism.pParameter,
        usize::try_from(mechanism.ulParameterLen).map_err(|_| Error::ArgumentsBad)?,
    );
    if ptr.is_null() || len == 0 {
        return Ok((ty, Params::None));
    }
    let params = match ty {
        CKM_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS
            if len == size_of::<CK_RSA_PKCS_PSS_PARAMS>() =>
        {
            // SAFETY: the parameters are a CK_RSA_PKCS_PSS_PARAMS (the
            // length says so); a program need not align them.
            let pss = unsafe { ptr.cast::<CK_RSA_PKCS_PSS_PARAMS>().read_unaligned() };
            Params::Pss {
                hash: pss.hashAlg,
                mgf: pss.mgf,
                salt_len: pss.sLen,
            }
        }
        CKM_EDDSA if len == size_of::<CK_EDDSA_PARAMS>() => {
            // SAFETY: as above, a CK_EDDSA_PARAMS.
            let eddsa = unsafe { ptr.cast::<CK_EDDSA_PARAMS>().read_unaligned() };
            Params::EdDsa {
                prehash: eddsa.phFlag != 0,
                context: eddsa.ulContextDataLen != 0,
            }
        }
        _ => Params::Other,
    };
    Ok((ty, params))
}

#[no_mangle]
pub(crate) extern "C" fn C_DigestInit(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a mechanism.
        let (ty, _) = unsafe { mechanism(mech) }?;
        operations::digest_init(session, ty)
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_Digest(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `data_len` bytes of data, a length, and
        // NULL or room for `*digest_len` bytes.
        let (data, out) = unsafe { (input(data, data_len)?, output(digest, digest_len)?) };
        let made = operations::digest(session, Some(data), out);
        // SAFETY: `digest_len` was read above.
        unsafe { store_len(digest_len, made) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_DigestUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `part_len` bytes.
        let part = unsafe { input(part, part_len) }?;
        operations::digest_update(session, part)
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_DigestFinal(
    session: CK_SESSION_HANDLE,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a length and NULL or room for it.
        let out = unsafe { output(digest, digest_len) }?;
        let made = operations::digest(session, None, out);
        // SAFETY: `digest_len` was read above.
        unsafe { store_len(digest_len, made) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a mechanism.
        let (ty, params) = unsafe { mechanism(mech) }?;
        operations::sign_init(session, ty, params, key)
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `data_len` bytes of data, a length, and
        // NULL or room for `*signature_len` bytes.
        let (data, out) = unsafe { (input(data, data_len)?, output(signature, signature_len)?) };
        let made = operations::sign(session, Some(data), out);
        // SAFETY: `signature_len` was read above.
        unsafe { store_len(signature_len, made) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_SignUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `part_len` bytes.
        let part = unsafe { input(part, part_len) }?;
        operations::sign_update(session, part)
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes a length and NULL or room for it.
        let out = unsafe { output(signature, signature_len) }?;
        let made = operations::sign(session, None, out);
        // SAFETY: `signature_len` was read above.
        unsafe { store_len(signature_len, made) }
    })
}
