//! The service's background tasks: one watcher per module, which sees
//! tokens come and go, their objects change, and modules stop answering,
//! and reports it to the service (`presence.rs`); and the idle logout.
//!
//! One watcher task per module polls it (every [`WatchOptions::interval`],
//! 500 ms by default): `C_GetSlotList` with tokens present and
//! `C_GetTokenInfo`, which are cheap, compared with what the store holds.
//! A new token is scanned and stored. A token missing from two polls in
//! a row, or at once when the module answers `CKR_TOKEN_NOT_PRESENT` or
//! `CKR_DEVICE_REMOVED` for it, is marked absent in the store (its
//! identities stay listed, unless the agent is told to forget absent
//! tokens) and its sessions and login are dropped, so a card put back
//! asks for its PIN again. One poll is not enough: a reader busy with
//! another program, or SoftHSM rewriting a token's files for another
//! process, can leave a token unreadable for a moment, and a false
//! removal costs the login (a PIN prompt out of nowhere).
//!
//! Objects that change on a token that stays in (a certificate renewed,
//! an identity enrolled) are seen without re-insertion: each poll takes
//! a fingerprint of the token's object handles (`Tokens::object_fingerprint`,
//! in a session kept open, since handles are only stable within one);
//! when it moves, the token is scanned again and `store_scan` announces
//! the identities added and removed. SoftHSM is watched through its files
//! instead (below): it does not show one process the objects another
//! process created or deleted until it is re-initialised, and
//! fingerprinting its objects would cost ~12 µs per object per poll.
//!
//! Why polling: SoftHSM answers a blocking `C_WaitForSlotEvent` with
//! `CKR_FUNCTION_NOT_SUPPORTED` and a non-blocking one with
//! `CKR_NO_EVENT` even after a token was added, and a blocking wait can
//! only be interrupted by `C_Finalize`, which would end every login of the
//! module. Polling `C_GetSlotList` works on every module, and costs
//! microseconds.
//!
//! SoftHSM, and modules like it, only see tokens and objects created or
//! deleted by another process after `C_Finalize` + `C_Initialize`. For
//! SoftHSM the watcher also lists its token directory (from
//! `SOFTHSM2_CONF`), with the time each token's directory last changed
//! (an object's file created or deleted): when a token comes or goes or
//! its objects do, the module is re-initialised — after the operations in
//! flight on it finish, holding new ones back, and without touching other
//! modules (`Tokens::reinitialize`) — and every token scanned again. A
//! login by another process rewrites `token.object` in place, which
//! leaves its directory as it was. Re-initialising ends the logins of all the module's tokens:
//! SoftHSM drops them at `C_Finalize`, and no PKCS#11 call keeps them.
//! The next signature logs in again through the PIN source: silently
//! with a PIN file, with a prompt with pinentry (never before a
//! signature asks).
//!
//! Every poll runs on a blocking thread with a deadline
//! ([`WatchOptions::deadline`]). A module that misses it, or fails, is
//! marked unavailable (`health.rs`): its tokens show as such, requests for
//! them are answered at once with `module_unavailable`, and other modules
//! are not affected. The watcher waits for the late call to come back
//! (a hung call cannot be cancelled) and then carries on.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use p11agent_proto::Token;
use tokio::sync::broadcast;

use super::agent::Agent;
use crate::token::found::Presence;
use crate::token::{TokenError, Tokens};

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

/// What a watcher remembers of its module's tokens between polls, by
/// slot and serial.
#[derive(Debug, Default)]
struct Seen {
    /// Known tokens missing from the last polls, and from how many in a
    /// row.
    missing: HashMap<(u64, String), u32>,
    /// Each present token's object fingerprint, as last stored.
    fingerprints: HashMap<(u64, String), u64>,
}

/// A token missing from this many polls in a row is removed (unless its
/// module said it is gone, which removes it at once).
const MISSING_POLLS: u32 = 2;

fn key(token: &Token) -> (u64, String) {
    (token.slot, token.serial.clone())
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
    // SoftHSM's own files say when objects change, and it does not show
    // another process's changes to a process that has it loaded until it
    // is re-initialised: its objects are not fingerprinted (which would
    // cost it ~12 µs per object per poll, see docs/BENCHMARKS.md).
    let fingerprint = store_dir.is_none();
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(options.interval) => {}
            _ = stop.recv() => return,
        }
        let now_dirs = store_dir.as_ref().map(SoftHsmTokenDir::snapshot);
        let reinit = now_dirs != seen_dirs;
        let poll_tokens = tokens.clone();
        let mut poll = tokio::task::spawn_blocking(move || {
            poll_module(&poll_tokens, index, reinit, fingerprint)
        });
        let outcome = tokio::select! {
            joined = tokio::time::timeout(options.deadline, &mut poll) => joined,
            _ = stop.recv() => return,
        };
        let polled = match outcome {
            Ok(Ok(Ok(polled))) => polled,
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
                    Ok(Ok(polled)) => polled,
                    _ => continue,
                }
            }
        };
        if reinit {
            seen_dirs = now_dirs;
            tracing::info!(module = %name, "module re-initialised: its token set changed");
        }
        agent.module_available(index);
        if reinit {
            // Everything the module showed before may have changed.
            seen.fingerprints.clear();
        }
        reconcile(&agent, index, &name, polled, &mut seen, reinit).await;
    }
}

