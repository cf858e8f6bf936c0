//! An object's attributes as the bytes a program reads, with
//! `C_GetAttributeValue`'s rules and template matching for
//! `C_FindObjectsInit` over them.

use std::mem::MaybeUninit;

use cryptoki_sys::*;

use crate::rv::Error;

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// The value's encoding: `CK_BBOOL` one byte, `CK_ULONG` native.
    Bytes(Vec<u8>),
    /// Held by the token, never shown (a private key's secret parts).
    Sensitive,
}

/// An object's attributes, by type.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributes(Vec<(CK_ATTRIBUTE_TYPE, Value)>);

impl Attributes {
    pub(crate) fn bytes(&mut self, ty: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> &mut Self {
        self.0.push((ty, Value::Bytes(value.into())));
        self
    }

    pub(crate) fn bool(&mut self, ty: CK_ATTRIBUTE_TYPE, value: bool) -> &mut Self {
        self.bytes(ty, [CK_BBOOL::from(value)])
    }

    pub(crate) fn ulong(&mut self, ty: CK_ATTRIBUTE_TYPE, value: CK_ULONG) -> &mut Self {
        self.bytes(ty, value.to_ne_bytes())
    }

    pub(crate) fn ulongs(&mut self, ty: CK_ATTRIBUTE_TYPE, values: &[CK_ULONG]) -> &mut Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.bytes(ty, bytes)
    }

    pub(crate) fn sensitive(&mut self, types: &[CK_ATTRIBUTE_TYPE]) -> &mut Self {
        self.0
            .extend(types.iter().map(|ty| (*ty, Value::Sensitive)));
        self
    }

    fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&Value> {
        self.0.iter().find(|(t, _)| *t == ty).map(|(_, v)| v)
    }

    /// Whether every attribute of `template` is present with exactly
    /// that value (a sensitive attribute matches nothing).
    pub(crate) fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template
            .iter()
            .all(|(ty, wanted)| matches!(self.get(*ty), Some(Value::Bytes(v)) if v == wanted))
    }

    /// Answers `C_GetAttributeValue` for `requests`: each request's
    /// length is set (to `CK_UNAVAILABLE_INFORMATION` where there is no
    /// value to give) and every attribute is handled, whatever happened
    /// to the others; the error is the first failure's.
    pub(crate) fn read(&self, requests: &mut [Request<'_>]) -> Result<(), Error> {
        let mut outcome = Ok(());
        for request in requests {
            if let Err(e) = request.answer(self.get(request.ty)) {
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
        outcome
    }
}

/// One attribute a program asked for, with its buffer (`None`: the
/// program asks for the length).
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) ty: CK_ATTRIBUTE_TYPE,
    pub(crate) buffer: Option<&'a mut [MaybeUninit<u8>]>,
    /// What goes back into the template's `ulValueLen`.
    pub(crate) len: CK_ULONG,
}

impl Request<'_> {
    fn answer(&mut self, value: Option<&Value>) -> Result<(), Error> {
        self.len = CK_UNAVAILABLE_INFORMATION;
        let bytes = match value {
            None => return Err(Error::AttributeTypeInvalid),
            Some(Value::Sensitive) => return Err(Error::AttributeSensitive),
            Some(Value::Bytes(bytes)) => bytes,
        };
        match self.buffer.as_deref_mut() {
            None => {}
            Some(buffer) if buffer.len() >= bytes.len() => {
                for (out, byte) in buffer.iter_mut().zip(bytes) {
                    out.write(*byte);
                }
            }
            Some(_) => return Err(Error::BufferTooSmall(bytes.len())),
        }
        self.len = bytes.len() as CK_ULONG;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Attributes {
        let mut attrs = Attributes::default();
        attrs
            .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
            .bool(CKA_SIGN, true)
            .bytes(CKA_ID, [1, 2, 3])
            .sensitive(&[CKA_VALUE]);
        attrs
    }

    fn request(ty: CK_ATTRIBUTE_TYPE, buffer: Option<&mut [MaybeUninit<u8>]>) -> Request<'_> {
        Request { ty, buffer, len: 0 }
    }

    #[test]
    fn a_null_buffer_asks_for_the_length() {
        let mut requests = [request(CKA_ID, None)];
        object().read(&mut requests).expect("read");
        assert_eq!(requests[0].len, 3);
    }

    #[test]
    #[allow(unsafe_code)]
    fn values_are_copied_into_buffers_that_fit() {
        let mut buffer = [MaybeUninit::new(0u8); 8];
        let mut requests = [request(CKA_ID, Some(&mut buffer))];
        object().read(&mut requests).expect("read");
        assert_eq!(requests[0].len, 3);
        // SAFETY: the first three bytes were written by `read`, and the
        // whole buffer was initialised before.
        let bytes: Vec<u8> = buffer[..3]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        assert_eq!(bytes, [1, 2, 3]);
    }

    #[test]
    fn short_buffers_invalid_types_and_secrets_fail_per_attribute() {
        let mut short = [MaybeUninit::new(0u8); 2];
        let mut class = [MaybeUninit::new(0u8); 8];
        let mut requests = [
            request(CKA_ID, Some(&mut short)),
            request(CKA_MODULUS, None),
            request(CKA_VALUE, None),
            request(CKA_CLASS, Some(&mut class)),
        ];
        let outcome = object().read(&mut requests);
        assert!(
            matches!(outcome, Err(Error::BufferTooSmall(3))),
            "{outcome:?}"
        );
        for r in &requests[..3] {
            assert_eq!(r.len, CK_UNAVAILABLE_INFORMATION, "{:#x}", r.ty);
        }
        assert_eq!(requests[3].len, 8, "later attributes are still read");
        let mut requests = [request(CKA_MODULUS, None), request(CKA_VALUE, None)];
        assert!(matches!(
            object().read(&mut requests),
            Err(Error::AttributeTypeInvalid)
        ));
        let mut requests = [request(CKA_VALUE, None)];
        assert!(matches!(
            object().read(&mut requests),
            Err(Error::AttributeSensitive)
        ));
    }

    #[test]
    fn templates_match_exact_values() {
        let object = object();
        let class = CKO_PRIVATE_KEY.to_ne_bytes().to_vec();
        assert!(object.matches(&[]));
        assert!(object.matches(&[(CKA_CLASS, class.clone()), (CKA_SIGN, vec![1])]));
        assert!(object.matches(&[(CKA_ID, vec![1, 2, 3])]));
        assert!(!object.matches(&[(CKA_ID, vec![1, 2])]));
        assert!(!object.matches(&[(CKA_SIGN, vec![0])]));
        assert!(
            !object.matches(&[(CKA_LABEL, Vec::new())]),
            "absent attribute"
        );
        assert!(!object.matches(&[(CKA_VALUE, Vec::new())]), "a secret");
        // NSS's trust objects (CKO_NSS_TRUST).
        let trust = (CKO_VENDOR_DEFINED + 0x4E53_4353).to_ne_bytes().to_vec();
        assert!(!object.matches(&[(CKA_CLASS, trust)]));
    }
}
