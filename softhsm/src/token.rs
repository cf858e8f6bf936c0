//! A token in a [`SoftHsm`](crate::SoftHsm) environment, and what can be put
//! on it.

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::Serialize;

use crate::env::{slot_for_serial, EnvInner};
use crate::error::{Error, Pkcs11Context, Result};
use crate::keys::{generate_key_pair, GeneratedKey, KeyAlgorithm, KeyOptions};
use crate::module::provisioning_lock;
use crate::pki::{CertFields, LeafSpec, Pki};
use crate::util::{pem_encode, sha256};

/// A token in a SoftHSM environment. Cheap to clone; keeps the environment's
/// directory alive.
///
/// Each convenience method (`add_identity`, …) runs one provisioning session
/// (initialise, open a session, log in, work, finalise). To put many objects
/// on a token, use [`Token::provision`] or [`Token::add_many`], which log in
/// once.
#[derive(Clone)]
pub struct Token {
    env: Arc<EnvInner>,
    label: String,
    serial: String,
    dir_name: String,
    user_pin: String,
    so_pin: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("serial", &self.serial)
            .field("dir", &self.dir_name)
            .finish_non_exhaustive()
    }
}

/// What one `add_*` call put on the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Provisioned {
    /// `CKA_LABEL` of the certificate (and of the key objects, if any).
    pub label: String,
    /// Subject DN as an RFC 4514 string (last RDN first: `CN=…,O=…`).
    pub subject: String,
    /// Issuer DN as an RFC 4514 string.
    pub issuer: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub cert_der: Vec<u8>,
    /// `CKA_ID` of the certificate object.
    #[serde(serialize_with = "ser_hex")]
    pub cert_id: Vec<u8>,
    /// `CKA_ID` of the private and public key objects; `None` when the
    /// certificate has no key on the token. Differs from `cert_id` for
    /// [`Token::add_identity_with_mismatched_id`].
    #[serde(serialize_with = "ser_opt_hex")]
    pub key_id: Option<Vec<u8>>,
    /// The key algorithm of the certificate's public key.
    pub algorithm: KeyAlgorithm,
    /// The certificate's SubjectPublicKeyInfo, DER.
    #[serde(skip)]
    pub public_key_spki: Vec<u8>,
    /// Serial number (big-endian content octets of the INTEGER).
    #[serde(serialize_with = "ser_hex")]
    pub serial: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

fn ser_opt_hex<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

impl Provisioned {
    /// Whether a private key for the certificate is on the token.
    pub fn has_private_key(&self) -> bool {
        self.key_id.is_some()
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der)
    }

    /// SHA-256 of the certificate DER.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.cert_der)
    }

    /// SHA-256 of the certificate DER, lower-case hex without separators.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint())
    }

    /// `CKA_ID` of the certificate, lower-case hex.
    pub fn cert_id_hex(&self) -> String {
        hex::encode(&self.cert_id)
    }
}

