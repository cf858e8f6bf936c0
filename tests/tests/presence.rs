//! Tokens that stay in: another process's logins must not look like a
//! removal, and certificates changed on an inserted, logged-in token are
//! seen without taking it out.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use p11agent_client::proto::Scheme;
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, PublicKey, SoftHsm};
use p11agent_tests::{
    describe, p11agent_bin, pin_file, slowcard_env, slowcard_module, tls13_input, Daemon,
};
use serde_json::Value;

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";
const POLL_MS: u64 = 100;

/// `p11agent watch --json` against `daemon`, its events collected on a
/// thread; killed on drop.
struct Watch {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Watch {
    fn start(daemon: &Daemon) -> Watch {
        let mut child = Command::new(p11agent_bin())
            .args(["watch", "--json", "--socket"])
            .arg(daemon.socket())
            .env_remove("P11AGENT_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn p11agent watch");
        let stdout = child.stdout.take().expect("stdout");
        let (send, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Ok(event) = serde_json::from_str(&line) else {
                    return;
                };
                if send.send(event).is_err() {
                    return;
                }
            }
        });
        Watch { child, events }
    }

    /// Every event received so far.
    fn drain(&self) -> Vec<Value> {
        self.events.try_iter().collect()
    }

    /// Waits (at most 15 s) for an event for which `wanted` holds,
    /// keeping every event seen on the way in `seen`.
    fn wait_for(
        &self,
        daemon: &Daemon,
        seen: &mut Vec<Value>,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if wanted(&event) => return event,
                Ok(event) => seen.push(event),
                Err(_) => panic!(
                    "the awaited event never came; saw {seen:#?}\n{}",
                    daemon.log()
                ),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pkcs11_tool(module: &Path, env: &[(String, std::ffi::OsString)], args: &[&str]) -> String {
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run pkcs11-tool");
    assert!(
        out.status.success(),
        "pkcs11-tool {args:?}: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start_daemon(hsm: &SoftHsm, pins: &Path) -> Daemon {
    Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
            "--poll-interval".as_ref(),
            POLL_MS.to_string().as_ref(),
        ],
        hsm.env(),
    )
}

#[test]
fn another_process_logging_in_all_along_is_not_a_removal() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Busy Root").expect("pki");
    let identity = hsm
        .create_token("busy", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("busy user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start_daemon(&hsm, &pin_file(dir.path(), PIN));
    let id = identity.fingerprint_hex();
    let mut client = daemon.client();
    client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"first"))
        .expect("sign");
    let logins_before = daemon.log().matches("logged in").count();
    assert_eq!(logins_before, 1, "{}", daemon.log());

    let watch = Watch::start(&daemon);
    // Another program logs in to the same token, again and again, for
    // 10 s: SoftHSM rewrites the token's files each time.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logins = 0;
    while Instant::now() < deadline {
        pkcs11_tool(
            hsm.module_path(),
            &hsm.env(),
            &[
                "--token-label",
                "busy",
                "--login",
                "--pin",
                PIN,
                "--list-objects",
            ],
        );
        logins += 1;
    }
    assert!(logins > 10, "only {logins} logins in 10 s");
    client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"after"))
        .expect("sign after the other logins");

    let events = watch.drain();
    let removals: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "token_removed" || e["event"] == "identity_removed")
        .collect();
    assert!(
        removals.is_empty(),
        "{logins} logins by another process looked like removals: {removals:#?}"
    );
    assert_eq!(
        daemon.log().matches("logged in").count(),
        logins_before,
        "the agent logged in again:\n{}",
        daemon.log()
    );
}

