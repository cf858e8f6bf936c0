//! What a module, a token, a file or a signal does must not take the
//! agent down or leave it misleading: signals, modules that do not load,
//! stale sockets, PIN and decisions files, small RSA keys, odd serials.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use p11agent_client::proto::{ErrorCode, Scheme};
use p11agent_client::ClientError;
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm};
use p11agent_tests::{daemon_refuses, describe, pin_file, run_cli, tls13_input, Daemon};

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

fn signal(daemon: &Daemon, signal: Signal) {
    kill(Pid::from_raw(daemon.pid() as i32), signal).expect("signal the daemon");
}

#[test]
fn sighup_is_ignored_and_sigterm_after_signatures_stops_cleanly() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Signal Root").expect("pki");
    let identity = hsm
        .create_token("signals", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("signal user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pin_file(dir.path(), PIN);
    // In the agent's process and in a helper: both must close their
    // sessions before finalising the module.
    for isolate in ["false", "true"] {
        let mut daemon = Daemon::start_with_args(
            &[
                "--module".as_ref(),
                hsm.module_path().as_os_str(),
                "--pin-file".as_ref(),
                pins.as_os_str(),
                "--isolate".as_ref(),
                isolate.as_ref(),
            ],
            hsm.env(),
        );
        let mut client = daemon.client();
        let id = identity.fingerprint_hex();
        client
            .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"before"))
            .expect("sign");

        signal(&daemon, Signal::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !daemon.log().contains("SIGHUP") {
            assert!(
                Instant::now() < deadline,
                "SIGHUP not seen:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(daemon.is_running(), "SIGHUP stopped the daemon");
        let mut client = daemon.client();
        client
            .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"after"))
            .expect("sign after SIGHUP");
        drop(client);

        let socket = daemon.socket().to_path_buf();
        let (status, log) = daemon.stop();
        assert!(status.success(), "isolate={isolate}: {status}\n{log}");
        let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(
            errors.is_empty(),
            "isolate={isolate}: ERROR lines at a clean stop:\n{}",
            errors.join("\n")
        );
        assert!(!socket.exists(), "the socket was left behind");
    }
}

#[test]
fn a_module_that_does_not_load_says_why_and_the_others_serve() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Load Root").expect("pki");
    let identity = hsm
        .create_token("loads", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("load user"))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("libmissing-pkcs11.so");
    let text = dir.path().join("not-a-library.so");
    std::fs::write(&text, "this is not a shared library\n").expect("write");
    for isolate in ["false", "true"] {
        let daemon = Daemon::start_with_args(
            &[
                "--module".as_ref(),
                missing.as_os_str(),
                "--module".as_ref(),
                text.as_os_str(),
                "--module".as_ref(),
                hsm.module_path().as_os_str(),
                "--isolate".as_ref(),
                isolate.as_ref(),
            ],
            hsm.env(),
        );
        let status = daemon.cli_json(&["status", "--json"]);
        let softhsm = hsm.module_path().display().to_string();
        let isolated = status["isolated_modules"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == &softhsm));
        assert_eq!(isolated, isolate == "true", "{status:#}");
        let errors = status["module_errors"].as_array().expect("module_errors");
        let reason = |module: &Path| {
            errors
                .iter()
                .find(|e| e["module"] == module.display().to_string())
                .and_then(|e| e["error"].as_str())
                .unwrap_or_else(|| panic!("no error for {}: {status:#}", module.display()))
                .to_owned()
        };
        let missing_reason = reason(&missing);
        assert!(
            missing_reason.contains("No such file or directory"),
            "isolate={isolate}: {missing_reason}"
        );
        let text_reason = reason(&text);
        assert!(
            text_reason.contains("invalid ELF header") || text_reason.contains("too short"),
            "isolate={isolate}: {text_reason}"
        );
        let out = daemon.cli(&["status"]);
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains("No such file or directory"), "{printed}");
        assert!(
            daemon.log().contains("No such file or directory"),
            "the log does not say why:\n{}",
            daemon.log()
        );
        let listed = daemon.cli_json(&["list", "--json"]);
        assert!(
            listed["identities"]
                .as_array()
                .expect("identities")
                .iter()
                .any(|i| i["id"] == identity.fingerprint_hex()),
            "{listed:#}"
        );
    }
}

