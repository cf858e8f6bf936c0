//! The service's background tasks: one watcher per module, which sees
//! tokens come and go and modules stop answering and reports it to the
//! service (`presence.rs`), and the idle logout.
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
//! without touching other modules (`Tokens::reinitialize`). That ends
//! the logins of its other tokens too; the next signature logs in again
//! through the PIN source.
//!
//! Every poll runs on a blocking thread with a deadline
//! ([`WatchOptions::deadline`]). A module that misses it, or fails, is
//! marked unavailable (`health.rs`): its tokens show as such, requests for
//! them are answered at once with `module_unavailable`, and other modules
//! are not affected. The watcher waits for the late call to come back
//! (a hung call cannot be cancelled) and then carries on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p11agent_proto::Token;
use tokio::sync::broadcast;

use super::agent::Agent;
use crate::token::TokenError;

/// The running background tasks; [`Background::stop`] ends them.
#[derive(Debug)]
pub(crate) struct Background {
    stop: broadcast::Sender<()>,
}

impl Background {
    /// Stops every task at its next wake-up (a call into a hung module
    /// is left to return on its own).
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
    }
}

impl Agent {
    /// Starts a watcher for every module and, when configured, the idle
    /// logout. Call inside the daemon's tokio runtime.
    pub(crate) fn spawn_background(&self) -> Background {
        let (stop, _) = broadcast::channel(1);
        if let Some(idle) = self.inner.login_idle_timeout {
            tokio::spawn(idle_logout(self.clone(), idle, stop.subscribe()));
        }
        for index in 0..self.inner.tokens.module_count() {
            tokio::spawn(watch_module(self.clone(), index, stop.subscribe()));
        }
        Background { stop }
    }
}

/// Logs out of tokens that have not signed for `idle` (as `ssh-add -t`):
/// a card left in a reader does not stay unlocked for ever.
async fn idle_logout(agent: Agent, idle: Duration, mut stop: broadcast::Receiver<()>) {
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.recv() => return,
        }
        let agent = agent.clone();
        // Logging out calls into the modules.
        let _ = tokio::task::spawn_blocking(move || agent.log_out_idle(idle)).await;
    }
}

/// Watches module `index` until `stop` fires.
async fn watch_module(agent: Agent, index: usize, mut stop: broadcast::Receiver<()>) {
    let options = agent.inner.watch;
    let tokens = agent.inner.tokens.clone();
    let Some(name) = tokens.module_name(index).map(str::to_owned) else {
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
        let poll_tokens = tokens.clone();
        let mut poll = tokio::task::spawn_blocking(move || {
            if reinit {
                poll_tokens.reinitialize(index)?;
            }
            poll_tokens.present_tokens(index)
        });
        let outcome = tokio::select! {
            joined = tokio::time::timeout(options.deadline, &mut poll) => joined,
            _ = stop.recv() => return,
        };
        let present = match outcome {
            Ok(Ok(Ok(present))) => present,
            Ok(Ok(Err(e))) => {
                agent.module_unavailable(index, with_causes(&e));
                continue;
            }
            Ok(Err(e)) => {
                agent.module_unavailable(index, format!("poll failed: {e}"));
                continue;
            }
            Err(_) => {
                let detail = format!(
                    "no answer within {} ms; waiting for it",
                    options.deadline.as_millis()
                );
                agent.module_unavailable(index, detail);
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
        agent.module_available(index);
        reconcile(&agent, index, &name, present).await;
    }
}

/// `error` and what caused it: "cannot list the slots of ...: CKR_...".
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

/// Brings the store in line with the tokens `present` in module `index`:
/// removals first, then each new token scanned under the deadline.
async fn reconcile(agent: &Agent, index: usize, name: &str, present: Vec<Token>) {
    let deadline = agent.inner.watch.deadline;
    let known = agent.present_tokens(name);
    let same = |a: &Token, b: &Token| a.slot == b.slot && a.serial == b.serial;
    for token in known.iter().filter(|k| !present.iter().any(|p| same(k, p))) {
        agent.token_removed(token);
        let tokens = agent.inner.tokens.clone();
        let gone = token.clone();
        // Drops sessions and login; quick, but it may call into the module.
        let _ = tokio::time::timeout(
            deadline,
            tokio::task::spawn_blocking(move || tokens.forget(&gone)),
        )
        .await;
    }
    for token in present.iter().filter(|p| !known.iter().any(|k| same(k, p))) {
        let tokens = agent.inner.tokens.clone();
        let slot = token.slot;
        let scan = tokio::task::spawn_blocking(move || tokens.scan_slot(index, slot));
        match tokio::time::timeout(deadline, scan).await {
            Ok(Ok(Ok(found))) => agent.store_scan(found),
            Ok(Ok(Err(TokenError::TokenNotInitialized { .. }))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(token = %token.label, error = %e, "new token could not be scanned; retrying at the next poll");
            }
            Ok(Err(e)) => tracing::warn!(token = %token.label, error = %e, "scan task failed"),
            Err(_) => agent.module_unavailable(
                index,
                format!("scanning token {} took too long", token.label),
            ),
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
        let error = TokenError::SlotList {
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
}
