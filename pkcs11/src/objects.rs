//! The objects each identity is to a program (certificate, public key,
//! private key, and the CA certificates above it, for programs that
//! build chains), their attributes built once when the identity is
//! cached, and object handles that stay the same while the module is
//! loaded.

use std::collections::HashMap;
use std::sync::Arc;

use cryptoki_sys::*;
use p11agent_client::proto::Identity;

use crate::attributes::Attributes;
use crate::key::{self, Authority, Certificate, Key, KeyError, PublicKey};
use crate::mechanisms;

/// The handles of an identity's objects are its base handle plus these.
const CERTIFICATE: CK_OBJECT_HANDLE = 1;
const PUBLIC_KEY: CK_OBJECT_HANDLE = 2;
const PRIVATE_KEY: CK_OBJECT_HANDLE = 3;
/// The CA certificates above an identity take the handles from here on.
const AUTHORITIES: CK_OBJECT_HANDLE = 4;
/// Base handles are multiples of this (so no handle is 0).
const STRIDE: CK_OBJECT_HANDLE = 16;
/// How many CA certificates an identity shows: real chains are two or
/// three deep, and the rest of the handle stride holds this many.
const MAX_AUTHORITIES: usize = (STRIDE - AUTHORITIES) as usize;

/// An identity's objects.
#[derive(Debug)]
pub(crate) struct IdentityObjects {
    pub(crate) key: Arc<Key>,
    pub(crate) base: CK_OBJECT_HANDLE,
    certificate: Attributes,
    public_key: Attributes,
    private_key: Attributes,
    /// The CA certificates above it, nearest first.
    authorities: Vec<Attributes>,
}

impl IdentityObjects {
    /// The objects of `identity`, whose certificate is `der` and the CA
    /// certificates above it `chain`, under the base handle `base`. A CA
    /// certificate that does not parse is left out: the chain is a help
    /// to the program, not a condition.
    pub(crate) fn build(
        identity: &Identity,
        der: Vec<u8>,
        chain: &[Vec<u8>],
        base: CK_OBJECT_HANDLE,
    ) -> Result<Self, KeyError> {
        let cert = Certificate::parse(identity, der)?;
        let key = Key {
            id: identity.id.clone(),
            public: cert.public.clone(),
            schemes: identity.schemes.clone(),
        };
        let (uri_id, uri_label) = key::uri_id_and_label(identity.key_uri.as_deref());
        let id = uri_id.unwrap_or_else(|| key::fallback_id(&identity.id));
        let label = uri_label
            .or_else(|| cert.common_name.clone())
            .unwrap_or_default();
        let common = Common {
            id: &id,
            label: &label,
        };
        Ok(IdentityObjects {
            certificate: certificate(&common, &cert),
            public_key: public_key(&common, &cert, &key),
            private_key: private_key(&common, &cert, &key),
            authorities: chain
                .iter()
                .filter_map(|der| Authority::parse(der).ok())
                .take(MAX_AUTHORITIES)
                .map(|ca| authority(&ca))
                .collect(),
            key: Arc::new(key),
            base,
        })
    }

    /// The handles of the certificate, public key, private key and CA
    /// certificates.
    pub(crate) fn handles(&self) -> Vec<CK_OBJECT_HANDLE> {
        let authorities = (0..self.authorities.len() as CK_OBJECT_HANDLE).map(|i| AUTHORITIES + i);
        [CERTIFICATE, PUBLIC_KEY, PRIVATE_KEY]
            .into_iter()
            .chain(authorities)
            .map(|offset| self.base + offset)
            .collect()
    }

    /// The attributes of the object `handle`, one of this identity's.
    pub(crate) fn attributes(&self, handle: CK_OBJECT_HANDLE) -> Option<&Attributes> {
        match handle.checked_sub(self.base)? {
            CERTIFICATE => Some(&self.certificate),
            PUBLIC_KEY => Some(&self.public_key),
            PRIVATE_KEY => Some(&self.private_key),
            offset => self
                .authorities
                .get(usize::try_from(offset.checked_sub(AUTHORITIES)?).ok()?),
        }
    }

    /// Whether `handle` is this identity's private key.
    pub(crate) fn is_private_key(&self, handle: CK_OBJECT_HANDLE) -> bool {
        handle == self.base + PRIVATE_KEY
    }
}

/// The base handle of the object `handle`.
pub(crate) fn base_of(handle: CK_OBJECT_HANDLE) -> CK_OBJECT_HANDLE {
    handle - handle % STRIDE
}

/// Base handles by identity id: an identity keeps its handles while the
/// module is loaded, and a handle never names another identity.
#[derive(Debug, Default)]
pub(crate) struct Handles {
    by_id: HashMap<String, CK_OBJECT_HANDLE>,
    last: CK_OBJECT_HANDLE,
}

impl Handles {
    pub(crate) fn base_for(&mut self, id: &str) -> CK_OBJECT_HANDLE {
        if let Some(base) = self.by_id.get(id) {
            return *base;
        }
        self.last += STRIDE;
        self.by_id.insert(id.to_owned(), self.last);
        self.last
    }
}

/// What all three objects share.
struct Common<'a> {
    id: &'a [u8],
    label: &'a str,
}

