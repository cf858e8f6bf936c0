//! Reaching the running agent.

use std::path::PathBuf;

use p11agent_client::{Client, ClientError};

/// A connection to the agent at `socket`, or at the default socket.
pub(super) fn connect(socket: Option<PathBuf>) -> Result<Client, ClientError> {
    match socket {
        Some(path) => Client::connect(path),
        None => Client::connect_default(),
    }
}
