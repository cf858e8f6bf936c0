//! The module's state between `C_Initialize` and `C_Finalize`, behind
//! one lock, and what every call does first: notice a fork, take the
//! agent's events, and list again when they say something changed.

use std::collections::BTreeSet;
use std::time::Duration;

use cryptoki_sys::CK_SLOT_ID;
use p11agent_client::proto::paths;
use parking_lot::Mutex;

use crate::agent::{Agent, Listing, News};
use crate::cache::Cache;
use crate::rv::Error;
use crate::sessions::Sessions;

/// Shows Ed25519 identities when set to `1` (see the README: Debian's
/// libp11 cannot list the other keys of a token that has one).
const ED25519_ENV: &str = "P11AGENT_PKCS11_ED25519";

/// How long a blocking `C_WaitForSlotEvent` waits before it looks again
/// whether the module was finalised.
const WAIT_SLICE: Duration = Duration::from_millis(500);

static STATE: Mutex<Option<State>> = Mutex::new(None);

#[derive(Debug)]
pub(crate) struct State {
    /// The process the connections belong to.
    pid: u32,
    /// Changes when connections are dropped wholesale (a fork), so that
    /// a connection lent out before is not put back.
    pub(crate) generation: u64,
    pub(crate) agent: Agent,
    pub(crate) cache: Cache,
    pub(crate) sessions: Sessions,
    /// Slots whose token came, went or changed since the last
    /// `C_WaitForSlotEvent` that reported them.
    slot_events: BTreeSet<CK_SLOT_ID>,
}

impl State {
    fn new() -> Self {
        let ed25519 = std::env::var_os(ED25519_ENV).is_some_and(|v| v == "1");
        State {
            pid: std::process::id(),
            generation: 0,
            agent: Agent::new(paths::client_socket()),
            cache: Cache::new(ed25519),
            sessions: Sessions::default(),
            slot_events: BTreeSet::new(),
        }
    }

    /// Brings the state up to date with the agent: the connections of a
    /// parent process are dropped, events are taken without waiting, and
    /// the agent is asked again only when they say so.
    fn refresh(&mut self) {
        let pid = std::process::id();
        if pid != self.pid {
            self.pid = pid;
            self.generation += 1;
            self.agent.after_fork();
        }
        match self.agent.poll() {
            News::Quiet => {}
            News::Changed => self.relist(),
            News::Gone => self.show(Listing::default()),
        }
    }

    fn relist(&mut self) {
        let cache = &self.cache;
        match self.agent.listing(|i| cache.needs_certificate(i)) {
            Ok(listing) => self.show(listing),
            Err(_) => {
                self.agent.disconnect();
                self.show(Listing::default());
            }
        }
    }

    fn show(&mut self, listing: Listing) {
        let changed = self.cache.apply(listing);
        for slot in &changed {
            if self.cache.slots().with_token(*slot).is_err() {
                // PKCS#11: a token's removal closes its sessions.
                self.sessions.close_slot(*slot);
            }
        }
        self.slot_events.extend(changed);
    }
}

/// `C_Initialize`: connects to the agent if it runs (the slots appear
/// when it starts otherwise). In a forked child whose parent had
/// initialised the module, starts afresh.
pub(crate) fn initialize() -> Result<(), Error> {
    let mut guard = STATE.lock();
    if guard
        .as_ref()
        .is_some_and(|state| state.pid == std::process::id())
    {
        return Err(Error::AlreadyInitialized);
    }
    let mut state = State::new();
    state.refresh();
    // What is there at the start is no event.
    state.slot_events.clear();
    *guard = Some(state);
    Ok(())
}

/// `C_Finalize`: closes every connection and session.
pub(crate) fn finalize() -> Result<(), Error> {
    STATE.lock().take().map(drop).ok_or(Error::NotInitialized)
}

/// Runs `f` on the state, brought up to date, under the module's lock.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> Result<R, Error>) -> Result<R, Error> {
    let mut guard = STATE.lock();
    let state = guard.as_mut().ok_or(Error::NotInitialized)?;
    state.refresh();
    f(state)
}

/// `C_WaitForSlotEvent`: a slot whose token came, went or changed;
/// without `block`, `NoEvent` when there is none yet.
pub(crate) fn wait_for_slot_event(block: bool) -> Result<CK_SLOT_ID, Error> {
    loop {
        let (event, fd) = with(|state| {
            let event = state.slot_events.pop_first();
            Ok((event, state.agent.events_fd()))
        })?;
        match (event, block, fd) {
            (Some(slot), _, _) => return Ok(slot),
            (None, false, _) => return Err(Error::NoEvent),
            (None, true, Some(fd)) => wait_readable(&fd),
            (None, true, None) => std::thread::sleep(WAIT_SLICE),
        }
    }
}

/// Waits, without the lock, until the event connection has something to
/// read or [`WAIT_SLICE`] passed.
fn wait_readable(fd: &std::os::fd::OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(WAIT_SLICE).unwrap_or(PollTimeout::MAX);
    // An error (EINTR) or a timeout both mean: look again.
    let _ = poll(&mut fds, timeout);
}
