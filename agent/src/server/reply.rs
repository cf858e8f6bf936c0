//! Answers for clients whose request is stuck in a module that stopped
//! answering: the server's [`Waiter`].
//!
//! A token operation (a signature, a login) runs on the thread of the
//! connection that asked for it (`block_in_place`), not on a thread of
//! the blocking pool: handing the call to another thread and the result
//! back cost two thread wake-ups per signature, measured at 70–100 µs
//! on the project's machine, about a whole P-256 signature on SoftHSM
//! (docs/BENCHMARKS.md). A connection blocked in a call cannot answer
//! anything else, though, and a PKCS#11 call cannot be cancelled. So a
//! connection gives the service a [`Reply`] with a second handle on its
//! socket for each token call; when the module is declared unavailable,
//! the service gives up the call (`service/in_flight.rs`) and the client
//! is answered through that handle (`module_unavailable`); the connection
//! closes once the call returns, its late result discarded.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use p11agent_proto::frame::{encode, MAX_RESPONSE_FRAME};
use p11agent_proto::Response;

use crate::service::{ServiceError, Waiter};

/// A connection's way to be answered from outside its task.
#[derive(Debug, Default)]
pub(super) struct Reply {
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
    pub(super) fn arm(&self, stream: &tokio::net::UnixStream) {
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
    pub(super) fn answered(&self) -> bool {
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

impl Waiter for Reply {
    fn give_up(&self, error: &ServiceError) {
        self.send(&super::errors::response(error));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use p11agent_proto::{ErrorCode, Token};

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

    /// Which calls are given up is the service's business (its in-flight
    /// tests); here: a client given up is answered with the error, once.
    #[tokio::test]
    async fn a_waiting_client_is_answered_once() {
        let (ours, theirs) = tokio::net::UnixStream::pair().expect("pair");
        let mut theirs = theirs.into_std().expect("std");
        theirs.set_nonblocking(false).expect("blocking");
        let reply = Reply::default();
        reply.arm(&ours);
        let error = ServiceError::ModuleUnavailable {
            token: Box::new(token("/hung.so")),
            problem: "hung".into(),
        };
        assert!(!reply.answered());
        reply.give_up(&error);
        assert!(reply.answered());
        // A second declaration does not send a second answer.
        reply.give_up(&error);
        drop(ours);
        drop(reply);

        let mut got = Vec::new();
        theirs.read_to_end(&mut got).expect("read");
        let response: Response =
            p11agent_proto::frame::read(&mut got.as_slice(), MAX_RESPONSE_FRAME).expect("a frame");
        assert!(
            matches!(&response, Response::Error { code: ErrorCode::ModuleUnavailable, message } if message.contains("'card'")),
            "{response:?}"
        );
        let len = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
        assert_eq!(got.len(), 4 + len, "one frame, then the end");
    }
}
