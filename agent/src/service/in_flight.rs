//! The token calls in progress, with the callers waiting for them.
//!
//! A PKCS#11 call cannot be cancelled, and a caller blocked in one cannot
//! be answered by its own thread. So each call is registered here with
//! the caller's [`Waiter`]; when the module is declared unavailable, the
//! service tells every waiter of that module why, at once, and the
//! transport answers its client through its own means (the server writes
//! on a second handle of the connection's socket, see
//! `server/reply.rs`). The late result of the call is then discarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use p11agent_proto::Token;
use parking_lot::Mutex;

use super::error::ServiceError;

/// A caller that can be answered while its call is stuck in a module.
pub(crate) trait Waiter: Send + Sync {
    /// Answers the caller with `error` now, once; the call's own result,
    /// when it comes, is not delivered.
    fn give_up(&self, error: &ServiceError);
}

/// The calls in progress.
#[derive(Default)]
pub(crate) struct InFlight {
    calls: Mutex<Vec<Waiting>>,
    next: AtomicU64,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("calls", &self.calls.lock().len())
            .finish()
    }
}

struct Waiting {
    id: u64,
    token: Token,
    waiter: Arc<dyn Waiter>,
}

impl InFlight {
    /// Registers a call on `token` for `waiter`, until the returned guard
    /// is dropped.
    pub(crate) fn enter(&self, token: &Token, waiter: Arc<dyn Waiter>) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().push(Waiting {
            id,
            token: token.clone(),
            waiter,
        });
        Registered {
            in_flight: self,
            id,
        }
    }

    /// Gives up every call into `module`, with the error `why(token)`.
    pub(crate) fn give_up_all(&self, module: &str, why: impl Fn(&Token) -> ServiceError) {
        // Under the lock: a call that returns meanwhile waits to
        // unregister, so its caller cannot be answered twice at once.
        let calls = self.calls.lock();
        for call in calls.iter().filter(|c| c.token.module == module) {
            tracing::info!(token = %call.token.label, "answering a client whose call is stuck in an unavailable module");
            call.waiter.give_up(&why(&call.token));
        }
    }
}

/// A registered call; unregisters when dropped.
pub(crate) struct Registered<'a> {
    in_flight: &'a InFlight,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.in_flight.calls.lock().retain(|c| c.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Waiter for Recorder {
        fn give_up(&self, error: &ServiceError) {
            self.0.lock().push(error.to_string());
        }
    }

    fn token(module: &str) -> Token {
        Token {
            label: "card".into(),
            serial: "1".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 0,
            module: module.into(),
        }
    }

    fn unavailable(token: &Token) -> ServiceError {
        ServiceError::ModuleUnavailable {
            token: Box::new(token.clone()),
            problem: "hung".into(),
        }
    }

    #[test]
    fn only_the_calls_of_the_module_are_given_up_and_only_while_registered() {
        let in_flight = InFlight::default();
        let waiter = Arc::new(Recorder::default());
        let registered = in_flight.enter(&token("/hung.so"), waiter.clone());
        in_flight.give_up_all("/other.so", unavailable);
        assert!(waiter.0.lock().is_empty());
        in_flight.give_up_all("/hung.so", unavailable);
        assert_eq!(waiter.0.lock().len(), 1);
        drop(registered);
        in_flight.give_up_all("/hung.so", unavailable);
        assert_eq!(waiter.0.lock().len(), 1, "a finished call is not given up");
    }
}
