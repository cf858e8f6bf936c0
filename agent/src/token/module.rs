//! A loaded and initialised PKCS#11 module.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::error::TokenError;
use super::raw::RawAttributes;
use super::rv::Meaning;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::Session;

/// One PKCS#11 module (a shared library such as `libsofthsm2.so` or
/// `opensc-pkcs11.so`), loaded and initialised for use from any thread.
///
/// Dropping a `Module` calls `C_Finalize` if this `Module` was the one
/// that initialised the library (see [`Module::load`]); that ends every
/// session and login the process has with the module's tokens.
pub(crate) struct Module {
    pkcs11: Pkcs11,
    path: PathBuf,
    /// True when our `C_Initialize` succeeded, so ours is the matching
    /// `C_Finalize`. False when the library had already been initialised
    /// by someone else in this process, or after an explicit finalise.
    finalize_on_drop: bool,
    /// The module's own `C_GetAttributeValue`, loaded on the first scan;
    /// `None` when it cannot be had, and scans read through cryptoki.
    raw_attributes: OnceLock<Option<RawAttributes>>,
    /// One read-only session per slot, kept open for the watcher's
    /// object fingerprints: object handles are only stable while a
    /// session lasts (SoftHSM renumbers them when the last one closes).
    /// Closed before the module is finalised.
    pub(super) poll_sessions: Mutex<HashMap<u64, Session>>,
}

impl Module {
    /// Loads the PKCS#11 module at `path` and initialises it for
    /// multi-threaded use (`CKF_OS_LOCKING_OK`).
    ///
    /// A library that is already initialised in this process
    /// (`CKR_CRYPTOKI_ALREADY_INITIALIZED`, e.g. loaded twice) is accepted;
    /// such a `Module` does not finalise the library when dropped, and
    /// stops working when the `Module` that did initialise it is dropped:
    /// load each module once (see [`default_modules`](super::default_modules),
    /// which de-duplicates by canonical path).
    pub(crate) fn load(path: impl AsRef<Path>) -> Result<Module, TokenError> {
        let path = path.as_ref().to_path_buf();
        let pkcs11 = Pkcs11::new(&path).map_err(|source| TokenError::Load {
            path: path.clone(),
            source,
        })?;
        let finalize_on_drop = initialize(&pkcs11, &path)?;
        tracing::debug!(module = %path.display(), "PKCS#11 module loaded");
        Ok(Module {
            pkcs11,
            path,
            finalize_on_drop,
            raw_attributes: OnceLock::new(),
            poll_sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The module path, as given to [`Module::load`].
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Finalises and initialises the module again (`C_Finalize` then
    /// `C_Initialize`).
    ///
    /// Some modules, SoftHSM among them, only show tokens created by
    /// another process after this. It ends every session and login the
    /// process has with the module's tokens: call it only while no other
    /// thread uses the module.
    pub(crate) fn reinitialize(&mut self) -> Result<(), TokenError> {
        self.poll_sessions.get_mut().clear();
        match self.pkcs11.clone().finalize() {
            Ok(()) => {}
            Err(err) if Meaning::of_error(&err) == Meaning::NotInitialized => {}
            Err(source) => {
                return Err(TokenError::Finalize {
                    path: self.path.clone(),
                    source,
                })
            }
        }
        self.finalize_on_drop = false;
        self.finalize_on_drop = initialize(&self.pkcs11, &self.path)?;
        Ok(())
    }

    /// Finalises the module now (`C_Finalize`) and reports the outcome,
    /// instead of leaving it to `drop`, which can only log a failure.
    /// Does nothing when this `Module` did not initialise the library.
    /// The daemon leaves it to `drop`; tests check the outcome.
    #[cfg(test)]
    pub(crate) fn finalize(mut self) -> Result<(), TokenError> {
        self.poll_sessions.get_mut().clear();
        if !self.finalize_on_drop {
            return Ok(());
        }
        self.finalize_on_drop = false;
        self.pkcs11
            .clone()
            .finalize()
            .map_err(|source| TokenError::Finalize {
                path: self.path.clone(),
                source,
            })
    }

    /// The cryptoki context, for the rest of the token layer.
    pub(crate) fn pkcs11(&self) -> &Pkcs11 {
        &self.pkcs11
    }

    /// The module's own `C_GetAttributeValue` (see [`RawAttributes`]),
    /// loaded on first use with a session of the module; `None` when it
    /// cannot be had.
    pub(crate) fn raw_attributes(&self, session: &Session) -> Option<&RawAttributes> {
        self.raw_attributes
            .get_or_init(|| {
                RawAttributes::load(&self.path, session)
                    .inspect_err(|error| {
                        tracing::debug!(module = %self.path.display(), %error, "scans read attributes through cryptoki");
                    })
                    .ok()
            })
            .as_ref()
    }
}

/// Calls `C_Initialize`; returns whether this call initialised the
/// library (and so owes it a `C_Finalize`).
fn initialize(pkcs11: &Pkcs11, path: &Path) -> Result<bool, TokenError> {
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => Ok(true),
        Err(err) if Meaning::of_error(&err) == Meaning::AlreadyInitialized => {
            tracing::debug!(
                module = %path.display(),
                "PKCS#11 module was already initialised in this process"
            );
            Ok(false)
        }
        Err(source) => Err(TokenError::Initialize {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // While the module can still close them.
        self.poll_sessions.get_mut().clear();
        if !self.finalize_on_drop {
            return;
        }
        if let Err(err) = self.pkcs11.clone().finalize() {
            tracing::warn!(module = %self.path.display(), error = %err, "C_Finalize failed");
        }
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .field("finalize_on_drop", &self.finalize_on_drop)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn module_is_send_and_sync() {
        assert_send_sync::<Module>();
    }

    #[test]
    fn loading_a_missing_library_is_a_load_error() {
        let err = Module::load("/nonexistent/libnothing-pkcs11.so")
            .expect_err("a missing library cannot load");
        assert!(matches!(err, TokenError::Load { .. }), "{err:?}");
        assert!(err
            .to_string()
            .contains("/nonexistent/libnothing-pkcs11.so"));
    }

    #[test]
    fn loading_a_library_that_is_not_pkcs11_is_a_load_error() {
        // libc is certainly present and has no C_GetFunctionList.
        let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/libc.so.6"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(libc) = libc else { return };
        let err = Module::load(libc).expect_err("libc is not a PKCS#11 module");
        assert!(matches!(err, TokenError::Load { .. }), "{err:?}");
    }
}
