//! Tokens come and go while the daemon runs: SoftHSM tokens created,
//! "pulled" (their directory moved away) and put back, with signatures in
//! flight.

use std::time::{Duration, Instant};

use p11agent_client::proto::{ErrorCode, Event, EventKind, Pin, Request, Response, Scheme};
use p11agent_client::{Client, ClientError};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm, Token};
use p11agent_tests::{describe, tls13_input, Daemon};
use serde_json::Value;

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// A daemon polling every 100 ms, with no PIN source: logins are explicit.
fn start(hsm: &SoftHsm) -> Daemon {
    Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--poll-interval".as_ref(),
            "100".as_ref(),
        ],
        hsm.env(),
    )
}

/// Waits until `check` holds, for at most 15 s (a deadline, not a timing:
/// the daemon polls every 100 ms).
fn eventually(what: &str, daemon: &Daemon, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "never happened: {what}\n--- daemon\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listed(daemon: &Daemon, id: &str) -> Option<Value> {
    let list = daemon.cli_json(&["list", "--json"]);
    list["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
}

fn token_status(daemon: &Daemon, label: &str) -> Option<String> {
    let tokens = daemon.cli_json(&["tokens", "--json"]);
    tokens["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["label"] == label)
        .map(|t| t["status"].as_str().expect("status").to_owned())
}

fn login(client: &mut Client, token: &Token) -> Response {
    client
        .call(&Request::Login {
            token: Some(token.label().to_owned()),
            pin: Some(Pin::new(PIN.to_owned())),
        })
        .expect("login call")
}

/// The agent's error code for a failed call.
fn code(result: Result<Vec<u8>, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Agent { code, .. }) => code,
        other => panic!("expected an agent error, got {other:?}"),
    }
}

/// Verifies an ECDSA P-256 signature over [`tls13_input`] of `label` with
/// the certificate's public key (the uncompressed point ends the
/// SubjectPublicKeyInfo).
fn verifies(identity: &Provisioned, label: &[u8], signature: &[u8]) -> bool {
    let message = tls13_input(label);
    let message = message.as_slice();
    let spki = &identity.public_key_spki;
    let point = &spki[spki.len() - 65..];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(message, signature)
        .is_ok()
}

#[test]
fn tokens_inserted_and_removed_while_running() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Hotplug Root").expect("pki");
    let first = hsm.create_token("first", PIN, SO_PIN).expect("token");
    first
        .add_identity(&pki, &LeafSpec::new("already there"))
        .expect("identity");
    let daemon = start(&hsm);
    // A watcher collects every event of the test.
    let (events_tx, events) = std::sync::mpsc::channel::<Event>();
    let stream = daemon.client().watch().expect("watch");
    std::thread::spawn(move || {
        for event in stream.flatten() {
            if events_tx.send(event).is_err() {
                return;
            }
        }
    });
    let seen = std::cell::RefCell::new(Vec::<Event>::new());
    let saw = |kind: EventKind, label: &str, id: Option<&str>| {
        let mut seen = seen.borrow_mut();
        seen.extend(events.try_iter());
        seen.iter().any(|e| {
            e.event == kind
                && e.token.as_ref().is_some_and(|t| t.label == label)
                && id.is_none_or(|id| e.id.as_deref() == Some(id))
        })
    };

    // A token created by another process after the daemon started.
    let late = hsm.create_token("late", PIN, SO_PIN).expect("token");
    let identity = late
        .add_identity(&pki, &LeafSpec::new("late user").key(KeyAlg::EcP256))
        .expect("identity");
    let id = identity.fingerprint_hex();
    eventually("the new token's identity is listed", &daemon, || {
        listed(&daemon, &id).is_some_and(|i| i["present"] == true)
    });
    assert_eq!(token_status(&daemon, "late").as_deref(), Some("present"));
    eventually("watch reports the insertion", &daemon, || {
        saw(EventKind::TokenInserted, "late", None)
            && saw(EventKind::IdentityAdded, "late", Some(&id))
    });

    let mut client = daemon.client();
    assert!(matches!(
        login(&mut client, &late),
        Response::LoggedIn { .. }
    ));
    let signature = client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"before"))
        .expect("sign before removal");
    assert!(verifies(&identity, b"before", &signature));

    // Pulled: still listed, as absent; requests name the token to insert.
    late.remove().expect("remove");
    eventually("the identity is marked absent", &daemon, || {
        listed(&daemon, &id).is_some_and(|i| i["present"] == false)
    });
    assert_eq!(token_status(&daemon, "late").as_deref(), Some("absent"));
    eventually("watch reports the removal", &daemon, || {
        saw(EventKind::TokenRemoved, "late", None)
            && saw(EventKind::IdentityRemoved, "late", Some(&id))
    });
    assert!(saw(EventKind::Login, "late", None));
    match client.sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"absent")) {
        Err(ClientError::Agent { code, message }) => {
            assert_eq!(code, ErrorCode::TokenAbsent);
            assert!(
                message.contains("insert token 'late'") && message.contains(late.serial()),
                "{message}"
            );
        }
        other => panic!("expected token_absent, got {other:?}"),
    }
    let selection = daemon.cli_json(&["select", "--json", "--origin", "https://x.test"]);
    let excluded = selection["excluded"].as_array().expect("excluded");
    let entry = excluded
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("not excluded: {selection:#}"));
    assert_eq!(entry["reasons"], serde_json::json!(["token_absent"]));
    let out = daemon.cli(&["list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("late (absent)"),
        "{}",
        describe(&out)
    );

    // Put back: present again, and its login is gone.
    late.insert().expect("insert");
    eventually("the identity is present again", &daemon, || {
        listed(&daemon, &id).is_some_and(|i| i["present"] == true)
    });
    assert_eq!(
        code(client.sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"after"))),
        ErrorCode::PinRequired
    );
    assert!(matches!(
        login(&mut client, &late),
        Response::LoggedIn { .. }
    ));
    let signature = client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"after"))
        .expect("sign after reinsertion");
    assert!(verifies(&identity, b"after", &signature));

    // Deleted for good: absent, the first token untouched throughout.
    late.delete().expect("delete");
    eventually("the deleted token is absent", &daemon, || {
        token_status(&daemon, "late").as_deref() == Some("absent")
    });
    assert_eq!(token_status(&daemon, "first").as_deref(), Some("present"));
}