#[test]
fn certificates_changed_on_an_inserted_token_are_seen() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Renewal Root").expect("pki");
    let token = hsm.create_token("renewed", PIN, SO_PIN).expect("token");
    let old = token
        .add_identity(&pki, &LeafSpec::new("old certificate").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start_daemon(&hsm, &pin_file(dir.path(), PIN));
    let mut client = daemon.client();
    // Logged in: private keys visible, as on a token in use.
    client
        .sign(
            &old.fingerprint_hex(),
            Scheme::EcdsaSecp256r1Sha256,
            &tls13_input(b"before"),
        )
        .expect("sign");
    let watch = Watch::start(&daemon);

    // Another certificate, for the same key, written by another
    // program; the old one deleted.
    let key = PublicKey::from_spki_der(&old.public_key_spki).expect("public key");
    let new = pki
        .issue(&LeafSpec::new("new certificate").key(KeyAlg::EcP256), &key)
        .expect("issue");
    let new_der = dir.path().join("new.der");
    std::fs::write(&new_der, &new).expect("write");
    let cert_id = old.cert_id_hex();
    let tool_env = hsm.env();
    let common = ["--token-label", "renewed", "--login", "--pin", PIN];
    pkcs11_tool(
        hsm.module_path(),
        &tool_env,
        &[
            &common[..],
            &["--delete-object", "--type", "cert", "--id", &cert_id],
        ]
        .concat(),
    );
    pkcs11_tool(
        hsm.module_path(),
        &tool_env,
        &[
            &common[..],
            &["--write-object", new_der.to_str().expect("utf-8 path")],
            &[
                "--type",
                "cert",
                "--id",
                &cert_id,
                "--label",
                "new certificate",
            ],
        ]
        .concat(),
    );
    let changed = Instant::now();

    let mut seen = Vec::new();
    watch.wait_for(&daemon, &mut seen, |e| {
        e["event"] == "identity_removed" && e["id"] == old.fingerprint_hex()
    });
    watch.wait_for(&daemon, &mut seen, |e| {
        e["event"] == "identity_added" && e["subject"] == "CN=new certificate"
    });
    let took = changed.elapsed();
    assert!(
        !seen.iter().any(|e| e["event"] == "token_removed"),
        "the token was taken out and put back: {seen:#?}"
    );
    let listed = daemon.cli_json(&["list", "--json"]);
    let subjects: Vec<&str> = listed["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .filter(|i| i["present"] != false)
        .filter_map(|i| i["subject"].as_str())
        .collect();
    assert_eq!(subjects, ["CN=new certificate"], "{listed:#}");
    eprintln!("seen {} ms after the change", took.as_millis());
}

#[test]
fn one_poll_that_cannot_read_the_token_is_not_a_removal() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Flaky Root").expect("pki");
    let identity = hsm
        .create_token("flaky", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("flaky user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let flaky = dir.path().join("flaky");
    let mut env = hsm.env();
    env.extend(slowcard_env(hsm.module_path()));
    env.push(("P11AGENT_SLOWCARD_FLAKY".into(), flaky.clone().into()));
    let pins = pin_file(dir.path(), PIN);
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            slowcard_module().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
            "--poll-interval".as_ref(),
            POLL_MS.to_string().as_ref(),
        ],
        env,
    );
    let id = identity.fingerprint_hex();
    let mut client = daemon.client();
    client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"first"))
        .expect("sign");
    let watch = Watch::start(&daemon);
    for _ in 0..3 {
        // One C_GetTokenInfo fails; the token is there at the next poll.
        std::fs::write(&flaky, "").expect("flaky file");
        let deadline = Instant::now() + Duration::from_secs(15);
        while flaky.exists() {
            assert!(
                Instant::now() < deadline,
                "the module never read the flaky file"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(3 * POLL_MS));
    }
    let events = watch.drain();
    assert!(
        !events.iter().any(|e| e["event"] == "token_removed"),
        "a failed poll removed the token: {events:#?}"
    );
    assert_eq!(
        daemon.log().matches("logged in").count(),
        1,
        "{}",
        daemon.log()
    );
    client
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"still"))
        .expect("sign after the failed polls");
}
