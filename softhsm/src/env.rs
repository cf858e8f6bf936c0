//! An isolated SoftHSM environment: configuration file and token directory
//! in a directory of its own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tempfile::TempDir;

use crate::error::{Error, Pkcs11Context, Result};
use crate::module::{module_path, with_module, CONF_ENV};
use crate::token::Token;
use crate::util::sha256;

/// Shared by a [`SoftHsm`] and its [`Token`]s: the directory lives as long as
/// any of them.
#[derive(Debug)]
pub(crate) struct EnvInner {
    pub(crate) root: PathBuf,
    pub(crate) module: PathBuf,
    /// Removes the directory on drop (temporary environments only).
    _temp: Option<TempDir>,
}

impl EnvInner {
    pub(crate) fn conf_path(&self) -> PathBuf {
        self.root.join("softhsm2.conf")
    }

    pub(crate) fn tokens_dir(&self) -> PathBuf {
        self.root.join("tokens")
    }

    pub(crate) fn removed_dir(&self) -> PathBuf {
        self.root.join("removed-tokens")
    }

    /// Runs a PKCS#11 session on this environment (see [`SoftHsm::with_pkcs11`]).
    pub(crate) fn with_pkcs11<R>(&self, f: impl FnOnce(&Pkcs11) -> Result<R>) -> Result<R> {
        with_module(&self.module, &self.conf_path(), f)
    }
}

/// Environment variable choosing where temporary environments are created.
pub const TMPDIR_ENV: &str = "P11AGENT_SOFTHSM_TMPDIR";

