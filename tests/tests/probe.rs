//! `probe`: what TLS servers ask of a client certificate, seen without
//! sending one — against `openssl s_server` and rustls servers, in TLS
//! 1.3 and 1.2.

use std::io::Read as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use p11agent_client::tls::probe::{probe, Outcome, Probe, ProbeError, ProbeOptions, ProbeVersion};
use p11agent_client::tls::rustls::client::danger::HandshakeSignatureValid;
use p11agent_client::tls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};
use p11agent_client::tls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use p11agent_client::tls::rustls::server::{NoClientAuth, WebPkiClientVerifier};
use p11agent_client::tls::rustls::{
    self, AlertDescription, DigitallySignedStruct, DistinguishedName, PeerIncompatible,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme, StreamOwned,
    SupportedProtocolVersion,
};
use p11agent_client::tls::{self};
use p11agent_proto::dn::name_to_string;
use p11agent_softhsm::Pki;
use p11agent_tests::{free_port, have_openssl, OpensslServer};

const VERSIONS: [(ProbeVersion, &str); 2] = [
    (ProbeVersion::Tls13, "TLSv1.3"),
    (ProbeVersion::Tls12, "TLSv1.2"),
];

fn options(version: ProbeVersion) -> ProbeOptions {
    ProbeOptions {
        server_name: Some("localhost".to_owned()),
        timeout: Duration::from_secs(20),
        version,
    }
}

fn probe_local(port: u16, version: ProbeVersion) -> Probe {
    probe("127.0.0.1", port, &options(version)).expect("probe")
}

// --- openssl s_server --------------------------------------------------

/// A temp dir with the server's certificate and key (`srv.pem`,
/// `srv.key`) from `server_pki`, and `client_cas.pem` holding the roots
/// of `client_cas` in order.
fn server_dir(server_pki: &Pki, client_cas: &[&Pki]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_pki.localhost_server().expect("server certificate");
    std::fs::write(dir.path().join("srv.pem"), &server.chain_pem).expect("srv.pem");
    std::fs::write(dir.path().join("srv.key"), &server.key_pem).expect("srv.key");
    let bundle: String = client_cas.iter().map(|p| p.root_pem()).collect();
    std::fs::write(dir.path().join("client_cas.pem"), bundle).expect("client_cas.pem");
    dir
}

fn subject(pki: &Pki) -> Vec<u8> {
    pki.root_subject_der().expect("root subject")
}

#[test]
fn openssl_server_that_requires_a_certificate_names_both_cas() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let one = Pki::new("Probe Client CA One").expect("pki");
    let two = Pki::new("Probe Client CA Two").expect("pki");
    let dir = server_dir(&server_pki, &[&one, &two]);
    let cas = dir.path().join("client_cas.pem");
    let server = OpensslServer::start(
        dir.path(),
        &["-CAfile", cas.to_str().expect("utf-8 path"), "-Verify", "1"],
    );

    for (version, protocol) in VERSIONS {
        let seen = probe_local(server.port(), version);
        let context = format!("{protocol}: {seen:#?}\n--- s_server\n{}", server.log());
        assert_eq!(seen.protocol, protocol, "{context}");
        assert!(seen.certificate_requested, "{context}");
        assert_eq!(
            seen.ca_names,
            vec![subject(&one), subject(&two)],
            "{context}"
        );
        assert!(!seen.schemes.is_empty(), "{context}");
        assert!(
            matches!(seen.outcome, Outcome::Refused { alert: Some(_) }),
            "{context}"
        );
        assert_eq!(
            seen.server_chain_subjects,
            vec!["CN=localhost"],
            "{context}"
        );
        assert!(!seen.cipher_suite.is_empty(), "{context}");
        // The names read as the agent's store writes them.
        let names: Vec<String> = seen.ca_names.iter().map(|n| name_to_string(n)).collect();
        assert_eq!(names, vec![one.root_subject(), two.root_subject()]);
        if version == ProbeVersion::Tls13 {
            assert_eq!(
                seen.outcome,
                Outcome::Refused {
                    alert: Some(AlertDescription::CertificateRequired)
                },
                "{context}"
            );
            // rustls keeps no TLS 1.3-forbidden scheme.
            assert!(
                !seen.schemes.contains(&SignatureScheme::RSA_PKCS1_SHA256),
                "{context}"
            );
        }
    }
    // Without a version choice, TLS 1.3 wins.
    let seen = probe_local(server.port(), ProbeVersion::Any);
    assert_eq!(seen.protocol, "TLSv1.3");
    assert!(seen.certificate_requested);
}