#[test]
fn signatures_in_flight_when_the_token_goes() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("In Flight Root").expect("pki");
    let token = hsm.create_token("flight", PIN, SO_PIN).expect("token");
    let identity = token
        .add_identity(&pki, &LeafSpec::new("flying").key(KeyAlg::EcP256))
        .expect("identity");
    let id = identity.fingerprint_hex();
    let daemon = start(&hsm);
    let mut client = daemon.client();
    assert!(matches!(
        login(&mut client, &token),
        Response::LoggedIn { .. }
    ));

    // Four clients sign in a loop while the token is pulled.
    let (ok, errors) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|n| {
                let (socket, id, identity) = (daemon.socket(), &id, &identity);
                scope.spawn(move || {
                    let mut client = Client::connect(socket).expect("connect");
                    let mut ok = 0;
                    let mut errors = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(4);
                    let mut round = 0;
                    while Instant::now() < deadline {
                        let message = format!("worker {n} round {round}");
                        round += 1;
                        match client.sign(
                            id,
                            Scheme::EcdsaSecp256r1Sha256,
                            &tls13_input(message.as_bytes()),
                        ) {
                            Ok(signature) => {
                                assert!(
                                    verifies(identity, message.as_bytes(), &signature),
                                    "a wrong signature for {message}"
                                );
                                ok += 1;
                            }
                            Err(ClientError::Agent { code, .. }) => errors.push(code),
                            Err(other) => panic!("not a clean error: {other}"),
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(800));
        token.remove().expect("remove");
        workers.into_iter().map(|w| w.join().expect("worker")).fold(
            (0, Vec::new()),
            |(ok, mut errors), (o, e)| {
                errors.extend(e);
                (ok + o, errors)
            },
        )
    });
    assert!(ok > 0, "no signature before the removal");
    assert!(!errors.is_empty(), "no signature failed after the removal");
    for code in &errors {
        assert!(
            matches!(
                code,
                ErrorCode::TokenAbsent
                    | ErrorCode::TokenRemoved
                    | ErrorCode::PinRequired
                    // SoftHSM re-reads its files: with the directory gone
                    // and the module not yet re-initialised, the key is
                    // simply not found.
                    | ErrorCode::NoPrivateKey
            ),
            "unexpected error {code}\n{}",
            daemon.log()
        );
    }
    // The daemon is fine; the token back means a login again, then it signs.
    client.status().expect("daemon still answers");
    token.insert().expect("insert");
    eventually("present again", &daemon, || {
        listed(&daemon, &id).is_some_and(|i| i["present"] == true)
    });
    assert_eq!(
        code(client.sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"back"))),
        ErrorCode::PinRequired
    );
    assert!(matches!(
        login(&mut client, &token),
        Response::LoggedIn { .. }
    ));
    let signature = client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"back"))
        .expect("sign");
    assert!(verifies(&identity, b"back", &signature));
}

