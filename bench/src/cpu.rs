//! CPU time spent over a measured window: the worker's own, and that of
//! the process serving it (the daemon, `p11-kit server`, the floor's echo
//! server) with its child processes.
//!
//! Both come from the kernel's CPU-time clocks (`clock_gettime`; for
//! another process, the clock `clock_getcpuclockid(pid)` names): user
//! plus system time of every thread of the process, threads that have
//! already exited included, in nanoseconds. That is `utime + stime` of
//! `/proc/PID/stat` without its 10 ms ticks, and, unlike summing
//! `/proc/PID/task/*/schedstat`, it does not lose a thread that exits
//! inside the window (tokio's blocking threads come and go).
//!
//! Child processes count because `p11-kit server` forks a
//! `p11-kit-remote` for each connection and that child does the work; a
//! child is found by its parent pid in `/proc/*/stat`.

use std::collections::BTreeMap;

use nix::time::{clock_getcpuclockid, clock_gettime, ClockId};
use nix::unistd::Pid;

use crate::error::BenchError;

/// CPU time of this process so far, ns.
pub(crate) fn own_ns() -> Result<u64, BenchError> {
    read_clock(ClockId::CLOCK_PROCESS_CPUTIME_ID, std::process::id())
}

/// CPU time so far of process `pid` and of each of its descendants, ns,
/// by pid. Fails when `pid` itself cannot be read (it exited); a
/// descendant that exits while it is being read is left out.
pub(crate) fn tree_ns(pid: u32) -> Result<BTreeMap<u32, u64>, BenchError> {
    let mut out = BTreeMap::new();
    out.insert(pid, process_ns(pid)?);
    let parents = parents()?;
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for (&child, _) in parents.iter().filter(|(_, p)| **p == parent) {
            // An exited child has its pid still listed until it is read.
            if let Ok(ns) = process_ns(child) {
                out.insert(child, ns);
                next.push(child);
            }
        }
    }
    Ok(out)
}

/// The CPU time a process tree spent between two [`tree_ns`] samples,
/// ns. A process present only at the end started inside the window, so
/// all its time counts. One present only at the start exited inside the
/// window: what it spent there is lost (its last reading is gone), which
/// is why the window starts after the workers' connections (and
/// p11-kit's per-connection children) are made, and ends before they
/// close.
pub(crate) fn window_ns(start: &BTreeMap<u32, u64>, end: &BTreeMap<u32, u64>) -> u64 {
    end.iter()
        .map(|(pid, ns)| ns.saturating_sub(start.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// CPU time so far of process `pid`, ns.
fn process_ns(pid: u32) -> Result<u64, BenchError> {
    let raw = i32::try_from(pid)
        .map_err(|_| BenchError::Setup(format!("process id {pid} out of range")))?;
    let clock = clock_getcpuclockid(Pid::from_raw(raw))
        .map_err(|source| BenchError::Clock { pid, source })?;
    read_clock(clock, pid)
}

fn read_clock(clock: ClockId, pid: u32) -> Result<u64, BenchError> {
    let now = clock_gettime(clock).map_err(|source| BenchError::Clock { pid, source })?;
    // A CPU clock is never negative.
    let secs = u64::try_from(now.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec()).unwrap_or(0);
    Ok(secs * 1_000_000_000 + nanos)
}

/// Every process's parent, by pid, from `/proc/*/stat`. Processes that
/// exit while `/proc` is read are left out.
fn parents() -> Result<BTreeMap<u32, u32>, BenchError> {
    let entries = std::fs::read_dir("/proc").map_err(|e| BenchError::io("listing", "/proc", e))?;
    let mut parents = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parent_in_stat)
        {
            parents.insert(pid, ppid);
        }
    }
    Ok(parents)
}

/// The parent pid in the text of `/proc/PID/stat` (its fourth field).
/// The second, the command in parentheses, may hold spaces and
/// parentheses itself: the fields after it start after the last `)`.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_follows_the_last_parenthesis() {
        let stat = "4242 (p11-kit-remote) S 4240 4240 17 0 -1 4194560 80 0 0 0 5 3 0 0 20 0 1";
        assert_eq!(parent_in_stat(stat), Some(4240));
        let odd = "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1";
        assert_eq!(parent_in_stat(odd), Some(1));
        assert_eq!(parent_in_stat("12 (cut"), None);
        assert_eq!(parent_in_stat("12 (x) S"), None);
        assert_eq!(parent_in_stat("12 (x) S -"), None);
    }

    #[test]
    fn a_window_counts_what_each_process_spent_in_it() {
        let start = BTreeMap::from([(10, 1_000), (11, 500), (12, 300)]);
        // 10 spent 250, 11 exited (lost), 12 spent 0, 13 started: 40.
        let end = BTreeMap::from([(10, 1_250), (12, 300), (13, 40)]);
        assert_eq!(window_ns(&start, &end), 290);
        assert_eq!(window_ns(&end, &end), 0);
    }

    #[test]
    fn this_process_reads_the_same_through_its_pid() {
        // Some CPU to measure.
        let spin: u64 = (0..200_000u64).map(|i| i.wrapping_mul(i) % 7).sum();
        assert!(spin > 0);
        let own = own_ns().expect("own clock");
        let tree = tree_ns(std::process::id()).expect("own tree");
        let through_pid = tree[&std::process::id()];
        assert!(own > 0 && through_pid >= own, "{own} {through_pid}");
        assert!(process_ns(u32::MAX).is_err());
    }
}