#[test]
fn openssl_server_with_optional_certificates_carries_on_without_one() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let client_ca = Pki::new("Probe Optional CA").expect("pki");
    let dir = server_dir(&server_pki, &[&client_ca]);
    let cas = dir.path().join("client_cas.pem");
    let server = OpensslServer::start(
        dir.path(),
        &["-CAfile", cas.to_str().expect("utf-8 path"), "-verify", "1"],
    );
    for (version, protocol) in VERSIONS {
        let seen = probe_local(server.port(), version);
        let context = format!("{protocol}: {seen:#?}\n--- s_server\n{}", server.log());
        assert!(seen.certificate_requested, "{context}");
        assert_eq!(seen.ca_names, vec![subject(&client_ca)], "{context}");
        assert_eq!(seen.outcome, Outcome::Accepted, "{context}");
    }
}

#[test]
fn openssl_server_without_client_authentication_asks_nothing() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let dir = server_dir(&server_pki, &[]);
    let server = OpensslServer::start::<&str>(dir.path(), &[]);
    for (version, protocol) in VERSIONS {
        let seen = probe_local(server.port(), version);
        let context = format!("{protocol}: {seen:#?}\n--- s_server\n{}", server.log());
        assert_eq!(seen.protocol, protocol, "{context}");
        assert!(!seen.certificate_requested, "{context}");
        assert!(
            seen.ca_names.is_empty() && seen.schemes.is_empty(),
            "{context}"
        );
        assert_eq!(seen.outcome, Outcome::Accepted, "{context}");
        assert_eq!(
            seen.server_chain_subjects,
            vec!["CN=localhost"],
            "{context}"
        );
    }
}

// --- rustls servers ----------------------------------------------------

/// A client-certificate verifier with chosen hints, schemes and
/// strictness; it never sees a certificate, since the probe sends none.
#[derive(Debug)]
struct Asking {
    hints: Vec<DistinguishedName>,
    schemes: Vec<SignatureScheme>,
    mandatory: bool,
}

impl ClientCertVerifier for Asking {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::General("not expected in these tests".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not expected in these tests".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not expected in these tests".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// A rustls server config speaking only `version`, with `server_pki`'s
/// localhost certificate and `verifier` for clients.
fn rustls_config(
    server_pki: &Pki,
    verifier: Arc<dyn ClientCertVerifier>,
    version: ProbeVersion,
) -> Arc<ServerConfig> {
    let version: &'static SupportedProtocolVersion = match version {
        ProbeVersion::Tls12 => &rustls::version::TLS12,
        _ => &rustls::version::TLS13,
    };
    let server = server_pki.localhost_server().expect("server certificate");
    let config = ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.cert_der)],
            PrivatePkcs8KeyDer::from(server.key_der).into(),
        )
        .expect("server config");
    Arc::new(config)
}

/// Serves one connection on 127.0.0.1 in a thread (until the client
/// closes it, or an error), then ends.
fn serve_once(config: Arc<ServerConfig>) -> (u16, JoinHandle<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, tcp);
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    (port, handle)
}

/// Probes a fresh rustls server made from `config` and returns what the
/// probe saw and how the server ended.
fn probe_rustls(config: Arc<ServerConfig>, version: ProbeVersion) -> (Probe, Result<(), String>) {
    let (port, server) = serve_once(config);
    let seen = probe_local(port, version);
    (seen, server.join().expect("server thread"))
}

