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
use super::found::{FoundCertificate, FoundToken};
use super::mechanisms::{schemes, signing_mechanisms};
use super::module::Module;
use super::pairing::{pair, CertRecord, KeyMatch, KeyRecord};
use super::public_key::{certificate_public_key, key_public_keys, KeyAttributes, KeyKind};
use super::rv::Meaning;
use super::uri::{object_uri, ObjectKind};

/// Object handles fetched per `C_FindObjects` call.
const FIND_BATCH: NonZeroUsize = match NonZeroUsize::new(256) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// What a scan's first search lists, for its errors.
const ALL_OBJECTS: &str = "certificate and key";

/// Fixed-size, so that one `C_GetAttributeValue` reads them (cryptoki
/// makes a second call for any attribute of variable size).
const CLASS_ATTRIBUTES: [AttributeType; 2] = [AttributeType::Class, AttributeType::CertificateType];

const CERT_ATTRIBUTES: [AttributeType; 3] = [
    AttributeType::Value,
    AttributeType::Id,
    AttributeType::Label,
];

const KEY_ATTRIBUTES: [AttributeType; 7] = [
    AttributeType::Id,
    AttributeType::Label,
    AttributeType::KeyType,
    AttributeType::Modulus,
    AttributeType::PublicExponent,
    AttributeType::EcParams,
    AttributeType::EcPoint,
];

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
    /// removals. Blocking.
    pub(crate) fn present_tokens(&self) -> Result<Vec<Token>, TokenError> {
        let slots = self.slots_with_token()?;
        let mut tokens = Vec::with_capacity(slots.len());
        for slot in slots {
            match self.token_in(slot.id()) {
                Ok((_, token)) => tokens.push(token),
                Err(TokenError::TokenNotInitialized { .. }) => {}
                // Pulled out between the two calls, a reader that cannot
                // answer now, or a token being deleted (SoftHSM answers
                // CKR_GENERAL_ERROR while its files go): not present in
                // this poll, and the next one sees it again if it is
                // back. One slot's trouble is not the module's: the
                // module answered.
                Err(TokenError::TokenInfo { slot, source, .. }) => {
                    tracing::debug!(module = %self.path().display(), slot, error = %source, "token unreadable; taken as not present");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(tokens)
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
        let mut found = scan_session(&session, token, self.path())?;
        found.schemes = schemes;
        Ok(found)
    }
}

/// Scans the token behind an open session; `token` describes it. A
/// session of a logged-in user sees the private keys.
pub(crate) fn scan_session(
    session: &Session,
    token: Token,
    module_path: &Path,
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

    // One search for every object, then each object's class: a module
    // such as SoftHSM visits every object of the token on each search,
    // whatever the template, so a search per class cost a pass each: at
    // 10,000 identities a pass takes 0.35 s, reading the classes 0.15 s
    // (issue 14).
    let all = find(session, &[]).map_err(find_error(ALL_OBJECTS))?;
    let mut cert_handles = Vec::new();
    let mut private_handles = Vec::new();
    let mut public_handles = Vec::new();
    let classes = read_records(
        session,
        all,
        &CLASS_ATTRIBUTES,
        objects(ALL_OBJECTS),
        |handle, attributes| Some((handle, attributes)),
    )?;
    for (handle, attributes) in classes {
        let class = attributes.iter().find_map(|a| match a {
            Attribute::Class(class) => Some(*class),
            _ => None,
        });
        let x509 = attributes
            .iter()
            .any(|a| matches!(a, Attribute::CertificateType(t) if *t == CertificateType::X_509));
        match class {
            Some(ObjectClass::CERTIFICATE) if x509 => cert_handles.push(handle),
            Some(ObjectClass::PRIVATE_KEY) => private_handles.push(handle),
            Some(ObjectClass::PUBLIC_KEY) => public_handles.push(handle),
            _ => {}
        }
    }

    let certs = read_records(
        session,
        cert_handles,
        &CERT_ATTRIBUTES,
        objects("certificate"),
        |handle, attributes| certificate_record(attributes, handle, &token),
    )?;
    let key_records = |handles, what| {
        read_records(
            session,
            handles,
            &KEY_ATTRIBUTES,
            objects(what),
            |_, attributes| Some(key_record(attributes)),
        )
    };
    let private_keys = key_records(private_handles, "private key")?;
    let public_keys = key_records(public_handles, "public key")?;

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

/// Reads `types` of each of `handles`, the `objects` of a token, and
/// makes a record of each with `record`. An object that cannot be read is
/// logged and skipped; the token going away fails the whole.
fn read_records<T>(
    session: &Session,
    handles: Vec<ObjectHandle>,
    types: &[AttributeType],
    objects: ScanObjects,
    mut record: impl FnMut(ObjectHandle, Vec<Attribute>) -> Option<T>,
) -> Result<Vec<T>, TokenError> {
    let mut records = Vec::with_capacity(handles.len());
    for handle in handles {
        match read_attributes(session, handle, types) {
            Ok(attributes) => records.extend(record(handle, attributes)),
            Err(source) if Meaning::of_error(&source).ends_scan() => {
                return Err(TokenError::ReadObjects { objects, source });
            }
            Err(err) => {
                tracing::warn!(token = %objects.label, object = %handle, error = %err, "{} object skipped: cannot read it", objects.what);
            }
        }
    }
    Ok(records)
}

/// Reads `types` of one object in one bulk request (attributes the
/// object lacks or the token refuses are left out). When the bulk request
/// fails as a whole, reads the attributes one by one, so one unreadable
/// attribute does not cost the others.
fn read_attributes(
    session: &Session,
    handle: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, CryptokiError> {
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
