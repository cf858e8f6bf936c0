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
    /// `p11agent setup` could not configure its target.
    #[error("setup: {0}")]
    Setup(#[from] SetupError),
    /// A module helper could not talk to its agent.
    #[error(transparent)]
    ModuleHelper(#[from] crate::token::isolated::helper::HelperError),
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
        ClientError::NotRunning { stale: false, .. } => {
            "; start it with `p11agent daemon` or point P11AGENT_SOCK or --socket at a running \
             agent's socket"
        }
        ClientError::NotRunning { stale: true, .. } => {
            "; start it again with `p11agent daemon`, which replaces the stale socket, and see \
             the old agent's log for why it stopped"
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

/// Why `p11agent setup` could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// There is no home directory to write under.
    #[error("HOME is not set, and setup writes under your home directory")]
    NoHome,
    /// The running binary could not be located.
    #[error(
        "cannot tell where the running p11agent is ({0}) to find the PKCS#11 module beside it; \
         give its path with --module"
    )]
    CurrentExe(io::Error),
    /// The agent's PKCS#11 module is not where it was looked for.
    #[error(
        "no PKCS#11 module at {}{}: build it with `cargo build --release -p p11agent-pkcs11` \
         (cargo puts it in target/release/, beside p11agent), or give its path with --module",
        path.display(),
        if *default { ", beside this p11agent binary" } else { "" }
    )]
    ModuleMissing {
        /// Where it was looked for.
        path: PathBuf,
        /// Whether that is the default place rather than --module.
        default: bool,
    },
    /// A path that must go into a text file is not UTF-8.
    #[error("{} is not valid UTF-8, so no configuration file can name it", .0.display())]
    NotUtf8(PathBuf),
    /// An NSS tool is not installed.
    #[error(
        "{tool} is not installed: it comes with NSS's tools (Debian: `apt-get install \
         libnss3-tools`)"
    )]
    ToolMissing {
        /// `modutil` or `certutil`.
        tool: String,
    },
    /// An NSS tool failed.
    #[error("`{command}` failed ({status}): {detail}")]
    ToolFailed {
        /// The command line, as a shell would read it.
        command: String,
        /// How it ended.
        status: String,
        /// What it said.
        detail: String,
    },
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Firefox has no profile to configure yet.
    #[error(
        "no Firefox profile found (no profiles.ini listing one in {}): start Firefox once so \
         that it makes its profile, quit it, and run `p11agent setup firefox` again",
        searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ")
    )]
    NoFirefoxProfile {
        /// The directories where Firefox keeps profiles.ini.
        searched: Vec<PathBuf>,
    },
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
            stale: false,
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
