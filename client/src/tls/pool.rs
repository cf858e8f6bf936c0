//! Agent connections kept open between the requests of TLS handshakes.
//!
//! A handshake asks the agent twice (`select`, then `sign`). A fresh
//! connection for each costs a socket, a `hello` round trip and the
//! agent's peer check, about as much as the two requests themselves
//! (measured in issue 7: docs/BENCHMARKS.md). A resolver and the keys it
//! hands out share one pool, so back-to-back handshakes reuse the same
//! connection; concurrent ones each take their own.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::{Client, ClientError};

/// Idle connections kept at most; more concurrent handshakes than this
/// open connections of their own and close them afterwards.
const MAX_IDLE: usize = 4;

/// Idle connections to the agent at one socket.
#[derive(Debug)]
pub(crate) struct Pool {
    socket: PathBuf,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// An empty pool for the agent at `socket`.
    pub(crate) fn new(socket: impl Into<PathBuf>) -> Pool {
        Pool {
            socket: socket.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The agent's socket.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs `request` on an idle connection, or a new one, and keeps the
    /// connection for the next request unless it failed.
    ///
    /// An idle connection the agent closed meanwhile (it restarted, or
    /// closed it as idle) is no problem: the client reconnects when a
    /// request finds its connection dead before any answer.
    pub(crate) fn run<T>(
        &self,
        request: impl FnOnce(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let idle = self.lock().pop();
        let mut client = match idle {
            Some(client) => client,
            None => Client::connect(&self.socket)?,
        };
        let result = request(&mut client);
        // An error the agent answered leaves the connection usable;
        // anything else may have left it mid-frame.
        if matches!(result, Ok(_) | Err(ClientError::Agent { .. })) {
            let mut idle = self.lock();
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
