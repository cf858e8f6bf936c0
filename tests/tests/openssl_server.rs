//! `p11agent get` against `openssl s_server -www`, a TLS server that is
//! not rustls and that requires a client certificate.

use std::path::Path;
use std::process::Command;

use p11agent_client::proto::{Pin, Request, Response};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm, Token};
use p11agent_tests::{describe, have_openssl, Daemon, OpensslServer};

const USER_PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// `s_server` requiring a client certificate from `client_ca.pem` in
/// `dir`.
fn verifying_server(dir: &Path) -> OpensslServer {
    let client_ca = dir.join("client_ca.pem");
    OpensslServer::start(
        dir,
        &[
            "-CAfile".as_ref(),
            client_ca.as_os_str(),
            "-Verify".as_ref(),
            "1".as_ref(),
            "-verify_return_error".as_ref(),
        ],
    )
}

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
        "login failed: {answer:?}"
    );
}

/// Writes the server's files: its chain and key from `server_pki`, the
/// client CA file from `client_ca`, and `root.pem` (what the client
/// trusts for the server).
fn write_server_files(dir: &Path, server_pki: &Pki, client_ca: &Pki) {
    let server = server_pki.localhost_server().expect("server certificate");
    std::fs::write(dir.join("srv.pem"), &server.chain_pem).expect("srv.pem");
    std::fs::write(dir.join("srv.key"), &server.key_pem).expect("srv.key");
    std::fs::write(dir.join("client_ca.pem"), client_ca.root_pem()).expect("client_ca.pem");
    std::fs::write(dir.join("root.pem"), server_pki.root_pem()).expect("root.pem");
}

