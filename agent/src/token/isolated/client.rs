//! The agent's side of a module helper: starting it, handing out
//! channels to it, and noticing when it died.
//!
//! A request takes an idle channel (or makes one: a socket pair whose
//! other end goes to the helper over the control socket), writes the
//! request, reads the reply on the same thread and puts the channel
//! back. A channel that fails means the helper is broken: it is killed
//! if it still runs, reaped, and the request answered as a crash. The
//! next request starts a new helper, at once after one crash, and after
//! a delay doubling from 1 s up to a minute while it keeps crashing
//! within 30 s of starting, so a module that dies on every call does
//! not make the agent fork in a loop.

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use parking_lot::Mutex;
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::wire::{read_frame, write_frame, Reply, Request, WirePinError};
use crate::pin::{PinKind, PinRequest, PinSource};

/// A helper that crashes within this long of starting counts as
/// crashing repeatedly.
const QUICK_CRASH: Duration = Duration::from_secs(30);
/// The longest wait before starting a helper again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a helper whose channel closed may take to be reaped before
/// it is killed.
const REAP_GRACE: Duration = Duration::from_millis(200);

/// One module served by a helper process.
#[derive(Debug)]
pub(crate) struct Isolated {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: Option<Running>,
    /// Counts helpers started, so that a failure is charged to the
    /// helper it happened on.
    generation: u64,
    /// Crashes in a row, each within [`QUICK_CRASH`] of its start.
    crashes: u32,
    not_before: Option<Instant>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    control: UnixStream,
    idle: Vec<UnixStream>,
    generation: u64,
    started: Instant,
}

/// The helper died, or could not be started: what happened.
#[derive(Debug)]
pub(crate) struct Crash(pub(crate) String);

impl Isolated {
    /// Starts a helper for the module at `path`. Fails with the reason
    /// the module did not load.
    pub(crate) fn start(path: &Path) -> Result<Isolated, Crash> {
        let isolated = Isolated {
            path: path.to_path_buf(),
            state: Mutex::new(State::default()),
        };
        {
            let mut state = isolated.state.lock();
            let running = isolated.spawn(state.generation + 1)?;
            state.generation = running.generation;
            state.running = Some(running);
        }
        Ok(isolated)
    }

    /// The module's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `request` and returns the final reply, answering the
    /// helper's PIN questions from `pins` meanwhile.
    pub(crate) fn call(&self, request: &Request, pins: &dyn PinSource) -> Result<Reply, Crash> {
        let (mut channel, generation) = self.checkout()?;
        match exchange(&mut channel, request, pins) {
            Ok(reply) => {
                self.checkin(channel, generation);
                Ok(reply)
            }
            Err(e) => Err(self.crashed(generation, &e)),
        }
    }

    fn checkout(&self) -> Result<(UnixStream, u64), Crash> {
        let mut state = self.state.lock();
        if state.running.is_none() {
            if let Some(wait) = state
                .not_before
                .and_then(|t| t.checked_duration_since(Instant::now()))
            {
                return Err(Crash(format!(
                    "it crashed {} times in a row; next try in {} s",
                    state.crashes,
                    wait.as_secs() + 1
                )));
            }
            let generation = state.generation + 1;
            state.generation = generation;
            match self.spawn(generation) {
                Ok(running) => {
                    tracing::info!(module = %self.path.display(), "module helper started again");
                    state.running = Some(running);
                }
                Err(crash) => {
                    back_off(&mut state, true);
                    return Err(crash);
                }
            }
        }
        let running = state
            .running
            .as_mut()
            .ok_or_else(|| Crash("not started".into()))?;
        let generation = running.generation;
        if let Some(channel) = running.idle.pop() {
            return Ok((channel, generation));
        }
        let made = UnixStream::pair().and_then(|(ours, theirs)| {
            pass(&running.control, theirs.into())?;
            Ok(ours)
        });
        match made {
            Ok(channel) => Ok((channel, generation)),
            Err(e) => {
                drop(state);
                Err(self.crashed(generation, &e))
            }
        }
    }

    fn checkin(&self, channel: UnixStream, generation: u64) {
        let mut state = self.state.lock();
        if let Some(running) = state
            .running
            .as_mut()
            .filter(|r| r.generation == generation)
        {
            running.idle.push(channel);
        }
    }

    /// Ends the helper `generation` after its channel failed with
    /// `error`, and says how it ended.
    fn crashed(&self, generation: u64, error: &io::Error) -> Crash {
        let mut state = self.state.lock();
        let Some(mut running) = state.running.take_if(|r| r.generation == generation) else {
            return Crash("its helper process ended".into());
        };
        let status = reap(&mut running.child);
        let quick = running.started.elapsed() < QUICK_CRASH;
        back_off(&mut state, quick);
        let detail = match status {
            Some(status) => describe(status),
            None => format!("its helper process failed: {error}"),
        };
        tracing::warn!(module = %self.path.display(), %detail, "module helper ended; the next request starts it again");
        Crash(detail)
    }

