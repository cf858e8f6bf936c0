//! The agent under systemd: the shipped user units verify, and an agent
//! started by socket activation (`LISTEN_FDS`, as `systemd-socket-activate`
//! and the socket unit pass it) serves the complete store on the socket
//! it was given.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use p11agent_client::proto::Scheme;
use p11agent_client::{Client, ClientError};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm};
use p11agent_tests::{describe, p11agent_bin, p256_verifies, pin_file, tls13_input};

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

fn units_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/systemd"))
}

#[test]
fn the_shipped_user_units_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).expect("runtime dir");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    // As installed, with the binary where this build put it.
    let mut units = Vec::new();
    for unit in ["p11agent.socket", "p11agent.service"] {
        let text = std::fs::read_to_string(units_dir().join(unit)).expect("unit");
        let text = text.replace("/usr/bin/p11agent", &p11agent_bin().display().to_string());
        let path = dir.path().join(unit);
        std::fs::write(&path, text).expect("write unit");
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify", "--man=no"])
        .args(&units)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("run systemd-analyze (Debian's systemd package)");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
}

/// `systemd-socket-activate` listening on `socket` for `p11agent daemon
/// ARGS`, killed on drop.
struct Activated(Child);

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_agent_started_by_socket_activation_answers_with_the_complete_store() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Activation Root").expect("pki");
    let identity = hsm
        .create_token("activated", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("activated user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("run dir");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let socket = run.join("agent.sock");
    let pins = pin_file(dir.path(), PIN);
    let log = dir.path().join("daemon.log");
    // systemd's readiness socket, as a Type=notify service has it.
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut activate = Command::new("systemd-socket-activate");
    activate.arg("--listen").arg(&socket);
    for (name, value) in hsm.env() {
        activate.arg(format!("--setenv={name}={}", value.to_string_lossy()));
    }
    activate
        .arg(format!(
            "--setenv=XDG_CONFIG_HOME={}",
            dir.path().join("config").display()
        ))
        .arg("--setenv=RUST_LOG=info")
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .arg(p11agent_bin())
        .args(["daemon", "--module"])
        .arg(hsm.module_path())
        .arg("--pin-file")
        .arg(&pins)
        // The socket given by --socket is not bound: the passed one wins.
        .arg("--socket")
        .arg(dir.path().join("unused.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    let _activated = Activated(activate.spawn().expect("run systemd-socket-activate"));

    // The socket is there before the agent; the first connection starts
    // it, and the answer comes once the store is complete. On a thread,
    // so that an agent that never accepts on it fails the test rather
    // than hanging it.
    let (answer, answered) = std::sync::mpsc::channel();
    {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let client = loop {
                match Client::connect(&socket) {
                    Ok(client) => break Ok(client),
                    Err(ClientError::NotRunning { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => break Err(e),
                }
            };
            let _ =
                answer.send(client.and_then(|mut c| c.list(&Default::default()).map(|l| (c, l))));
        });
    }
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let (mut client, listed) = answered
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no answer on the activated socket\n{}", log_text()))
        .unwrap_or_else(|e| panic!("no agent behind the activated socket: {e}\n{}", log_text()));
    assert!(
        listed.iter().any(|i| i.id == identity.fingerprint_hex()),
        "the first answer missed the token: {listed:#?}"
    );
    let signature = client
        .sign(
            &identity.fingerprint_hex(),
            Scheme::EcdsaSecp256r1Sha256,
            &tls13_input(b"activated"),
        )
        .expect("sign through the activated agent");
    assert!(
        p256_verifies(&identity.public_key_spki, b"activated", &signature),
        "the signature does not verify with the certificate's key"
    );
    let text = log_text();
    assert!(
        text.contains("listening on the socket systemd passed"),
        "{text}"
    );
    assert!(!dir.path().join("unused.sock").exists(), "{text}");
}
