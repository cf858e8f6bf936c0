//! The transport's timeouts in force for one daemon (resolved with the
//! rest of its settings in `config.rs`), and the connections
//! waiting for their next request, which the listener may close to make
//! room for a newcomer.
//!
//! The limits themselves are protocol constants
//! ([`FRAME_TIMEOUT`], [`IDLE_TIMEOUT`], the frame sizes) and
//! [`MAX_CONNECTIONS`](super::listener::MAX_CONNECTIONS); the protocol README lists
//! them all under "Limits".

use std::collections::BTreeMap;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use p11agent_proto::frame::{FRAME_TIMEOUT, IDLE_TIMEOUT};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// How long a connection may take over a frame, and wait between frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// From a frame's first byte to its last, in either direction.
    pub(crate) frame: Duration,
    /// From an answer to the first byte of the next request.
    pub(crate) idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            frame: FRAME_TIMEOUT,
            idle: IDLE_TIMEOUT,
        }
    }
}

/// Connections waiting for their next request, the longest-waiting
/// first.
///
/// When every connection slot is taken, the listener closes the
/// connection that has waited longest for a request instead of leaving
/// the newcomer in the accept queue until some connection's idle timeout:
/// a client that leaked connections, or opened hundreds and sent
/// nothing, then locks nobody out. A connection in the middle of a frame
/// or of a request, or streaming events, is never taken; those end by
/// themselves (the frame timeout) or are doing what they were asked.
///
/// A connection waits in a blocking read on its own thread; reclaiming it
/// shuts its socket down, which ends that read.
#[derive(Debug, Default)]
pub(super) struct IdleConnections {
    waiting: Mutex<Waiting>,
    /// Wakes the listener when it waits for room and a connection starts
    /// waiting for a request.
    entered: Notify,
}

#[derive(Debug, Default)]
struct Waiting {
    next: u64,
    /// By the order in which connections started to wait: the first is
    /// the one that has waited longest.
    by_age: BTreeMap<u64, Arc<UnixStream>>,
}

impl IdleConnections {
    /// Registers `stream`'s connection as waiting for its next request,
    /// until [`IdleTicket::leave`] or the ticket's drop.
    pub(super) fn enter(self: &Arc<Self>, stream: &Arc<UnixStream>) -> IdleTicket {
        let place = {
            let mut waiting = self.lock();
            let place = waiting.next;
            waiting.next += 1;
            waiting.by_age.insert(place, Arc::clone(stream));
            place
        };
        self.entered.notify_one();
        IdleTicket {
            set: self.clone(),
            place,
        }
    }

    /// Closes the connection that has waited longest (its read ends, and
    /// its thread sees the ticket gone); false when no connection waits.
    pub(super) fn reclaim_longest(&self) -> bool {
        let Some((_, stream)) = self.lock().by_age.pop_first() else {
            return false;
        };
        // Fails only when the client already left, which frees the slot
        // just as well.
        let _ = stream.shutdown(Shutdown::Both);
        true
    }

    /// Completes when a connection has started to wait since the last
    /// call completed (possibly before this call: one such start is
    /// remembered, so none is missed between a look and the wait).
    pub(super) async fn entered(&self) {
        self.entered.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock()
    }
}

/// A connection's place among those waiting for a request.
#[derive(Debug)]
pub(super) struct IdleTicket {
    set: Arc<IdleConnections>,
    place: u64,
}

impl IdleTicket {
    /// Stops waiting, because a request has begun to arrive (or the read
    /// ended). False when the listener reclaimed the connection in the
    /// meantime: it then counts on the connection's slot, so the
    /// connection must close all the same.
    pub(super) fn leave(self) -> bool {
        self.set.lock().by_age.remove(&self.place).is_some()
    }
}

impl Drop for IdleTicket {
    fn drop(&mut self) {
        self.set.lock().by_age.remove(&self.place);
    }
}

/// Every connection served by a thread, so that shutdown can end their
/// reads: a thread blocked in `read` hears of nothing else.
#[derive(Debug, Default)]
pub(super) struct LiveConnections {
    live: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    stopping: bool,
    next: u64,
    streams: BTreeMap<u64, Arc<UnixStream>>,
}

