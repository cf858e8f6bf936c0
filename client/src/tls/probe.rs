//! Asking a TLS server what it wants of a client certificate, without
//! sending one: the CA names and signature schemes of its
//! CertificateRequest (what `openssl s_client` prints as "Acceptable
//! client certificate CA names" and "Requested Signature Algorithms").
//!
//! [`probe`] runs one TLS handshake with rustls. Its client-certificate
//! resolver records what rustls hands it and answers "no certificate",
//! so nothing private is ever sent: no certificate, no signature, no
//! agent is involved.
//!
//! # The server's certificate is NOT verified
//!
//! **The probe accepts any server certificate and any handshake
//! signature.** It is a diagnostic: it must work against servers whose
//! CA the user has not configured yet (finding out what a server wants
//! usually comes before trusting it), and it sends nothing secret: no
//! application data, and an empty Certificate message. The chain
//! the server presented is recorded for display only. Never reuse this
//! configuration for a connection that carries data.
//!
//! # What rustls lets us see (rustls 0.23)
//!
//! The probe reports what rustls passes to
//! [`ResolvesClientCert::resolve`], which is not always the server's
//! message byte for byte:
//!
//! - **CA names.** TLS 1.2: the `certificate_authorities` list of the
//!   CertificateRequest, complete and in the server's order (possibly
//!   empty). TLS 1.3: the `certificate_authorities` extension of the
//!   CertificateRequest, complete and in order; a server with no names
//!   omits the extension, and rustls then passes an empty list. Names
//!   are passed as the server sent them (normally a DER `Name`
//!   SEQUENCE).
//! - **Signature schemes.** rustls filters the server's list before the
//!   resolver sees it, by a fixed property of each code point — not by
//!   the crypto provider, nor by anything in the client's configuration:
//!   - TLS 1.2: only schemes rustls can name for TLS 1.2 are kept
//!     (`rsa_pkcs1_*`, `rsa_pss_rsae_*`, `ecdsa_*` including the SHA-1
//!     ones, `ed25519`, `ed448`); other code points (`rsa_pss_pss_*`,
//!     brainpool, DSA, SHA-224 pairs, unassigned ones) are dropped.
//!   - TLS 1.3: schemes TLS 1.3 forbids in CertificateVerify are
//!     dropped (`rsa_pkcs1_*`, anything with SHA-1 or SHA-224, DSA);
//!     all others pass, unknown code points included. So where `openssl
//!     s_client` lists `RSA+SHA256`, the probe does not.
//!
//!   Since the filter does not depend on the configuration, offering
//!   more schemes cannot widen it. What the probe does offer in its
//!   ClientHello is every scheme it can name (see `OFFERED_SCHEMES`),
//!   and it accepts whatever signature comes back: so the server finds
//!   a scheme for its own key (Ed448, brainpool and RSA-PSS keys
//!   included) and reaches its CertificateRequest, and a server that
//!   trims its request to what the client advertised shows everything.
//!   The remaining limit: the lists above are what a rustls client can
//!   answer with, which is what the agent's selection needs, but not
//!   always everything the server sent.
//! - **When rustls calls the resolver.** Once, whenever a
//!   CertificateRequest arrives, whatever the CA list (empty included)
//!   and in TLS 1.2 even when no scheme is left. The exception: in TLS
//!   1.3, when no scheme is left after the filter, rustls aborts the
//!   handshake (alert `handshake_failure`, error
//!   [`PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon`])
//!   without calling the resolver. The probe reports that as a request
//!   with no usable scheme and unknown CA names
//!   ([`Outcome::Failed`]).
//!
//! Sources (rustls 0.23.46, `rustls/src/`): `client/common.rs`
//! (`ClientAuthDetails::resolve`), `client/tls12.rs` and
//! `client/tls13.rs` (`ExpectCertificateRequest::handle`), `enums.rs`
//! (`SignatureScheme::algorithm` and `supported_in_tls13`).
//!
//! Other limits: rustls speaks only TLS 1.3 and 1.2 with ECDHE key
//! exchange, so a server that only offers older versions or RSA/DHE key
//! exchange fails the handshake before asking anything; and rustls does
//! not do TLS 1.3 post-handshake authentication, so a server that asks
//! only after the handshake (e.g. per URL path) shows no request here.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, DigitallySignedStruct, PeerIncompatible,
    ProtocolVersion, SignatureScheme,
};