#[test]
fn rustls_server_with_a_webpki_verifier_names_its_root() {
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let client_ca = Pki::new("Probe Rustls Client CA").expect("pki");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(client_ca.root_der().to_vec()))
        .expect("root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .expect("client verifier");
    // What the server offers: ring's verification schemes. rustls shows
    // all of them in TLS 1.2 and drops RSA PKCS#1 v1.5 in TLS 1.3.
    let offered = verifier.supported_verify_schemes();
    assert!(offered.contains(&SignatureScheme::RSA_PKCS1_SHA256));

    for (version, protocol) in VERSIONS {
        let config = rustls_config(&server_pki, verifier.clone(), version);
        let (seen, server) = probe_rustls(config, version);
        let context = format!("{protocol}: {seen:#?}\n--- server: {server:?}");
        assert_eq!(seen.protocol, protocol, "{context}");
        assert!(seen.certificate_requested, "{context}");
        assert_eq!(seen.ca_names, vec![subject(&client_ca)], "{context}");
        assert!(
            server.is_err(),
            "the server accepted no certificate: {context}"
        );
        let expected: Vec<SignatureScheme> = match version {
            ProbeVersion::Tls12 => offered.clone(),
            _ => offered
                .iter()
                .copied()
                .filter(|s| {
                    !matches!(
                        s,
                        SignatureScheme::RSA_PKCS1_SHA256
                            | SignatureScheme::RSA_PKCS1_SHA384
                            | SignatureScheme::RSA_PKCS1_SHA512
                    )
                })
                .collect(),
        };
        assert_eq!(seen.schemes, expected, "{context}");
        match version {
            ProbeVersion::Tls12 => assert!(
                matches!(seen.outcome, Outcome::Refused { alert: Some(_) }),
                "{context}"
            ),
            _ => assert_eq!(
                seen.outcome,
                Outcome::Refused {
                    alert: Some(AlertDescription::CertificateRequired)
                },
                "{context}"
            ),
        }
    }
}

#[test]
fn rustls_server_without_hints_asks_for_any_certificate() {
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let verifier = Arc::new(Asking {
        hints: Vec::new(),
        schemes: vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ED25519,
        ],
        mandatory: true,
    });
    for (version, protocol) in VERSIONS {
        let config = rustls_config(&server_pki, verifier.clone(), version);
        let (seen, server) = probe_rustls(config, version);
        let context = format!("{protocol}: {seen:#?}\n--- server: {server:?}");
        assert!(seen.certificate_requested, "{context}");
        assert!(seen.ca_names.is_empty(), "{context}");
        assert_eq!(
            seen.schemes,
            vec![
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ED25519
            ],
            "{context}"
        );
        assert!(
            matches!(seen.outcome, Outcome::Refused { alert: Some(_) }),
            "{context}"
        );
    }
}

#[test]
fn rustls_server_with_optional_certificates_and_without_client_auth() {
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let hint = subject(&Pki::new("Probe Optional Hint").expect("pki"));
    let optional = Arc::new(Asking {
        hints: vec![DistinguishedName::from(hint.clone())],
        schemes: vec![SignatureScheme::ED25519],
        mandatory: false,
    });
    for (version, protocol) in VERSIONS {
        let config = rustls_config(&server_pki, optional.clone(), version);
        let (seen, server) = probe_rustls(config, version);
        let context = format!("{protocol}: {seen:#?}\n--- server: {server:?}");
        assert!(seen.certificate_requested, "{context}");
        assert_eq!(seen.ca_names, vec![hint.clone()], "{context}");
        assert_eq!(seen.outcome, Outcome::Accepted, "{context}");
        assert!(server.is_ok(), "{context}");

        let config = rustls_config(&server_pki, Arc::new(NoClientAuth), version);
        let (seen, server) = probe_rustls(config, version);
        let context = format!("{protocol}: {seen:#?}\n--- server: {server:?}");
        assert!(!seen.certificate_requested, "{context}");
        assert_eq!(seen.outcome, Outcome::Accepted, "{context}");
        assert!(server.is_ok(), "{context}");
    }
}