impl LiveConnections {
    /// Registers `stream` until the returned guard is dropped; `None` once
    /// shutdown has begun (the connection should close at once).
    pub(super) fn register(self: &Arc<Self>, stream: &Arc<UnixStream>) -> Option<LiveGuard> {
        let mut live = self.live.lock();
        if live.stopping {
            return None;
        }
        let place = live.next;
        live.next += 1;
        live.streams.insert(place, Arc::clone(stream));
        Some(LiveGuard {
            set: self.clone(),
            place,
        })
    }

    /// Ends the reading side of every connection: each finishes the
    /// request it is answering, if any, then reads the end of its stream
    /// and closes. Connections registered later are refused.
    pub(super) fn stop(&self) {
        let mut live = self.live.lock();
        live.stopping = true;
        for stream in live.streams.values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
    }
}

/// A registered connection; unregisters when dropped.
#[derive(Debug)]
pub(super) struct LiveGuard {
    set: Arc<LiveConnections>,
    place: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.set.live.lock().streams.remove(&self.place);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn connection() -> (Arc<UnixStream>, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        (Arc::new(ours), theirs)
    }

    /// Whether the client sees its connection closed.
    fn closed(mut theirs: &UnixStream) -> bool {
        theirs
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        matches!(theirs.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn the_longest_waiting_is_reclaimed_first() {
        let set = Arc::new(IdleConnections::default());
        assert!(!set.reclaim_longest(), "nobody waits");

        let (a, a_client) = connection();
        let (b, b_client) = connection();
        let (c, c_client) = connection();
        let first = set.enter(&a);
        let second = set.enter(&b);
        let third = set.enter(&c);
        assert!(second.leave(), "a request arrived: no longer reclaimable");

        assert!(set.reclaim_longest());
        assert!(closed(&a_client));
        assert!(!closed(&c_client));
        assert!(!first.leave(), "reclaimed before it could leave");

        assert!(set.reclaim_longest());
        assert!(closed(&c_client));
        drop(third);
        assert!(!set.reclaim_longest(), "nobody waits any more");
        assert!(!closed(&b_client));
    }

    #[test]
    fn a_dropped_ticket_is_not_reclaimed() {
        let set = Arc::new(IdleConnections::default());
        let (a, a_client) = connection();
        drop(set.enter(&a));
        assert!(!set.reclaim_longest());
        assert!(!closed(&a_client));
    }

    #[test]
    fn a_blocked_read_ends_when_reclaimed() {
        let set = Arc::new(IdleConnections::default());
        let (a, _client) = connection();
        let ticket = set.enter(&a);
        let reader = std::thread::spawn({
            let a = Arc::clone(&a);
            move || (&*a).read(&mut [0u8; 1]).expect("read")
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(set.reclaim_longest());
        assert_eq!(reader.join().expect("join"), 0);
        assert!(!ticket.leave());
    }

    #[test]
    fn stopping_ends_blocked_reads_and_refuses_newcomers() {
        let live = Arc::new(LiveConnections::default());
        let (a, mut client) = connection();
        let guard = live.register(&a).expect("registered");
        let reader = std::thread::spawn({
            let a = Arc::clone(&a);
            move || (&*a).read(&mut [0u8; 1]).expect("read")
        });
        std::thread::sleep(Duration::from_millis(20));
        live.stop();
        assert_eq!(reader.join().expect("join"), 0);
        // The answer to a request in progress still goes out.
        use std::io::Write as _;
        (&*a).write_all(b"x").expect("write after stop");
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).expect("answer");
        drop(guard);
        let (b, _b_client) = connection();
        assert!(live.register(&b).is_none());
    }

    #[tokio::test]
    async fn an_entry_wakes_a_waiting_listener_even_when_it_came_first() {
        let set = Arc::new(IdleConnections::default());
        let (a, _client) = connection();
        let _ticket = set.enter(&a);
        // Remembered: completes at once although nobody waited yet.
        tokio::time::timeout(Duration::from_secs(5), set.entered())
            .await
            .expect("entry remembered");
    }
}
