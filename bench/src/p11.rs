//! Signing with cryptoki in the benchmark's own process: the "direct"
//! rows (the signature alone), the p11-kit remoting peer (the same code on
//! `p11-kit-client.so`), the agent's own PKCS#11 module, and the
//! in-process TLS key.
//!
//! A signature here is the work the agent does for the same request,
//! minus the socket: hash in software, then one `C_Sign` with the raw
//! mechanism (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`) and, for ECDSA, `r || s` converted to DER. Anything less
//! would flatter the direct rows; anything more would flatter the agent.
//!
//! On the agent's module the hash-and-sign mechanism instead
//! ([`Hashing::Module`]): its raw mechanisms are digests, which the
//! agent's digest policy refuses by default, while a hash-and-sign
//! mechanism whose TLS scheme the key has reaches the agent as the whole
//! message, as the agent's own client sends it.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use p11agent_client::proto::Scheme;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::BenchError;

/// One token of an initialised module, logged in as its user.
///
/// The login belongs to the process (PKCS#11 logs in per application),
/// and lasts while any session on the token is open: the anchor session
/// holds it for the sessions the client threads open.
pub(crate) struct LoggedIn {
    pkcs11: Pkcs11,
    slot: Slot,
    /// Not used for signing: it keeps the login alive, and logs out at
    /// the end.
    anchor: Mutex<Session>,
}

impl LoggedIn {
    /// Opens the token labelled `label` of `module` ([`open_token`]) and
    /// logs in with `pin`.
    pub(crate) fn open(module: &Path, label: &str, pin: &str) -> Result<LoggedIn, BenchError> {
        let (pkcs11, slot) = open_token(module, label)?;
        let anchor = pkcs11
            .open_ro_session(slot)
            .map_err(BenchError::pkcs11("C_OpenSession"))?;
        log_in(&anchor, pin)?;
        Ok(LoggedIn {
            pkcs11,
            slot,
            anchor: Mutex::new(anchor),
        })
    }

    /// A new read-only session on the token, and the handle of the private
    /// key whose `CKA_ID` is `key_id` in it.
    pub(crate) fn session_with_key(
        &self,
        key_id: &[u8],
    ) -> Result<(Session, ObjectHandle), BenchError> {
        let session = self
            .pkcs11
            .open_ro_session(self.slot)
            .map_err(BenchError::pkcs11("C_OpenSession"))?;
        let key = private_key(&session, key_id)?;
        Ok((session, key))
    }
}

/// Loads `module`, initialises it (the environment it needs, such as
/// `SOFTHSM2_CONF`, was set by whoever started this process) and finds
/// the slot of the token labelled `label`.
pub(crate) fn open_token(module: &Path, label: &str) -> Result<(Pkcs11, Slot), BenchError> {
    let pkcs11 = Pkcs11::new(module).map_err(BenchError::pkcs11("loading the module"))?;
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(BenchError::pkcs11("C_Initialize"))?;
    for slot in pkcs11
        .get_slots_with_token()
        .map_err(BenchError::pkcs11("C_GetSlotList"))?
    {
        let info = pkcs11
            .get_token_info(slot)
            .map_err(BenchError::pkcs11("C_GetTokenInfo"))?;
        if info.label().trim_end() == label {
            return Ok((pkcs11, slot));
        }
    }
    Err(BenchError::Setup(format!(
        "no token labelled {label:?} in {}",
        module.display()
    )))
}

/// Logs the user in with `pin`; a login another session of this process
/// made will do (PKCS#11 logs in per application).
pub(crate) fn log_in(session: &Session, pin: &str) -> Result<(), BenchError> {
    match session.login(UserType::User, Some(&AuthPin::from(pin))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(BenchError::pkcs11("C_Login")(e)),
    }
}

/// The handle of the private key whose `CKA_ID` is `key_id`, in `session`.
pub(crate) fn private_key(session: &Session, key_id: &[u8]) -> Result<ObjectHandle, BenchError> {
    let template = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Id(key_id.to_vec()),
    ];
    session
        .find_objects(&template)
        .map_err(BenchError::pkcs11("C_FindObjects"))?
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::Setup(format!("no private key with CKA_ID {}", hex(key_id))))
}

impl Drop for LoggedIn {
    fn drop(&mut self) {
        // Sessions close on their own drop; the module is finalised so
        // that p11-kit-client.so says goodbye to its server.
        let anchor = self
            .anchor
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = anchor.logout();
        let _ = self.pkcs11.clone().finalize();
    }
}

