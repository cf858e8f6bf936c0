use std::path::PathBuf;

use p11agent_proto::{ErrorCode, FrameError};

/// Why a call to the agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens on the socket: there is none, or the one there is
    /// stale (left by an agent that stopped without removing it, e.g.
    /// killed).
    #[error(
        "the agent is not running ({})",
        if *stale {
            format!("{} is a stale socket, left by an agent that stopped without removing it", path.display())
        } else {
            format!("no socket at {}", path.display())
        }
    )]
    NotRunning {
        /// The socket path tried.
        path: PathBuf,
        /// Whether a socket file is there, with nobody listening.
        stale: bool,
    },
    /// The socket exists but could not be connected to.
    #[error("cannot connect to the agent at {path}: {source}")]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The agent speaks another protocol version.
    #[error("the agent speaks protocol version {agent}; this client speaks {ours}", ours = p11agent_proto::PROTOCOL_VERSION)]
    Version {
        /// The agent's version.
        agent: u32,
    },
    /// The agent answered with an error.
    #[error("the agent refused the request ({code}): {message}")]
    Agent {
        /// The error code.
        code: ErrorCode,
        /// The agent's explanation.
        message: String,
    },
    /// The agent's answer made no sense.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Reading or writing a frame failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl ClientError {
    /// Classifies a failed connect: a missing socket or a refused
    /// connection means no agent is listening.
    pub(crate) fn connect(path: PathBuf, source: std::io::Error) -> Self {
        use std::io::ErrorKind::{ConnectionRefused, NotFound};
        match source.kind() {
            NotFound => ClientError::NotRunning { path, stale: false },
            ConnectionRefused => ClientError::NotRunning { path, stale: true },
            _ => ClientError::Connect { path, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library's error says what happened, not which command-line
    /// flag to reach for: programs other than `p11agent` use it.
    #[test]
    fn not_running_says_what_happened() {
        let error = ClientError::NotRunning {
            path: PathBuf::from("/tmp/p11agent-1000/agent.sock"),
            stale: false,
        };
        assert_eq!(
            error.to_string(),
            "the agent is not running (no socket at /tmp/p11agent-1000/agent.sock)"
        );
        let error = ClientError::NotRunning {
            path: PathBuf::from("/tmp/p11agent-1000/agent.sock"),
            stale: true,
        };
        assert_eq!(
            error.to_string(),
            "the agent is not running (/tmp/p11agent-1000/agent.sock is a stale socket, \
             left by an agent that stopped without removing it)"
        );
    }
}
