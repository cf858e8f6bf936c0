//! Group `tls`: full mutual-TLS 1.3 handshakes per second over loopback,
//! against a rustls server that requires a client certificate, with the
//! client's key behind the agent, on the token through cryptoki in the
//! same process, or in software (the CPU reference).
//!
//! A handshake counts once the client has read one byte of application
//! data the server sends after its side of the handshake: the server has
//! then verified the client's certificate and CertificateVerify. No
//! session is resumed (no tickets, no session cache), so every handshake
//! makes one client signature.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use p11agent_client::proto::Scheme;
use p11agent_client::tls::rustls::client::{ResolvesClientCert, Resumption};
use p11agent_client::tls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use p11agent_client::tls::rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use p11agent_client::tls::rustls::sign::{CertifiedKey, Signer, SigningKey};
use p11agent_client::tls::rustls::{
    self, ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
    SignatureAlgorithm, SignatureScheme,
};
use p11agent_client::tls::{self as agent_tls, AgentResolver};
use p11agent_softhsm::{LeafSpec, PublicKey};
use serde::{Deserialize, Serialize};

use crate::bed::Bed;
use crate::error::BenchError;
use crate::harness::{self, RunStats, Timing};
use crate::job::{self, Job, KeyKind, TokenKey};
use crate::p11::{self, Hashing, LoggedIn};
use crate::report::{self, Measurement, Report};
use crate::Plan;

/// One handshake row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TlsJob {
    /// Whose key the client signs with.
    pub client: TlsClient,
    /// The client key's type.
    pub kind: KeyKind,
    /// Clients (and server threads), warm-up and window.
    pub timing: Timing,
    /// The CA both sides trust: it issued the server's certificate and
    /// the client's.
    pub root: Vec<u8>,
    /// The server's certificate, DER.
    pub server_cert: Vec<u8>,
    /// The server's key, PKCS#8 DER.
    pub server_key: Vec<u8>,
    /// The agent's daemon, for its CPU time over the window, on the
    /// agent's rows. (The rustls server runs in the worker: its CPU time
    /// is in the worker's.)
    pub server_pid: Option<u32>,
}

impl TlsJob {
    /// A short description for messages.
    pub(crate) fn describe(&self) -> String {
        let who = match &self.client {
            TlsClient::Agent { .. } => "the agent",
            TlsClient::Cryptoki { .. } => "cryptoki",
            TlsClient::Software { .. } => "a software key",
        };
        format!(
            "{} mutual-TLS handshakes with {who} and {} clients",
            self.kind.name(),
            self.timing.clients
        )
    }
}

/// Where the client's certificate and signature come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub(crate) enum TlsClient {
    /// `p11agent_client::tls::AgentResolver` with the identity fixed: it
    /// asks the agent to select (for the chain) and to sign, each on a
    /// connection of its own, as an application using the library does.
    Agent {
        /// The agent's socket.
        socket: PathBuf,
        /// The identity id.
        id: String,
    },
    /// The key on the token, through cryptoki in the worker, one session
    /// per client thread.
    Cryptoki {
        /// The key.
        key: TokenKey,
        /// The certificate chain to send, DER, leaf first.
        chain: Vec<Vec<u8>>,
    },
    /// A software key in rustls (ring).
    Software {
        /// The key, PKCS#8 DER.
        key: Vec<u8>,
        /// The certificate chain to send, DER, leaf first.
        chain: Vec<Vec<u8>>,
    },
}

/// The scheme a client key of `kind` answers `offered` with in TLS 1.3:
/// the first of the server's, in the server's order, the key can make.
/// The agent's key, and ours below, choose this way; rustls' software
/// keys choose by their own order, which gives the same answer against
/// a rustls server (PSS with SHA-512 for RSA; P-256 has one scheme).
fn tls13_pick(offered: &[SignatureScheme], kind: KeyKind) -> Option<Scheme> {
    offered
        .iter()
        .filter_map(|s| Scheme::from_code(u16::from(*s)))
        // TLS 1.3 has no PKCS#1 v1.5 CertificateVerify.
        .filter(|s| {
            !matches!(
                s,
                Scheme::RsaPkcs1Sha256 | Scheme::RsaPkcs1Sha384 | Scheme::RsaPkcs1Sha512
            )
        })
        .find(|s| kind.schemes().contains(s))
}

/// A rustls signing key on a token, used through cryptoki.
#[derive(Debug)]
struct TokenSigningKey {
    /// rustls wants `Sync`; a session is not. One client thread uses it,
    /// so the lock is never contended.
    session: Arc<Mutex<Session>>,
    key: ObjectHandle,
    kind: KeyKind,
}

impl SigningKey for TokenSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = offered
            .iter()
            .filter_map(|s| Scheme::from_code(u16::from(*s)))
            .find(|s| self.kind.schemes().contains(s))?;
        Some(Box::new(TokenSigner {
            session: self.session.clone(),
            key: self.key,
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            KeyKind::Rsa2048 => SignatureAlgorithm::RSA,
            KeyKind::P256 => SignatureAlgorithm::ECDSA,
        }
    }
}

