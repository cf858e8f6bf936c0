//! TLS client authentication with the agent's keys, for rustls 0.23.
//!
//! - [`AgentResolver`] is a rustls `ResolvesClientCert`: when a server
//!   asks for a client certificate it picks one of the agent's identities
//!   asks the agent to select (its filter, rules and remembered choices)
//!   and hands rustls the chain and an [`AgentSigningKey`].
//! - [`AgentSigningKey`] is a rustls `SigningKey` whose `Signer` asks the
//!   agent for the CertificateVerify signature; the private key never
//!   leaves the token.
//! - [`probe::probe`] asks a server what it wants of a client
//!   certificate (CA names, signature schemes) without sending one.
//! - [`client_config_for_origin`] builds a complete `ClientConfig` (ring
//!   provider, TLS 1.3 and 1.2, webpki server verification) for one
//!   origin.
//!
//! This module is always built; rustls (ring provider) and tokio-rustls
//! are re-exported so that users get matching versions.
//!
//! # Why a config belongs to one origin
//!
//! rustls calls a client-certificate resolver with the server's CA list
//! and signature schemes only: not with the server's name. A client
//! certificate identifies its holder to every server it is sent to (it is
//! a super-cookie), so which identity may go where is a per-origin
//! decision — the agent's selection rules and remembered choices are
//! keyed by origin. The only place that knows the origin is whoever
//! builds the config, so a [`ClientConfig`](rustls::ClientConfig) made
//! here is bound to one origin and must not be reused for connections to
//! another one. Build one config per origin (and keep it for that origin:
//! it caches TLS sessions).
//!
//! ```no_run
//! use p11agent_client::tls::{self, rustls};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut roots = rustls::RootCertStore::empty();
//! for cert in tls::load_pem_certificates("ca.pem".as_ref())? {
//!     roots.add(cert)?;
//! }
//! let config = tls::client_config_for_origin("https://example.test:8443", roots, None, None)?;
//! # let _ = config; Ok(()) }
//! ```

mod key;
mod pool;
pub mod probe;
mod resolver;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

pub use key::{AgentSigner, AgentSigningKey};
pub use resolver::{AgentResolver, AgentResolverBuilder, Chooser, Resolution, UserChoice};
pub use {rustls, tokio_rustls};

use crate::ClientError;

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Talking to the agent failed.
    #[error(transparent)]
    Agent(ClientError),
    /// The origin or URL is not `https://host[:port][/path]`.
    #[error("not an https URL: {0}")]
    InvalidUrl(String),
    /// A CA file could not be read.
    #[error("cannot read CA certificates from {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No usable trusted root certificate.
    #[error("no trusted root certificates: {0}")]
    NoRoots(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The server-certificate verifier could not be built.
    #[error("server certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The ring crypto provider this crate uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config for `origin` (`https://host[:port]`) that verifies the
/// server against `roots` (webpki) and answers a CertificateRequest with
/// the identity the agent selects (see [`AgentResolver`]), or the one
/// fixed by `identity` (id or unique prefix).
/// `agent` is the agent's socket; `None` uses `$P11AGENT_SOCK` or the
/// default. The config speaks TLS 1.3 and 1.2 with the ring provider.
///
/// See the [module documentation](self) for why the config is bound to
/// the origin.
pub fn client_config_for_origin(
    origin: &str,
    roots: rustls::RootCertStore,
    agent: Option<&Path>,
    identity: Option<String>,
) -> Result<rustls::ClientConfig, TlsError> {
    let url = HttpsUrl::parse(origin)?;
    let mut builder = AgentResolver::builder(url.origin());
    if let Some(socket) = agent {
        builder = builder.socket(socket);
    }
    if let Some(id) = identity {
        builder = builder.identity(id);
    }
    client_config(roots, Arc::new(builder.build()))
}

/// A client config that verifies servers against `roots` and sends the
/// certificates `resolver` picks. Keep the `Arc` to ask the resolver
/// afterwards what it sent ([`AgentResolver::last_resolution`]).
pub fn client_config(
    roots: rustls::RootCertStore,
    resolver: Arc<AgentResolver>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier)
        .with_client_cert_resolver(resolver))
}

/// Every certificate in a PEM file (other PEM sections are skipped).
pub fn load_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    let err = |source: std::io::Error| TlsError::CaFile {
        path: path.to_owned(),
        source,
    };
    let data = std::fs::read(path).map_err(err)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        })?;
    if certs.is_empty() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no CERTIFICATE sections",
        )));
    }
    Ok(certs)
}

/// The operating system's trusted roots (rustls-native-certs: on Linux
/// the distribution's CA bundle, honouring `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`).
pub fn system_roots() -> Result<rustls::RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the system CA bundle is empty".to_owned());
        return Err(TlsError::NoRoots(why));
    }
    Ok(roots)
}

/// An `https://host[:port][/path]` URL, as far as a TLS client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// The host: a DNS name or an IP address (without brackets).
    pub host: String,
    /// The port (443 when not given).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl HttpsUrl {
    /// Parses `url`; only the `https` scheme is accepted, and user info
    /// and fragments are not.
    pub fn parse(url: &str) -> Result<HttpsUrl, TlsError> {
        let bad = || TlsError::InvalidUrl(url.to_owned());
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("HTTPS://"))
            .ok_or_else(bad)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => 443,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(HttpsUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `https://host:port`, with IPv6 addresses in brackets.
    pub fn origin(&self) -> String {
        format!("https://{}:{}", self.host_for_header(), self.port)
    }

    /// The host as it goes in a `Host` header (IPv6 in brackets).
    pub fn host_for_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The `Host` header value: the host, with the port unless it is 443.
    pub fn host_header(&self) -> String {
        if self.port == 443 {
            self.host_for_header()
        } else {
            format!("{}:{}", self.host_for_header(), self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_https_urls() {
        let u = HttpsUrl::parse("https://localhost:8443/a/b?c=d#frag").expect("url");
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 8443);
        assert_eq!(u.path, "/a/b?c=d");
        assert_eq!(u.origin(), "https://localhost:8443");
        let u = HttpsUrl::parse("https://[::1]").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 443, "/")
        );
        assert_eq!(u.host_header(), "[::1]");
        let u = HttpsUrl::parse("https://example.test?q").expect("url");
        assert_eq!(u.path, "/?q");
        for bad in [
            "http://x/",
            "https://",
            "https://u@h/",
            "https://h:99999/",
            "x",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
