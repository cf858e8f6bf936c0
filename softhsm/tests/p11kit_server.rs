//! The `p11-kit server` fixture, checked from outside with
//! `pkcs11-tool --module p11-kit-client.so` in child processes (each gets
//! the server's address in its own environment): it serves the SoftHSM
//! token, a paused server hangs its clients, a resumed one answers them,
//! and a dropped one is gone with its connections.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use p11agent_softhsm::{Error, P11KitServer, SoftHsm};

/// How long a paused server must keep a client waiting to count as hung.
const HANG: Duration = Duration::from_secs(2);

/// The server, or `None` (with a message) where p11-kit or pkcs11-tool is
/// not installed.
fn start(hsm: &SoftHsm) -> Option<P11KitServer> {
    if Command::new("pkcs11-tool").arg("--help").output().is_err() {
        eprintln!("skipped: pkcs11-tool (opensc) is not installed");
        return None;
    }
    match P11KitServer::start(hsm) {
        Ok(server) => Some(server),
        Err(e @ Error::P11KitNotFound(_)) => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("p11-kit server: {e}"),
    }
}

/// `pkcs11-tool --list-slots` through the server, not yet started.
fn list_slots(server: &P11KitServer) -> Command {
    let mut cmd = Command::new("pkcs11-tool");
    cmd.arg("--module")
        .arg(server.client_module())
        .arg("--list-slots")
        .envs(server.client_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits up to `limit` for `child` to exit; its stdout when it exited
/// successfully, `None` while it still runs.
fn finished_within(child: &mut Child, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut stdout = String::new();
            let mut stderr = String::new();
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut stdout).expect("stdout");
            }
            if let Some(mut err) = child.stderr.take() {
                err.read_to_string(&mut stderr).expect("stderr");
            }
            assert!(
                status.success(),
                "pkcs11-tool: {status}\n{stdout}\n{stderr}"
            );
            return Some(stdout);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn shows_label(stdout: &str, label: &str) -> bool {
    stdout.lines().any(|line| {
        line.trim_start()
            .strip_prefix("token label")
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .is_some_and(|value| value.trim() == label)
    })
}

#[test]
fn a_paused_server_hangs_its_clients_until_it_is_resumed() {
    let hsm = SoftHsm::new().expect("softhsm");
    hsm.create_token("served-token", "1234", "12345678")
        .expect("token");
    let Some(server) = start(&hsm) else { return };
    assert!(server.client_module().is_file());
    assert!(server.socket().starts_with(hsm.dir()));

    let mut first = list_slots(&server).spawn().expect("pkcs11-tool");
    let stdout = finished_within(&mut first, Duration::from_secs(20)).expect("pkcs11-tool");
    assert!(shows_label(&stdout, "served-token"), "{stdout}");

    server.pause().expect("pause");
    assert!(server.is_paused());
    let mut killed = list_slots(&server).spawn().expect("pkcs11-tool");
    let mut waiting = list_slots(&server).spawn().expect("pkcs11-tool");
    // Both block in C_Initialize, waiting for the server's handshake.
    assert_eq!(
        finished_within(&mut killed, HANG),
        None,
        "finished while paused"
    );
    assert_eq!(
        finished_within(&mut waiting, Duration::ZERO),
        None,
        "finished while paused"
    );
    killed.kill().expect("kill");
    killed.wait().expect("reap");

    server.resume().expect("resume");
    assert!(!server.is_paused());
    // The one that waited completes on its own, on the connection it
    // opened while the server was stopped; and a new one works.
    let stdout =
        finished_within(&mut waiting, Duration::from_secs(20)).expect("answered after resume");
    assert!(shows_label(&stdout, "served-token"), "{stdout}");
    let mut after = list_slots(&server).spawn().expect("pkcs11-tool");
    let stdout = finished_within(&mut after, Duration::from_secs(20)).expect("pkcs11-tool");
    assert!(shows_label(&stdout, "served-token"), "{stdout}");
}

/// The state and process group of `pid`, from /proc; `None` once it is
/// gone.
fn state_and_group(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_owned();
    let group = fields.nth(1)?.parse().ok()?;
    Some((state, group))
}

/// The processes of group `group` that still run (zombies waiting to be
/// reaped do not).
fn running_in_group(group: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| state_and_group(*pid).is_some_and(|(state, g)| g == group && state != "Z"))
        .collect()
}

#[test]
fn dropping_a_paused_server_ends_it_and_its_connections() {
    let hsm = SoftHsm::new().expect("softhsm");
    hsm.create_token("dropped", "1234", "12345678")
        .expect("token");
    let Some(server) = start(&hsm) else { return };
    let pid = server.pid();
    let socket = server.socket().to_path_buf();

    // A connection that stays open: the server forks a p11-kit-remote for
    // it, which answers the handshake byte and waits for a request.
    let mut connection = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    connection.write_all(&[0]).expect("handshake");
    let mut answer = [0u8; 1];
    connection
        .read_exact(&mut answer)
        .expect("handshake answer");

    server.pause().expect("pause");
    drop(server);

    assert!(!socket.exists(), "the server left its socket behind");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = running_in_group(pid);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after drop: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = Vec::new();
    let read = connection.read_to_end(&mut rest);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection ends: {read:?}"
    );
}