/// One CertificateVerify signature with a [`TokenSigningKey`].
#[derive(Debug)]
struct TokenSigner {
    session: Arc<Mutex<Session>>,
    key: ObjectHandle,
    scheme: Scheme,
}

impl Signer for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        p11::sign(&session, self.key, self.scheme, Hashing::Worker, message)
            .map_err(rustls::Error::General)
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::from(self.scheme.code())
    }
}

/// Always answers a CertificateRequest with the same certified key.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesClientCert for Fixed {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn chain_der(chain: &[Vec<u8>]) -> Vec<CertificateDer<'static>> {
    chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect()
}

fn pkcs8(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
}

/// The worker's side: a server thread per client, and the clients.
pub(crate) fn run(job: &TlsJob) -> Result<RunStats, BenchError> {
    let provider = agent_tls::provider();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(job.root.clone()))?;
    let roots = Arc::new(roots);
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let offered = verifier.supported_verify_schemes();
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(job.server_cert.clone())],
            pkcs8(&job.server_key),
        )?;
    // No resumption: every handshake is a full one, with a signature.
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    let server = Arc::new(server);
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::io("binding", "127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::io("reading the address of", "the listener", e))?;

    let client_config = |resolver: Arc<dyn ResolvesClientCert>| -> Result<_, BenchError> {
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots.clone())
            .with_client_cert_resolver(resolver);
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    };
    // What each variant needs before its threads start.
    let token = match &job.client {
        TlsClient::Cryptoki { key, .. } => Some(LoggedIn::open(&key.module, &key.token, &key.pin)?),
        _ => None,
    };
    let software = match &job.client {
        TlsClient::Software { key, chain } => {
            let key = provider.key_provider.load_private_key(pkcs8(key))?;
            Some(Arc::new(CertifiedKey::new(chain_der(chain), key)))
        }
        _ => None,
    };
    let setup = |_: usize| -> Result<_, BenchError> {
        let resolver: Arc<dyn ResolvesClientCert> = match &job.client {
            TlsClient::Agent { socket, id } => Arc::new(
                AgentResolver::builder(format!("https://localhost:{}", addr.port()))
                    .socket(socket)
                    .identity(id.clone())
                    .build(),
            ),
            TlsClient::Cryptoki { key, chain } => {
                let token = token
                    .as_ref()
                    .ok_or_else(|| BenchError::Setup("no token".into()))?;
                let (session, handle) = token.session_with_key(&key.key_id)?;
                let signing = TokenSigningKey {
                    session: Arc::new(Mutex::new(session)),
                    key: handle,
                    kind: job.kind,
                };
                Arc::new(Fixed(Arc::new(CertifiedKey::new(
                    chain_der(chain),
                    Arc::new(signing),
                ))))
            }
            TlsClient::Software { .. } => Arc::new(Fixed(
                software
                    .clone()
                    .ok_or_else(|| BenchError::Setup("no software key".into()))?,
            )),
        };
        let config = client_config(resolver)?;
        Ok(move || handshake(addr, &config))
    };

    let stop = AtomicBool::new(false);
    let clients = job.timing.clients.max(1);
    let mut stats = std::thread::scope(|scope| {
        for _ in 0..clients {
            let (listener, server, stop) = (&listener, &server, &stop);
            scope.spawn(move || serve(listener, server, stop));
        }
        let stats = harness::run_metered(&job.timing, job.server_pid, setup);
        stop.store(true, Ordering::SeqCst);
        // Wakes every server thread blocked in accept.
        for _ in 0..clients {
            let _ = TcpStream::connect(addr);
        }
        stats
    })?;
    stats.scheme = tls13_pick(&offered, job.kind).map(|s| s.as_str().to_owned());
    Ok(stats)
}

/// A server thread: accepts and serves connections until `stop`.
fn serve(listener: &TcpListener, config: &Arc<ServerConfig>, stop: &AtomicBool) {
    while let Ok((tcp, _)) = listener.accept() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // A failed handshake shows on the client's side, as an error.
        let _ = serve_one(tcp, config);
    }
}

