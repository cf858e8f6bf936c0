//! Tokens coming and going, and modules that stop answering.
//!
//! One watcher task per module polls it (every [`WatchOptions::interval`],
//! 500 ms by default): `C_GetSlotList` with tokens present and
//! `C_GetTokenInfo`, which are cheap, compared with what the store holds.
//! A new token is scanned and stored; a removed one is marked absent in
//! the store (its identities stay listed, unless the agent is told to
//! forget absent tokens) and its sessions and login are dropped, so a card
//! put back asks for its PIN again.
//!
//! Why polling: SoftHSM answers a blocking `C_WaitForSlotEvent` with
//! `CKR_FUNCTION_NOT_SUPPORTED` and a non-blocking one with
//! `CKR_NO_EVENT` even after a token was added, and a blocking wait can
//! only be interrupted by `C_Finalize`, which would end every login of the
//! module. Polling `C_GetSlotList` works on every module, and costs
//! microseconds.
//!
//! SoftHSM, and modules like it, only see tokens created or deleted by
//! another process after `C_Finalize` + `C_Initialize`. For SoftHSM the
//! watcher also looks at its token directory (from `SOFTHSM2_CONF`): when
//! the set of token directories changes, the module is re-initialised —
//! after the operations in flight on it finish, holding new ones back, and
//! without touching other modules ([`Tokens::reinitialize`]). That ends
//! the logins of its other tokens too; the next signature logs in again
//! through the PIN source.
//!
//! Every poll runs on a blocking thread with a deadline
//! ([`WatchOptions::deadline`]). A module that misses it, or fails, is
//! marked unavailable ([`Health`]): its tokens show as such, requests for
//! them are answered at once with `module_unavailable`, and other modules
//! are not affected. The watcher waits for the late call to come back
//! (a hung call cannot be cancelled) and then carries on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use p11agent_proto::Token;
use tokio::sync::broadcast;

use crate::daemon::State;
use crate::token::TokenError;

/// How the watchers poll.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Time between polls of a module.
    pub interval: Duration,
    /// How long one poll (or one token scan) may take before the module
    /// is marked unavailable.
    pub deadline: Duration,
    /// Keep the identities of removed tokens listed, as absent.
    pub remember_absent: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
            remember_absent: true,
        }
    }
}

/// Whether each module answers, by module path.
#[derive(Debug)]
pub struct Health {
    modules: Vec<(String, Mutex<Option<String>>)>,
}

impl Health {
    /// Every module available.
    pub fn new(names: impl IntoIterator<Item = String>) -> Health {
        Health {
            modules: names
                .into_iter()
                .map(|name| (name, Mutex::new(None)))
                .collect(),
        }
    }

    /// Why the module at `module` (its path, as [`Token::module`] spells
    /// it) is unavailable, or `None` when it answers.
    pub fn problem(&self, module: &str) -> Option<String> {
        self.modules
            .iter()
            .find(|(name, _)| name == module)
            .and_then(|(_, problem)| lock(problem).clone())
    }

