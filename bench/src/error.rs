//! Why a benchmark run failed.

use std::path::PathBuf;

/// Everything that can stop the benchmark. A measurement that merely
/// came out slow is not an error; one that could not be made is.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A file or process operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or program.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A PKCS#11 call failed.
    #[error("{call}: {source}")]
    Pkcs11 {
        /// The call, e.g. `C_Login`.
        call: &'static str,
        /// The failure.
        source: cryptoki::error::Error,
    },
    /// Provisioning the SoftHSM fixtures, or the p11-kit server, failed.
    #[error(transparent)]
    Fixture(#[from] p11agent_softhsm::Error),
    /// The agent refused or failed a request.
    #[error(transparent)]
    Agent(#[from] p11agent_client::ClientError),
    /// rustls refused a configuration or a key.
    #[error("TLS: {0}")]
    Tls(#[from] p11agent_client::tls::rustls::Error),
    /// The rustls client-certificate verifier could not be built.
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] p11agent_client::tls::rustls::server::VerifierBuilderError),
    /// A job or result could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A message of the agent's protocol could not be encoded.
    #[error("encoding a frame: {0}")]
    Frame(#[from] p11agent_client::proto::frame::FrameError),
    /// A process's CPU-time clock could not be read (it exited).
    #[error("reading the CPU time of process {pid}: {source}")]
    Clock {
        /// The process.
        pid: u32,
        /// The failure.
        source: nix::errno::Errno,
    },
    /// A worker process failed; its stderr says why.
    #[error("worker for {job} failed ({status}): {stderr}")]
    Worker {
        /// The job it ran.
        job: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The setup did not turn out as the benchmark needs (a key not
    /// found, an agent that does not list an identity, ...).
    #[error("{0}")]
    Setup(String),
}

impl BenchError {
    /// An [`Io`](BenchError::Io) error for `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// A closure turning a cryptoki error from `call` into a `BenchError`.
    pub(crate) fn pkcs11(call: &'static str) -> impl FnOnce(cryptoki::error::Error) -> BenchError {
        move |source| BenchError::Pkcs11 { call, source }
    }
}