impl Common<'_> {
    /// The attributes of every object: a read-only token object that a
    /// program sees without logging in.
    fn storage(&self, class: CK_OBJECT_CLASS) -> Attributes {
        let mut attrs = Attributes::default();
        attrs
            .ulong(CKA_CLASS, class)
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, false)
            .bool(CKA_MODIFIABLE, false)
            .bool(CKA_COPYABLE, false)
            .bool(CKA_DESTROYABLE, false)
            .bytes(CKA_LABEL, self.label.as_bytes())
            .bytes(CKA_ID, self.id);
        attrs
    }

    fn key(&self, class: CK_OBJECT_CLASS, cert: &Certificate, key: &Key) -> Attributes {
        let mut attrs = self.storage(class);
        let key_type = match key.public {
            PublicKey::Rsa { .. } => CKK_RSA,
            PublicKey::Ec { .. } => CKK_EC,
            PublicKey::Ed25519 { .. } => CKK_EC_EDWARDS,
        };
        attrs
            .ulong(CKA_KEY_TYPE, key_type)
            .bytes(CKA_SUBJECT, cert.subject.as_slice())
            .bytes(CKA_PUBLIC_KEY_INFO, cert.spki.as_slice())
            .bool(CKA_DERIVE, false)
            .bool(CKA_LOCAL, false)
            .ulong(CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION)
            .ulongs(CKA_ALLOWED_MECHANISMS, &mechanisms::for_key(key));
        public_parts(&mut attrs, key);
        attrs
    }
}

fn certificate(common: &Common<'_>, cert: &Certificate) -> Attributes {
    let mut attrs = common.storage(CKO_CERTIFICATE);
    attrs
        .ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .ulong(CKA_CERTIFICATE_CATEGORY, CK_CERTIFICATE_CATEGORY_TOKEN_USER)
        .bool(CKA_TRUSTED, false)
        .ulong(
            CKA_JAVA_MIDP_SECURITY_DOMAIN,
            CK_SECURITY_DOMAIN_UNSPECIFIED,
        )
        .bytes(CKA_VALUE, cert.der.as_slice())
        .bytes(CKA_SUBJECT, cert.subject.as_slice())
        .bytes(CKA_ISSUER, cert.issuer.as_slice())
        .bytes(CKA_SERIAL_NUMBER, cert.serial.as_slice());
    attrs
}

/// A CA certificate: no key of the program's, so no `CKA_ID`; labelled by
/// its CN; an authority, not trusted (trust is the program's business).
fn authority(ca: &Authority) -> Attributes {
    let common = Common {
        id: &[],
        label: ca.common_name.as_deref().unwrap_or_default(),
    };
    let mut attrs = common.storage(CKO_CERTIFICATE);
    attrs
        .ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .ulong(CKA_CERTIFICATE_CATEGORY, CK_CERTIFICATE_CATEGORY_AUTHORITY)
        .bool(CKA_TRUSTED, false)
        .ulong(
            CKA_JAVA_MIDP_SECURITY_DOMAIN,
            CK_SECURITY_DOMAIN_UNSPECIFIED,
        )
        .bytes(CKA_VALUE, ca.der.as_slice())
        .bytes(CKA_SUBJECT, ca.subject.as_slice())
        .bytes(CKA_ISSUER, ca.issuer.as_slice())
        .bytes(CKA_SERIAL_NUMBER, ca.serial.as_slice());
    attrs
}

fn public_key(common: &Common<'_>, cert: &Certificate, key: &Key) -> Attributes {
    let mut attrs = common.key(CKO_PUBLIC_KEY, cert, key);
    attrs
        .bool(CKA_ENCRYPT, false)
        .bool(CKA_VERIFY, true)
        .bool(CKA_VERIFY_RECOVER, false)
        .bool(CKA_WRAP, false)
        .bool(CKA_TRUSTED, false);
    attrs
}

fn private_key(common: &Common<'_>, cert: &Certificate, key: &Key) -> Attributes {
    let mut attrs = common.key(CKO_PRIVATE_KEY, cert, key);
    attrs
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_DECRYPT, false)
        .bool(CKA_SIGN, true)
        .bool(CKA_SIGN_RECOVER, false)
        .bool(CKA_UNWRAP, false)
        .bool(CKA_EXTRACTABLE, false)
        .bool(CKA_ALWAYS_SENSITIVE, true)
        .bool(CKA_NEVER_EXTRACTABLE, true)
        .bool(CKA_WRAP_WITH_TRUSTED, false)
        // The agent logs in with its own PIN source: a program has
        // nothing to enter per signature.
        .bool(CKA_ALWAYS_AUTHENTICATE, false);
    match key.public {
        PublicKey::Rsa { .. } => attrs.sensitive(&[
            CKA_PRIVATE_EXPONENT,
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_EXPONENT_1,
            CKA_EXPONENT_2,
            CKA_COEFFICIENT,
        ]),
        _ => attrs.sensitive(&[CKA_VALUE]),
    };
    attrs
}

/// The public key's own attributes, on both key objects (programs find
/// a private key's size and curve there).
fn public_parts(attrs: &mut Attributes, key: &Key) {
    match &key.public {
        PublicKey::Rsa { modulus, exponent } => {
            attrs
                .bytes(CKA_MODULUS, modulus.as_slice())
                .ulong(CKA_MODULUS_BITS, key.bits() as CK_ULONG)
                .bytes(CKA_PUBLIC_EXPONENT, exponent.as_slice());
        }
        PublicKey::Ec { point, .. } | PublicKey::Ed25519 { point } => {
            if let Some(params) = key::ec_params(&key.public) {
                attrs.bytes(CKA_EC_PARAMS, params);
            }
            // PKCS#11 2.40: the point as a DER OCTET STRING.
            attrs.bytes(CKA_EC_POINT, crate::der::octet_string(point));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_stable_and_never_reused() {
        let mut handles = Handles::default();
        let a = handles.base_for("a");
        let b = handles.base_for("b");
        assert_ne!(a, b);
        assert_eq!(handles.base_for("a"), a);
        assert_ne!(a, 0);
        for offset in [CERTIFICATE, PUBLIC_KEY, PRIVATE_KEY] {
            assert_eq!(base_of(b + offset), b);
        }
    }
}
