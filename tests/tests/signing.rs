//! Signatures through the agent, checked by an independent verifier
//! (openssl, which never sees the token): every scheme for every key
//! type, refusals, PIN handling, and concurrent clients on two tokens.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use p11agent_client::{Client, ClientError};
use p11agent_proto::{ErrorCode, Request, Response, Scheme};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use p11agent_tests::{describe, pin_file, tls13_input, Daemon};

const PIN: &str = "246810";
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

/// Verifies `signature` over [`tls13_input`] of `message` under `scheme`
/// with the public key of `cert_pem`, using openssl.
fn openssl_verifies(
    dir: &Path,
    cert_pem: &str,
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> bool {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tag = format!(
        "{}-{}",
        scheme.as_str(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let cert = dir.join(format!("{tag}.crt"));
    let key = dir.join(format!("{tag}.pub"));
    let msg = dir.join(format!("{tag}.msg"));
    let sig = dir.join(format!("{tag}.sig"));
    std::fs::write(&cert, cert_pem).expect("write cert");
    std::fs::write(&msg, tls13_input(message)).expect("write msg");
    std::fs::write(&sig, signature).expect("write sig");
    let out = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl x509");
    std::fs::write(&key, &out.stdout).expect("write pub");
    let digest = match scheme {
        Scheme::RsaPkcs1Sha256 | Scheme::RsaPssRsaeSha256 | Scheme::EcdsaSecp256r1Sha256 => {
            "-sha256"
        }
        Scheme::RsaPkcs1Sha384 | Scheme::RsaPssRsaeSha384 | Scheme::EcdsaSecp384r1Sha384 => {
            "-sha384"
        }
        Scheme::RsaPkcs1Sha512 | Scheme::RsaPssRsaeSha512 | Scheme::EcdsaSecp521r1Sha512 => {
            "-sha512"
        }
        Scheme::Ed25519 => "",
        other => panic!("no openssl digest option known for {other}"),
    };
    let mut cmd = Command::new("openssl");
    if scheme == Scheme::Ed25519 {
        cmd.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&key)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig);
    } else {
        cmd.args(["dgst", digest, "-verify"])
            .arg(&key)
            .arg("-signature")
            .arg(&sig);
        if matches!(
            scheme,
            Scheme::RsaPssRsaeSha256 | Scheme::RsaPssRsaeSha384 | Scheme::RsaPssRsaeSha512
        ) {
            // TLS fixes the salt length to the digest length.
            cmd.args([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ]);
        }
        cmd.arg(&msg);
    }
    cmd.output().expect("openssl verify").status.success()
}

fn start(hsm: &SoftHsm, module: &Path, extra: &[&OsStr]) -> Daemon {
    let mut args: Vec<&OsStr> = vec!["--module".as_ref(), module.as_os_str()];
    args.extend_from_slice(extra);
    Daemon::start_with_args(&args, hsm.env())
}

/// Signs [`tls13_input`] of `message`: what the default purpose binding
/// lets through.
fn sign(
    client: &mut Client,
    id: &str,
    scheme: Scheme,
    message: &[u8],
) -> Result<Vec<u8>, ClientError> {
    client.sign(id, scheme, &tls13_input(message))
}

fn agent_code(result: Result<Vec<u8>, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Agent { code, .. }) => code,
        other => panic!("expected an agent error, got {other:?}"),
    }
}