/// Which TLS versions the probe offers.
///
/// Servers may ask differently per version (some only request a
/// certificate in one of them, and the CA list travels in different
/// places), so probing each version separately can show more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbeVersion {
    /// TLS 1.3 and 1.2; the server picks (normally 1.3).
    #[default]
    Any,
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 only.
    Tls12,
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The name sent as SNI (and offered to the server as its name);
    /// `None` uses the host. An IP address sends no SNI.
    pub server_name: Option<String>,
    /// The limit for the whole probe: name resolution aside, connecting,
    /// the handshake and waiting for the server's verdict.
    pub timeout: Duration,
    /// The TLS versions offered.
    pub version: ProbeVersion,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            server_name: None,
            timeout: Duration::from_secs(10),
            version: ProbeVersion::Any,
        }
    }
}

/// How the server took a handshake in which no client certificate was
/// sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server carried on: it finished the handshake (TLS 1.2), or
    /// sent something other than an alert after the client's last
    /// flight (TLS 1.3, typically session tickets). When a certificate
    /// was requested, it is optional for this server.
    Accepted,
    /// The server ended the connection: with this alert (typically
    /// `CertificateRequired` in TLS 1.3, `HandshakeFailure` in TLS 1.2),
    /// or (`None`) by closing or resetting it without one. After a
    /// CertificateRequest this is the usual sign that a certificate is
    /// required.
    Refused {
        /// The alert the server sent, if any.
        alert: Option<AlertDescription>,
    },
    /// TLS 1.3: the handshake completed, but within the wait (at most
    /// [`VERDICT_WAIT`]) the server neither sent anything nor closed, so
    /// whether it requires a certificate is unknown. (In TLS 1.3 the
    /// client's handshake is over before the server judges its
    /// certificate, and some servers send nothing until the client
    /// speaks.)
    NoAnswer,
    /// The handshake failed on the client's side after the server asked
    /// for a certificate. With
    /// [`PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon`]
    /// the TLS 1.3 request offered no scheme rustls allows in TLS 1.3:
    /// rustls aborted without showing the request, so the CA names are
    /// unknown and the schemes empty.
    Failed(rustls::Error),
}

/// What a TLS server asked of a client certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The negotiated version: `"TLSv1.3"` or `"TLSv1.2"`.
    pub protocol: String,
    /// The negotiated cipher suite, by its IANA name as rustls spells
    /// it (e.g. `TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// Whether the server sent a CertificateRequest. `false`: it asked
    /// for no client certificate (in the handshake; see the module
    /// documentation on post-handshake authentication).
    pub certificate_requested: bool,
    /// The CA names of the request: raw DER distinguished names, in the
    /// server's order; empty when the server named none (any issuer) or
    /// made no request. [`name_to_string`](p11agent_proto::dn::name_to_string) formats them.
    pub ca_names: Vec<Vec<u8>>,
    /// The signature schemes of the request, in the server's order, as
    /// far as rustls shows them (see the module documentation for what
    /// it leaves out in each version).
    pub schemes: Vec<SignatureScheme>,
    /// The subjects of the certificates the server presented, leaf
    /// first, as RFC 4514 strings; empty when the handshake ended before
    /// the server's certificate was seen. Not verified.
    pub server_chain_subjects: Vec<String>,
    /// How the server took our not sending a certificate.
    pub outcome: Outcome,
}

