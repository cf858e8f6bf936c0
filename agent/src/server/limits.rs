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
use std::sync::Arc;
use std::time::Duration;

use p11agent_proto::frame::{FRAME_TIMEOUT, IDLE_TIMEOUT};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};

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
    by_age: BTreeMap<u64, oneshot::Sender<()>>,
}

impl IdleConnections {
    /// Registers a connection as waiting for its next request, until
    /// [`IdleTicket::leave`] or the ticket's drop.
    pub(super) fn enter(self: &Arc<Self>) -> IdleTicket {
        let (tell, reclaimed) = oneshot::channel();
        let place = {
            let mut waiting = self.lock();
            let place = waiting.next;
            waiting.next += 1;
            waiting.by_age.insert(place, tell);
            place
        };
        self.entered.notify_one();
        IdleTicket {
            set: self.clone(),
            place,
            reclaimed,
        }
    }

    /// Tells the connection that has waited longest to close; false when
    /// no connection waits.
    pub(super) fn reclaim_longest(&self) -> bool {
        let mut waiting = self.lock();
        while let Some((_, tell)) = waiting.by_age.pop_first() {
            if tell.send(()).is_ok() {
                return true;
            }
        }
        false
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
    reclaimed: oneshot::Receiver<()>,
}

impl IdleTicket {
    /// Completes when the listener reclaims the connection.
    pub(super) async fn reclaimed(&mut self) {
        // An error would mean the sender went without a word, which only
        // `reclaim_longest` does (it sends) or this ticket's own removal;
        // either way the place is gone, so the answer is the same.
        let _ = (&mut self.reclaimed).await;
    }

    /// Stops waiting, because a request has begun to arrive. False when
    /// the listener reclaimed the connection in the meantime: it then
    /// counts on the connection's slot, so the connection must close all
    /// the same.
    pub(super) fn leave(self) -> bool {
        self.set.lock().by_age.remove(&self.place).is_some()
    }
}

impl Drop for IdleTicket {
    fn drop(&mut self) {
        self.set.lock().by_age.remove(&self.place);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_waiting_is_reclaimed_first() {
        let set = Arc::new(IdleConnections::default());
        assert!(!set.reclaim_longest(), "nobody waits");

        let mut first = set.enter();
        let second = set.enter();
        let mut third = set.enter();
        assert!(second.leave(), "a request arrived: no longer reclaimable");

        assert!(set.reclaim_longest());
        first.reclaimed().await;
        assert!(!first.leave(), "reclaimed before it could leave");

        assert!(set.reclaim_longest());
        third.reclaimed().await;
        drop(third);
        assert!(!set.reclaim_longest(), "nobody waits any more");
    }

    #[tokio::test]
    async fn a_dropped_ticket_is_not_reclaimed() {
        let set = Arc::new(IdleConnections::default());
        drop(set.enter());
        assert!(!set.reclaim_longest());
        let mut later = set.enter();
        assert!(set.reclaim_longest());
        later.reclaimed().await;
    }

    #[tokio::test]
    async fn an_entry_wakes_a_waiting_listener_even_when_it_came_first() {
        let set = Arc::new(IdleConnections::default());
        let _ticket = set.enter();
        // Remembered: completes at once although nobody waited yet.
        tokio::time::timeout(Duration::from_secs(5), set.entered())
            .await
            .expect("entry remembered");
    }
}
