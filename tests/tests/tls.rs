//! Mutual TLS through the agent: a rustls server that requires a client
//! certificate, and a rustls client whose certificate and
//! CertificateVerify signature come from the agent (SoftHSM tokens).

use std::net::SocketAddr;
use std::sync::Arc;

use p11agent_client::proto::Decision;
use p11agent_client::proto::{Pin, Request, Response};
use p11agent_client::tls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use p11agent_client::tls::rustls::server::WebPkiClientVerifier;
use p11agent_client::tls::rustls::{
    self, DistinguishedName, ProtocolVersion, RootCertStore, ServerConfig, SupportedProtocolVersion,
};
use p11agent_client::tls::{self, tokio_rustls, AgentResolver, Resolution, UserChoice};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm, Token};
use p11agent_tests::Daemon;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USER_PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    peer_chain: Vec<CertificateDer<'static>>,
    request: String,
}

fn roots(ders: &[&[u8]]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for der in ders {
        roots
            .add(CertificateDer::from(der.to_vec()))
            .expect("root certificate");
    }
    roots
}

/// A server config: the PKI's localhost certificate, TLS `version` only,
/// client certificates required from `client_roots`, and the CA list
/// `hints` instead of the roots' subjects when given.
fn server_config(
    server_pki: &Pki,
    client_roots: RootCertStore,
    hints: Option<Vec<Vec<u8>>>,
    version: &'static SupportedProtocolVersion,
) -> Arc<ServerConfig> {
    let provider = tls::provider();
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone());
    if let Some(hints) = hints {
        verifier = verifier
            .clear_root_hint_subjects()
            .add_root_hint_subjects(hints.into_iter().map(DistinguishedName::from));
    }
    let verifier = verifier.build().expect("client verifier");
    let server = server_pki.localhost_server().expect("server certificate");
    let mut chain = vec![CertificateDer::from(server.cert_der.clone())];
    if let Some(intermediate) = server_pki.intermediate_der() {
        chain.push(CertificateDer::from(intermediate.to_vec()));
    }
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, PrivatePkcs8KeyDer::from(server.key_der).into())
        .expect("server config");
    Arc::new(config)
}

/// Serves one HTTPS request on 127.0.0.1, answering with the peer
/// certificate's length; returns what it saw, or the handshake error.
async fn serve_once(
    config: Arc<ServerConfig>,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<Seen, std::io::Error>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        let peer_chain = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = format!(
            "hello, client with a {}-byte certificate\n",
            peer_chain[0].len()
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        Ok(Seen {
            peer_chain,
            request: String::from_utf8_lossy(&request).into_owned(),
        })
    });
    (addr, handle)
}

/// Connects with `config`, sends a GET and returns the response text and
/// the negotiated protocol version.
async fn get(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> Result<(String, Option<ProtocolVersion>), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let version = stream.get_ref().1.protocol_version();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok((String::from_utf8_lossy(&response).into_owned(), version))
}