/// Where [`SoftHsm::new`] creates its directory.
fn temp_base() -> PathBuf {
    if let Some(dir) = std::env::var_os(TMPDIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && tempfile::Builder::new()
            .prefix(".p11agent-probe.")
            .tempfile_in(shm)
            .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Writes a SoftHSM configuration whose token directory is `tokens`.
pub(crate) fn write_conf(conf: &Path, tokens: &Path) -> Result<()> {
    std::fs::create_dir_all(tokens).map_err(|e| Error::io("creating", tokens, e))?;
    let text = format!(
        "# Written by p11agent-softhsm: an isolated SoftHSM environment.\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    std::fs::write(conf, text).map_err(|e| Error::io("writing", conf, e))
}

/// An isolated SoftHSM environment: its own `softhsm2.conf` and token
/// directory under one directory, never the system configuration.
///
/// A temporary environment ([`SoftHsm::new`]) is deleted when the `SoftHsm`
/// and every [`Token`] obtained from it are dropped; a persistent one
/// ([`SoftHsm::persistent`]) is kept.
///
/// All PKCS#11 work (token creation, key generation, storing certificates,
/// [`with_pkcs11`](SoftHsm::with_pkcs11)) runs in *provisioning sessions*
/// that are serialised process-wide, so environments used from parallel
/// test threads stay isolated. A process under test (the daemon) gets the
/// environment through [`env`](SoftHsm::env) and loads
/// [`module_path`](SoftHsm::module_path) itself.
///
/// ```no_run
/// use p11agent_softhsm::{LeafSpec, Pki, SoftHsm};
/// let hsm = SoftHsm::new()?;
/// let token = hsm.create_token("alice", "1234", "12345678")?;
/// let pki = Pki::standard()?;
/// let id = token.add_identity(&pki, &LeafSpec::new("Alice"))?;
/// let mut daemon = std::process::Command::new("p11agent");
/// daemon.arg("daemon").arg("--module").arg(hsm.module_path()).envs(hsm.env());
/// # Ok::<(), p11agent_softhsm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SoftHsm {
    inner: Arc<EnvInner>,
}

impl SoftHsm {
    /// A fresh environment in a new temporary directory, removed on drop.
    ///
    /// The directory is made in `$P11AGENT_SOFTHSM_TMPDIR` if set, else in
    /// `/dev/shm` when that is a writable directory, else in the usual
    /// temporary directory. SoftHSM rewrites token files on every change; on
    /// a disk file system (ext4) each rewrite waits for the journal, and an
    /// identity costs ~30 ms instead of ~2 ms on tmpfs.
    pub fn new() -> Result<SoftHsm> {
        let base = temp_base();
        let temp = tempfile::Builder::new()
            .prefix("p11agent-softhsm.")
            .tempdir_in(&base)
            .map_err(|e| Error::io("creating a temporary directory", &base, e))?;
        let root = temp.path().to_path_buf();
        SoftHsm::create(root, Some(temp))
    }

    /// An environment in `dir` (created if missing) that is kept on drop.
    /// Opening the same directory again finds the tokens created before; the
    /// configuration file is rewritten each time (so the directory may be
    /// moved).
    pub fn persistent(dir: impl AsRef<Path>) -> Result<SoftHsm> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let root = dir
            .canonicalize()
            .map_err(|e| Error::io("resolving", dir, e))?;
        SoftHsm::create(root, None)
    }

    fn create(root: PathBuf, temp: Option<TempDir>) -> Result<SoftHsm> {
        let module = module_path()?;
        let inner = EnvInner {
            root,
            module,
            _temp: temp,
        };
        write_conf(&inner.conf_path(), &inner.tokens_dir())?;
        Ok(SoftHsm {
            inner: Arc::new(inner),
        })
    }

    /// The environment's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    /// The SoftHSM PKCS#11 module (see [`module_path`](crate::module_path)).
    pub fn module_path(&self) -> &Path {
        &self.inner.module
    }

    /// The environment's `softhsm2.conf`.
    pub fn conf_path(&self) -> PathBuf {
        self.inner.conf_path()
    }

    /// The token directory (`directories.tokendir`): one sub-directory per
    /// token.
    pub fn tokens_dir(&self) -> PathBuf {
        self.inner.tokens_dir()
    }

    /// The environment variables a process using this environment needs:
    /// `SOFTHSM2_CONF=<conf_path>`. Pass them to `Command::envs`.
    pub fn env(&self) -> Vec<(String, OsString)> {
        vec![(CONF_ENV.to_string(), self.conf_path().into_os_string())]
    }

    /// Creates and initialises a token: `C_InitToken` with the SO PIN and
    /// `C_InitPIN` with the user PIN.
    ///
    /// The token is initialised in a staging directory and then moved into
    /// the token directory in one `rename`, so a process watching this
    /// environment never sees a half-initialised token. (SoftHSM only shows
    /// it to a process after that process re-initialises the module.)
    ///
    /// Labels are at most 32 bytes of UTF-8 and may repeat; PINs are 4 to 255
    /// bytes.
    pub fn create_token(&self, label: &str, user_pin: &str, so_pin: &str) -> Result<Token> {
        if label.len() > 32 {
            return Err(Error::InvalidArgument(format!(
                "token label {label:?} is longer than 32 bytes"
            )));
        }
        for (what, pin) in [("user PIN", user_pin), ("SO PIN", so_pin)] {
            if !(4..=255).contains(&pin.len()) {
                return Err(Error::InvalidArgument(format!(
                    "{what} must be 4 to 255 bytes long (SoftHSM's limits)"
                )));
            }
        }
        let staging = tempfile::Builder::new()
            .prefix(".staging.")
            .tempdir_in(&self.inner.root)
            .map_err(|e| Error::io("creating a staging directory", &self.inner.root, e))?;
        let staging_conf = staging.path().join("softhsm2.conf");
        let staging_tokens = staging.path().join("tokens");
        write_conf(&staging_conf, &staging_tokens)?;

        let serial = with_module(&self.inner.module, &staging_conf, |ctx| {
            let slots = ctx.get_all_slots().ctx("C_GetSlotList")?;
            let mut free = None;
            for slot in slots {
                let info = ctx.get_token_info(slot).ctx("C_GetTokenInfo")?;
                if !info.token_initialized() {
                    free = Some(slot);
                    break;
                }
            }
            let slot =
                free.ok_or_else(|| Error::InvalidArgument("SoftHSM offered no free slot".into()))?;
            ctx.init_token(slot, &AuthPin::from(so_pin), label)
                .ctx("C_InitToken")?;
            let session = ctx.open_rw_session(slot).ctx("C_OpenSession")?;
            session
                .login(UserType::So, Some(&AuthPin::from(so_pin)))
                .ctx("C_Login(SO)")?;
            session
                .init_pin(&AuthPin::from(user_pin))
                .ctx("C_InitPIN")?;
            let _ = session.logout();
            drop(session);
            let info = ctx.get_token_info(slot).ctx("C_GetTokenInfo")?;
            Ok(info.serial_number().trim().to_string())
        })?;

        let mut made = std::fs::read_dir(&staging_tokens)
            .map_err(|e| Error::io("listing", &staging_tokens, e))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir());
        let (Some(token_dir), None) = (made.next(), made.next()) else {
            return Err(Error::InvalidArgument(format!(
                "expected exactly one token directory in {}",
                staging_tokens.display()
            )));
        };
        let dir_name = token_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = self.inner.tokens_dir().join(&dir_name);
        std::fs::rename(&token_dir, &target).map_err(|e| Error::io("moving token", &target, e))?;
        drop(staging);
        Ok(Token::new(
            Arc::clone(&self.inner),
            label.to_string(),
            serial,
            dir_name,
            user_pin.to_string(),
            so_pin.to_string(),
        ))
    }

    /// Lists the tokens present in the environment (removed tokens are not
    /// listed).
    pub fn tokens(&self) -> Result<Vec<TokenSummary>> {
        self.inner.with_pkcs11(list_tokens)
    }

    /// Lists every present token with its public objects (certificates,
    /// public keys), without logging in.
    pub fn inventory(&self) -> Result<Vec<TokenInventory>> {
        self.inner.with_pkcs11(|ctx| {
            list_tokens(ctx)?
                .into_iter()
                .map(|token| inventory_of(ctx, token))
                .collect()
        })
    }

    /// Opens an existing token by label, to provision it further (for
    /// example in a persistent environment created by an earlier run).
    /// Fails if no token or several tokens carry the label. The PINs are
    /// not checked here; a wrong user PIN fails at the first provisioning.
    pub fn open_token(&self, label: &str, user_pin: &str, so_pin: &str) -> Result<Token> {
        let found: Vec<TokenSummary> = self
            .tokens()?
            .into_iter()
            .filter(|t| t.label == label)
            .collect();
        let summary = match &found[..] {
            [] => return Err(Error::TokenNotFound(label.to_string())),
            [one] => one.clone(),
            _ => return Err(Error::AmbiguousToken(label.to_string())),
        };
        let dir_name = token_dir_for_serial(&self.inner.tokens_dir(), &summary.serial)?;
        Ok(Token::new(
            Arc::clone(&self.inner),
            summary.label,
            summary.serial,
            dir_name,
            user_pin.to_string(),
            so_pin.to_string(),
        ))
    }

    /// Runs `f` with the SoftHSM module initialised on this environment (a
    /// provisioning session: process-wide lock held, `C_Initialize` before,
    /// `C_Finalize` after). For inspecting tokens with cryptoki in tests.
    /// Sessions opened in `f` must be closed (dropped) before it returns.
    ///
    /// Do not call other provisioning functions of this crate from inside
    /// `f`: the lock is not re-entrant.
    pub fn with_pkcs11<R>(&self, f: impl FnOnce(&Pkcs11) -> Result<R>) -> Result<R> {
        self.inner.with_pkcs11(f)
    }
}