#[test]
fn get_sends_rsa_and_ec_identities_to_openssl() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let hsm = SoftHsm::new().expect("softhsm");
    let pki =
        Pki::with_intermediate("OpenSSL Test Root", "OpenSSL Test Intermediate").expect("pki");
    let token = hsm
        .create_token("openssl-keys", USER_PIN, SO_PIN)
        .expect("token");
    let rsa = token
        .add_identity(
            &pki,
            &LeafSpec::new("Rsa Openssl User").key(KeyAlg::Rsa2048),
        )
        .expect("rsa identity");
    let ec = token
        .add_identity(
            &pki,
            &LeafSpec::new("Ec Openssl User")
                .key(KeyAlg::EcP384)
                .issued_by_intermediate(),
        )
        .expect("ec identity");
    let dir = tempfile::tempdir().expect("tempdir");
    // An auto-select rule names the EC identity for localhost; without a
    // rule nothing would be sent unasked.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "auto_select = [{ pattern = \"https://localhost\", \
         filter = { SUBJECT = { CN = \"Ec Openssl User\" } } }]\n",
    )
    .expect("config");
    // The intermediate is not on the token: the agent finds it in its CA
    // folder and sends it after the EC leaf.
    let cas = dir.path().join("cas");
    std::fs::create_dir(&cas).expect("mkdir");
    std::fs::write(
        cas.join("intermediate.pem"),
        pki.intermediate_pem().expect("intermediate"),
    )
    .expect("intermediate");
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--ca-dir".as_ref(),
            cas.as_os_str(),
        ],
        hsm.env(),
    );
    login(&daemon, &token);

    write_server_files(dir.path(), &pki, &pki);
    // What the client trusts for the server, whose certificate (issued by
    // the intermediate) s_server sends without its chain.
    let ca_file = dir.path().join("root.pem");
    let mut bundle = pki.root_pem();
    bundle.push_str(&pki.intermediate_pem().expect("intermediate"));
    std::fs::write(&ca_file, bundle).expect("ca file");
    let server = verifying_server(dir.path());
    let url = server.url();
    let ca = ca_file.to_str().expect("utf-8 path");

    for (cn, id) in [
        ("Rsa Openssl User", rsa.fingerprint_hex()),
        ("Ec Openssl User", ec.fingerprint_hex()),
    ] {
        let out = daemon.cli(&["get", &url, "--ca-file", ca, "--id", &id]);
        assert!(
            out.status.success(),
            "get with {cn}: {}\n--- s_server\n{}\n--- daemon\n{}",
            describe(&out),
            server.log(),
            daemon.log()
        );
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.contains(&format!("CN={cn}")) || page.contains(&format!("CN = {cn}")),
            "s_server did not report {cn} as the client certificate:\n{page}"
        );
    }

    // `p11agent sign` makes signatures openssl verifies.
    sign_and_verify(&daemon, dir.path(), &rsa, "rsa_pkcs1_sha256", &["-sha256"]);
    sign_and_verify(
        &daemon,
        dir.path(),
        &rsa,
        "rsa_pss_rsae_sha384",
        &[
            "-sha384",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:48",
        ],
    );
    sign_and_verify(
        &daemon,
        dir.path(),
        &ec,
        "ecdsa_secp384r1_sha384",
        &["-sha384"],
    );
    let out = daemon.cli(&[
        "sign",
        "--id",
        &ec.fingerprint_hex(),
        "--scheme",
        "ecdsa_p384",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ecdsa_secp384r1_sha384"), "{stderr}");

    // Without --id, the auto-select rule picks the EC identity;
    // --include shows the status line.
    let out = daemon.cli(&["get", &url, "--ca-file", ca, "--include"]);
    assert!(out.status.success(), "{}", describe(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
    assert!(page.contains("Ec Openssl User"), "{page}");

    // Without --ca-file the system roots do not know the test CA: the
    // message blames the server's certificate, not the client's.
    let out = daemon.cli(&["get", &url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server's certificate is not trusted") && stderr.contains("--ca-file"),
        "{stderr}"
    );
}

/// Signs a message with `p11agent sign` (the signature on stdout) and
/// checks it with `openssl dgst -verify` and `digest_args`.
fn sign_and_verify(
    daemon: &Daemon,
    dir: &Path,
    identity: &p11agent_softhsm::Provisioned,
    scheme: &str,
    digest_args: &[&str],
) {
    let message = dir.join("message.txt");
    std::fs::write(&message, p11agent_tests::tls13_input(b"a transcript")).expect("message");
    let out = daemon.cli(&[
        "sign",
        "--id",
        &identity.fingerprint_hex()[..16],
        "--scheme",
        scheme,
        "--in",
        message.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "sign {scheme}: {}", describe(&out));
    let signature = dir.join("signature.bin");
    std::fs::write(&signature, &out.stdout).expect("signature");
    let cert = dir.join("signer.pem");
    std::fs::write(&cert, identity.cert_pem()).expect("signer.pem");
    let public = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl x509");
    assert!(public.status.success(), "{}", describe(&public));
    let public_key = dir.join("signer.pub.pem");
    std::fs::write(&public_key, &public.stdout).expect("public key");
    let verify = Command::new("openssl")
        .arg("dgst")
        .args(digest_args)
        .arg("-verify")
        .arg(&public_key)
        .arg("-signature")
        .arg(&signature)
        .arg(&message)
        .output()
        .expect("openssl dgst");
    assert!(
        verify.status.success(),
        "openssl rejects the {scheme} signature: {}",
        describe(&verify)
    );
}

#[test]
fn get_explains_a_refused_client_certificate() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("OpenSSL Server Root").expect("pki");
    let other = Pki::new("OpenSSL Client Root").expect("client pki");
    let token = hsm
        .create_token("openssl-none", USER_PIN, SO_PIN)
        .expect("token");
    let mine = token
        .add_identity(&pki, &LeafSpec::new("Unwanted User"))
        .expect("identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    login(&daemon, &token);

    let dir = tempfile::tempdir().expect("tempdir");
    // The server only accepts client certificates from the other CA.
    write_server_files(dir.path(), &pki, &other);
    let server = verifying_server(dir.path());
    let ca = dir.path().join("root.pem");
    let ca = ca.to_str().expect("utf-8 path");

    let out = daemon.cli(&["get", &server.url(), "--ca-file", ca]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr.contains("refused the client certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("sent no certificate"), "{stderr}");
    assert!(stderr.contains("issuer_not_accepted"), "{stderr}");
    assert!(stderr.contains("p11agent explain --origin"), "{stderr}");

    // Forcing the identity sends it, and the server's refusal names it.
    let out = daemon.cli(&[
        "get",
        &server.url(),
        "--ca-file",
        ca,
        "--id",
        &mine.fingerprint_hex(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr.contains("refused the client certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("CN=Unwanted User"), "{stderr}");
    assert!(stderr.contains("p11agent explain --origin"), "{stderr}");
}

#[test]
fn each_server_gets_the_certificate_it_accepts_and_probe_shows_why() {
    if !have_openssl() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let hsm = SoftHsm::new().expect("softhsm");
    let a = Pki::new("Server A Client Root").expect("pki a");
    let b = Pki::new("Server B Client Root").expect("pki b");
    let token = hsm
        .create_token("two-servers", USER_PIN, SO_PIN)
        .expect("token");
    let from_a = token
        .add_identity(&a, &LeafSpec::new("User of A"))
        .expect("identity a");
    let from_b = token
        .add_identity(&b, &LeafSpec::new("User of B").key(KeyAlg::Rsa2048))
        .expect("identity b");
    let dir = tempfile::tempdir().expect("tempdir");
    // Each server has exactly one candidate; this origin may get it.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "send_when_single_candidate = [\"https://localhost\"]\n",
    )
    .expect("config");
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        hsm.env(),
    );
    login(&daemon, &token);

    let servers: Vec<(tempfile::TempDir, OpensslServer)> = [&a, &b]
        .into_iter()
        .map(|client_ca| {
            let dir = tempfile::tempdir().expect("tempdir");
            write_server_files(dir.path(), &a, client_ca);
            let server = verifying_server(dir.path());
            (dir, server)
        })
        .collect();
    let ca = servers[0].0.path().join("root.pem");
    let ca = ca.to_str().expect("utf-8 path");
    for ((_, server), (cn, other)) in servers
        .iter()
        .zip([("User of A", "User of B"), ("User of B", "User of A")])
    {
        let out = daemon.cli(&["get", &server.url(), "--ca-file", ca]);
        assert!(
            out.status.success(),
            "{}\n--- s_server\n{}",
            describe(&out),
            server.log()
        );
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.contains(&format!("CN = {cn}")) || page.contains(&format!("CN={cn}")),
            "{page}"
        );
        assert!(!page.contains(other), "{page}");
    }

    // probe shows server A's request and the local decision.
    let (_, server_a) = &servers[0];
    let target = format!("localhost:{}", server_a.port());
    let out = daemon.cli(&["probe", &target]);
    assert!(out.status.success(), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "The server asks for a client certificate; without one it refuses",
        "Acceptable client certificate CA names (1):\n  CN=Server A Client Root\n",
        "Requested signature schemes: ",
        "ecdsa_secp256r1_sha256",
        &format!("→ {} CN=User of A", &from_a.fingerprint_hex()[..16]),
        &format!("✗ {} CN=User of B", &from_b.fingerprint_hex()[..16]),
        "issuer_not_accepted: issued by CN=Server B Client Root",
    ] {
        assert!(report.contains(needle), "{needle:?} missing:\n{report}");
    }
    let json = daemon.cli_json(&["probe", &target, "--json", "--tls12"]);
    assert_eq!(json["protocol"], "TLSv1.2");
    assert_eq!(json["certificate_requested"], true);
    assert_eq!(
        json["ca_names"],
        serde_json::json!(["CN=Server A Client Root"])
    );
    assert_eq!(json["selection"]["decision"], "selected");
    assert_eq!(
        json["selection"]["identity"]["id"],
        from_a.fingerprint_hex()
    );

    // A server that asks for nothing.
    let plain_dir = tempfile::tempdir().expect("tempdir");
    write_server_files(plain_dir.path(), &a, &a);
    let plain = OpensslServer::start::<&str>(plain_dir.path(), &[]);
    let json = daemon.cli_json(&["probe", &format!("127.0.0.1:{}", plain.port()), "--json"]);
    assert_eq!(json["certificate_requested"], false);
    assert!(json["selection"].is_null());
}