/// One connection: the handshake, then one byte, then close_notify.
fn serve_one(mut tcp: TcpStream, config: &Arc<ServerConfig>) -> Result<(), String> {
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut conn = ServerConnection::new(config.clone()).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    conn.writer().write_all(b"k").map_err(|e| e.to_string())?;
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One client handshake, finished when the server's byte arrives.
fn handshake(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<(), String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    rustls::Stream::new(&mut conn, &mut tcp)
        .read_exact(&mut byte)
        .map_err(|e| format!("handshake: {e}"))?;
    if byte != *b"k" {
        return Err(format!("the server sent {byte:?}"));
    }
    Ok(())
}

/// A software RSA-2048 key, PKCS#8 DER, from `openssl genpkey` (ring
/// cannot generate RSA keys); `None` when openssl is not installed.
///
/// PEM, because OpenSSL 3.0 writes DER keys as PKCS#1 but PEM ones as
/// PKCS#8.
fn openssl_rsa_key() -> Option<Vec<u8>> {
    use p11agent_client::tls::rustls::pki_types::pem::PemObject as _;
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    PrivatePkcs8KeyDer::from_pem_slice(&out.stdout)
        .ok()
        .map(|key| key.secret_pkcs8_der().to_vec())
}

/// A software identity of `kind` issued by the bed's CA: the
/// certificate chain and the PKCS#8 key. `None` when it cannot be made
/// here (RSA without openssl).
fn software_identity(bed: &Bed, kind: KeyKind) -> Result<Option<TlsClient>, BenchError> {
    let (key, cert) = match kind {
        KeyKind::P256 => {
            let id = bed.pki.issue_software(
                &LeafSpec::new("Bench software P-256").key(p11agent_softhsm::KeyAlg::EcP256),
            )?;
            (id.key_der, id.cert_der)
        }
        KeyKind::Rsa2048 => {
            let Some(key) = openssl_rsa_key() else {
                return Ok(None);
            };
            let signing = rustls::crypto::ring::sign::any_supported_type(&pkcs8(&key))?;
            let spki = signing
                .public_key()
                .ok_or_else(|| BenchError::Setup("an RSA key without a public key".into()))?;
            let public = PublicKey::from_spki_der(spki.as_ref())?;
            let spec = LeafSpec::new("Bench software RSA").key(p11agent_softhsm::KeyAlg::Rsa2048);
            (key, bed.pki.issue(&spec, &public)?)
        }
    };
    Ok(Some(TlsClient::Software {
        key,
        chain: vec![cert],
    }))
}

/// Measures handshakes for each key type and client count with the three
/// client keys, back to back, and adds the rows to `report`.
pub(crate) fn measure(bed: &Bed, plan: &Plan, report: &mut Report) -> Result<(), BenchError> {
    let server = bed.pki.localhost_server()?;
    let (softhsm, softhsm_env) = bed.softhsm();
    let kinds: &[KeyKind] = if plan.smoke {
        &[KeyKind::P256]
    } else {
        &[KeyKind::P256, KeyKind::Rsa2048]
    };
    for &kind in kinds {
        let key = bed.key(kind);
        let software = software_identity(bed, kind)?;
        if software.is_none() {
            eprintln!("no software {} key (openssl is missing)", kind.name());
        }
        for &clients in &plan.tls_clients {
            let job = |client: TlsClient| {
                let server_pid = match client {
                    TlsClient::Agent { .. } => Some(bed.daemon.pid()),
                    TlsClient::Cryptoki { .. } | TlsClient::Software { .. } => None,
                };
                Job::Tls(TlsJob {
                    client,
                    kind,
                    timing: plan.timing(clients),
                    root: bed.pki.root_der().to_vec(),
                    server_cert: server.cert_der.clone(),
                    server_key: server.key_der.clone(),
                    server_pid,
                })
            };
            let mut contenders: Vec<(&'static str, job::Contender)> = vec![
                (
                    "direct",
                    (
                        job(TlsClient::Cryptoki {
                            key: key.token_key(&softhsm)?,
                            chain: vec![key.provisioned.cert_der.clone()],
                        }),
                        softhsm_env.clone(),
                    ),
                ),
                (
                    "agent",
                    (
                        job(TlsClient::Agent {
                            socket: bed.daemon.socket().to_path_buf(),
                            id: key.agent_id(),
                        }),
                        Vec::new(),
                    ),
                ),
            ];
            if let Some(client) = &software {
                contenders.push(("software", (job(client.clone()), Vec::new())));
            }
            let jobs: Vec<job::Contender> = contenders.iter().map(|(_, c)| c.clone()).collect();
            let stats = job::interleave(&jobs, plan.timing(clients), plan.rounds)?;
            let rows: Vec<Measurement> = contenders
                .iter()
                .zip(&stats)
                .map(|((backend, _), stats)| Measurement {
                    key: Some(kind.name()),
                    backend: Some(backend),
                    clients: Some(clients),
                    ..Measurement::load("tls", "mtls_handshake", stats)
                })
                .collect();
            report.push_compared(rows, &report::TLS);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_picks_the_servers_first_scheme_the_key_can_make() {
        let offered = [
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::RSA_PKCS1_SHA512,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PSS_SHA256,
        ];
        assert_eq!(
            tls13_pick(&offered, KeyKind::P256),
            Some(Scheme::EcdsaSecp256r1Sha256)
        );
        assert_eq!(
            tls13_pick(&offered, KeyKind::Rsa2048),
            Some(Scheme::RsaPssRsaeSha512)
        );
        assert_eq!(
            tls13_pick(&[SignatureScheme::RSA_PKCS1_SHA256], KeyKind::Rsa2048),
            None
        );
    }
}