/// A hash of the TLS schemes.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    /// RFC 8017 section 9.2, note 1: what precedes the digest in an
    /// RSASSA-PKCS1-v1_5 signature.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The hash-and-sign mechanism of `form` with this hash.
    fn hash_and_sign(self, form: Form) -> Mechanism<'static> {
        match (form, self) {
            (Form::Pkcs1, Hash::Sha256) => Mechanism::Sha256RsaPkcs,
            (Form::Pkcs1, Hash::Sha384) => Mechanism::Sha384RsaPkcs,
            (Form::Pkcs1, Hash::Sha512) => Mechanism::Sha512RsaPkcs,
            (Form::Pss, Hash::Sha256) => Mechanism::Sha256RsaPkcsPss(self.pss_params()),
            (Form::Pss, Hash::Sha384) => Mechanism::Sha384RsaPkcsPss(self.pss_params()),
            (Form::Pss, Hash::Sha512) => Mechanism::Sha512RsaPkcsPss(self.pss_params()),
            (Form::Ecdsa, Hash::Sha256) => Mechanism::EcdsaSha256,
            (Form::Ecdsa, Hash::Sha384) => Mechanism::EcdsaSha384,
            (Form::Ecdsa, Hash::Sha512) => Mechanism::EcdsaSha512,
        }
    }

    /// PSS parameters as TLS fixes them: MGF1 with the same hash, salt as
    /// long as the digest.
    fn pss_params(self) -> PkcsPssParams {
        let (hash_alg, mgf, s_len) = match self {
            Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32u64),
            Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
            Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
        };
        PkcsPssParams {
            hash_alg,
            mgf,
            s_len: s_len.into(),
        }
    }
}

/// Who hashes the message: which mechanism a signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Hashing {
    /// The worker hashes, a raw mechanism (`CKM_RSA_PKCS`,
    /// `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`) signs the digest: what the agent
    /// does with its token.
    Worker,
    /// The module gets the whole message with a hash-and-sign mechanism
    /// (`CKM_SHA256_RSA_PKCS`, `CKM_SHA256_RSA_PKCS_PSS`,
    /// `CKM_ECDSA_SHA256`, ...).
    Module,
}

/// How a scheme is made from a digest.
#[derive(Debug, Clone, Copy)]
enum Form {
    Pkcs1,
    Pss,
    Ecdsa,
}

/// The schemes this module can make: RSA and ECDSA P-256/P-384.
pub(crate) fn supported(scheme: Scheme) -> bool {
    form(scheme).is_some()
}

fn form(scheme: Scheme) -> Option<(Form, Hash)> {
    Some(match scheme {
        Scheme::RsaPkcs1Sha256 => (Form::Pkcs1, Hash::Sha256),
        Scheme::RsaPkcs1Sha384 => (Form::Pkcs1, Hash::Sha384),
        Scheme::RsaPkcs1Sha512 => (Form::Pkcs1, Hash::Sha512),
        Scheme::RsaPssRsaeSha256 => (Form::Pss, Hash::Sha256),
        Scheme::RsaPssRsaeSha384 => (Form::Pss, Hash::Sha384),
        Scheme::RsaPssRsaeSha512 => (Form::Pss, Hash::Sha512),
        Scheme::EcdsaSecp256r1Sha256 => (Form::Ecdsa, Hash::Sha256),
        Scheme::EcdsaSecp384r1Sha384 => (Form::Ecdsa, Hash::Sha384),
        _ => return None,
    })
}

/// Signs `message` with `key` under `scheme`, hashed as `hashing` says,
/// and returns the signature as TLS sends it (DER for ECDSA).
pub(crate) fn sign(
    session: &Session,
    key: ObjectHandle,
    scheme: Scheme,
    hashing: Hashing,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    let (form, hash) = form(scheme).ok_or_else(|| format!("{scheme} is not benchmarked"))?;
    let signed = match (hashing, form) {
        (Hashing::Module, _) => session.sign(&hash.hash_and_sign(form), key, message),
        (Hashing::Worker, Form::Pkcs1) => {
            let mut input = hash.digest_info_prefix().to_vec();
            input.extend_from_slice(&hash.digest(message));
            session.sign(&Mechanism::RsaPkcs, key, &input)
        }
        (Hashing::Worker, Form::Pss) => session.sign(
            &Mechanism::RsaPkcsPss(hash.pss_params()),
            key,
            &hash.digest(message),
        ),
        (Hashing::Worker, Form::Ecdsa) => {
            session.sign(&Mechanism::Ecdsa, key, &hash.digest(message))
        }
    };
    let signature = signed.map_err(|e| format!("C_Sign: {e}"))?;
    match form {
        Form::Ecdsa => ecdsa_der(&signature),
        Form::Pkcs1 | Form::Pss => Ok(signature),
    }
}

/// `r || s` (PKCS#11) as `SEQUENCE { INTEGER r, INTEGER s }` (TLS).
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 2 * 66 {
        return Err(format!("an ECDSA signature of {} bytes", raw.len()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 6);
    for half in [r, s] {
        let digits = &half[half.iter().position(|b| *b != 0).unwrap_or(half.len())..];
        let pad = digits.first().is_none_or(|b| b & 0x80 != 0);
        body.push(0x02);
        // At most 67 bytes: a short-form length.
        body.push((digits.len() + usize::from(pad)) as u8);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    let mut der = vec![0x30];
    // Up to P-384 the body is shorter than 128 bytes (short form).
    if body.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(body.len() as u8);
    der.extend_from_slice(&body);
    Ok(der)
}

/// Lower-case hex, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_become_minimal_der() {
        let mut raw = vec![0xff; 32];
        raw.extend(std::iter::repeat_n(0x01, 32));
        let der = ecdsa_der(&raw).expect("der");
        assert_eq!(der[..5], [0x30, 2 + 33 + 2 + 32, 0x02, 33, 0x00]);
        assert_eq!(der.len(), 2 + 35 + 34);
        let small = ecdsa_der(&[0, 1, 0, 0]).expect("der");
        assert_eq!(small, [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00]);
        assert!(ecdsa_der(&[1, 2, 3]).is_err());
    }
}