/// A certificate object found on a token by [`SoftHsm::inventory`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredCertificate {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, lower-case hex.
    pub id: String,
    /// Subject DN, RFC 4514.
    pub subject: String,
    /// Issuer DN, RFC 4514.
    pub issuer: String,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub fingerprint: String,
    /// Whether a public-key object with the same `CKA_ID` exists (visible
    /// without login; the private key is not).
    pub public_key_with_same_id: bool,
}

/// The public objects of one token, as listed by [`SoftHsm::inventory`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenInventory {
    /// The token.
    pub token: TokenSummary,
    /// Its certificate objects, in the order the module returns them.
    pub certificates: Vec<StoredCertificate>,
    /// How many public-key objects it holds.
    pub public_keys: usize,
}

fn inventory_of(ctx: &Pkcs11, token: TokenSummary) -> Result<TokenInventory> {
    let slot = slot_for_serial(ctx, &token.serial)?
        .ok_or_else(|| Error::TokenNotFound(token.label.clone()))?;
    let session = ctx.open_ro_session(slot).ctx("C_OpenSession")?;
    let public_keys = session
        .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])
        .ctx("C_FindObjects(public keys)")?;
    let mut public_ids = Vec::new();
    for handle in &public_keys {
        for attr in session
            .get_attributes(*handle, &[AttributeType::Id])
            .ctx("C_GetAttributeValue(CKA_ID)")?
        {
            if let Attribute::Id(id) = attr {
                public_ids.push(id);
            }
        }
    }
    let mut certificates = Vec::new();
    for handle in session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .ctx("C_FindObjects(certificates)")?
    {
        let (mut label, mut id, mut value) = (Vec::new(), Vec::new(), Vec::new());
        for attr in session
            .get_attributes(
                handle,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::Value,
                ],
            )
            .ctx("C_GetAttributeValue(certificate)")?
        {
            match attr {
                Attribute::Label(v) => label = v,
                Attribute::Id(v) => id = v,
                Attribute::Value(v) => value = v,
                _ => {}
            }
        }
        let fields = crate::pki::CertFields::parse(&value)?;
        certificates.push(StoredCertificate {
            label: String::from_utf8_lossy(&label).into_owned(),
            public_key_with_same_id: public_ids.contains(&id),
            id: hex::encode(&id),
            subject: fields.subject,
            issuer: fields.issuer,
            fingerprint: hex::encode(sha256(&value)),
        });
    }
    drop(session);
    Ok(TokenInventory {
        token,
        certificates,
        public_keys: public_keys.len(),
    })
}

