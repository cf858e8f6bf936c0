//! Answers for clients whose request is stuck in a module that stopped
//! answering: the server's [`Waiter`].
//!
//! A token operation (a signature, a login) runs on the thread of the
//! connection that asked for it: handing the call to another thread and
//! the result back would cost two thread wake-ups per signature, about a
//! whole P-256 signature on SoftHSM (docs/BENCHMARKS.md). A connection
//! blocked in a call cannot answer anything else, though, and a PKCS#11
//! call cannot be cancelled. So the service is given a [`Reply`] holding
//! the connection's socket for each token call; when the module is
//! declared unavailable, the service gives up the call
//! (`service/in_flight.rs`) and the client is answered through it
//! (`module_unavailable`); the connection closes once the call returns,
//! its late result discarded.

use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::socket::{send, MsgFlags};
use p11agent_proto::frame::{encode, MAX_RESPONSE_FRAME};
use p11agent_proto::Response;

use crate::service::{ServiceError, Waiter};

/// A connection's way to be answered from outside its thread.
#[derive(Debug)]
pub(super) struct Reply {
    /// The connection's socket, shared with its thread.
    socket: Arc<UnixStream>,
    /// Set once an answer went out this way: the connection must not
    /// send another, and closes.
    answered: AtomicBool,
}

impl Reply {
    /// Answers on `socket`.
    pub(super) fn new(socket: Arc<UnixStream>) -> Reply {
        Reply {
            socket,
            answered: AtomicBool::new(false),
        }
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
        // Without waiting (the caller holds the in-flight lock): an
        // error frame fits in any socket buffer whose client waits for an
        // answer. A client that does not read loses the answer and, after
        // its call, the connection.
        let sent = encode(response, MAX_RESPONSE_FRAME)
            .map_err(|e| e.to_string())
            .and_then(|frame| {
                let fd = self.socket.as_raw_fd();
                match send(fd, &frame, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL) {
                    Ok(n) if n == frame.len() => Ok(()),
                    Ok(n) => Err(format!("only {n} of {} bytes sent", frame.len())),
                    Err(e) => Err(e.to_string()),
                }
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
    #[test]
    fn a_waiting_client_is_answered_once() {
        let (ours, mut theirs) = UnixStream::pair().expect("pair");
        let ours = Arc::new(ours);
        let reply = Reply::new(Arc::clone(&ours));
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
