//! Helper programs the agent runs for a person (pinentry, the certificate
//! chooser): starting them, waiting for them with a deadline, and killing
//! them when the deadline passes.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// `ETXTBSY`: "text file busy".
const ETXTBSY: i32 = nix::errno::Errno::ETXTBSY as i32;
/// How often [`spawn`] tries again while the program is busy.
const BUSY_ATTEMPTS: u32 = 10;
/// How long [`spawn`] waits between those attempts.
const BUSY_PAUSE: Duration = Duration::from_millis(20);
/// How often [`wait_until`] looks whether the child has exited.
const POLL: Duration = Duration::from_millis(10);

/// Starts `command`.
///
/// Retries briefly on `ETXTBSY`: another thread of this process may be
/// between fork and exec while holding a descriptor for the program file
/// open for writing (happens with freshly written scripts).
pub(crate) fn spawn(command: &mut Command) -> io::Result<Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempts < BUSY_ATTEMPTS => {
                attempts += 1;
                std::thread::sleep(BUSY_PAUSE);
            }
            result => return result,
        }
    }
}

/// Waits for `child` to exit until `deadline`; `Ok(None)` when it is still
/// running then.
///
/// Polls, because std offers no wait with a timeout and a waiting thread
/// could not be stopped at the deadline.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Kills `child` and reaps it, so that no zombie is left behind. Errors
/// are ignored: the child may have exited meanwhile, and there is nothing
/// more to do about one that cannot be killed.
pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_sees_exit() {
        let mut child = spawn(Command::new("true").arg("x")).expect("spawn true");
        let status = wait_until(&mut child, Instant::now() + Duration::from_secs(10))
            .expect("wait")
            .expect("exited");
        assert!(status.success());
    }

    #[test]
    fn wait_until_gives_up_at_deadline_and_kill_reaps() {
        let mut child = spawn(Command::new("sleep").arg("30")).expect("spawn sleep");
        let started = Instant::now();
        let waited = wait_until(&mut child, started + Duration::from_millis(100)).expect("wait");
        assert!(waited.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));
        kill_and_reap(&mut child);
        assert!(child.try_wait().expect("try_wait").is_some());
    }

    #[test]
    fn spawn_reports_missing_program() {
        let err = spawn(&mut Command::new("/nonexistent/p11agent-helper")).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
