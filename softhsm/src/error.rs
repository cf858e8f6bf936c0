//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while provisioning SoftHSM tokens or issuing
/// test certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No SoftHSM module was found (or `P11AGENT_SOFTHSM_MODULE` names a
    /// file that does not exist).
    #[error(
        "SoftHSM module not found ({0}); install softhsm2 (apt install softhsm2) \
         or set P11AGENT_SOFTHSM_MODULE to the path of libsofthsm2.so"
    )]
    ModuleNotFound(String),

    /// A file-system operation failed.
    #[error("{context} ({path}): {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A PKCS#11 call failed.
    #[error("PKCS#11 {context}: {source}")]
    Pkcs11 {
        /// What was being done (usually the PKCS#11 function).
        context: String,
        /// The error reported by cryptoki / the module.
        #[source]
        source: cryptoki::error::Error,
    },

    /// rcgen could not build or sign a certificate or key.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),

    /// A certificate or key could not be parsed.
    #[error("X.509 parsing: {0}")]
    X509(String),

    /// No token with this label exists in the environment.
    #[error("no token labelled {0:?} in this SoftHSM environment")]
    TokenNotFound(String),

    /// More than one token has this label; open it by serial instead.
    #[error("several tokens are labelled {0:?}; labels must be unique to open a token by label")]
    AmbiguousToken(String),

    /// The token was removed with [`Token::remove`](crate::Token::remove) and
    /// must be inserted again before it can be provisioned.
    #[error("token {0:?} is not present (removed); insert it again first")]
    TokenNotPresent(String),

    /// The PKI has no intermediate CA but one was asked for.
    #[error("this PKI has no intermediate CA (create it with Pki::with_intermediate)")]
    NoIntermediate,

    /// The token answered with a public key the crate cannot interpret.
    #[error("unexpected public key from the token: {0}")]
    PublicKey(String),

    /// A caller-supplied value is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// p11-kit (the `p11-kit` program or `p11-kit-client.so`) is not
    /// installed where it was looked for.
    #[error(
        "p11-kit not found ({0}); install it (apt install p11-kit p11-kit-modules) \
         or set P11AGENT_P11KIT / P11AGENT_P11KIT_CLIENT"
    )]
    P11KitNotFound(String),

    /// A `p11-kit server` did not start, or could not be signalled.
    #[error("p11-kit server: {0}")]
    P11KitServer(String),

    /// A JSON manifest could not be read or written.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

/// Adds a context string to cryptoki results.
pub(crate) trait Pkcs11Context<T> {
    fn ctx(self, context: impl Into<String>) -> Result<T>;
}

impl<T> Pkcs11Context<T> for std::result::Result<T, cryptoki::error::Error> {
    fn ctx(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Pkcs11 {
            context: context.into(),
            source,
        })
    }
}