/// Why a server could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The name for SNI is neither a DNS name nor an IP address.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// What went wrong.
        source: io::Error,
    },
    /// No address of the host accepted a connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// The server did not get as far as a CertificateRequest (or the end
    /// of the handshake) in time.
    #[error("no TLS handshake within {0:?}")]
    Timeout(Duration),
    /// The handshake failed before the server asked for a certificate
    /// (no common version or cipher suite, an alert, not TLS at all).
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    /// The server closed the connection before asking for a certificate.
    #[error("the server closed the connection during the TLS handshake")]
    Closed,
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// rustls refused the probe's configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// How long to wait, after a TLS 1.3 handshake with a CertificateRequest,
/// for the server to accept or refuse the connection.
///
/// Servers that judge the empty certificate do so as soon as they read
/// the client's last flight; waiting longer only delays the answer for
/// servers that stay silent until the client speaks.
pub const VERDICT_WAIT: Duration = Duration::from_secs(2);

/// Connects to `host:port` and reports what the server asks of a client
/// certificate. No certificate is sent.
///
/// `host` is a DNS name or an IP address (an IPv6 address with or
/// without brackets). A server that refuses the connection because no
/// certificate came is the expected end of a probe, not an error: it is
/// reported in [`Probe::outcome`]. Errors are for servers that could not
/// be asked at all.
///
/// **The server's certificate is not verified**; see the [module
/// documentation](self).
pub fn probe(host: &str, port: u16, options: &ProbeOptions) -> Result<Probe, ProbeError> {
    let deadline = Instant::now() + options.timeout;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name = options.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| ProbeError::InvalidServerName(name.to_owned()))?;

    let resolver = Arc::new(RecordingResolver::default());
    let verifier = Arc::new(AnyServerCertificate::default());
    let config = probe_config(options.version, resolver.clone(), verifier.clone())
        .map_err(ProbeError::Config)?;
    let mut sock = connect(host, port, deadline, options.timeout)?;
    let mut conn =
        ClientConnection::new(Arc::new(config), server_name).map_err(ProbeError::Config)?;

    let handshake = handshake(&mut conn, &mut sock, deadline);
    let request = resolver.take();
    let requested = request.is_some();
    let outcome = match handshake {
        Ok(()) if requested && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3) => {
            await_verdict(&mut conn, &mut sock, deadline)?
        }
        Ok(()) => Outcome::Accepted,
        Err(Stop::Tls(rustls::Error::AlertReceived(alert))) if requested => {
            Outcome::Refused { alert: Some(alert) }
        }
        Err(Stop::Tls(e)) if requested || unanswerable(&e) => Outcome::Failed(e),
        Err(Stop::Closed) if requested => Outcome::Refused { alert: None },
        Err(Stop::Timeout) if requested => Outcome::NoAnswer,
        Err(Stop::Tls(e)) => return Err(ProbeError::Handshake(e)),
        Err(Stop::Closed) => return Err(ProbeError::Closed),
        Err(Stop::Timeout) => return Err(ProbeError::Timeout(options.timeout)),
        Err(Stop::Io(e)) => return Err(ProbeError::Io(e)),
    };
    if matches!(outcome, Outcome::Accepted | Outcome::NoAnswer) {
        // Politeness only: the probe is over whether or not this arrives.
        conn.send_close_notify();
        let _ = conn.write_tls(&mut sock);
    }

    let (ca_names, schemes) = request.unwrap_or_default();
    Ok(Probe {
        // Every path that gets here has processed the ServerHello, so
        // both are known.
        protocol: conn
            .protocol_version()
            .map(protocol_name)
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_owned)
            })
            .unwrap_or_default(),
        certificate_requested: requested
            || matches!(&outcome, Outcome::Failed(e) if unanswerable(e)),
        ca_names,
        schemes,
        server_chain_subjects: verifier.subjects(),
        outcome,
    })
}

/// Whether `e` is rustls refusing a TLS 1.3 CertificateRequest that
/// offers no scheme allowed in TLS 1.3 (the resolver is not called then).
fn unanswerable(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::PeerIncompatible(
            PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon
        )
    )
}

