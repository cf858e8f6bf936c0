//! Clients outlive the daemon: the same `Client` and `AsyncClient`
//! objects keep working when the daemon is restarted on the same socket
//! (after a SIGTERM and after a crash), answer `NotRunning` promptly while
//! it is down, and a mutual-TLS handshake through the agent fails cleanly
//! while it is down and succeeds again after the restart.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_client::proto::{Filter, Identity, Scheme};
use p11agent_client::tls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use p11agent_client::tls::rustls::server::WebPkiClientVerifier;
use p11agent_client::tls::rustls::sign::SigningKey as _;
use p11agent_client::tls::rustls::{self, RootCertStore, ServerConfig, SignatureScheme};
use p11agent_client::tls::{self, tokio_rustls, AgentResolver, AgentSigningKey, Resolution};
use p11agent_client::{AsyncClient, Client, ClientError};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use p11agent_tests::{pin_file, Daemon};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PIN: &str = "135790";
const SO_PIN: &str = "12345678";
/// What the tests sign: a TLS 1.3 CertificateVerify input, as the
/// agent's default purpose binding requires.
fn message() -> Vec<u8> {
    p11agent_tests::tls13_input(b"after a restart")
}

/// How long a call may take to say that nobody is there: far more than a
/// failed connect needs, far less than a hang.
const PROMPT: Duration = Duration::from_secs(5);

/// A SoftHSM token with one P-256 identity, a PIN file, and the daemon
/// arguments that serve them.
struct Setup {
    hsm: SoftHsm,
    pki: Pki,
    identity: Provisioned,
    dir: tempfile::TempDir,
    socket: PathBuf,
    pin: PathBuf,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let hsm = SoftHsm::new().expect("softhsm");
        let pki = Pki::new("Reconnect Root").expect("pki");
        let token = hsm.create_token(label, PIN, SO_PIN).expect("token");
        let identity = token
            .add_identity(&pki, &LeafSpec::new("Reconnect User").key(KeyAlg::EcP256))
            .expect("identity");
        // The socket lives in a directory of the test's, not of a daemon's:
        // each daemon's own directory goes when it stops.
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("run").join("agent.sock");
        let pin = pin_file(dir.path(), PIN);
        Setup {
            hsm,
            pki,
            identity,
            dir,
            socket,
            pin,
        }
    }

    /// A daemon on the setup's socket that logs in with the PIN file.
    fn daemon(&self) -> Daemon {
        let args: [&OsStr; 4] = [
            "--module".as_ref(),
            self.hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            self.pin.as_os_str(),
        ];
        Daemon::start_at(Some(self.socket.clone()), &args, self.hsm.env())
    }

    fn id(&self) -> String {
        self.identity.fingerprint_hex()
    }

    /// Whether openssl accepts `signature` as ECDSA P-256/SHA-256 over
    /// `message()` by the identity's certificate.
    fn verifies(&self, signature: &[u8]) -> bool {
        let dir = self.dir.path();
        let (cert, key, msg, sig) = (
            dir.join("id.crt"),
            dir.join("id.pub"),
            dir.join("msg"),
            dir.join("sig"),
        );
        std::fs::write(&cert, self.identity.cert_pem()).expect("write cert");
        std::fs::write(&msg, message()).expect("write message");
        std::fs::write(&sig, signature).expect("write signature");
        let public = Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        std::fs::write(&key, &public.stdout).expect("write public key");
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&key)
            .arg("-signature")
            .arg(&sig)
            .arg(&msg)
            .output()
            .expect("openssl dgst")
            .status
            .success()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn assert_not_running<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, ClientError>,
    started: Instant,
) {
    assert!(
        matches!(result, Err(ClientError::NotRunning { .. })),
        "{what} while the daemon is down: {result:?}"
    );
    assert!(
        started.elapsed() < PROMPT,
        "{what} took {:?} to find nobody",
        started.elapsed()
    );
}

/// Status, list and a verified signature through both clients.
fn use_both(
    setup: &Setup,
    rt: &tokio::runtime::Runtime,
    blocking: &mut Client,
    nonblocking: &mut AsyncClient,
    daemon: &Daemon,
) {
    let id = setup.id();
    let listed = |identities: Vec<Identity>| identities.iter().any(|i| i.id == id);

    let status = blocking
        .status()
        .unwrap_or_else(|e| panic!("blocking status: {e}\n{}", daemon.log()));
    assert_eq!(status.identities, 1, "{status:?}");
    assert!(listed(
        blocking.list(&Filter::default()).expect("blocking list")
    ));
    let signature = blocking
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &message())
        .unwrap_or_else(|e| panic!("blocking sign: {e}\n{}", daemon.log()));
    assert!(setup.verifies(&signature), "blocking signature");

    rt.block_on(async {
        let status = nonblocking
            .status()
            .await
            .unwrap_or_else(|e| panic!("async status: {e}\n{}", daemon.log()));
        assert_eq!(status.identities, 1, "{status:?}");
        assert!(listed(
            nonblocking
                .list(&Filter::default())
                .await
                .expect("async list")
        ));
        let signature = nonblocking
            .sign(&id, Scheme::EcdsaSecp256r1Sha256, &message())
            .await
            .unwrap_or_else(|e| panic!("async sign: {e}\n{}", daemon.log()));
        assert!(setup.verifies(&signature), "async signature");
    });
}