#[test]
fn a_stale_socket_is_named_as_such_and_replaced_at_start() {
    let hsm = SoftHsm::new().expect("softhsm");
    hsm.create_token("stale", PIN, SO_PIN).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("run dir");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let socket = run.join("agent.sock");
    // A socket file nobody listens on: an agent that was killed.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());

    let out = run_cli(&["status"], &socket, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(stderr.contains("stale socket"), "{stderr}");
    assert!(stderr.contains("p11agent daemon"), "{stderr}");

    let absent = run_cli(&["status"], &dir.path().join("none.sock"), &[]);
    let stderr = String::from_utf8_lossy(&absent.stderr);
    assert!(stderr.contains("no socket at"), "{stderr}");

    let daemon = Daemon::start_at(
        Some(socket.clone()),
        &["--module".as_ref(), hsm.module_path().as_os_str()],
        hsm.env(),
    );
    daemon.cli_json(&["status", "--json"]);
}

#[test]
fn a_missing_or_shared_pin_file_stops_the_start_with_the_fix() {
    let hsm = SoftHsm::new().expect("softhsm");
    hsm.create_token("pins", PIN, SO_PIN).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-pin");
    let said = daemon_refuses(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            missing.as_os_str(),
        ],
        hsm.env(),
    );
    assert!(
        said.contains(&missing.display().to_string()) && said.contains("does not exist"),
        "{said}"
    );
    let shared = pin_file(dir.path(), PIN);
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let said = daemon_refuses(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            shared.as_os_str(),
        ],
        hsm.env(),
    );
    assert!(
        said.contains(&format!("chmod 600 {}", shared.display())),
        "{said}"
    );
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            shared.as_os_str(),
        ],
        hsm.env(),
    );
    daemon.cli_json(&["status", "--json"]);
}

#[test]
fn an_empty_decisions_file_starts_empty_and_keeps_the_next_choice() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Decisions Root").expect("pki");
    let identity = hsm
        .create_token("decides", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("deciding user"))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("decisions.json");
    std::fs::write(&file, "").expect("empty file");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--decisions-file".as_ref(),
            file.as_os_str(),
        ],
        hsm.env(),
    );
    let listed = daemon.cli_json(&["decisions", "--json"]);
    assert_eq!(listed["decisions"], serde_json::json!([]), "{listed:#}");
    daemon
        .client()
        .choose("https://kept.test", Some(&identity.fingerprint_hex()), true)
        .expect("choose");
    let written = std::fs::read_to_string(&file).expect("read");
    assert!(written.contains("https://kept.test"), "{written}");
}

#[test]
fn rsa_1024_offers_only_the_schemes_it_can_make() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Small Key Root").expect("pki");
    let identity = hsm
        .create_token("small", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("small key").key(KeyAlg::Rsa1024))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pin_file(dir.path(), PIN);
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
        ],
        hsm.env(),
    );
    let id = identity.fingerprint_hex();
    let shown = daemon.cli_json(&["show", &id, "--json"]);
    let schemes: Vec<&str> = shown["schemes"]
        .as_array()
        .unwrap_or_else(|| panic!("no schemes: {shown:#}"))
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(schemes.contains(&"rsa_pss_rsae_sha384"), "{schemes:?}");
    assert!(!schemes.contains(&"rsa_pss_rsae_sha512"), "{schemes:?}");
    let mut client = daemon.client();
    match client.sign(&id, Scheme::RsaPssRsaeSha512, &tls13_input(b"too small")) {
        Err(ClientError::Agent { code, message }) => {
            assert_eq!(code, ErrorCode::UnsupportedScheme, "{message}")
        }
        other => panic!("expected unsupported_scheme, got {other:?}"),
    }
    client
        .sign(&id, Scheme::RsaPssRsaeSha384, &tls13_input(b"fits"))
        .expect("PSS with SHA-384 fits a 1024-bit key");
}

#[test]
fn a_negative_serial_lists_as_openssl_prints_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let der = dir.path().join("neg.der");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=negative"])
        .args(["-set_serial", "-5", "-days", "1", "-outform", "DER"])
        .arg("-keyout")
        .arg(dir.path().join("neg.key"))
        .arg("-out")
        .arg(&der)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{}", describe(&made));
    let printed = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-serial", "-in"])
        .arg(&der)
        .output()
        .expect("run openssl");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        "serial=-05"
    );

    let hsm = SoftHsm::new().expect("softhsm");
    let token = hsm.create_token("serials", PIN, SO_PIN).expect("token");
    token
        .add_ca_certificate(&std::fs::read(&der).expect("der"), "negative")
        .expect("store");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let listed = daemon.cli_json(&["list", "--json"]);
    let serials: Vec<&str> = listed["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .filter_map(|i| i["serial"].as_str())
        .collect();
    assert_eq!(serials, ["-05"], "{listed:#}");
}