    /// Records module `index`'s state; returns whether it changed.
    fn set(&self, index: usize, problem: Option<String>) -> bool {
        match self.modules.get(index) {
            Some((_, current)) => {
                let mut current = lock(current);
                let changed = *current != problem;
                *current = problem;
                changed
            }
            None => false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a poll changed, for the event stream and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A token appeared.
    TokenInserted(Token),
    /// A token went away.
    TokenRemoved(Token),
    /// An identity of an inserted token was stored.
    IdentityAdded {
        /// Its token.
        token: Token,
        /// Its id.
        id: String,
        /// Its subject.
        subject: String,
    },
    /// An identity of a removed token is no longer usable.
    IdentityRemoved {
        /// Its token.
        token: Token,
        /// Its id.
        id: String,
        /// Its subject.
        subject: String,
    },
    /// A module stopped answering in time, or failed.
    ModuleUnavailable {
        /// Its path.
        module: String,
        /// What went wrong.
        detail: String,
    },
    /// A module answers again.
    ModuleAvailable {
        /// Its path.
        module: String,
    },
}

/// Watches module `index` until `stop` fires, reporting changes to
/// `announce`.
pub async fn watch_module(
    state: Arc<State>,
    index: usize,
    options: WatchOptions,
    announce: impl Fn(&State, Change),
    mut stop: broadcast::Receiver<()>,
) {
    let Some(name) = state.tokens.module_name(index).map(str::to_owned) else {
        return;
    };
    let store_dir = SoftHsmTokenDir::for_module(Path::new(&name));
    let mut seen_dirs = store_dir.as_ref().map(SoftHsmTokenDir::snapshot);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(options.interval) => {}
            _ = stop.recv() => return,
        }
        let now_dirs = store_dir.as_ref().map(SoftHsmTokenDir::snapshot);
        let reinit = now_dirs != seen_dirs;
        let tokens = state.tokens.clone();
        let mut poll = tokio::task::spawn_blocking(move || {
            if reinit {
                tokens.reinitialize(index)?;
            }
            tokens.with_module(index, |module| module.present_tokens())
        });
        let outcome = tokio::select! {
            joined = tokio::time::timeout(options.deadline, &mut poll) => joined,
            _ = stop.recv() => return,
        };
        let present = match outcome {
            Ok(Ok(Ok(present))) => present,
            Ok(Ok(Err(e))) => {
                unavailable(&state, index, &name, with_causes(&e), &announce);
                continue;
            }
            Ok(Err(e)) => {
                unavailable(&state, index, &name, format!("poll failed: {e}"), &announce);
                continue;
            }
            Err(_) => {
                let detail = format!(
                    "no answer within {} ms; waiting for it",
                    options.deadline.as_millis()
                );
                unavailable(&state, index, &name, detail, &announce);
                // A hung call cannot be cancelled: wait for it before
                // asking the module anything else.
                let late = tokio::select! {
                    late = poll => late,
                    _ = stop.recv() => return,
                };
                match late {
                    Ok(Ok(present)) => present,
                    _ => continue,
                }
            }
        };
        if reinit {
            seen_dirs = now_dirs;
            tracing::info!(module = %name, "module re-initialised: its token set changed");
        }
        if state.health.set(index, None) {
            tracing::info!(module = %name, "module answers again");
            announce(
                &state,
                Change::ModuleAvailable {
                    module: name.clone(),
                },
            );
        }
        reconcile(&state, index, &name, present, options, &announce).await;
    }
}

/// `error` and what caused it: "cannot list the slots of …: CKR_…".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn unavailable(
    state: &State,
    index: usize,
    name: &str,
    detail: String,
    announce: &impl Fn(&State, Change),
) {
    if state.health.set(index, Some(detail.clone())) {
        tracing::warn!(module = %name, %detail, "module unavailable");
        state.rescue.answer_all(name, |token| {
            crate::server::cmd::unavailable(token, &detail)
        });
        announce(
            state,
            Change::ModuleUnavailable {
                module: name.to_owned(),
                detail,
            },
        );
    }
}

