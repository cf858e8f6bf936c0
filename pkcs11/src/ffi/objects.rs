//! Objects: attributes and searches.

use std::mem::MaybeUninit;

use cryptoki_sys::*;

use super::{guard, input, store};
use crate::attributes::Request;
use crate::calls;
use crate::rv::Error;

#[no_mangle]
pub(crate) extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `count` attributes.
        let attributes = unsafe { input(template, count) }?;
        let mut requests = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            let buffer = if attribute.pValue.is_null() {
                None
            } else {
                let len = usize::try_from(attribute.ulValueLen).map_err(|_| Error::ArgumentsBad)?;
                // SAFETY: PKCS#11 passes room for `ulValueLen` bytes at
                // each non-NULL `pValue`, apart from the template.
                Some(unsafe {
                    std::slice::from_raw_parts_mut(attribute.pValue.cast::<MaybeUninit<u8>>(), len)
                })
            };
            requests.push(Request {
                ty: attribute.type_,
                buffer,
                len: CK_UNAVAILABLE_INFORMATION,
            });
        }
        let outcome = calls::attribute_values(session, object, &mut requests);
        if matches!(
            outcome,
            Ok(())
                | Err(Error::AttributeSensitive
                    | Error::AttributeTypeInvalid
                    | Error::BufferTooSmall(_))
        ) {
            for (i, request) in requests.iter().enumerate() {
                // SAFETY: `template` holds `count` attributes (read above)
                // whose lengths PKCS#11 has the module write.
                unsafe { (&raw mut (*template.add(i)).ulValueLen).write(request.len) };
            }
        }
        outcome
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: PKCS#11 passes `count` attributes.
        let attributes = unsafe { input(template, count) }?;
        let mut wanted = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            // SAFETY: each value is `ulValueLen` bytes at `pValue`.
            let value = unsafe { input(attribute.pValue.cast::<u8>(), attribute.ulValueLen) }?;
            wanted.push((attribute.type_, value.to_vec()));
        }
        calls::find_init(session, &wanted)
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if objects.is_null() || count.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let max = usize::try_from(max).map_err(|_| Error::ArgumentsBad)?;
        // SAFETY: PKCS#11 passes room for `max` handles.
        let out = unsafe {
            std::slice::from_raw_parts_mut(objects.cast::<MaybeUninit<CK_OBJECT_HANDLE>>(), max)
        };
        let found = calls::find(session, out)?;
        // SAFETY: non-NULL, a place for the count.
        unsafe { store(count, found as CK_ULONG) }
    })
}

#[no_mangle]
pub(crate) extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| calls::find_final(session))
}
