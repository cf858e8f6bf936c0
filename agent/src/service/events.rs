//! The event hub: where the agent announces what happens (tokens and
//! identities coming and going, logins, modules failing) to the clients
//! that watch it.
//!
//! A broadcast channel with a bounded backlog: emitting never waits for
//! a watcher, and a watcher that falls more than [`Events::CAPACITY`]
//! events behind loses the oldest and is told how many with a
//! [`EventKind::Lagged`] event.

use p11agent_proto::{Event, EventKind};
use tokio::sync::broadcast;

/// The sending side of the event stream, shared by the whole agent.
#[derive(Debug)]
pub(super) struct Events {
    sender: broadcast::Sender<Event>,
}

impl Events {
    /// How many events a watcher may fall behind before it misses some.
    pub(super) const CAPACITY: usize = 1024;

    /// A hub nobody watches yet.
    pub(super) fn new() -> Self {
        let (sender, _) = broadcast::channel(Self::CAPACITY);
        Events { sender }
    }

    /// Announces `event` to every current watcher.
    ///
    /// Never blocks and never fails: with no watcher the event is simply
    /// dropped, and a slow watcher loses its oldest events rather than
    /// holding up the agent.
    pub(super) fn emit(&self, event: Event) {
        tracing::debug!(event = event.event.as_str(), "event");
        // An error only says that nobody is watching.
        let _ = self.sender.send(event);
    }

    /// A new watcher, which sees every event emitted from now on.
    pub(super) fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

/// One watcher's view of the event stream.
#[derive(Debug)]
pub(crate) struct Subscription {
    receiver: broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next event, or `None` once the hub is gone.
    ///
    /// When this watcher fell behind, the events it missed are replaced
    /// by one [`EventKind::Lagged`] event whose detail is their number.
    /// Cancel-safe: dropping the future loses no event.
    pub(crate) async fn recv(&mut self) -> Option<Event> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(Event::now(EventKind::Lagged).detail(missed.to_string()))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Event {
        Event::now(EventKind::Login).detail(n.to_string())
    }

    #[test]
    fn emitting_with_nobody_watching_is_fine() {
        let events = Events::new();
        for n in 0..Events::CAPACITY * 3 {
            events.emit(numbered(n));
        }
    }

    #[tokio::test]
    async fn each_watcher_sees_every_later_event_in_order() {
        let events = Events::new();
        events.emit(numbered(0));
        let mut first = events.subscribe();
        let mut second = events.subscribe();
        for n in 1..=3 {
            events.emit(numbered(n));
        }
        for watcher in [&mut first, &mut second] {
            for n in 1..=3 {
                let event = watcher.recv().await.expect("event");
                assert_eq!(event.detail, Some(n.to_string()));
            }
        }
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_how_much_it_missed() {
        let events = Events::new();
        let mut slow = events.subscribe();
        let total = Events::CAPACITY + 10;
        for n in 0..total {
            events.emit(numbered(n));
        }
        let lagged = slow.recv().await.expect("event");
        assert_eq!(lagged.event, EventKind::Lagged);
        assert_eq!(lagged.detail.as_deref(), Some("10"));
        for n in 10..total {
            let event = slow.recv().await.expect("event");
            assert_eq!(event.detail, Some(n.to_string()));
        }
    }

    #[tokio::test]
    async fn the_stream_ends_with_the_hub() {
        let events = Events::new();
        let mut watcher = events.subscribe();
        events.emit(numbered(0));
        drop(events);
        assert!(watcher.recv().await.is_some(), "the backlog is delivered");
        assert!(watcher.recv().await.is_none());
    }
}