#[test]
fn every_scheme_for_every_key_type_verifies_independently() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Signing Root").expect("pki");
    let token = hsm.create_token("signer", PIN, "12345678").expect("token");
    let cases: Vec<(Provisioned, Vec<Scheme>)> = vec![
        (
            token
                .add_identity(&pki, &LeafSpec::new("RSA Signer").key(KeyAlg::Rsa2048))
                .expect("rsa"),
            vec![
                Scheme::RsaPkcs1Sha256,
                Scheme::RsaPkcs1Sha384,
                Scheme::RsaPkcs1Sha512,
                Scheme::RsaPssRsaeSha256,
                Scheme::RsaPssRsaeSha384,
                Scheme::RsaPssRsaeSha512,
            ],
        ),
        (
            token
                .add_identity(&pki, &LeafSpec::new("P256 Signer").key(KeyAlg::EcP256))
                .expect("p256"),
            vec![Scheme::EcdsaSecp256r1Sha256],
        ),
        (
            token
                .add_identity(&pki, &LeafSpec::new("P384 Signer").key(KeyAlg::EcP384))
                .expect("p384"),
            vec![Scheme::EcdsaSecp384r1Sha384],
        ),
        (
            token
                .add_identity(&pki, &LeafSpec::new("P521 Signer").key(KeyAlg::EcP521))
                .expect("p521"),
            vec![Scheme::EcdsaSecp521r1Sha512],
        ),
        (
            token
                .add_identity(&pki, &LeafSpec::new("Ed Signer").key(KeyAlg::Ed25519))
                .expect("ed25519"),
            vec![Scheme::Ed25519],
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = pin_file(dir.path(), PIN);
    let daemon = start(
        &hsm,
        hsm.module_path(),
        &["--pin-file".as_ref(), pin.as_os_str()],
    );
    let mut client = daemon.client();

    let message = b"TLS 1.3, client CertificateVerify\x00 transcript hash stand-in";
    for (identity, schemes) in &cases {
        let id = identity.fingerprint_hex();
        let listed = client.show(&id).expect("show").identity;
        let mut advertised = listed.schemes.clone();
        advertised.sort();
        let mut expected = schemes.clone();
        expected.sort();
        assert_eq!(advertised, expected, "schemes of {}", listed.subject);

        for &scheme in schemes {
            let signature = sign(&mut client, &id, scheme, message)
                .unwrap_or_else(|e| panic!("{} {scheme}: {e}\n{}", listed.subject, daemon.log()));
            assert!(
                openssl_verifies(
                    dir.path(),
                    &identity.cert_pem(),
                    scheme,
                    message,
                    &signature
                ),
                "{scheme} signature by {} does not verify",
                listed.subject
            );
            // A signature over another message must not verify: the
            // verifier really checks.
            assert!(!openssl_verifies(
                dir.path(),
                &identity.cert_pem(),
                scheme,
                b"other",
                &signature
            ));
        }
        // Schemes the key cannot make are refused, never answered wrongly.
        for scheme in Scheme::ALL.into_iter().filter(|s| !schemes.contains(s)) {
            assert_eq!(
                agent_code(sign(&mut client, &id, scheme, message)),
                ErrorCode::UnsupportedScheme,
                "{scheme} with {}",
                listed.subject
            );
        }
    }

    // The command line signs too, through pipes.
    let (rsa, _) = &cases[0];
    let out = Command::new(p11agent_tests::p11agent_bin())
        .args([
            "sign",
            "--id",
            &rsa.fingerprint_hex(),
            "--scheme",
            "rsa_pss_rsae_sha256",
            "--in",
            "-",
            "--out",
            "-",
            "--socket",
        ])
        .arg(daemon.socket())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&tls13_input(message))?;
            child.wait_with_output()
        })
        .expect("p11agent sign");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(openssl_verifies(
        dir.path(),
        &rsa.cert_pem(),
        Scheme::RsaPssRsaeSha256,
        message,
        &out.stdout
    ));
}

