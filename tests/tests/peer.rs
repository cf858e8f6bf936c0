//! Connections from another user id are refused by the peer-credential
//! check, and the daemon carries on serving its own user.
//!
//! Needs root: the daemon runs as `nobody` (via `setpriv`), and root,
//! whom the 0700 directory does not stop, plays the other user. Without
//! root there is no second user to play, and the test says so and
//! passes vacuously; CI runs as root.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use p11agent_client::ClientError;
use p11agent_tests::{describe, p11agent_bin};

const NOBODY: u32 = 65534;

fn as_nobody(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_owned(),
    ])
    .arg(p11agent_bin())
    .args(args)
    .stdin(Stdio::null());
    cmd
}

#[test]
fn another_users_connection_is_refused() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("peer-credential test needs root to play a second user; not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    nix::unistd::chown(dir.path(), Some(NOBODY.into()), Some(NOBODY.into())).expect("chown");
    let socket = dir.path().join("run").join("agent.sock");
    let audit = dir.path().join("audit.log");
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut daemon = as_nobody(&[
        "daemon".as_ref(),
        "--socket".as_ref(),
        socket.as_os_str(),
        "--module".as_ref(),
        "/nonexistent/module.so".as_ref(),
        "--audit-log".as_ref(),
        audit.as_os_str(),
    ])
    .env("RUST_LOG", "info")
    .env("XDG_CONFIG_HOME", dir.path())
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("spawn daemon as nobody");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket: {}", read_log());
        assert!(
            matches!(daemon.try_wait(), Ok(None)),
            "daemon exited: {}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Root connects (the directory does not stop root) and is dropped
    // before any answer, three times.
    for _ in 0..3 {
        match p11agent_client::Client::connect(&socket) {
            Ok(_) => panic!("a client of another uid was served"),
            Err(ClientError::Frame(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    // The daemon's own user is still served.
    let out = as_nobody(&[
        "status".as_ref(),
        "--json".as_ref(),
        "--socket".as_ref(),
        socket.as_os_str(),
    ])
    .output()
    .expect("status as nobody");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"protocol_version\": 1"));

    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        read_log().contains("refused a connection from another user"),
        "{}",
        read_log()
    );
    // Each refusal is audited, with the refused peer's uid and process.
    let audit = std::fs::read_to_string(&audit).expect("audit log");
    let refusals: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .filter(|l: &serde_json::Value| l["action"] == "connect" && l["result"] == "refused")
        .collect();
    assert_eq!(refusals.len(), 3, "{audit}");
    for refusal in &refusals {
        assert_eq!(refusal["peer"]["uid"], 0);
        assert_eq!(refusal["peer"]["pid"], std::process::id());
    }
}