/// Brings the store in line with the tokens `present` in module `index`.
async fn reconcile(
    state: &Arc<State>,
    index: usize,
    name: &str,
    present: Vec<Token>,
    options: WatchOptions,
    announce: &impl Fn(&State, Change),
) {
    let known = state.store.read().await.present_tokens(name);
    let same = |a: &Token, b: &Token| a.slot == b.slot && a.serial == b.serial;
    for token in known.iter().filter(|k| !present.iter().any(|p| same(k, p))) {
        let identities = {
            let mut store = state.store.write().await;
            let identities = store.identities_of(token);
            if options.remember_absent {
                store.mark_absent(token);
            } else {
                store.remove_token(token);
            }
            identities
        };
        let tokens = state.tokens.clone();
        let gone = token.clone();
        // Drops sessions and login; quick, but it may call into the module.
        let _ = tokio::time::timeout(
            options.deadline,
            tokio::task::spawn_blocking(move || tokens.forget(&gone)),
        )
        .await;
        tracing::info!(token = %token.label, serial = %token.serial, "token removed");
        for (id, subject) in identities {
            announce(
                state,
                Change::IdentityRemoved {
                    token: token.clone(),
                    id,
                    subject,
                },
            );
        }
        announce(state, Change::TokenRemoved(token.clone()));
    }
    for token in present.iter().filter(|p| !known.iter().any(|k| same(k, p))) {
        let tokens = state.tokens.clone();
        let slot = token.slot;
        let scan = tokio::task::spawn_blocking(move || {
            tokens.with_module(index, |module| module.scan_slot(slot))
        });
        let found = match tokio::time::timeout(options.deadline, scan).await {
            Ok(Ok(Ok(found))) => found,
            Ok(Ok(Err(TokenError::TokenNotInitialized { .. }))) => continue,
            Ok(Ok(Err(e))) => {
                tracing::warn!(token = %token.label, error = %e, "new token could not be scanned; retrying at the next poll");
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(token = %token.label, error = %e, "scan task failed");
                continue;
            }
            Err(_) => {
                unavailable(
                    state,
                    index,
                    name,
                    format!("scanning token {} took too long", token.label),
                    announce,
                );
                continue;
            }
        };
        let inserted = found.token.clone();
        let identities = {
            let mut store = state.store.write().await;
            store.insert_token(found);
            store.identities_of(&inserted)
        };
        tracing::info!(token = %inserted.label, serial = %inserted.serial, identities = identities.len(), "token inserted");
        announce(state, Change::TokenInserted(inserted.clone()));
        for (id, subject) in identities {
            announce(
                state,
                Change::IdentityAdded {
                    token: inserted.clone(),
                    id,
                    subject,
                },
            );
        }
    }
}

/// SoftHSM's token directory, whose entries are its tokens.
#[derive(Debug)]
struct SoftHsmTokenDir {
    dir: PathBuf,
}

impl SoftHsmTokenDir {
    /// The token directory of `module` when it is SoftHSM, read from
    /// `SOFTHSM2_CONF` (or SoftHSM's default configuration file).
    fn for_module(module: &Path) -> Option<SoftHsmTokenDir> {
        let file_name = module.file_name()?.to_string_lossy().to_lowercase();
        if !file_name.contains("softhsm") {
            return None;
        }
        let conf = std::env::var_os("SOFTHSM2_CONF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/softhsm/softhsm2.conf"));
        let text = std::fs::read_to_string(&conf).ok()?;
        let dir = token_dir_setting(&text)?;
        tracing::debug!(dir = %dir.display(), "watching SoftHSM's token directory");
        Some(SoftHsmTokenDir { dir })
    }

    /// The names in the directory (empty when it cannot be read).
    fn snapshot(&self) -> BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `directories.tokendir` of a softhsm2.conf.
fn token_dir_setting(conf: &str) -> Option<PathBuf> {
    conf.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "directories.tokendir").then(|| PathBuf::from(value.trim()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_dir_from_conf() {
        let conf = "# comment\n# directories.tokendir = /nope\n\
                    log.level = INFO\ndirectories.tokendir = /tmp/x/tokens \n";
        assert_eq!(
            token_dir_setting(conf),
            Some(PathBuf::from("/tmp/x/tokens"))
        );
        assert_eq!(token_dir_setting("objectstore.backend = file\n"), None);
    }

    #[test]
    fn unavailability_says_what_the_module_answered() {
        let error = crate::token::TokenError::SlotList {
            path: PathBuf::from("/m.so"),
            source: cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::DeviceError,
                cryptoki::context::Function::GetSlotList,
            ),
        };
        let text = with_causes(&error);
        assert!(
            text.starts_with("cannot list the slots of PKCS#11 module /m.so: "),
            "{text}"
        );
        assert!(text.contains("GetSlotList"), "{text}");
    }

    #[test]
    fn health_changes_once() {
        let health = Health::new(["/a.so".to_owned(), "/b.so".to_owned()]);
        assert_eq!(health.problem("/a.so"), None);
        assert!(health.set(0, Some("hung".into())));
        assert!(!health.set(0, Some("hung".into())));
        assert_eq!(health.problem("/a.so").as_deref(), Some("hung"));
        assert_eq!(health.problem("/b.so"), None);
        assert!(health.set(0, None));
        assert_eq!(health.problem("/a.so"), None);
        assert_eq!(health.problem("/c.so"), None);
    }
}