#[test]
fn a_hung_module_holds_up_nobody_else() {
    use p11agent_softhsm::P11KitServer;

    let direct_hsm = SoftHsm::new().expect("softhsm");
    let remote_hsm = SoftHsm::new().expect("second softhsm");
    let pki = Pki::new("Hang Root").expect("pki");
    let direct = direct_hsm
        .create_token("direct", PIN, SO_PIN)
        .expect("token");
    let local = direct
        .add_identity(&pki, &LeafSpec::new("direct user").key(KeyAlg::EcP256))
        .expect("identity");
    let remote = remote_hsm
        .create_token("remote", PIN, SO_PIN)
        .expect("token");
    let far = remote
        .add_identity(&pki, &LeafSpec::new("remote user").key(KeyAlg::EcP256))
        .expect("identity");
    let server = match P11KitServer::start(&remote_hsm) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("skipped: no p11-kit server ({e})");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = dir.path().join("pin");
    std::fs::write(&pin, format!("{PIN}\n")).expect("pin");
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let mut env = direct_hsm.env();
    env.extend(server.client_env());
    // SoftHSM directly, and SoftHSM behind p11-kit's RPC.
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            direct_hsm.module_path().as_os_str(),
            "--module".as_ref(),
            server.client_module().as_os_str(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
            "--poll-interval".as_ref(),
            "100".as_ref(),
            "--module-deadline".as_ref(),
            "1000".as_ref(),
        ],
        env,
    );
    let (local_id, far_id) = (local.fingerprint_hex(), far.fingerprint_hex());
    let mut client = daemon.client();
    for (identity, id) in [(&local, &local_id), (&far, &far_id)] {
        let signature = client
            .sign(
                id,
                Scheme::EcdsaSecp256r1Sha256,
                &tls13_input(b"both answer"),
            )
            .expect("sign");
        assert!(verifies(identity, b"both answer", &signature));
    }

    // The p11-kit server stops: the remote module hangs, with a
    // signature under way (sent before the watcher can notice, which
    // takes the 1 s deadline). That client is answered when the module
    // is declared unavailable, not when (if ever) the call returns.
    server.pause().expect("SIGSTOP");
    let (answered, stuck) = std::sync::mpsc::channel();
    {
        let socket = daemon.socket().to_path_buf();
        let far_id = far_id.clone();
        std::thread::spawn(move || {
            let mut client = Client::connect(&socket).expect("connect");
            let _ = answered.send(client.sign(
                &far_id,
                Scheme::EcdsaSecp256r1Sha256,
                &tls13_input(b"under way"),
            ));
        });
    }
    eventually("the remote token shows unavailable", &daemon, || {
        token_status(&daemon, "remote").as_deref() == Some("unavailable")
    });
    // Without the rescue the call would wait for SIGCONT, which comes
    // later: a minute without an answer means there was none.
    let result = stuck
        .recv_timeout(Duration::from_secs(60))
        .expect("the client stuck in the hung module was never answered");
    assert_eq!(code(result), ErrorCode::ModuleUnavailable);
    assert!(
        daemon
            .log()
            .contains("answering a client whose call is stuck in an unavailable module"),
        "the signature was not under way when the module hung:\n{}",
        daemon.log()
    );
    // Everything else answers: listing, the other module's signatures.
    assert!(listed(&daemon, &far_id).is_some());
    let signature = client
        .sign(
            &local_id,
            Scheme::EcdsaSecp256r1Sha256,
            &tls13_input(b"while hung"),
        )
        .expect("the direct module still signs");
    assert!(verifies(&local, b"while hung", &signature));
    assert_eq!(
        code(client.sign(&far_id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"hung"))),
        ErrorCode::ModuleUnavailable
    );
    let status = daemon.cli_json(&["status", "--json"]);
    assert!(
        status["module_errors"].to_string().contains("unavailable"),
        "{status:#}"
    );

    // Back: the remote module answers and signs again.
    server.resume().expect("SIGCONT");
    eventually("the remote token is present again", &daemon, || {
        token_status(&daemon, "remote").as_deref() == Some("present")
    });
    let signature = client
        .sign(
            &far_id,
            Scheme::EcdsaSecp256r1Sha256,
            &tls13_input(b"resumed"),
        )
        .expect("the remote module signs again");
    assert!(verifies(&far, b"resumed", &signature));
}