    /// Starts helper `generation` and waits for its word that the
    /// module loaded.
    fn spawn(&self, generation: u64) -> Result<Running, Crash> {
        let failed = |what: &str, e: io::Error| Crash(format!("{what}: {e}"));
        let (control, theirs) =
            UnixStream::pair().map_err(|e| failed("cannot make a socket pair", e))?;
        let mut child = Command::new(helper_program())
            .arg("module-helper")
            .arg(&self.path)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Ctrl-C at the daemon's terminal is the daemon's to handle:
            // its helpers stop when it closes their control sockets.
            .process_group(0)
            .spawn()
            .map_err(|e| failed("cannot start the module helper", e))?;
        match read_frame::<Result<(), String>>(&mut &control) {
            Ok(Ok(())) => Ok(Running {
                child,
                control,
                idle: Vec::new(),
                generation,
                started: Instant::now(),
            }),
            Ok(Err(reason)) => {
                let _ = reap(&mut child);
                Err(Crash(reason))
            }
            Err(e) => Err(match reap(&mut child) {
                Some(status) => Crash(format!("while loading the module, {}", describe(status))),
                None => failed("the module helper did not answer", e),
            }),
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(mut running) = self.state.get_mut().running.take() {
            // Closing the control socket and the channels tells the
            // helper to finalise its module and exit.
            drop(running.idle);
            drop(running.control);
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                if let Ok(Some(_)) = running.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

/// Counts a crash (`quick`: within [`QUICK_CRASH`] of the start) and
/// sets when the next helper may start.
fn back_off(state: &mut State, quick: bool) {
    state.crashes = if quick { state.crashes + 1 } else { 1 };
    let delay = match state.crashes {
        0 | 1 => Duration::ZERO,
        n => (Duration::from_secs(1) * 2u32.saturating_pow(n - 2)).min(MAX_BACKOFF),
    };
    state.not_before = Some(Instant::now() + delay);
}

/// Waits a moment for the helper to end on its own (so that its own
/// signal is the one reported), then kills it; returns how it ended.
fn reap(child: &mut Child) -> Option<ExitStatus> {
    let until = Instant::now() + REAP_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                return child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

/// "killed by signal 6 (SIGABRT)", "exited with status 1".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("its helper process exited with status {code}"),
        (None, Some(signal)) => {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default();
            format!("its helper process was killed by signal {signal}{name}")
        }
        (None, None) => format!("its helper process ended ({status})"),
    }
}

/// The program to run as the helper: this very executable, even if its
/// file was replaced (upgraded) since the agent started.
fn helper_program() -> PathBuf {
    let own = Path::new("/proc/self/exe");
    if own.exists() {
        return own.to_path_buf();
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("p11agent"))
}

/// Passes `fd` to the helper over `control`.
fn pass(control: &UnixStream, fd: OwnedFd) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        control.as_raw_fd(),
        &[io::IoSlice::new(&[0])],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Writes `request` and reads replies until the final one, answering PIN
/// questions from `pins`.
fn exchange(
    channel: &mut UnixStream,
    request: &Request,
    pins: &dyn PinSource,
) -> io::Result<Reply> {
    write_frame(channel, request)?;
    loop {
        match read_frame(channel)? {
            Reply::NeedPin {
                token,
                context_specific,
                warning,
            } => {
                let asked = PinRequest {
                    token: &token,
                    kind: if context_specific {
                        PinKind::ContextSpecific
                    } else {
                        PinKind::User
                    },
                    warning,
                };
                let answer = pins
                    .pin(&asked)
                    .map(|pin| Zeroizing::new(pin.expose_secret().to_owned()))
                    .map_err(|e| WirePinError::from(&e));
                write_frame(channel, &Request::PinAnswer(answer))?;
            }
            reply => return Ok(reply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_keeps_crashing_waits_longer_each_time_up_to_a_minute() {
        let mut state = State::default();
        let mut delays = Vec::new();
        for _ in 0..10 {
            back_off(&mut state, true);
            let wait = state
                .not_before
                .and_then(|t| t.checked_duration_since(Instant::now()))
                .unwrap_or_default();
            delays.push(wait.as_secs_f64().round() as u64);
        }
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // One that ran for a while before crashing starts again at once.
        back_off(&mut state, false);
        assert_eq!(state.crashes, 1);
        assert!(state.not_before.is_some_and(|t| t <= Instant::now()));
    }

    #[test]
    fn how_a_helper_ended_names_the_signal() {
        assert_eq!(
            describe(ExitStatus::from_raw(6)),
            "its helper process was killed by signal 6 (SIGABRT)"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(1 << 8)),
            "its helper process exited with status 1"
        );
    }
}
