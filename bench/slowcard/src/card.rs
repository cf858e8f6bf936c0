//! The card being imitated: its latencies, whether it is in the reader,
//! and that it does one thing at a time.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cryptoki_sys::{CKR_DEVICE_ERROR, CK_RV, CK_SESSION_HANDLE};
use nix::fcntl::{Flock, FlockArg};

use crate::profile::Profile;

/// Names the PKCS#11 module every call is forwarded to.
const MODULE_ENV: &str = "P11AGENT_SLOWCARD_MODULE";
/// Names a file that every process using the same card locks
/// (`flock`) around each card operation; without it only the threads
/// of one process wait for each other.
const LOCK_ENV: &str = "P11AGENT_SLOWCARD_LOCK";
/// Names a file whose existence is the card's presence in the reader;
/// without it the card is always in.
const PRESENT_ENV: &str = "P11AGENT_SLOWCARD_PRESENT";

/// Names a file which, while it exists, makes the function it names
/// (`C_Sign` or `C_GetSlotList`) crash the process with `abort()`, as
/// crashing vendor middleware does: the agent's module isolation is
/// tested with it.
const ABORT_ENV: &str = "P11AGENT_SLOWCARD_ABORT";

/// Names a file which, while it exists, makes the next
/// `C_GetTokenInfo` fail with `CKR_GENERAL_ERROR` and removes the file:
/// one poll that cannot read the token, as a busy reader (or SoftHSM
/// rewriting the token's files) gives.
const FLAKY_ENV: &str = "P11AGENT_SLOWCARD_FLAKY";

/// One card, as this process sees it.
#[derive(Debug)]
pub(crate) struct Card {
    /// The module that does the work.
    pub(crate) module: PathBuf,
    /// How long each kind of call takes.
    pub(crate) profile: Profile,
    present: Option<PathBuf>,
    abort: Option<PathBuf>,
    flaky: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    /// Held while the card works, so that this process's threads queue
    /// as a reader makes them (the lock file does it between processes,
    /// but `flock` does not exclude two threads sharing an open file).
    busy: Mutex<()>,
    /// Per session, the signature time of the key its last `C_SignInit`
    /// named.
    signing: Mutex<HashMap<CK_SESSION_HANDLE, Duration>>,
}

impl Card {
    /// The card the environment describes.
    pub(crate) fn from_env() -> Result<Card, String> {
        let var = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
        let module = var(MODULE_ENV).map(PathBuf::from).ok_or_else(|| {
            format!("{MODULE_ENV} is not set: it names the module this one forwards to")
        })?;
        let profile = Profile::from_env(|key| var(key).map(|v| lossy(&v)))?;
        Ok(Card {
            module,
            profile,
            present: var(PRESENT_ENV).map(PathBuf::from),
            abort: var(ABORT_ENV).map(PathBuf::from),
            flaky: var(FLAKY_ENV).map(PathBuf::from),
            lock_file: var(LOCK_ENV).map(PathBuf::from),
            busy: Mutex::new(()),
            signing: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the card is in the reader.
    pub(crate) fn present(&self) -> bool {
        self.present.as_ref().is_none_or(|file| file.exists())
    }

    /// Whether this call is to fail once: the flaky file existed (and is
    /// now gone).
    pub(crate) fn flakes(&self) -> bool {
        self.flaky
            .as_ref()
            .is_some_and(|file| std::fs::remove_file(file).is_ok())
    }

    /// Crashes the process when the abort file exists and names
    /// `function`.
    pub(crate) fn crash_if_asked(&self, function: &str) {
        let Some(file) = &self.abort else { return };
        if std::fs::read_to_string(file).is_ok_and(|named| named.trim() == function) {
            eprintln!("p11agent-bench-slowcard: aborting in {function}, as asked");
            std::process::abort();
        }
    }

    /// Makes `call` as the card would: once every other operation on the
    /// card has finished, and after `delay`. A call that costs nothing
    /// is a module's answer from memory, and waits for nobody.
    pub(crate) fn exchange(&self, delay: Duration, call: impl FnOnce() -> CK_RV) -> CK_RV {
        if delay.is_zero() {
            return call();
        }
        let _busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let _card = match self.hold() {
            Ok(card) => card,
            Err(e) => {
                eprintln!("p11agent-bench-slowcard: {e}");
                return CKR_DEVICE_ERROR;
            }
        };
        std::thread::sleep(delay);
        call()
    }

    /// The lock other processes using the card wait for, if any.
    fn hold(&self) -> Result<Option<Flock<File>>, String> {
        let Some(path) = &self.lock_file else {
            return Ok(None);
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(Some)
            .map_err(|(_, errno)| format!("locking {}: {errno}", path.display()))
    }

    /// Notes that `session` signs with a key whose signature takes `delay`.
    pub(crate) fn start_signing(&self, session: CK_SESSION_HANDLE, delay: Duration) {
        self.sessions().insert(session, delay);
    }

    /// How long a signature in `session` takes; a session whose key is
    /// unknown signs as fast as an ECDSA key.
    pub(crate) fn signing_delay(&self, session: CK_SESSION_HANDLE) -> Duration {
        self.sessions()
            .get(&session)
            .copied()
            .unwrap_or(self.profile.sign_ec)
    }

    /// Forgets a closed session.
    pub(crate) fn end_session(&self, session: CK_SESSION_HANDLE) {
        self.sessions().remove(&session);
    }

    /// Forgets every session (`C_Finalize`).
    pub(crate) fn end_sessions(&self) {
        self.sessions().clear();
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<CK_SESSION_HANDLE, Duration>> {
        self.signing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An environment value as text (the numbers and names read are ASCII).
fn lossy(value: &OsString) -> String {
    value.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use cryptoki_sys::CKR_OK;

    use super::*;

    fn card(lock_file: Option<PathBuf>, present: Option<PathBuf>) -> Card {
        Card {
            module: PathBuf::from("/nonexistent"),
            profile: Profile::from_env(|_| None).expect("piv"),
            present,
            abort: None,
            flaky: None,
            lock_file,
            busy: Mutex::new(()),
            signing: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `exchange` of 40 ms on each card at once, from a thread
    /// each; returns how long all took.
    fn together(cards: &[&Card]) -> Duration {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for card in cards {
                scope.spawn(|| card.exchange(Duration::from_millis(40), || CKR_OK));
            }
        });
        start.elapsed()
    }

    #[test]
    fn one_operation_at_a_time() {
        let alone = card(None, None);
        assert!(together(&[&alone, &alone]) >= Duration::from_millis(80));
        // Two processes: two cards with their own mutex, one lock file.
        let dir = std::env::temp_dir().join(format!("slowcard-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let lock = dir.join("card.lock");
        let (a, b) = (card(Some(lock.clone()), None), card(Some(lock), None));
        assert!(together(&[&a, &b]) >= Duration::from_millis(80));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_card_is_in_while_its_file_exists() {
        assert!(card(None, None).present());
        let file = std::env::temp_dir().join(format!("slowcard-present-{}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let inserted = card(None, Some(file.clone()));
        assert!(!inserted.present());
        std::fs::write(&file, b"").expect("insert");
        assert!(inserted.present());
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn a_session_signs_at_its_keys_speed() {
        let c = card(None, None);
        c.start_signing(7, c.profile.sign_rsa);
        assert_eq!(c.signing_delay(7), c.profile.sign_rsa);
        assert_eq!(c.signing_delay(8), c.profile.sign_ec);
        c.end_session(7);
        assert_eq!(c.signing_delay(7), c.profile.sign_ec);
    }
}
