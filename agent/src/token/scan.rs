//! Scanning tokens: their certificates and keys, paired.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Instant;

use cryptoki::error::Error as CryptokiError;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState};
use cryptoki::slot::Slot;
use p11agent_proto::Token;

use super::error::{ScanObjects, TokenError};
use super::found::{FoundCertificate, FoundToken, Presence};
use super::mechanisms::{schemes, signing_mechanisms};
use super::module::Module;
use super::pairing::{pair, CertRecord, KeyMatch, KeyRecord};
use super::public_key::{certificate_public_key, key_public_keys, KeyAttributes, KeyKind};
use super::raw::{AttributeRequest, RawAttributes};
use super::rv::Meaning;
use super::uri::{object_uri, ObjectKind};

/// Object handles fetched per `C_FindObjects` call.
const FIND_BATCH: NonZeroUsize = match NonZeroUsize::new(256) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// What a scan's first search lists, for its errors.
const ALL_OBJECTS: &str = "certificate and key";

/// What a scan reads of every object: its class, and what a key is
/// paired by.
const OBJECT_ATTRIBUTES: [AttributeType; 9] = [
    AttributeType::Class,
    AttributeType::CertificateType,
    AttributeType::Id,
    AttributeType::Label,
    AttributeType::KeyType,
    AttributeType::Modulus,
    AttributeType::PublicExponent,
    AttributeType::EcParams,
    AttributeType::EcPoint,
];

/// What a scan reads of a certificate besides: the certificate itself.
/// Never asked of other objects, whose `CKA_VALUE` may be a secret.
const VALUE_ATTRIBUTES: [AttributeType; 1] = [AttributeType::Value];

/// The buffer for each attribute of variable size in a one-call read
/// (see [`RawAttributes`]): larger than any public key or label, and than
/// most certificates. A larger value is read in the two calls of
/// cryptoki.
const ATTRIBUTE_BUFFER: usize = 8 * 1024;

impl Module {
    /// Scans every slot with a token present: each initialised token's
    /// certificates, paired with their keys.
    ///
    /// Only `C_GetSlotList` failing is an error; a token that cannot be
    /// read is logged and left out, an object that cannot be read is
    /// logged and skipped. Uninitialised tokens (such as SoftHSM's free
    /// slot) are left out silently. Blocking.
    pub(crate) fn scan(&self) -> Result<Vec<FoundToken>, TokenError> {
        let slots = self.slots_with_token()?;
        let mut tokens = Vec::with_capacity(slots.len());
        for slot in slots {
            match self.scan_slot(slot.id()) {
                Ok(token) => tokens.push(token),
                Err(err @ TokenError::TokenNotInitialized { .. }) => {
                    tracing::debug!("{err}");
                }
                Err(err) => {
                    tracing::warn!(error = %err, source = ?std::error::Error::source(&err), "token left out of the scan");
                }
            }
        }
        Ok(tokens)
    }