/// A token as listed by [`SoftHsm::tokens`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenSummary {
    /// `CKA_LABEL` of the token (trailing blanks removed).
    pub label: String,
    /// The token's serial number (16 hex digits for SoftHSM).
    pub serial: String,
    /// The slot id while the module was initialised for the listing
    /// (SoftHSM derives it from the serial, so it is stable across
    /// initialisations).
    pub slot_id: u64,
}

pub(crate) fn list_tokens(ctx: &Pkcs11) -> Result<Vec<TokenSummary>> {
    let mut out = Vec::new();
    for slot in ctx
        .get_slots_with_initialized_token()
        .ctx("C_GetSlotList")?
    {
        let info = ctx.get_token_info(slot).ctx("C_GetTokenInfo")?;
        out.push(TokenSummary {
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim().to_string(),
            slot_id: slot.id(),
        });
    }
    Ok(out)
}

/// The slot holding the token with this serial.
pub(crate) fn slot_for_serial(ctx: &Pkcs11, serial: &str) -> Result<Option<Slot>> {
    for slot in ctx
        .get_slots_with_initialized_token()
        .ctx("C_GetSlotList")?
    {
        let info = ctx.get_token_info(slot).ctx("C_GetTokenInfo")?;
        if info.serial_number().trim() == serial {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// SoftHSM names a token's directory by a UUID whose last 16 hex digits are
/// the token serial.
pub(crate) fn token_dir_for_serial(tokens: &Path, serial: &str) -> Result<String> {
    let entries = std::fs::read_dir(tokens).map_err(|e| Error::io("listing", tokens, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.replace('-', "").ends_with(serial) {
            return Ok(name);
        }
    }
    Err(Error::InvalidArgument(format!(
        "no directory for token serial {serial} in {}",
        tokens.display()
    )))
}
