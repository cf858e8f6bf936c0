//! Test-only: an isolated SoftHSM token store per test, provisioned with
//! the `softhsm2-util`, `pkcs11-tool` and `openssl` command-line tools.
//!
//! SoftHSM reads `SOFTHSM2_CONF` at `C_Initialize`, and one process shares
//! one SoftHSM instance, so a process-global lock serialises every test
//! that loads it: hold a [`SoftHsm`] for the whole test and drop (finalise)
//! the [`Module`] before it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use parking_lot::{Mutex, MutexGuard};
use tempfile::TempDir;

use super::module::Module;

/// The SoftHSM module under test.
pub(crate) const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub(crate) const USER_PIN: &str = "1234";
const SO_PIN: &str = "12345678";

static SOFTHSM_LOCK: Mutex<()> = Mutex::new(());
static CONF_PATH: OnceLock<PathBuf> = OnceLock::new();

/// The one config path this process points `SOFTHSM2_CONF` at; each
/// fixture writes its own token directory into it while holding the lock.
/// Setting the variable once, not per test, keeps environment writes out
/// of the way of other threads.
fn conf_path() -> &'static Path {
    CONF_PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "p11agent-token-tests-{}-softhsm2.conf",
            std::process::id()
        ));
        std::env::set_var("SOFTHSM2_CONF", &path);
        path
    })
}

/// An isolated, initially empty SoftHSM token store; holds the
/// process-global SoftHSM lock while alive.
pub(crate) struct SoftHsm {
    dir: TempDir,
    conf: &'static Path,
    _lock: MutexGuard<'static, ()>,
}

impl SoftHsm {
    /// A fresh token store, or `None` (the test is skipped, with a note)
    /// when SoftHSM or its tools are not installed.
    pub(crate) fn new() -> Option<SoftHsm> {
        let lock = SOFTHSM_LOCK.lock();
        if !Path::new(SOFTHSM_MODULE).exists() {
            eprintln!("skipped: {SOFTHSM_MODULE} is not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = conf_path();
        std::fs::write(
            conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        Some(SoftHsm {
            dir,
            conf,
            _lock: lock,
        })
    }

    /// A path in the fixture's temp dir.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Loads SoftHSM, reading this fixture's token store.
    pub(crate) fn load(&self) -> Module {
        Module::load(SOFTHSM_MODULE).expect("SoftHSM loads")
    }

    /// Creates and initialises a token with the test PINs.
    pub(crate) fn init_token(&self, label: &str) {
        self.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                USER_PIN,
                "--so-pin",
                SO_PIN,
            ],
        );
    }

    /// Runs `pkcs11-tool --module SoftHSM --token-label TOKEN --login ARGS`.
    pub(crate) fn pkcs11_tool(&self, token: &str, args: &[&str]) {
        let mut all = vec![
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            USER_PIN,
        ];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all);
    }

    /// Runs `openssl ARGS` in the fixture's temp dir.
    pub(crate) fn openssl(&self, args: &[&str]) {
        self.run("openssl", args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("SOFTHSM2_CONF", self.conf)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.conf);
    }
}
