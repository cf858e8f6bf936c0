//! Why a command failed, and what its user can do about it.

use std::io;
use std::path::PathBuf;

use p11agent_client::ClientError;

use crate::select::chooser::PROTOCOL_VERSION;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the agent failed.
    #[error("{0}{hint}", hint = next_step(.0))]
    Client(#[from] ClientError),
    /// The daemon failed.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// A named input or output file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS set-up failed (agent, CA file, configuration).
    #[error(transparent)]
    Tls(#[from] p11agent_client::tls::TlsError),
    /// An HTTPS request failed.
    #[error("{0}")]
    Get(String),
    /// The arguments make no sense together.
    #[error("{0}")]
    Usage(String),
    /// The terminal certificate chooser gave no answer.
    #[error("certificate chooser: {0}")]
    Chooser(#[from] TtyChooserError),
}

impl CliError {
    /// The process exit code: 3 when the agent is not running, so that
    /// scripts can tell it from other failures; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(ClientError::NotRunning { .. }) => 3,
            _ => 1,
        }
    }
}

/// What a user of this command can do about `error`, to follow the
/// library's account of it.
fn next_step(error: &ClientError) -> &'static str {
    match error {
        ClientError::NotRunning { .. } => {
            "; start it with `p11agent daemon` or point P11AGENT_SOCK or --socket at a running \
             agent's socket"
        }
        _ => "",
    }
}

/// Why the terminal chooser gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum TtyChooserError {
    /// Standard input is not a chooser request.
    #[error("the request on standard input is not a chooser request: {0}")]
    Request(serde_json::Error),
    /// The request is in a version this chooser does not speak.
    #[error("the request has version {0}; this chooser speaks version {PROTOCOL_VERSION}")]
    Version(u32),
    /// The terminal could not be opened, read or written.
    #[error("cannot ask on the terminal {}: {source}; no certificate chosen", path.display())]
    Terminal {
        /// The terminal.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The person cancelled.
    #[error("cancelled; no certificate chosen")]
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library says what happened; the command adds what its user
    /// can do, so that its message is the one it always printed.
    #[test]
    fn a_missing_agent_is_reported_with_the_way_to_start_one() {
        let error = CliError::from(ClientError::NotRunning {
            path: PathBuf::from("/run/user/1000/p11agent/agent.sock"),
        });
        assert_eq!(
            error.to_string(),
            "the agent is not running (no socket at /run/user/1000/p11agent/agent.sock); \
             start it with `p11agent daemon` or point P11AGENT_SOCK or --socket at a running \
             agent's socket"
        );
        assert_eq!(error.exit_code(), 3);
        let refused = CliError::from(ClientError::Protocol("garbled".into()));
        assert_eq!(refused.to_string(), "protocol error: garbled");
    }
}