#[test]
fn clients_survive_a_daemon_restart_on_the_same_socket() {
    let setup = Setup::new("reconnect");
    let rt = runtime();
    let daemon = setup.daemon();
    let mut blocking = Client::connect(&setup.socket).expect("blocking connect");
    let mut nonblocking = rt
        .block_on(AsyncClient::connect(&setup.socket))
        .expect("async connect");
    blocking.status().expect("blocking status");
    rt.block_on(nonblocking.status()).expect("async status");

    // An orderly stop: SIGTERM, the daemon removes its socket.
    drop(daemon);
    let started = Instant::now();
    assert_not_running("blocking status", blocking.status(), started);
    let started = Instant::now();
    assert_not_running("async status", rt.block_on(nonblocking.status()), started);

    let daemon = setup.daemon();
    use_both(&setup, &rt, &mut blocking, &mut nonblocking, &daemon);

    // A crash: SIGKILL, the socket file stays with nobody behind it.
    daemon.kill();
    assert!(
        setup.socket.exists(),
        "a killed daemon leaves its socket file"
    );
    let started = Instant::now();
    assert_not_running(
        "blocking sign",
        blocking.sign(&setup.id(), Scheme::EcdsaSecp256r1Sha256, &message()),
        started,
    );
    let started = Instant::now();
    assert_not_running(
        "async list",
        rt.block_on(nonblocking.list(&Filter::default())),
        started,
    );

    // The next daemon replaces the stale socket file; the clients find it
    // without being told.
    let daemon = setup.daemon();
    use_both(&setup, &rt, &mut blocking, &mut nonblocking, &daemon);
}

/// A TLS 1.3 server that requires a client certificate from `pki`.
fn server_config(pki: &Pki) -> Arc<ServerConfig> {
    let provider = tls::provider();
    let mut client_roots = RootCertStore::empty();
    client_roots
        .add(CertificateDer::from(pki.root_der().to_vec()))
        .expect("client root");
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .expect("client verifier");
    let server = pki.localhost_server().expect("server certificate");
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.cert_der)],
            PrivatePkcs8KeyDer::from(server.key_der).into(),
        )
        .expect("server config");
    Arc::new(config)
}

/// One HTTPS exchange with a fresh server and a fresh client config (no
/// session to resume, so the resolver is asked every time): the server's
/// view (the client certificate it got) and the client's (the response).
async fn handshake(
    setup: &Setup,
    resolver: Arc<AgentResolver>,
) -> (
    Result<Vec<u8>, std::io::Error>,
    Result<String, std::io::Error>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&setup.pki));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream = acceptor.accept(tcp).await?;
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.to_vec())
            .unwrap_or_default();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await?;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await?;
        stream.shutdown().await?;
        Ok::<_, std::io::Error>(leaf)
    });
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(setup.pki.root_der().to_vec()))
        .expect("server root");
    let config = tls::client_config(roots, resolver).expect("client config");
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("server name");
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let client = client.await;
    let server = server.await.expect("server task");
    (server, client)
}

/// Runs `f` on `rt`, failing the test if it takes more than a minute.
fn within<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    f: impl std::future::Future<Output = T>,
) -> T {
    // The timer must be made inside the runtime.
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), f).await })
        .unwrap_or_else(|_| panic!("{what}: the handshake hangs"))
}

#[test]
fn tls_through_the_agent_fails_cleanly_while_it_is_down_and_works_after_a_restart() {
    let setup = Setup::new("reconnect-tls");
    let rt = runtime();
    // The identity is fixed, so no rule, remembered choice or chooser is
    // involved: only the agent's presence.
    let resolver = || {
        Arc::new(
            AgentResolver::builder("https://localhost:443")
                .socket(&setup.socket)
                .identity(setup.id())
                .build(),
        )
    };
    let works = |daemon: &Daemon| {
        let resolver = resolver();
        let (server, client) = within(&rt, "with the agent", handshake(&setup, resolver.clone()));
        let leaf = server.unwrap_or_else(|e| panic!("server: {e}\n{}", daemon.log()));
        assert_eq!(leaf, setup.identity.cert_der, "the server got the identity");
        let response = client.unwrap_or_else(|e| panic!("client: {e}\n{}", daemon.log()));
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(resolver.last_resolution().is_some_and(|r| r.sent()));
    };

    let daemon = setup.daemon();
    works(&daemon);
    // A signing key made while the agent runs, used while it is down and
    // after it is back: each signature opens its own connection.
    let identity = Client::connect(&setup.socket)
        .and_then(|mut agent| agent.show(&setup.id()))
        .expect("show")
        .identity;
    let key = AgentSigningKey::new(&setup.socket, &identity);
    let sign = || {
        key.choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .expect("P-256 scheme")
            .sign(&message())
    };

    drop(daemon);
    let resolver_down = resolver();
    let started = Instant::now();
    let (server, client) = within(
        &rt,
        "without the agent",
        handshake(&setup, resolver_down.clone()),
    );
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    assert!(
        server.is_err(),
        "the server accepted a client without a certificate"
    );
    assert!(client.is_err(), "the client read an answer: {client:?}");
    match resolver_down.last_resolution() {
        Some(Resolution::AgentFailed(why)) => assert!(why.contains("not running"), "{why}"),
        other => panic!("the resolver's record without the agent: {other:?}"),
    }
    let started = Instant::now();
    match sign() {
        Err(rustls::Error::General(message)) => {
            assert!(message.contains("not running"), "{message}")
        }
        other => panic!("a signature without the agent: {other:?}"),
    }
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());

    let daemon = setup.daemon();
    works(&daemon);
    let signature =
        sign().unwrap_or_else(|e| panic!("sign after the restart: {e}\n{}", daemon.log()));
    assert!(setup.verifies(&signature));
}