    /// The initialised tokens present now, by slot: `C_GetSlotList` and
    /// `C_GetTokenInfo` only, cheap enough to poll for insertions and
    /// removals; and the slots whose token the module said is gone.
    /// Blocking.
    pub(crate) fn present_tokens(&self) -> Result<Presence, TokenError> {
        let slots = self.slots_with_token()?;
        let mut presence = Presence {
            tokens: Vec::with_capacity(slots.len()),
            gone: Vec::new(),
        };
        for slot in slots {
            match self.token_in(slot.id()) {
                Ok((_, token)) => presence.tokens.push(token),
                Err(TokenError::TokenNotInitialized { .. }) => {}
                Err(TokenError::TokenInfo { slot, source, .. })
                    if Meaning::of_error(&source).token_gone() =>
                {
                    presence.gone.push(slot);
                }
                // A reader that cannot answer now, or a token being
                // deleted or rewritten (SoftHSM answers CKR_GENERAL_ERROR
                // while its files go): not present in this poll, and
                // removed only if the next poll does not see it either.
                // One slot's trouble is not the module's: the module
                // answered.
                Err(TokenError::TokenInfo { slot, source, .. }) => {
                    tracing::debug!(module = %self.path().display(), slot, error = %source, "token unreadable in this poll");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(presence)
    }

    /// A number that changes when the objects on the token in `slot_id`
    /// do (one is deleted, another created: a certificate renewed, an
    /// identity enrolled), as this process sees them: a hash of every
    /// object handle, from one search in the slot's poll session (kept
    /// open: handles are only stable while a session lasts). Cheap next
    /// to a scan (no attribute is read), so the watcher asks it at every
    /// poll. It also changes when a login makes private keys visible, or
    /// the session had to be opened again, which costs one needless
    /// rescan. Blocking.
    pub(crate) fn object_fingerprint(&self, slot_id: u64) -> Result<u64, TokenError> {
        use std::hash::{Hash as _, Hasher as _};
        let mut sessions = self.poll_sessions.lock();
        let session = match sessions.entry(slot_id) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                let (slot, token) = self.token_in(slot_id)?;
                let session = self.pkcs11().open_ro_session(slot).map_err(|source| {
                    TokenError::OpenSession {
                        path: self.path().to_path_buf(),
                        slot: slot_id,
                        label: token.label.clone(),
                        source,
                    }
                })?;
                vacant.insert(session)
            }
        };
        let handles = match session.find_objects(&[]) {
            Ok(handles) => handles,
            Err(source) => {
                // A session that failed is not trusted again: the next
                // poll opens another.
                sessions.remove(&slot_id);
                return Err(TokenError::FindObjects {
                    objects: ScanObjects {
                        path: self.path().to_path_buf(),
                        slot: slot_id,
                        label: String::new(),
                        what: "every",
                    },
                    source,
                });
            }
        };
        let mut handles: Vec<_> = handles.iter().map(|h| h.handle()).collect();
        handles.sort_unstable();
        // SipHash with fixed keys: the same objects give the same number
        // from one poll to the next.
        let mut hasher = std::hash::DefaultHasher::new();
        handles.hash(&mut hasher);
        Ok(hasher.finish())
    }

    /// The slots with a token present (`C_GetSlotList`).
    fn slots_with_token(&self) -> Result<Vec<Slot>, TokenError> {
        self.pkcs11()
            .get_slots_with_token()
            .map_err(|source| TokenError::SlotList {
                path: self.path().to_path_buf(),
                source,
            })
    }

    /// The token in slot `slot_id`, when initialised.
    fn token_in(&self, slot_id: u64) -> Result<(Slot, Token), TokenError> {
        let path = || self.path().to_path_buf();
        let slot = Slot::try_from(slot_id).map_err(|_| TokenError::InvalidSlot {
            path: path(),
            slot: slot_id,
        })?;
        let info = self
            .pkcs11()
            .get_token_info(slot)
            .map_err(|source| TokenError::TokenInfo {
                path: path(),
                slot: slot_id,
                source,
            })?;
        if !info.token_initialized() {
            return Err(TokenError::TokenNotInitialized {
                path: path(),
                slot: slot_id,
            });
        }
        let token = Token {
            label: trim_padding(info.label()),
            serial: trim_padding(info.serial_number()),
            manufacturer: trim_padding(info.manufacturer_id()),
            model: trim_padding(info.model()),
            slot: slot_id,
            module: self.path().display().to_string(),
        };
        Ok((slot, token))
    }

    /// Scans the token in one slot (by its slot id), in a new read-only
    /// session. Private keys are only visible when the process is logged
    /// in to the token; before that, public keys stand in for them. The
    /// token's schemes come from its mechanism list (see
    /// [`FoundToken::schemes`]).
    pub(crate) fn scan_slot(&self, slot_id: u64) -> Result<FoundToken, TokenError> {
        let path = || self.path().to_path_buf();
        let (slot, token) = self.token_in(slot_id)?;
        let session =
            self.pkcs11()
                .open_ro_session(slot)
                .map_err(|source| TokenError::OpenSession {
                    path: path(),
                    slot: slot_id,
                    label: token.label.clone(),
                    source,
                })?;
        let schemes = match signing_mechanisms(self.pkcs11(), slot) {
            Ok(mechanisms) => schemes(&mechanisms),
            Err(err) => {
                tracing::warn!(token = %token.label, error = %err, "C_GetMechanismList failed; the token offers no signature scheme");
                Vec::new()
            }
        };
        let mut found = scan_session(&session, token, self.path(), self.raw_attributes(&session))?;
        found.schemes = schemes;
        Ok(found)
    }
}

/// Scans the token behind an open session; `token` describes it. A
/// session of a logged-in user sees the private keys. Attributes are
/// read with `raw` when given (one call per object), else through
/// cryptoki.
pub(crate) fn scan_session(
    session: &Session,
    token: Token,
    module_path: &Path,
    raw: Option<&RawAttributes>,
) -> Result<FoundToken, TokenError> {
    let started = Instant::now();
    let objects = |what| ScanObjects {
        path: module_path.to_path_buf(),
        slot: token.slot,
        label: token.label.clone(),
        what,
    };
    let find_error = |what| {
        move |source| TokenError::FindObjects {
            objects: objects(what),
            source,
        }
    };
    let private_keys_visible = logged_in(session, &token);

    // One search for every object, then one call per object for its
    // class and what a key is paired by, and a second for a
    // certificate's value: a module such as SoftHSM visits every object
    // of the token on each search, whatever the template, and checks the
    // object's file on each call. At 10,000 identities a search takes
    // 0.35 s and a call per object 0.15 s (issue 14).
    let all = find(session, &[]).map_err(find_error(ALL_OBJECTS))?;
    let all_objects = objects(ALL_OBJECTS);
    let certificate_objects = objects("certificate");
    let mut object_request = AttributeRequest::new(&OBJECT_ATTRIBUTES, ATTRIBUTE_BUFFER);
    let mut value_request = AttributeRequest::new(&VALUE_ATTRIBUTES, ATTRIBUTE_BUFFER);
    let mut certs = Vec::new();
    let mut private_keys = Vec::new();
    let mut public_keys = Vec::new();
    for handle in all {
        let read = |request: &mut AttributeRequest, objects: &ScanObjects| {
            read_object(session, raw, handle, request, objects)
        };
        let Some(mut attributes) = read(&mut object_request, &all_objects)? else {
            continue;
        };
        match kind(&attributes) {
            Some(Kind::Certificate) => {
                let Some(value) = read(&mut value_request, &certificate_objects)? else {
                    continue;
                };
                attributes.extend(value);
                certs.extend(certificate_record(attributes, handle, &token));
            }
            Some(Kind::PrivateKey) => private_keys.push(key_record(attributes)),
            Some(Kind::PublicKey) => public_keys.push(key_record(attributes)),
            None => {}
        }
    }

    let pairing = pair(&certs, &private_keys, &public_keys, private_keys_visible);
    let certificates = certs
        .into_iter()
        .zip(pairing.keys)
        .map(|(cert, key)| {
            let key = key.map(|key| match key {
                KeyMatch::Private(i) => &private_keys[i],
                KeyMatch::StandIn(i) => &public_keys[i],
            });
            FoundCertificate {
                cert_uri: object_uri(&token, &cert.id, &cert.label, ObjectKind::Certificate),
                der: cert.der,
                key_uri: key
                    .map(|key| object_uri(&token, &key.id, &key.label, ObjectKind::PrivateKey)),
                key_id: key.map(|key| key.id.clone()),
            }
        })
        .collect::<Vec<_>>();

    tracing::debug!(
        token = %token.label,
        slot = token.slot,
        certificates = certificates.len(),
        private_keys = private_keys.len(),
        public_keys = public_keys.len(),
        private_keys_visible,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "token scanned"
    );
    Ok(FoundToken {
        token,
        certificates,
        key_count: pairing.key_count,
        schemes: Vec::new(),
    })
}

/// Whether the session is a logged-in user's, in which private keys are
/// visible; a module that cannot say is taken as not logged in, so that a
/// key hidden until login still pairs through its public-key object.
fn logged_in(session: &Session, token: &Token) -> bool {
    match session.get_session_info() {
        Ok(info) => matches!(
            info.session_state(),
            SessionState::RoUser | SessionState::RwUser
        ),
        Err(err) => {
            tracing::warn!(token = %token.label, error = %err, "C_GetSessionInfo failed; assuming no login");
            false
        }
    }
}

/// All objects matching `template`, fetched [`FIND_BATCH`] at a time.
fn find(session: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>, CryptokiError> {
    session
        .iter_objects_with_cache_size(template, FIND_BATCH)?
        .collect()
}

/// The kinds of object a scan reads.
enum Kind {
    /// An X.509 certificate.
    Certificate,
    PrivateKey,
    PublicKey,
}

/// What an object is, by its `CKA_CLASS` (and `CKA_CERTIFICATE_TYPE`);
/// `None` for objects a scan has no use for.
fn kind(attributes: &[Attribute]) -> Option<Kind> {
    let class = attributes.iter().find_map(|a| match a {
        Attribute::Class(class) => Some(*class),
        _ => None,
    })?;
    let x509 = || {
        attributes
            .iter()
            .any(|a| matches!(a, Attribute::CertificateType(t) if *t == CertificateType::X_509))
    };
    match class {
        ObjectClass::CERTIFICATE if x509() => Some(Kind::Certificate),
        ObjectClass::PRIVATE_KEY => Some(Kind::PrivateKey),
        ObjectClass::PUBLIC_KEY => Some(Kind::PublicKey),
        _ => None,
    }
}

/// Reads `request` of one of the `objects` of a token; `None` (logged)
/// when it cannot be read, an error when the token went away.
fn read_object(
    session: &Session,
    raw: Option<&RawAttributes>,
    handle: ObjectHandle,
    request: &mut AttributeRequest,
    objects: &ScanObjects,
) -> Result<Option<Vec<Attribute>>, TokenError> {
    match read_attributes(session, raw, handle, request) {
        Ok(attributes) => Ok(Some(attributes)),
        Err(source) if Meaning::of_error(&source).ends_scan() => Err(TokenError::ReadObjects {
            objects: objects.clone(),
            source,
        }),
        Err(err) => {
            tracing::warn!(token = %objects.label, object = %handle, error = %err, "{} object skipped: cannot read it", objects.what);
            Ok(None)
        }
    }
}

/// Reads `request` of one object (attributes the object lacks or the
/// token refuses are left out): in one call with `raw`, else (or when its
/// buffers are too small) in one bulk request through cryptoki. When
/// that fails as a whole, reads the attributes one by one, so one
/// unreadable attribute does not cost the others.
fn read_attributes(
    session: &Session,
    raw: Option<&RawAttributes>,
    handle: ObjectHandle,
    request: &mut AttributeRequest,
) -> Result<Vec<Attribute>, CryptokiError> {
    if let Some(raw) = raw {
        // Buffers too small, or a failure: cryptoki's reading below gets
        // the same answer for the error to be judged on.
        if let Ok(Some(attributes)) = raw.read(session, handle, request) {
            return Ok(attributes);
        }
    }
    let types = request.types();
    match session.get_attributes(handle, types) {
        Ok(attributes) => Ok(attributes),
        Err(err) if Meaning::of_error(&err).ends_scan() => Err(err),
        Err(bulk_error) => {
            tracing::debug!(object = %handle, error = %bulk_error, "bulk attribute read failed; reading one by one");
            let attributes: Vec<Attribute> = types
                .iter()
                .filter_map(|t| session.get_attributes(handle, &[*t]).ok())
                .flatten()
                .collect();
            if attributes.is_empty() {
                Err(bulk_error)
            } else {
                Ok(attributes)
            }
        }
    }
}

/// A certificate record from its attributes; `None` (logged) without a
/// `CKA_VALUE`.
fn certificate_record(
    attributes: Vec<Attribute>,
    handle: ObjectHandle,
    token: &Token,
) -> Option<CertRecord> {
    let mut der = None;
    let mut id = Vec::new();
    let mut label = Vec::new();
    for attribute in attributes {
        match attribute {
            Attribute::Value(value) => der = Some(value),
            Attribute::Id(value) => id = value,
            Attribute::Label(value) => label = value,
            _ => {}
        }
    }
    let Some(der) = der.filter(|der| !der.is_empty()) else {
        tracing::warn!(token = %token.label, object = %handle, "certificate object skipped: it has no CKA_VALUE");
        return None;
    };
    let public_key = match certificate_public_key(&der) {
        Ok(key) => key,
        Err(err) => {
            tracing::warn!(token = %token.label, object = %handle, label = %String::from_utf8_lossy(&label), error = %err, "certificate cannot be paired by public key");
            None
        }
    };
    Some(CertRecord {
        id,
        label,
        der,
        public_key,
    })
}

/// A key record (private or public key) from its attributes.
fn key_record(attributes: Vec<Attribute>) -> KeyRecord {
    let mut record = KeyRecord::default();
    let mut key = KeyAttributes::default();
    for attribute in attributes {
        match attribute {
            Attribute::Id(value) => record.id = value,
            Attribute::Label(value) => record.label = value,
            Attribute::KeyType(kind) => key.kind = Some(key_kind(kind)),
            Attribute::Modulus(value) => key.modulus = Some(value),
            Attribute::PublicExponent(value) => key.public_exponent = Some(value),
            Attribute::EcParams(value) => key.ec_params = Some(value),
            Attribute::EcPoint(value) => key.ec_point = Some(value),
            _ => {}
        }
    }
    record.public_keys = key_public_keys(&key);
    record
}

fn key_kind(kind: KeyType) -> KeyKind {
    if kind == KeyType::RSA {
        KeyKind::Rsa
    } else if kind == KeyType::EC {
        KeyKind::Ec
    } else if kind == KeyType::EC_EDWARDS {
        KeyKind::Edwards
    } else {
        KeyKind::Other
    }
}

/// A `CK_TOKEN_INFO` text field without its blank (or NUL) padding.
pub(super) fn trim_padding(field: &str) -> String {
    field.trim_end_matches([' ', '\0']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_info_padding_is_trimmed() {
        assert_eq!(trim_padding("SoftHSM project      "), "SoftHSM project");
        assert_eq!(trim_padding("t1\0\0\0"), "t1");
        assert_eq!(trim_padding("  lead kept "), "  lead kept");
        assert_eq!(trim_padding("    "), "");
    }

    #[test]
    fn find_batch_is_large() {
        assert_eq!(FIND_BATCH.get(), 256);
    }
}