/// `"TLSv1.3"`-style names, as OpenSSL prints them.
fn protocol_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The probe's client configuration: the ring provider, the versions
/// asked for, no session resumption (a resumed handshake skips the
/// CertificateRequest), `verifier` for the server and `resolver` for the
/// client certificate.
fn probe_config(
    version: ProbeVersion,
    resolver: Arc<RecordingResolver>,
    verifier: Arc<AnyServerCertificate>,
) -> Result<ClientConfig, rustls::Error> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        ProbeVersion::Any => &[&rustls::version::TLS13, &rustls::version::TLS12],
        ProbeVersion::Tls13 => &[&rustls::version::TLS13],
        ProbeVersion::Tls12 => &[&rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(super::provider())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(resolver);
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Connects to the first address of `host` that answers before
/// `deadline`.
fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, ProbeError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        let Some(left) = remaining(deadline) else {
            return Err(ProbeError::Timeout(timeout));
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(sock) => return Ok(sock),
            Err(source) => last = Some(ProbeError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| ProbeError::Resolve {
        host: host.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    }))
}

/// The time left until `deadline`; `None` when it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Why a handshake stopped.
#[derive(Debug)]
enum Stop {
    /// rustls failed: an alert from the server, or its own complaint.
    Tls(rustls::Error),
    /// The server closed or reset the connection.
    Closed,
    /// The deadline passed.
    Timeout,
    /// Another I/O error.
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Stop::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Stop::Closed,
            _ => Stop::Io(e),
        }
    }
}

