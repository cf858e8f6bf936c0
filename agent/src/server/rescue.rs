//! Answers for clients whose request is stuck in a module that stopped
//! answering.
//!
//! A token operation (a signature, a login) runs on the thread of the
//! connection that asked for it (`block_in_place`), not on a thread of
//! the blocking pool: handing the call to another thread and the result
//! back cost two thread wake-ups per signature, measured at 70–100 µs
//! on the project's machine, about a whole P-256 signature on SoftHSM
//! (docs/BENCHMARKS.md). A connection blocked in a call cannot answer
//! anything else, though, and a PKCS#11 call cannot be cancelled. So each
//! call is registered here with a second handle on the connection's
//! socket; when the module watcher declares the module unavailable, it
//! answers the waiting clients through those handles (`module_unavailable`),
//! and each such connection is closed once its call returns, its late
//! result discarded.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use p11agent_proto::frame::{encode, MAX_RESPONSE_FRAME};
use p11agent_proto::{Response, Token};

/// A connection's way to be answered from outside its task.
#[derive(Debug, Default)]
pub struct Reply {
    /// A duplicate of the connection's socket, made before its first
    /// token operation (most connections never make one, and a second
    /// descriptor for each would double the agent's share). Inside:
    /// `None` when the process had no descriptor left to make one (the
    /// client then waits for the call like any caller of a hung library).
    socket: OnceLock<Option<StdUnixStream>>,
    /// Set once an answer went out this way: the connection must not
    /// send another, and closes.
    answered: AtomicBool,
}

impl Reply {
    /// Makes the handle on `stream`'s socket, unless made already: call
    /// it before a request that may run a token operation.
    pub fn arm(&self, stream: &tokio::net::UnixStream) {
        self.socket
            .get_or_init(|| match stream.as_fd().try_clone_to_owned() {
                Ok(fd) => Some(StdUnixStream::from(fd)),
                Err(e) => {
                    tracing::warn!(error = %e, "no second handle on a connection; a hung module will hold its client");
                    None
                }
            });
    }

    /// Whether the rescue answered the request in progress.
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }

    /// Sends `response` now, if nothing was sent yet.
    fn send(&self, response: &Response) {
        if self.answered.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(Some(socket)) = self.socket.get() else {
            return;
        };
        // The socket is non-blocking (it is shared with the connection's
        // tokio stream): an error frame fits in any socket buffer whose
        // client waits for an answer. A client that does not read loses
        // the answer and, after its call, the connection.
        let sent = encode(response, MAX_RESPONSE_FRAME)
            .map_err(|e| e.to_string())
            .and_then(|frame| {
                let mut socket = socket;
                socket.write_all(&frame).map_err(|e| e.to_string())
            });
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not answer a client stuck in a module");
        }
    }
}

/// The token operations in progress, with the connections waiting.
#[derive(Debug, Default)]
pub struct Rescue {
    calls: Mutex<Vec<Waiting>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct Waiting {
    id: u64,
    token: Token,
    reply: Arc<Reply>,
}

impl Rescue {
    /// Registers a call on `token` for the connection behind `reply`,
    /// until the returned guard is dropped.
    pub fn enter(&self, token: &Token, reply: &Arc<Reply>) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Waiting {
            id,
            token: token.clone(),
            reply: Arc::clone(reply),
        });
        Registered { rescue: self, id }
    }

    /// Answers every client waiting for a call into `module` with
    /// `answer(token)`. Called when the module is declared unavailable.
    pub fn answer_all(&self, module: &str, answer: impl Fn(&Token) -> Response) {
        // Under the lock: a call that returns meanwhile waits to
        // unregister, so its connection cannot send its own answer while
        // this one is being written.
        let calls = self.lock();
        for call in calls.iter().filter(|c| c.token.module == module) {
            tracing::info!(token = %call.token.label, "answering a client whose call is stuck in an unavailable module");
            call.reply.send(&answer(&call.token));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered call; unregisters when dropped.
pub struct Registered<'a> {
    rescue: &'a Rescue,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.rescue.lock().retain(|c| c.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use p11agent_proto::ErrorCode;

    use super::*;

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

    #[tokio::test]
    async fn a_waiting_client_is_answered_once_and_only_for_its_module() {
        let (ours, theirs) = tokio::net::UnixStream::pair().expect("pair");
        let mut theirs = theirs.into_std().expect("std");
        theirs.set_nonblocking(false).expect("blocking");
        let reply = Arc::new(Reply::default());
        reply.arm(&ours);
        let rescue = Rescue::default();
        let answer = |t: &Token| Response::error(ErrorCode::ModuleUnavailable, t.label.clone());

        let registered = rescue.enter(&token("/hung.so"), &reply);
        rescue.answer_all("/other.so", answer);
        assert!(!reply.answered());
        rescue.answer_all("/hung.so", answer);
        assert!(reply.answered());
        // A second declaration does not send a second answer.
        rescue.answer_all("/hung.so", answer);
        drop(registered);
        drop(ours);
        drop(reply);

        let mut got = Vec::new();
        theirs.read_to_end(&mut got).expect("read");
        let response: Response =
            p11agent_proto::frame::read(&mut got.as_slice(), MAX_RESPONSE_FRAME).expect("a frame");
        assert_eq!(
            response,
            Response::error(ErrorCode::ModuleUnavailable, "card")
        );
        let len = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
        assert_eq!(got.len(), 4 + len, "one frame, then the end");
    }

    #[test]
    fn a_finished_call_is_not_answered() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = rt.enter();
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        ours.set_nonblocking(true).expect("non-blocking");
        let ours = tokio::net::UnixStream::from_std(ours).expect("tokio");
        let reply = Arc::new(Reply::default());
        reply.arm(&ours);
        let rescue = Rescue::default();
        drop(rescue.enter(&token("/a.so"), &reply));
        rescue.answer_all("/a.so", |_| Response::Watching);
        assert!(!reply.answered());
    }
}
