//! Finding libsofthsm2.so and running PKCS#11 sessions on it safely.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, in `C_Initialize`, and every `dlopen`
//! of the same library file in a process shares one instance (one set of
//! slots, sessions and logins). Tests in one binary run on parallel threads,
//! each with its own [`SoftHsm`](crate::SoftHsm), so every PKCS#11 session
//! this crate runs is a *provisioning session*: under a process-wide mutex it
//! sets `SOFTHSM2_CONF`, calls `C_Initialize`, does its work and calls
//! `C_Finalize`. Nothing stays initialised between sessions, so the next
//! environment starts from a clean slate and sees only its own tokens.
//!
//! The crate loads a *private copy* of the module (copied to a temporary file
//! that is unlinked right after `dlopen`), so a test process that also loads
//! the real `libsofthsm2.so` in-process (an agent under test, for instance)
//! neither shares state with the fixtures nor gets finalised by them. Where a
//! private copy cannot be loaded (a `noexec` temp dir, say) the real path is
//! used instead.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Pkcs11Context, Result};
use crate::util::file_from_env;

/// Environment variable that overrides where the SoftHSM module is found.
pub const MODULE_ENV: &str = "P11AGENT_SOFTHSM_MODULE";

/// The environment variable SoftHSM reads its configuration file from.
pub const CONF_ENV: &str = "SOFTHSM2_CONF";

const CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

/// Finds the SoftHSM PKCS#11 module.
///
/// `P11AGENT_SOFTHSM_MODULE`, when set, wins (and must name an existing
/// file); otherwise the usual install locations are tried in order, starting
/// with Debian's `/usr/lib/softhsm/libsofthsm2.so`.
pub fn module_path() -> Result<PathBuf> {
    if let Some(path) = file_from_env(MODULE_ENV, Error::ModuleNotFound)? {
        return Ok(path);
    }
    if let Some(found) = CANDIDATES.iter().map(Path::new).find(|p| p.is_file()) {
        return Ok(found.to_path_buf());
    }
    // Other multiarch directories: /usr/lib/<triple>/softhsm/libsofthsm2.so
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            let candidate = entry.path().join("softhsm/libsofthsm2.so");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::ModuleNotFound(format!(
        "looked in {}",
        CANDIDATES.join(", ")
    )))
}

/// Process-wide state: the loaded (private) modules, keyed by the real path.
struct Loaded {
    modules: HashMap<PathBuf, Pkcs11>,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Holds the process-wide provisioning lock.
///
/// Every PKCS#11 session of this crate runs while holding it. Code in the
/// same process that calls `C_Initialize` on a SoftHSM module itself after
/// setting `SOFTHSM2_CONF` can hold it around that call, so that it never
/// reads the variable while a provisioning session has it changed.
pub struct ProvisioningLock {
    guard: MutexGuard<'static, Option<Loaded>>,
}

impl std::fmt::Debug for ProvisioningLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningLock").finish_non_exhaustive()
    }
}

/// Takes the process-wide provisioning lock (see [`ProvisioningLock`]).
pub fn provisioning_lock() -> ProvisioningLock {
    ProvisioningLock {
        guard: LOADED.lock(),
    }
}

impl ProvisioningLock {
    /// The module instance for `module`, loading a private copy on first use.
    fn module(&mut self, module: &Path) -> Result<Pkcs11> {
        let loaded = self.guard.get_or_insert_with(|| Loaded {
            modules: HashMap::new(),
        });
        if let Some(ctx) = loaded.modules.get(module) {
            return Ok(ctx.clone());
        }
        let ctx = load_private_copy(module)
            .or_else(|_| Pkcs11::new(module).ctx(format!("loading {}", module.display())))?;
        loaded.modules.insert(module.to_path_buf(), ctx.clone());
        Ok(ctx)
    }
}

/// dlopen()s a copy of `module`: a different file is a different instance.
/// The copy is unlinked at once; the mapping stays valid.
fn load_private_copy(module: &Path) -> Result<Pkcs11> {
    let dir = tempfile::Builder::new()
        .prefix("p11agent-softhsm-module.")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", std::env::temp_dir(), e))?;
    let copy = dir.path().join("libsofthsm2-private.so");
    std::fs::copy(module, &copy).map_err(|e| Error::io("copying the module", &copy, e))?;
    let ctx = Pkcs11::new(&copy).ctx(format!("loading {}", copy.display()))?;
    drop(dir);
    Ok(ctx)
}

/// Finalises the module when a session ends, also on error or panic.
struct Finalize(Pkcs11);

impl Drop for Finalize {
    fn drop(&mut self) {
        let _ = self.0.clone().finalize();
    }
}

/// Restores `SOFTHSM2_CONF` to what it was.
struct RestoreEnv(Option<OsString>);

impl Drop for RestoreEnv {
    fn drop(&mut self) {
        match self.0.take() {
            Some(v) => std::env::set_var(CONF_ENV, v),
            None => std::env::remove_var(CONF_ENV),
        }
    }
}

/// Runs `f` on the module initialised with configuration file `conf`, under
/// the process-wide lock; finalises afterwards.
pub(crate) fn with_module<R>(
    module: &Path,
    conf: &Path,
    f: impl FnOnce(&Pkcs11) -> Result<R>,
) -> Result<R> {
    let mut lock = provisioning_lock();
    let ctx = lock.module(module)?;
    {
        let _restore = RestoreEnv(std::env::var_os(CONF_ENV));
        std::env::set_var(CONF_ENV, conf);
        let args = CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
        match ctx.initialize(args) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                // Left initialised by a session that panicked half-way.
                let _ = ctx.clone().finalize();
                ctx.initialize(args).ctx("C_Initialize")?;
            }
            Err(e) => return Err(e).ctx(format!("C_Initialize with {}", conf.display())),
        }
    }
    let finalize = Finalize(ctx);
    let result = f(&finalize.0);
    drop(finalize);
    drop(lock);
    result
}