impl Token {
    pub(crate) fn new(
        env: Arc<EnvInner>,
        label: String,
        serial: String,
        dir_name: String,
        user_pin: String,
        so_pin: String,
    ) -> Token {
        Token {
            env,
            label,
            serial,
            dir_name,
            user_pin,
            so_pin,
        }
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The token serial number (16 hex digits).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The user PIN given at creation.
    pub fn user_pin(&self) -> &str {
        &self.user_pin
    }

    /// The SO PIN given at creation.
    pub fn so_pin(&self) -> &str {
        &self.so_pin
    }

    /// The slot id SoftHSM gives this token once the module is initialised
    /// with the token present: the low 31 bits of its serial.
    pub fn slot_id(&self) -> u64 {
        let low = self.serial.len().saturating_sub(8);
        u64::from_str_radix(&self.serial[low..], 16).unwrap_or_default() & 0x7fff_ffff
    }

    /// A PKCS#11 URI (RFC 7512) for the token.
    pub fn uri(&self) -> String {
        format!(
            "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial={};token={}",
            self.serial,
            uri_escape(&self.label)
        )
    }

    /// The token's directory inside the environment's token directory (where
    /// it is while present).
    pub fn dir(&self) -> PathBuf {
        self.env.tokens_dir().join(&self.dir_name)
    }

    fn removed_path(&self) -> PathBuf {
        self.env.removed_dir().join(&self.dir_name)
    }

    /// Whether the token is in the environment (not [removed](Token::remove)).
    pub fn is_present(&self) -> bool {
        self.dir().is_dir()
    }

    /// "Pulls the card": moves the token's directory out of the token
    /// directory. Processes see the token disappear once they re-initialise
    /// the module (SoftHSM only re-reads its token directory in
    /// `C_Initialize`/`C_GetSlotList` after finalising).
    pub fn remove(&self) -> Result<()> {
        let _lock = provisioning_lock();
        let removed = self.env.removed_dir();
        std::fs::create_dir_all(&removed).map_err(|e| Error::io("creating", &removed, e))?;
        std::fs::rename(self.dir(), self.removed_path())
            .map_err(|e| Error::io("removing token", self.dir(), e))
    }

    /// "Re-inserts the card" after [`Token::remove`]: the same token, with
    /// the same serial, objects and PINs.
    pub fn insert(&self) -> Result<()> {
        let _lock = provisioning_lock();
        std::fs::rename(self.removed_path(), self.dir())
            .map_err(|e| Error::io("inserting token", self.removed_path(), e))
    }

    /// Deletes the token for good.
    pub fn delete(&self) -> Result<()> {
        let _lock = provisioning_lock();
        for path in [self.dir(), self.removed_path()] {
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("deleting", &path, e))?;
            }
        }
        Ok(())
    }

    /// Runs `f` in one provisioning session, logged in as the user: use this
    /// to put many objects on the token at once.
    ///
    /// The process-wide provisioning lock is held while `f` runs: do not call
    /// other provisioning functions of this crate (on any token or
    /// environment) from inside `f`.
    pub fn provision<R>(&self, f: impl FnOnce(&mut Provisioner<'_>) -> Result<R>) -> Result<R> {
        if !self.is_present() {
            return Err(Error::TokenNotPresent(self.label.clone()));
        }
        self.env.with_pkcs11(|ctx| {
            let slot = slot_for_serial(ctx, &self.serial)?
                .ok_or_else(|| Error::TokenNotFound(self.label.clone()))?;
            let session = ctx.open_rw_session(slot).ctx("C_OpenSession")?;
            session
                .login(UserType::User, Some(&AuthPin::from(self.user_pin.as_str())))
                .ctx(format!("C_Login(user) on token {:?}", self.label))?;
            let result = {
                let mut provisioner = Provisioner {
                    session: &session,
                    token: self,
                };
                f(&mut provisioner)
            };
            let _ = session.logout();
            drop(session);
            result
        })
    }

    /// Generates a key pair on the token.
    pub fn generate_key(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<GeneratedKey> {
        self.provision(|p| p.generate_key(algorithm, id, label))
    }

    /// Generates a key on the token, has `pki` issue a certificate for it as
    /// `spec` says, and stores the certificate with the key's `CKA_ID`.
    pub fn add_identity(&self, pki: &Pki, spec: &LeafSpec) -> Result<Provisioned> {
        self.provision(|p| p.add_identity(pki, spec))
    }

    /// Stores a certificate whose private key is not on the token (neither
    /// private nor public key object).
    pub fn add_certificate_without_key(&self, pki: &Pki, spec: &LeafSpec) -> Result<Provisioned> {
        self.provision(|p| p.add_certificate_without_key(pki, spec))
    }

    /// Like [`add_identity`](Token::add_identity), but the certificate's
    /// `CKA_ID` differs from the key's: only the public key pairs them.
    pub fn add_identity_with_mismatched_id(
        &self,
        pki: &Pki,
        spec: &LeafSpec,
    ) -> Result<Provisioned> {
        self.provision(|p| p.add_identity_with_mismatched_id(pki, spec))
    }

    /// Stores a CA certificate (no key) on the token.
    pub fn add_ca_certificate(&self, cert_der: &[u8], label: &str) -> Result<Provisioned> {
        self.provision(|p| p.add_ca_certificate(cert_der, label))
    }

    /// Stores the PKI's root and (if any) intermediate certificate, each
    /// labelled with its common name.
    pub fn add_ca_certificates(&self, pki: &Pki) -> Result<Vec<Provisioned>> {
        self.provision(|p| p.add_ca_certificates(pki))
    }

    /// Adds `n` identities ("Bulk User 0000", …; EC P-256, clientAuth,
    /// issued by the root) in one session.
    pub fn add_many(&self, pki: &Pki, n: usize) -> Result<Vec<Provisioned>> {
        self.add_many_with(pki, n, |i| {
            LeafSpec::new(format!("Bulk User {i:04}")).key(KeyAlgorithm::EcP256)
        })
    }

    /// Adds `n` identities in one session, the `i`-th as `spec(i)` says.
    pub fn add_many_with(
        &self,
        pki: &Pki,
        n: usize,
        spec: impl Fn(usize) -> LeafSpec,
    ) -> Result<Vec<Provisioned>> {
        self.provision(|p| (0..n).map(|i| p.add_identity(pki, &spec(i))).collect())
    }
}

fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A provisioning session on one token, logged in as the user. Obtained
/// from [`Token::provision`].
pub struct Provisioner<'a> {
    session: &'a Session,
    token: &'a Token,
}