/// Runs the handshake until it completes (our last flight written) or
/// stops. Written out rather than `complete_io` so that rustls errors
/// stay typed and every read is bounded by the deadline.
fn handshake(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<(), Stop> {
    loop {
        let left = remaining(deadline).ok_or(Stop::Timeout)?;
        sock.set_write_timeout(Some(left)).map_err(Stop::Io)?;
        sock.set_read_timeout(Some(left)).map_err(Stop::Io)?;
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        read_and_process(conn, sock)?;
    }
}

/// Reads once from the server and processes what came: `Ok` when it was
/// neither an alert nor the end of the connection.
fn read_and_process(conn: &mut ClientConnection, sock: &mut TcpStream) -> Result<(), Stop> {
    let n = loop {
        match conn.read_tls(sock) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    if n == 0 {
        return Err(Stop::Closed);
    }
    match conn.process_new_packets() {
        Ok(state) if state.peer_has_closed() => Err(Stop::Closed),
        Ok(_) => Ok(()),
        Err(e) => {
            // Tell the server why we stop (rustls queued an alert); the
            // probe's result does not depend on it arriving.
            let _ = conn.write_tls(sock);
            Err(Stop::Tls(e))
        }
    }
}

/// After a completed TLS 1.3 handshake with a CertificateRequest: waits
/// (at most [`VERDICT_WAIT`], and not past `deadline`) for the server to
/// show whether it accepts a connection without a certificate.
fn await_verdict(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<Outcome, ProbeError> {
    let until = deadline.min(Instant::now() + VERDICT_WAIT);
    let Some(left) = remaining(until) else {
        return Ok(Outcome::NoAnswer);
    };
    sock.set_read_timeout(Some(left))?;
    Ok(match read_and_process(conn, sock) {
        Ok(()) => Outcome::Accepted,
        Err(Stop::Tls(rustls::Error::AlertReceived(alert))) => {
            Outcome::Refused { alert: Some(alert) }
        }
        Err(Stop::Tls(e)) => Outcome::Failed(e),
        Err(Stop::Closed) => Outcome::Refused { alert: None },
        Err(Stop::Timeout) => Outcome::NoAnswer,
        Err(Stop::Io(e)) => return Err(ProbeError::Io(e)),
    })
}

/// What a CertificateRequest showed: CA names and schemes.
type Request = (Vec<Vec<u8>>, Vec<SignatureScheme>);

/// A client-certificate resolver that records the server's request and
/// never offers a certificate.
#[derive(Debug, Default)]
struct RecordingResolver {
    request: Mutex<Option<Request>>,
}

impl RecordingResolver {
    /// The recorded request; `None` when the server sent none.
    fn take(&self) -> Option<Request> {
        self.request.lock().ok().and_then(|mut r| r.take())
    }
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        if let Ok(mut request) = self.request.lock() {
            *request = Some((
                root_hint_subjects.iter().map(|n| n.to_vec()).collect(),
                sigschemes.to_vec(),
            ));
        }
        None
    }

    // rustls still calls `resolve` when this is false; true would only
    // make it keep the handshake transcript for a CertificateVerify that
    // the probe never sends.
    fn has_certs(&self) -> bool {
        false
    }
}

/// The TLS signature schemes the probe offers for the server's own
/// signature, most preferred first: every scheme with a code point the
/// probe can name, so that the server finds one for its key whatever it
/// is. The rsa_pss_pss and brainpool ones have no rustls constant.
fn offered_schemes() -> Vec<SignatureScheme> {
    use SignatureScheme as S;
    let mut schemes = vec![
        S::ED25519,
        S::ECDSA_NISTP256_SHA256,
        S::ECDSA_NISTP384_SHA384,
        S::ECDSA_NISTP521_SHA512,
        S::RSA_PSS_SHA256,
        S::RSA_PSS_SHA384,
        S::RSA_PSS_SHA512,
        S::ED448,
    ];
    // rsa_pss_pss_sha256/384/512, then ecdsa_brainpoolP256r1tls13_sha256,
    // P384 and P512 (RFC 8446, RFC 8734).
    schemes.extend(
        [0x0809u16, 0x080a, 0x080b, 0x081a, 0x081b, 0x081c]
            .into_iter()
            .map(S::from),
    );
    schemes.extend([
        S::ML_DSA_44,
        S::ML_DSA_65,
        S::ML_DSA_87,
        S::RSA_PKCS1_SHA256,
        S::RSA_PKCS1_SHA384,
        S::RSA_PKCS1_SHA512,
        S::ECDSA_SHA1_Legacy,
        S::RSA_PKCS1_SHA1,
    ]);
    schemes
}

/// A server-certificate "verifier" that verifies nothing.
///
/// DANGER, by design: it accepts every certificate chain and every
/// handshake signature. It exists for [`probe`] only, which sends no
/// secret over the connection and never carries data on it. Checking
/// the handshake signature without trusting the certificate would prove
/// nothing, and not checking it lets the probe talk to servers whose
/// keys ring cannot verify. The chain is recorded for display.
#[derive(Debug, Default)]
struct AnyServerCertificate {
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl AnyServerCertificate {
    /// The recorded chain's subjects, leaf first.
    fn subjects(&self) -> Vec<String> {
        let chain = self.chain.lock().map(|c| c.clone()).unwrap_or_default();
        chain
            .iter()
            .map(|der| match x509_parser::parse_x509_certificate(der) {
                Ok((_, cert)) => p11agent_proto::dn::format_name(cert.subject()),
                Err(_) => "(not an X.509 certificate)".to_owned(),
            })
            .collect()
    }
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            *chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        offered_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_offers_each_scheme_once() {
        let offered = offered_schemes();
        for (i, s) in offered.iter().enumerate() {
            assert!(!offered[i + 1..].contains(s), "{s:?} twice");
        }
        assert!(offered.contains(&SignatureScheme::from(0x0809)));
    }

    #[test]
    fn the_resolver_records_and_sends_nothing() {
        let resolver = RecordingResolver::default();
        assert!(resolver.take().is_none());
        let name: &[u8] = b"0\x00";
        assert!(resolver
            .resolve(&[name], &[SignatureScheme::ED25519])
            .is_none());
        assert_eq!(
            resolver.take(),
            Some((vec![name.to_vec()], vec![SignatureScheme::ED25519]))
        );
    }
}
