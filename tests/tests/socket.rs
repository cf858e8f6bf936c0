//! The socket's file permissions, stale-socket recovery, and refusal to
//! start a second agent on a live socket.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use p11agent_softhsm::SoftHsm;
use p11agent_tests::{describe, p11agent_bin, Daemon};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn socket_is_0600_in_a_0700_directory() {
    let hsm = SoftHsm::new().expect("softhsm");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let dir = daemon.socket().parent().expect("parent");
    assert_eq!(mode(dir), 0o700, "socket directory mode");
    assert_eq!(mode(daemon.socket()), 0o600, "socket mode");
}

#[test]
fn a_second_agent_on_a_live_socket_is_refused() {
    let hsm = SoftHsm::new().expect("softhsm");
    let mut daemon = Daemon::start(hsm.module_path(), hsm.env());
    let out = Command::new(p11agent_bin())
        .args(["daemon", "--module"])
        .arg(hsm.module_path())
        .arg("--socket")
        .arg(daemon.socket())
        .envs(hsm.env())
        .stdin(Stdio::null())
        .output()
        .expect("run second daemon");
    assert!(
        !out.status.success(),
        "second daemon started: {}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already listening"), "{stderr}");
    assert!(daemon.is_running());
    daemon
        .client()
        .status()
        .expect("first daemon still answers");
}

#[test]
fn a_stale_socket_file_and_a_loose_directory_are_repaired() {
    let hsm = SoftHsm::new().expect("softhsm");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("mkdir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = run.join("agent.sock");
    // A socket file nobody listens on, as a crashed agent leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind stale"));
    assert!(socket.exists());

    let daemon = Daemon::start_at(
        Some(socket.clone()),
        &["--module".as_ref(), hsm.module_path().as_os_str()],
        hsm.env(),
    );
    let status = p11agent_client::Client::connect(&socket)
        .expect("connect to the repaired socket")
        .status()
        .expect("status");
    assert_eq!(status.socket, socket.display().to_string());
    assert_eq!(mode(&run), 0o700);
    drop(daemon);
}

#[test]
fn a_directory_others_can_write_is_refused_with_a_clear_message() {
    let hsm = SoftHsm::new().expect("softhsm");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("mkdir");
    for mode_bits in [0o777, 0o770, 0o702] {
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(mode_bits)).expect("chmod");
        let out = Command::new(p11agent_bin())
            .arg("daemon")
            .arg("--socket")
            .arg(run.join("agent.sock"))
            .arg("--module")
            .arg(hsm.module_path())
            .envs(hsm.env())
            .output()
            .expect("run daemon");
        assert!(
            !out.status.success(),
            "started in a {mode_bits:o} directory"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("writable by others") && stderr.contains(&format!("{mode_bits:o}")),
            "{stderr}"
        );
        assert!(!run.join("agent.sock").exists());
        assert_eq!(mode(&run), mode_bits, "left as it was");
    }
}