impl std::fmt::Debug for Provisioner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("token", &self.token.label)
            .finish_non_exhaustive()
    }
}

impl Provisioner<'_> {
    /// The underlying cryptoki session (read-write, user logged in), for
    /// anything this type does not offer.
    pub fn session(&self) -> &Session {
        self.session
    }

    /// The token being provisioned.
    pub fn token(&self) -> &Token {
        self.token
    }

    /// A fresh random 16-byte `CKA_ID` (from the token's RNG).
    pub fn fresh_id(&self) -> Result<Vec<u8>> {
        self.session.generate_random_vec(16).ctx("C_GenerateRandom")
    }

    /// Generates a key pair on the token: private key `CKA_TOKEN`,
    /// `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_SIGN`;
    /// public key `CKA_TOKEN`, not `CKA_PRIVATE`, `CKA_VERIFY`; both with
    /// `id` and `label`.
    pub fn generate_key(
        &mut self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<GeneratedKey> {
        generate_key_pair(self.session, algorithm, id, label, KeyOptions::default())
    }

    fn generate_for(&mut self, spec: &LeafSpec, id: &[u8]) -> Result<GeneratedKey> {
        let options = KeyOptions {
            always_authenticate: spec.always_authenticate,
        };
        generate_key_pair(self.session, spec.key, id, spec.effective_label(), options)
    }

    /// Stores an X.509 certificate object: `CKO_CERTIFICATE`, `CKC_X_509`,
    /// `CKA_TOKEN`, not `CKA_PRIVATE`, `CKA_VALUE`, `CKA_SUBJECT`,
    /// `CKA_ISSUER`, `CKA_SERIAL_NUMBER` (from the certificate), `CKA_ID`,
    /// `CKA_LABEL`.
    pub fn store_certificate(
        &mut self,
        cert_der: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<ObjectHandle> {
        let fields = CertFields::parse(cert_der)?;
        self.store_parsed(cert_der, &fields, id, label)
    }

    fn store_parsed(
        &mut self,
        cert_der: &[u8],
        fields: &CertFields,
        id: &[u8],
        label: &str,
    ) -> Result<ObjectHandle> {
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Value(cert_der.to_vec()),
            Attribute::Subject(fields.subject_der.clone()),
            Attribute::Issuer(fields.issuer_der.clone()),
            Attribute::SerialNumber(fields.serial_der.clone()),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        self.session
            .create_object(&template)
            .ctx("C_CreateObject(certificate)")
    }

    fn provisioned(
        cert_der: Vec<u8>,
        fields: CertFields,
        label: &str,
        cert_id: Vec<u8>,
        key_id: Option<Vec<u8>>,
        algorithm: KeyAlgorithm,
    ) -> Provisioned {
        Provisioned {
            label: label.to_string(),
            subject: fields.subject,
            issuer: fields.issuer,
            cert_der,
            cert_id,
            key_id,
            algorithm,
            public_key_spki: fields.spki,
            serial: fields.serial,
        }
    }

    /// Generates a key, has `pki` issue the certificate, stores it with the
    /// key's `CKA_ID` (`spec.id` or a fresh one).
    pub fn add_identity(&mut self, pki: &Pki, spec: &LeafSpec) -> Result<Provisioned> {
        let id = self.spec_id(spec)?;
        self.issue_and_store(pki, spec, id.clone(), id, true)
    }

    /// The certificate gets `spec.id` (or a fresh id), the key another fresh
    /// id.
    pub fn add_identity_with_mismatched_id(
        &mut self,
        pki: &Pki,
        spec: &LeafSpec,
    ) -> Result<Provisioned> {
        let cert_id = self.spec_id(spec)?;
        let mut key_id = self.fresh_id()?;
        if key_id == cert_id {
            key_id.push(0xff);
        }
        self.issue_and_store(pki, spec, cert_id, key_id, true)
    }

    /// Stores a certificate whose key is not on the token: the key pair is
    /// generated on the token (so any algorithm works), the certificate
    /// issued, and both key objects destroyed.
    pub fn add_certificate_without_key(
        &mut self,
        pki: &Pki,
        spec: &LeafSpec,
    ) -> Result<Provisioned> {
        let id = self.spec_id(spec)?;
        self.issue_and_store(pki, spec, id.clone(), id, false)
    }

    /// `spec.id`, or a fresh id.
    fn spec_id(&self, spec: &LeafSpec) -> Result<Vec<u8>> {
        match &spec.id {
            Some(id) => Ok(id.clone()),
            None => self.fresh_id(),
        }
    }

    /// Generates a key pair with `key_id`, has `pki` issue the certificate
    /// and stores it with `cert_id`; without `keep_key` the key objects are
    /// destroyed once the certificate is issued.
    fn issue_and_store(
        &mut self,
        pki: &Pki,
        spec: &LeafSpec,
        cert_id: Vec<u8>,
        key_id: Vec<u8>,
        keep_key: bool,
    ) -> Result<Provisioned> {
        let key = self.generate_for(spec, &key_id)?;
        let cert_der = pki.issue(spec, &key.public_key)?;
        if !keep_key {
            self.session
                .destroy_object(key.private_handle)
                .ctx("C_DestroyObject(private key)")?;
            self.session
                .destroy_object(key.public_handle)
                .ctx("C_DestroyObject(public key)")?;
        }
        let fields = CertFields::parse(&cert_der)?;
        let label = spec.effective_label();
        self.store_parsed(&cert_der, &fields, &cert_id, label)?;
        Ok(Self::provisioned(
            cert_der,
            fields,
            label,
            cert_id,
            keep_key.then_some(key_id),
            spec.key,
        ))
    }

    /// Stores a CA certificate (root or intermediate; no key) with a fresh
    /// `CKA_ID`.
    pub fn add_ca_certificate(&mut self, cert_der: &[u8], label: &str) -> Result<Provisioned> {
        let fields = CertFields::parse(cert_der)?;
        let algorithm = crate::keys::PublicKey::from_spki_der(&fields.spki)?.algorithm();
        let id = self.fresh_id()?;
        self.store_parsed(cert_der, &fields, &id, label)?;
        Ok(Self::provisioned(
            cert_der.to_vec(),
            fields,
            label,
            id,
            None,
            algorithm,
        ))
    }

    /// Stores the PKI's root and (if any) intermediate certificate, each
    /// labelled with its common name.
    pub fn add_ca_certificates(&mut self, pki: &Pki) -> Result<Vec<Provisioned>> {
        pki.ca_certificates()
            .into_iter()
            .map(|der| {
                let label = CertFields::parse(der)?.common_name.unwrap_or_default();
                self.add_ca_certificate(der, &label)
            })
            .collect()
    }

    /// Destroys every object (certificate, keys) whose `CKA_ID` is `id`;
    /// returns how many were destroyed.
    pub fn destroy_objects_with_id(&mut self, id: &[u8]) -> Result<usize> {
        let handles = self
            .session
            .find_objects(&[Attribute::Id(id.to_vec())])
            .ctx("C_FindObjects")?;
        for handle in &handles {
            self.session
                .destroy_object(*handle)
                .ctx("C_DestroyObject")?;
        }
        Ok(handles.len())
    }

    /// Counts the objects of a class on the token (private objects included,
    /// since the session is logged in).
    pub fn count_objects(&self, class: ObjectClass) -> Result<usize> {
        Ok(self
            .session
            .find_objects(&[Attribute::Class(class)])
            .ctx("C_FindObjects")?
            .len())
    }

    /// Reads one attribute of an object, `None` if it has none.
    pub fn attribute(&self, object: ObjectHandle, ty: AttributeType) -> Result<Option<Attribute>> {
        Ok(self
            .session
            .get_attributes(object, &[ty])
            .ctx("C_GetAttributeValue")?
            .into_iter()
            .next())
    }
}