/// One poll's findings: which tokens are there, and the fingerprint of
/// each one's objects (`None` when it could not be read this time).
struct Polled {
    presence: Presence,
    fingerprints: Vec<Option<u64>>,
}

/// Polls module `index` (re-initialising it first when `reinit`), with
/// the fingerprint of each token's objects when `fingerprint`.
fn poll_module(
    tokens: &Tokens,
    index: usize,
    reinit: bool,
    fingerprint: bool,
) -> Result<Polled, TokenError> {
    if reinit {
        tokens.reinitialize(index)?;
    }
    let presence = tokens.present_tokens(index)?;
    let fingerprints = presence
        .tokens
        .iter()
        .map(|token| {
            if !fingerprint {
                return None;
            }
            tokens
                .object_fingerprint(index, token.slot)
                .inspect_err(|e| tracing::debug!(token = %token.label, error = %e, "objects not listed in this poll"))
                .ok()
        })
        .collect();
    Ok(Polled {
        presence,
        fingerprints,
    })
}

/// `error` and what caused it: "cannot list the slots of ...: CKR_...".
fn with_causes(error: &dyn std::error::Error) -> String {
    crate::token::isolated::wire::with_causes(error)
}

/// Brings the store in line with what a poll of module `index` found:
/// removals first (a token missing from [`MISSING_POLLS`] polls in a
/// row, or gone by its module's word), then each new token scanned, then
/// each token whose objects changed scanned again, under the deadline.
async fn reconcile(
    agent: &Agent,
    index: usize,
    name: &str,
    polled: Polled,
    seen: &mut Seen,
    rescan_all: bool,
) {
    let Polled {
        presence,
        fingerprints,
    } = polled;
    let known = agent.present_tokens(name);
    let same = |a: &Token, b: &Token| a.slot == b.slot && a.serial == b.serial;
    for token in known
        .iter()
        .filter(|k| !presence.tokens.iter().any(|p| same(k, p)))
    {
        let gone = presence.gone.contains(&token.slot);
        let missing = seen.missing.entry(key(token)).or_default();
        *missing += 1;
        if !gone && *missing < MISSING_POLLS {
            tracing::debug!(token = %token.label, "token missing from this poll; removed if the next one misses it too");
            continue;
        }
        seen.missing.remove(&key(token));
        seen.fingerprints.remove(&key(token));
        agent.token_removed(token);
        let tokens = agent.inner.tokens.clone();
        let gone = token.clone();
        // Drops sessions and login; quick, but it may call into the module.
        let _ = tokio::time::timeout(
            agent.inner.watch.deadline,
            tokio::task::spawn_blocking(move || tokens.forget(&gone)),
        )
        .await;
    }
    for (token, fingerprint) in presence.tokens.iter().zip(fingerprints) {
        seen.missing.remove(&key(token));
        let is_new = !known.iter().any(|k| same(k, token));
        let changed = rescan_all
            || match (fingerprint, seen.fingerprints.get(&key(token))) {
                (Some(now), Some(&before)) => now != before,
                _ => false,
            };
        if !is_new && !changed {
            if let Some(now) = fingerprint {
                seen.fingerprints.insert(key(token), now);
            }
            continue;
        }
        if changed && !rescan_all {
            tracing::info!(token = %token.label, "objects changed on the token; scanning it again");
        }
        if scan(agent, index, token).await {
            if let Some(now) = fingerprint {
                seen.fingerprints.insert(key(token), now);
            }
        }
    }
}

/// Scans `token` of module `index` into the store, under the deadline;
/// whether it was stored.
async fn scan(agent: &Agent, index: usize, token: &Token) -> bool {
    let tokens = agent.inner.tokens.clone();
    let slot = token.slot;
    let scan = tokio::task::spawn_blocking(move || tokens.scan_slot(index, slot));
    match tokio::time::timeout(agent.inner.watch.deadline, scan).await {
        Ok(Ok(Ok(found))) => {
            agent.store_scan(found);
            return true;
        }
        Ok(Ok(Err(TokenError::TokenNotInitialized { .. }))) => {}
        Ok(Ok(Err(e))) => {
            tracing::warn!(token = %token.label, error = %e, "token could not be scanned; retrying at the next poll");
        }
        Ok(Err(e)) => tracing::warn!(token = %token.label, error = %e, "scan task failed"),
        Err(_) => agent.module_unavailable(
            index,
            format!("scanning token {} took too long", token.label),
        ),
    }
    false
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

    /// The tokens (the directory's entries), each with the time its own
    /// directory last changed: creating or deleting an object adds or
    /// removes a file there. Empty when the directory cannot be read. A
    /// login rewrites `token.object` in place, which changes neither.
    /// One `stat` per token: listing the objects' files instead cost
    /// 2.2 ms per poll on a token of 1,000 identities.
    fn snapshot(&self) -> BTreeSet<(std::ffi::OsString, Option<std::time::SystemTime>)> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| {
                        let changed = entry.metadata().and_then(|m| m.modified()).ok();
                        (entry.file_name(), changed)
                    })
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