#[test]
fn a_wrong_pin_is_tried_once_reported_and_never_logged() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("PIN Root").expect("pki");
    let token = hsm.create_token("pinned", PIN, "12345678").expect("token");
    let identity = token
        .add_identity(&pki, &LeafSpec::new("PIN User"))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "97531";
    let pin = pin_file(dir.path(), wrong);
    // pkcs11-spy sits between the agent and SoftHSM and logs every call.
    let spy_log = dir.path().join("spy.log");
    let mut env = hsm.env();
    env.push(("PKCS11SPY".into(), hsm.module_path().into()));
    env.push(("PKCS11SPY_OUTPUT".into(), spy_log.clone().into()));
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            SPY.as_ref(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
        ],
        env,
    );
    let mut client = daemon.client();
    let result = sign(
        &mut client,
        &identity.fingerprint_hex(),
        Scheme::EcdsaSecp256r1Sha256,
        b"m",
    );
    let message = match &result {
        Err(ClientError::Agent { message, .. }) => message.clone(),
        _ => String::new(),
    };
    assert_eq!(agent_code(result), ErrorCode::PinIncorrect);
    assert!(message.contains("pinned"), "names the token: {message}");

    let spy = std::fs::read_to_string(&spy_log).expect("spy log");
    let failed_logins = spy.matches("CKR_PIN_INCORRECT").count();
    assert_eq!(
        failed_logins, 1,
        "exactly one failed C_Login, no automatic retry"
    );

    // The daemon logged at debug level throughout; the PIN is nowhere.
    let log = daemon.log();
    assert!(log.contains("DEBUG"), "debug logging was on");
    assert!(!log.contains(wrong), "the PIN leaked into the log");
    assert!(!log.contains(PIN));

    // With the right PIN, `p11agent login --pin-stdin` logs in and
    // signing works without asking the (wrong) PIN file again.
    let out = Command::new(p11agent_tests::p11agent_bin())
        .args(["login", "pinned", "--pin-stdin", "--socket"])
        .arg(daemon.socket())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{PIN}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("p11agent login");
    assert!(out.status.success(), "{}", describe(&out));
    let signature = sign(
        &mut client,
        &identity.fingerprint_hex(),
        Scheme::EcdsaSecp256r1Sha256,
        b"m",
    )
    .expect("sign after login");
    assert!(openssl_verifies(
        dir.path(),
        &identity.cert_pem(),
        Scheme::EcdsaSecp256r1Sha256,
        b"m",
        &signature
    ));
    assert!(!daemon.log().contains(PIN), "the PIN leaked into the log");

    // Logout drops the login: the next signature needs the PIN again,
    // and the PIN file still holds the wrong one.
    let out = daemon.cli(&["logout", "pinned"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("logged out of pinned"));
    assert_eq!(
        agent_code(sign(
            &mut client,
            &identity.fingerprint_hex(),
            Scheme::EcdsaSecp256r1Sha256,
            b"m"
        )),
        ErrorCode::PinIncorrect
    );
}

#[test]
fn an_always_authenticate_key_signs_with_a_context_specific_login() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Always Root").expect("pki");
    let token = hsm.create_token("always", PIN, "12345678").expect("token");
    let identity = token
        .add_identity(&pki, &LeafSpec::new("Always User").always_authenticate())
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = pin_file(dir.path(), PIN);
    let spy_log = dir.path().join("spy.log");
    let mut env = hsm.env();
    env.push(("PKCS11SPY".into(), hsm.module_path().into()));
    env.push(("PKCS11SPY_OUTPUT".into(), spy_log.clone().into()));
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            SPY.as_ref(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
        ],
        env,
    );
    let mut client = daemon.client();
    for round in 0..2 {
        let message = format!("round {round}");
        let signature = sign(
            &mut client,
            &identity.fingerprint_hex(),
            Scheme::EcdsaSecp256r1Sha256,
            message.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));
        assert!(openssl_verifies(
            dir.path(),
            &identity.cert_pem(),
            Scheme::EcdsaSecp256r1Sha256,
            message.as_bytes(),
            &signature
        ));
    }
    let spy = std::fs::read_to_string(&spy_log).expect("spy log");
    assert_eq!(
        spy.matches("CKU_CONTEXT_SPECIFIC").count(),
        2,
        "one context-specific login per signature"
    );
}