#[test]
fn rustls_filters_the_requested_schemes_per_version() {
    let server_pki = Pki::new("Probe Server Root").expect("pki");
    let brainpool = SignatureScheme::from(0x081a);
    let verifier = Arc::new(Asking {
        hints: Vec::new(),
        schemes: vec![
            SignatureScheme::RSA_PKCS1_SHA256,
            brainpool,
            SignatureScheme::ED25519,
            SignatureScheme::ECDSA_SHA1_Legacy,
        ],
        mandatory: true,
    });
    // TLS 1.3: PKCS#1 v1.5 and SHA-1 are dropped, unknown code points pass.
    let (seen, _) = probe_rustls(
        rustls_config(&server_pki, verifier.clone(), ProbeVersion::Tls13),
        ProbeVersion::Tls13,
    );
    assert_eq!(
        seen.schemes,
        vec![brainpool, SignatureScheme::ED25519],
        "{seen:#?}"
    );
    // TLS 1.2: only schemes rustls can name for TLS 1.2 (a rustls server
    // leaves the brainpool one out itself).
    let (seen, _) = probe_rustls(
        rustls_config(&server_pki, verifier, ProbeVersion::Tls12),
        ProbeVersion::Tls12,
    );
    assert_eq!(
        seen.schemes,
        vec![
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::ED25519,
            SignatureScheme::ECDSA_SHA1_Legacy
        ],
        "{seen:#?}"
    );

    // A TLS 1.3 request with no scheme left: rustls aborts without
    // showing it; the probe still reports a request.
    let pkcs1_only = Arc::new(Asking {
        hints: vec![DistinguishedName::from(subject(&server_pki))],
        schemes: vec![SignatureScheme::RSA_PKCS1_SHA256],
        mandatory: true,
    });
    let (seen, server) = probe_rustls(
        rustls_config(&server_pki, pkcs1_only.clone(), ProbeVersion::Tls13),
        ProbeVersion::Tls13,
    );
    assert!(seen.certificate_requested, "{seen:#?}");
    assert!(
        seen.schemes.is_empty() && seen.ca_names.is_empty(),
        "{seen:#?}"
    );
    assert_eq!(
        seen.outcome,
        Outcome::Failed(rustls::Error::PeerIncompatible(
            PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon
        )),
        "{seen:#?}"
    );
    assert!(server.is_err());
    // The same server in TLS 1.2 shows the request.
    let (seen, _) = probe_rustls(
        rustls_config(&server_pki, pkcs1_only, ProbeVersion::Tls12),
        ProbeVersion::Tls12,
    );
    assert_eq!(seen.schemes, vec![SignatureScheme::RSA_PKCS1_SHA256]);
    assert_eq!(seen.ca_names, vec![subject(&server_pki)]);
}

// --- servers that cannot be asked --------------------------------------

#[test]
fn servers_that_cannot_be_asked_are_errors() {
    // Nothing listens.
    let port = free_port();
    let err = probe("127.0.0.1", port, &options(ProbeVersion::Any)).expect_err("no server");
    assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");

    // A server that closes at once.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let closer = std::thread::spawn(move || drop(listener.accept()));
    let err = probe("127.0.0.1", port, &options(ProbeVersion::Any)).expect_err("closed");
    assert!(matches!(err, ProbeError::Closed), "{err:?}");
    closer.join().expect("closer");

    // A server that says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let quiet = ProbeOptions {
        timeout: Duration::from_millis(500),
        ..options(ProbeVersion::Any)
    };
    let err = probe("127.0.0.1", port, &quiet).expect_err("silent");
    assert!(matches!(err, ProbeError::Timeout(_)), "{err:?}");
    drop(listener);

    // A server that is not TLS.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let talker = std::thread::spawn(move || {
        use std::io::Write as _;
        if let Ok((mut tcp, _)) = listener.accept() {
            let _ = tcp.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
            let _ = tcp.read(&mut [0u8; 4096]);
        }
    });
    let err = probe("127.0.0.1", port, &options(ProbeVersion::Any)).expect_err("not TLS");
    assert!(matches!(err, ProbeError::Handshake(_)), "{err:?}");
    talker.join().expect("talker");

    let err = probe(
        "127.0.0.1",
        1,
        &ProbeOptions {
            server_name: Some("not a name!".to_owned()),
            ..ProbeOptions::default()
        },
    )
    .expect_err("bad name");
    assert!(matches!(err, ProbeError::InvalidServerName(_)), "{err:?}");
}