/// One mutual-TLS exchange: the server must see exactly `expected_chain`
/// and the client must read the server's answer.
fn exchange(
    rt: &tokio::runtime::Runtime,
    server: Arc<ServerConfig>,
    client: rustls::ClientConfig,
    version: ProtocolVersion,
) -> Seen {
    rt.block_on(async {
        let (addr, server) = serve_once(server).await;
        let (response, negotiated) = get(addr, client)
            .await
            .expect("client side of the exchange");
        let seen = server
            .await
            .expect("server task")
            .expect("server side of the exchange");
        assert_eq!(negotiated, Some(version));
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains(&format!(
                "hello, client with a {}-byte certificate",
                seen.peer_chain[0].len()
            )),
            "{response}"
        );
        assert!(seen.request.starts_with("GET / HTTP/1.1\r\n"));
        seen
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Logs the daemon in to `token` so that signatures need no PIN source.
fn login(daemon: &Daemon, token: &Token) {
    let answer = daemon
        .client()
        .call(&Request::Login {
            token: Some(token.label().to_owned()),
            pin: Some(Pin::new(USER_PIN.to_owned())),
        })
        .expect("login call");
    assert!(
        matches!(answer, Response::LoggedIn { .. }),
        "login failed: {answer:?}\n{}",
        daemon.log()
    );
}

fn client_config(daemon: &Daemon, id: Option<&str>, trust: &Pki) -> rustls::ClientConfig {
    tls::client_config_for_origin(
        "https://localhost:443",
        roots(&[trust.root_der()]),
        Some(daemon.socket()),
        id.map(str::to_owned),
    )
    .expect("client config")
}

const VERSIONS: [(&SupportedProtocolVersion, ProtocolVersion); 2] = [
    (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
];

#[test]
fn mutual_tls_with_each_key_type_in_tls_1_3_and_1_2() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::with_intermediate("TLS Test Root", "TLS Test Intermediate").expect("pki");
    let token = hsm
        .create_token("tls-keys", USER_PIN, SO_PIN)
        .expect("token");
    token.add_ca_certificates(&pki).expect("CA certificates");
    let identities: Vec<(&str, Provisioned, bool)> = [
        ("RSA-2048", KeyAlg::Rsa2048, true),
        ("P-256", KeyAlg::EcP256, false),
        ("P-384", KeyAlg::EcP384, true),
        ("Ed25519", KeyAlg::Ed25519, false),
    ]
    .into_iter()
    .map(|(name, alg, by_intermediate)| {
        let mut spec = LeafSpec::new(format!("TLS user {name}")).key(alg);
        if by_intermediate {
            spec = spec.issued_by_intermediate();
        }
        let provisioned = token.add_identity(&pki, &spec).expect("identity");
        (name, provisioned, by_intermediate)
    })
    .collect();
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    login(&daemon, &token);
    let rt = runtime();

    for (version, expected) in VERSIONS {
        for (name, identity, by_intermediate) in &identities {
            let client = client_config(&daemon, Some(&identity.fingerprint_hex()), &pki);
            let server = server_config(&pki, roots(&[pki.root_der()]), None, version);
            let seen = exchange(&rt, server, client, expected);
            assert_eq!(
                seen.peer_chain[0].as_ref(),
                identity.cert_der.as_slice(),
                "{name} over {expected:?}: the server saw another certificate"
            );
            // The leaf, then its intermediate from the token; never the root.
            let mut chain = vec![identity.cert_der.as_slice()];
            if *by_intermediate {
                chain.extend(pki.intermediate_der());
            }
            let seen_chain: Vec<&[u8]> = seen.peer_chain.iter().map(|c| c.as_ref()).collect();
            assert_eq!(seen_chain, chain, "{name} over {expected:?}: chain");
        }
    }

    // One client configuration, several handshakes: its resolver and
    // keys keep their agent connection, so the agent greets one client
    // for all of them (each `select` and `sign` on the same connection).
    let hellos = |log: &str| log.matches("request op=\"hello\"").count();
    let (_, p256, _) = &identities[1];
    let client = client_config(&daemon, Some(&p256.fingerprint_hex()), &pki);
    let before = hellos(&daemon.log());
    for _ in 0..3 {
        let server = server_config(&pki, roots(&[pki.root_der()]), None, VERSIONS[0].0);
        let seen = exchange(&rt, server, client.clone(), VERSIONS[0].1);
        assert_eq!(seen.peer_chain[0].as_ref(), p256.cert_der.as_slice());
    }
    assert_eq!(
        hellos(&daemon.log()) - before,
        1,
        "three handshakes, one connection:\n{}",
        daemon.log()
    );
}

#[test]
fn the_servers_ca_list_decides_which_identity_is_sent() {
    let hsm = SoftHsm::new().expect("softhsm");
    let ours = Pki::with_intermediate("Ours Root", "Ours Intermediate").expect("pki");
    let other = Pki::new("Other Root").expect("other pki");
    let token = hsm
        .create_token("tls-select", USER_PIN, SO_PIN)
        .expect("token");
    token.add_ca_certificates(&ours).expect("CA certificates");
    // The agent lists by token, then subject: the foreign identity comes
    // first, then the root's, then the intermediate's.
    let foreign = token
        .add_identity(&other, &LeafSpec::new("A foreign user"))
        .expect("foreign identity");
    let by_root = token
        .add_identity(&ours, &LeafSpec::new("B root user").key(KeyAlg::EcP384))
        .expect("root identity");
    let by_intermediate = token
        .add_identity(
            &ours,
            &LeafSpec::new("C intermediate user").issued_by_intermediate(),
        )
        .expect("intermediate identity");
    let expired = token
        .add_identity(&ours, &LeafSpec::new("0 expired user").expired())
        .expect("expired identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    login(&daemon, &token);
    let rt = runtime();
    let ours_root = ours.root_subject_der().expect("root subject");
    let ours_intermediate = ours
        .intermediate_subject_der()
        .expect("intermediate subject")
        .expect("has an intermediate");

    // The server's certificate always comes from our PKI; `trust` below
    // is whom the server trusts for client certificates. No rule picks
    // an identity, so the application's chooser is asked: it takes the
    // first it is offered, and remembers nothing.
    let resolver = || {
        Arc::new(
            AgentResolver::builder("https://localhost:443")
                .socket(daemon.socket())
                .chooser(Arc::new(|_origin: &str, choices: &[_]| {
                    let first: &p11agent_client::proto::Identity = choices.first()?;
                    Some(UserChoice::Send {
                        id: first.id.clone(),
                        remember: false,
                    })
                }))
                .build(),
        )
    };

    type Case<'a> = (&'a str, &'a Pki, Option<Vec<Vec<u8>>>, &'a Provisioned);
    let cases: Vec<Case<'_>> = vec![
        ("root listed", &ours, None, &by_root),
        (
            "only the intermediate listed",
            &ours,
            Some(vec![ours_intermediate.clone()]),
            &by_intermediate,
        ),
        (
            "root and intermediate listed",
            &ours,
            Some(vec![ours_intermediate, ours_root]),
            &by_root,
        ),
        ("the other CA", &other, None, &foreign),
    ];
    for (version, expected) in VERSIONS {
        for (what, trust, hints, identity) in &cases {
            let resolver = resolver();
            let client = tls::client_config(roots(&[ours.root_der()]), resolver.clone())
                .expect("client config");
            let server = server_config(&ours, roots(&[trust.root_der()]), hints.clone(), version);
            let seen = exchange(&rt, server, client, expected);
            assert_eq!(
                seen.peer_chain[0].as_ref(),
                identity.cert_der.as_slice(),
                "{what} over {expected:?}: wrong identity (resolver: {:?})",
                resolver.last_resolution()
            );
            match resolver.last_resolution() {
                Some(Resolution::Answered(selection)) => {
                    assert_eq!(selection.decision, Decision::Selected);
                    let sent = selection.identity.as_ref().map(|i| i.id.clone());
                    assert_eq!(sent, Some(identity.fingerprint_hex()));
                    // The expired identity is never a candidate; the
                    // handshake did not ask for the list of the others.
                    assert!(!selection
                        .candidates
                        .iter()
                        .any(|c| c.id == expired.fingerprint_hex()));
                    assert!(selection.excluded.is_empty(), "{selection:?}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    // A server that trusts a CA none of the identities comes from gets no
    // certificate, and refuses the connection.
    let stranger = Pki::new("Stranger Root").expect("stranger pki");
    let resolver = resolver();
    let client =
        tls::client_config(roots(&[ours.root_der()]), resolver.clone()).expect("client config");
    let server = server_config(
        &ours,
        roots(&[stranger.root_der()]),
        None,
        &rustls::version::TLS13,
    );
    rt.block_on(async {
        let (addr, server) = serve_once(server).await;
        let client_result = get(addr, client).await;
        let server_result = server.await.expect("server task");
        assert!(server_result.is_err(), "the server accepted no certificate");
        assert!(client_result.is_err(), "the client read an answer");
    });
    match resolver.last_resolution() {
        Some(Resolution::Answered(selection)) => {
            assert_eq!(selection.decision, Decision::None);
            assert!(selection.candidates.is_empty());
            for identity in [&foreign, &by_root, &by_intermediate] {
                let excluded = selection
                    .excluded
                    .iter()
                    .find(|e| e.id == identity.fingerprint_hex())
                    .expect("excluded");
                assert_eq!(
                    excluded.reasons,
                    [p11agent_client::proto::Reason::IssuerNotAccepted]
                );
            }
        }
        other => panic!("expected no identity to be sent, got {other:?}"),
    }
}

#[test]
fn the_applications_choice_is_remembered_for_its_origin() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Choice Root").expect("pki");
    let token = hsm
        .create_token("tls-choice", USER_PIN, SO_PIN)
        .expect("token");
    token
        .add_identity(&pki, &LeafSpec::new("A first"))
        .expect("first identity");
    let second = token
        .add_identity(&pki, &LeafSpec::new("B second"))
        .expect("second identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    login(&daemon, &token);
    let rt = runtime();

    // The application's chooser: counts questions, answers `answer`.
    let asked = Arc::new(AtomicUsize::new(0));
    let resolver = |origin: &str, answer: Option<UserChoice>| {
        let asked = asked.clone();
        Arc::new(
            AgentResolver::builder(origin)
                .socket(daemon.socket())
                .chooser(Arc::new(move |_origin: &str, choices: &[_]| {
                    asked.fetch_add(1, Ordering::SeqCst);
                    let _: &[p11agent_client::proto::Identity] = choices;
                    answer.clone()
                }))
                .build(),
        )
    };
    let pick_second = Some(UserChoice::Send {
        id: second.fingerprint_hex(),
        remember: true,
    });
    let connect = |resolver: Arc<AgentResolver>| {
        let client = tls::client_config(roots(&[pki.root_der()]), resolver).expect("client config");
        let server = server_config(
            &pki,
            roots(&[pki.root_der()]),
            None,
            &rustls::version::TLS13,
        );
        exchange(&rt, server, client, ProtocolVersion::TLSv1_3)
    };

    // First connection: the user is asked and picks the second identity.
    let seen = connect(resolver("https://localhost:443", pick_second.clone()));
    assert_eq!(seen.peer_chain[0].as_ref(), second.cert_der.as_slice());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Next connection to the same origin: not asked, same identity.
    let seen = connect(resolver("https://localhost", None));
    assert_eq!(seen.peer_chain[0].as_ref(), second.cert_der.as_slice());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Another origin (port): asked again.
    let seen = connect(resolver("https://localhost:8443", pick_second));
    assert_eq!(seen.peer_chain[0].as_ref(), second.cert_der.as_slice());
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // "Send none", remembered: nothing is sent, and nobody is asked again.
    let declined = || {
        let resolver = resolver(
            "https://localhost:9443",
            Some(UserChoice::SendNone { remember: true }),
        );
        let client =
            tls::client_config(roots(&[pki.root_der()]), resolver.clone()).expect("client config");
        let server = server_config(
            &pki,
            roots(&[pki.root_der()]),
            None,
            &rustls::version::TLS13,
        );
        rt.block_on(async {
            let (addr, server) = serve_once(server).await;
            let _ = get(addr, client).await;
            assert!(server.await.expect("server task").is_err());
        });
        resolver.last_resolution()
    };
    match declined() {
        Some(Resolution::Answered(selection)) => {
            assert_eq!(selection.decision, Decision::Declined)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    match declined() {
        Some(Resolution::Answered(selection)) => assert_eq!(
            (selection.decision, selection.basis),
            (
                Decision::Declined,
                p11agent_client::proto::Basis::Remembered
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.load(Ordering::SeqCst), 3);
}