#[test]
fn eight_clients_sign_concurrently_on_two_tokens() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Concurrent Root").expect("pki");
    let a = hsm.create_token("left", PIN, "12345678").expect("token");
    let b = hsm.create_token("right", PIN, "12345678").expect("token");
    let identities = [
        a.add_identity(&pki, &LeafSpec::new("Left EC").key(KeyAlg::EcP256))
            .expect("left ec"),
        a.add_identity(&pki, &LeafSpec::new("Left RSA").key(KeyAlg::Rsa2048))
            .expect("left rsa"),
        b.add_identity(&pki, &LeafSpec::new("Right EC").key(KeyAlg::EcP384))
            .expect("right ec"),
        b.add_identity(&pki, &LeafSpec::new("Right Ed").key(KeyAlg::Ed25519))
            .expect("right ed"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = pin_file(dir.path(), PIN);
    let daemon = start(
        &hsm,
        hsm.module_path(),
        &["--pin-file".as_ref(), pin.as_os_str()],
    );

    let schemes = [
        Scheme::EcdsaSecp256r1Sha256,
        Scheme::RsaPssRsaeSha256,
        Scheme::EcdsaSecp384r1Sha384,
        Scheme::Ed25519,
    ];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|client_no| {
                let (identity, scheme) = (&identities[client_no % 4], schemes[client_no % 4]);
                let (socket, dir) = (daemon.socket(), dir.path());
                scope.spawn(move || {
                    let mut client = Client::connect(socket).expect("connect");
                    for round in 0..10 {
                        let message = format!("client {client_no} round {round}");
                        let signature = client
                            .sign(
                                &identity.fingerprint_hex(),
                                scheme,
                                &tls13_input(message.as_bytes()),
                            )
                            .expect("sign");
                        assert!(
                            openssl_verifies(
                                dir,
                                &identity.cert_pem(),
                                scheme,
                                message.as_bytes(),
                                &signature
                            ),
                            "client {client_no} round {round}: {scheme} does not verify"
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("client thread");
        }
    });
    // The raw protocol agrees: an unknown identity is not_found.
    let mut client = daemon.client();
    match client
        .call(&Request::Sign {
            id: "ffffffffffffffff".into(),
            scheme: Scheme::Ed25519,
            message: String::new(),
        })
        .expect("call")
    {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn purpose_binding_and_the_audit_trail() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Purpose Root").expect("pki");
    let token = hsm.create_token("purpose", PIN, "12345678").expect("token");
    let tls_only = token
        .add_identity(&pki, &LeafSpec::new("tls only").key(KeyAlg::EcP256))
        .expect("identity");
    let any = token
        .add_identity(&pki, &LeafSpec::new("signs anything").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = pin_file(dir.path(), PIN);
    let audit = dir.path().join("audit.log");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[identities.\"{}\"]\npurpose = \"any\"\n",
            &any.fingerprint_hex()[..16]
        ),
    )
    .expect("config");
    let daemon = start(
        &hsm,
        hsm.module_path(),
        &[
            "--pin-file".as_ref(),
            pin.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--audit-log".as_ref(),
            audit.as_os_str(),
        ],
    );
    let mut client = daemon.client();
    let scheme = Scheme::EcdsaSecp256r1Sha256;
    let digest = [0x5a_u8; 32];
    let document = b"I, the undersigned, owe the bearer everything.\n";
    let certificate_verify = tls13_input(b"a transcript");

    // TLS CertificateVerify input: signed by both.
    for identity in [&tls_only, &any] {
        let signature = client
            .sign(&identity.fingerprint_hex(), scheme, &certificate_verify)
            .expect("a CertificateVerify input is signed");
        assert!(openssl_verifies_raw(
            dir.path(),
            &identity.cert_pem(),
            &certificate_verify,
            &signature
        ));
    }
    // A bare digest and a document: refused under "tls", signed under "any".
    for message in [&digest[..], &document[..]] {
        match client.sign(&tls_only.fingerprint_hex(), scheme, message) {
            Err(ClientError::Agent { code, message }) => {
                assert_eq!(code, ErrorCode::PurposeRefused);
                assert!(message.contains("purpose"), "{message}");
            }
            other => panic!("expected purpose_refused, got {other:?}"),
        }
        let signature = client
            .sign(&any.fingerprint_hex(), scheme, message)
            .expect("purpose any signs anything");
        assert!(openssl_verifies_raw(
            dir.path(),
            &any.cert_pem(),
            message,
            &signature
        ));
    }

    // One audit line per signature: 2 + 2 refused + 2 signed.
    let text = std::fs::read_to_string(&audit).expect("audit log");
    assert!(!text.contains(PIN), "the PIN reached the audit log");
    assert!(
        !text.contains("undersigned"),
        "message content in the audit log"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|l: &serde_json::Value| l["action"] == "sign")
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    let me = std::process::id();
    for line in &lines {
        assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(line["peer"]["uid"], nix::unistd::getuid().as_raw());
        assert_eq!(line["peer"]["pid"], me);
        assert!(line["peer"]["exe"].as_str().is_some());
        assert_eq!(line["scheme"], "ecdsa_secp256r1_sha256");
        assert!(line["message_len"].as_u64().is_some());
        assert_eq!(line["message_sha256"].as_str().map(str::len), Some(64));
        assert!(line["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("CN=")));
    }
    let results: Vec<&str> = lines
        .iter()
        .map(|l| l["result"].as_str().expect("result"))
        .collect();
    assert_eq!(
        results,
        ["ok", "ok", "purpose_refused", "ok", "purpose_refused", "ok"]
    );
    assert_eq!(lines[2]["message_len"], 32);
}

/// Verifies an ECDSA P-256 signature over `message` itself with openssl.
fn openssl_verifies_raw(dir: &Path, cert_pem: &str, message: &[u8], signature: &[u8]) -> bool {
    let cert = dir.join("raw-cert.pem");
    let msg = dir.join("raw-msg");
    let sig = dir.join("raw-sig");
    let public = dir.join("raw-pub.pem");
    std::fs::write(&cert, cert_pem).expect("cert");
    std::fs::write(&msg, message).expect("msg");
    std::fs::write(&sig, signature).expect("sig");
    let out = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl x509");
    std::fs::write(&public, out.stdout).expect("pub");
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn confirmation_of_each_signature_and_logout_after_idle_time() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Confirm Root").expect("pki");
    let token = hsm.create_token("confirm", PIN, "12345678").expect("token");
    let guarded = token
        .add_identity(&pki, &LeafSpec::new("guarded").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    // A scripted pinentry: the PIN for GETPIN, and for CONFIRM whatever
    // the file `answer` says; it logs the commands it got.
    let answer = dir.path().join("answer");
    let log = dir.path().join("pinentry.log");
    let pinentry = dir.path().join("pinentry");
    std::fs::write(
        &pinentry,
        format!(
            "#!/bin/sh\necho OK\nwhile IFS= read -r line; do\n\
             echo \"$line\" | cut -d' ' -f1 >> '{log}'\n\
             case \"$line\" in\n\
             GETPIN) echo 'D {PIN}'; echo OK;;\n\
             CONFIRM*) if [ \"$(cat '{answer}')\" = allow ]; then echo OK; \
             else echo 'ERR 83886179 Operation cancelled'; fi;;\n\
             BYE) echo OK; exit 0;;\n\
             *) echo OK;;\n\
             esac\ndone\n",
            log = log.display(),
            answer = answer.display(),
        ),
    )
    .expect("pinentry script");
    std::fs::set_permissions(
        &pinentry,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "login_idle_timeout_secs = 1\n[identities.\"{}\"]\nconfirm = true\n",
            guarded.fingerprint_hex()
        ),
    )
    .expect("config");
    let daemon = start(
        &hsm,
        hsm.module_path(),
        &[
            "--pinentry".as_ref(),
            pinentry.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
    );
    let mut client = daemon.client();
    let count = |verb: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == verb)
            .count()
    };

    std::fs::write(&answer, "allow").expect("answer");
    let signature = sign(
        &mut client,
        &guarded.fingerprint_hex(),
        Scheme::EcdsaSecp256r1Sha256,
        b"allowed",
    )
    .expect("an allowed signature");
    assert!(openssl_verifies(
        dir.path(),
        &guarded.cert_pem(),
        Scheme::EcdsaSecp256r1Sha256,
        b"allowed",
        &signature
    ));
    assert_eq!((count("CONFIRM"), count("GETPIN")), (1, 1));

    std::fs::write(&answer, "deny").expect("answer");
    let denied = sign(
        &mut client,
        &guarded.fingerprint_hex(),
        Scheme::EcdsaSecp256r1Sha256,
        b"denied",
    );
    assert_eq!(agent_code(denied), ErrorCode::Cancelled);
    assert_eq!(count("CONFIRM"), 2);

    // Idle for over a second: logged out, so the next signature asks for
    // the PIN again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !daemon.log().contains("logged out after idle time") {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::write(&answer, "allow").expect("answer");
    sign(
        &mut client,
        &guarded.fingerprint_hex(),
        Scheme::EcdsaSecp256r1Sha256,
        b"again",
    )
    .expect("signs after a new login");
    assert_eq!((count("CONFIRM"), count("GETPIN")), (3, 2));
}
