//! `p11agent chooser`, the terminal certificate chooser, run as the agent
//! runs it: the request on stdin, a pseudo-terminal standing in for the
//! person's terminal, the answer on stdout; and the agent's side of the
//! contract ([`Chooser`]) talking to it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};
use p11agent::select::chooser::{Answer, Chooser, ChooserError, ChooserReply, ChooserRequest};
use p11agent_proto::{ClientAuth, Identity, KeyType, Token};

const BIN: &str = env!("CARGO_BIN_EXE_p11agent");
const ORIGIN: &str = "https://bank.example:443";
/// How long a test waits for the chooser before failing.
const PATIENCE: Duration = Duration::from_secs(20);

fn identity(n: u8, subject: &str) -> Identity {
    Identity {
        id: format!("{n:02x}").repeat(32),
        subject: subject.into(),
        issuer: "CN=Bank CA".into(),
        serial: format!("{n:02x}"),
        not_before: "2024-01-01T00:00:00Z".into(),
        not_after: "2030-06-30T12:00:00Z".into(),
        key_type: KeyType::Rsa,
        key_bits: 2048,
        curve: None,
        key_usage: None,
        extended_key_usage: None,
        has_private_key: true,
        token: Token {
            label: format!("Smartcard {n}"),
            serial: "1".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 0,
            module: "/lib/x.so".into(),
        },
        cert_uri: "pkcs11:object=c".into(),
        key_uri: Some("pkcs11:object=k".into()),
        client_auth: ClientAuth::from_reasons(Vec::new()),
        schemes: Vec::new(),
        present: true,
    }
}

fn candidates() -> Vec<Identity> {
    vec![
        identity(0xa1, "CN=Alice,O=Home"),
        identity(0xb2, "CN=Alice,O=Work"),
    ]
}

fn request() -> Vec<u8> {
    serde_json::to_vec(&ChooserRequest {
        version: 1,
        origin: ORIGIN.into(),
        candidates: candidates(),
    })
    .expect("json")
}

/// A pseudo-terminal: the test types on the master side; the chooser
/// opens the slave side by name, as it would open the person's terminal.
struct Pty {
    master: File,
    /// Held open so that reading the master does not end before the
    /// chooser opens the slave.
    _slave: File,
    path: PathBuf,
    shown: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Pty {
    fn open() -> Self {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let path = PathBuf::from(ptsname_r(&master).expect("ptsname"));
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(&path)
            .expect("open slave");
        let writer = File::from(master.as_fd().try_clone_to_owned().expect("dup"));
        let (tx, shown) = mpsc::channel();
        std::thread::spawn(move || read_master(master, &tx));
        Self {
            master: writer,
            _slave: slave,
            path,
            shown,
            seen: Vec::new(),
        }
    }

    /// Waits until the terminal showed `text`; everything shown so far.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = String::from_utf8_lossy(&self.seen).into_owned();
            if seen.contains(text) {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(_) => panic!("the terminal never showed {text:?}; it showed:\n{seen}"),
            }
        }
    }

    /// Types `keys` as a person would (no line feed added).
    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("type");
    }
}

fn read_master(mut master: PtyMaster, tx: &mpsc::Sender<Vec<u8>>) {
    let mut chunk = [0u8; 1024];
    // Ends with EIO once every slave descriptor is closed.
    while let Ok(n @ 1..) = master.read(&mut chunk) {
        if tx.send(chunk[..n].to_vec()).is_err() {
            return;
        }
    }
}

/// Starts `p11agent chooser --tty TTY` with `input` on its stdin.
fn start(tty: &Path, input: &[u8]) -> Child {
    let mut child = Command::new(BIN)
        .args(["chooser", "--tty"])
        .arg(tty)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start p11agent chooser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write request");
    child
}

/// The chooser's output once it exits; kills it after [`PATIENCE`].
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("the chooser did not exit: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn reply(out: &Output) -> ChooserReply {
    assert!(
        out.status.success(),
        "{:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.ends_with(b"}\n"), "{:?}", out.stdout);
    serde_json::from_slice(&out.stdout).expect("reply")
}

#[test]
fn pick_a_certificate_and_do_not_remember() {
    let mut pty = Pty::open();
    let child = start(&pty.path, &request());
    let shown = pty.wait_for("or cancel (q)? ");
    for expected in [
        "https://bank.example:443 asks for a client certificate.",
        "  1) CN=Alice,O=Home",
        "  2) CN=Alice,O=Work",
        "     issuer:  CN=Bank CA",
        "     expires: 2030-06-30T12:00:00Z",
        "     token:   Smartcard 178",
        "     id:      b2b2b2b2b2b2b2b2",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
    pty.type_keys("2\n");
    pty.wait_for("Remember this choice for https://bank.example:443? [Y/n] ");
    pty.type_keys("n\n");
    let out = finish(child);
    assert_eq!(
        reply(&out),
        ChooserReply {
            choice: Some("b2".repeat(32)),
            remember: false
        }
    );
    // The terminal echoed the typing: a real line discipline was read.
    let shown = pty.wait_for("Sending CN=Alice,O=Work.");
    assert!(shown.contains("(q)? 2\r\n"), "{shown:?}");
}

#[test]
fn send_none_and_remember() {
    let mut pty = Pty::open();
    let child = start(&pty.path, &request());
    pty.wait_for("or cancel (q)? ");
    pty.type_keys("n\n");
    pty.wait_for("[Y/n] ");
    pty.type_keys("\n");
    assert_eq!(
        reply(&finish(child)),
        ChooserReply {
            choice: None,
            remember: true
        }
    );
}

#[test]
fn line_editing_is_the_terminal_s() {
    let mut pty = Pty::open();
    let child = start(&pty.path, &request());
    pty.wait_for("or cancel (q)? ");
    // "2", erased with the terminal's erase character (DEL), then "1".
    pty.type_keys("2\u{7f}1\n");
    pty.wait_for("[Y/n] ");
    pty.type_keys("y\n");
    assert_eq!(reply(&finish(child)).choice, Some("a1".repeat(32)));
}

#[test]
fn cancel_exits_1_with_nothing_on_stdout() {
    for keys in ["q\n", "\n", "\u{4}"] {
        let mut pty = Pty::open();
        let child = start(&pty.path, &request());
        pty.wait_for("or cancel (q)? ");
        pty.type_keys(keys);
        let out = finish(child);
        assert_eq!(out.status.code(), Some(1), "{keys:?}");
        assert!(out.stdout.is_empty(), "{keys:?}: {:?}", out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cancelled"), "{stderr}");
        pty.wait_for("Cancelled: no certificate sent.");
    }
}

#[test]
fn end_of_input_at_the_remember_question_cancels() {
    let mut pty = Pty::open();
    let child = start(&pty.path, &request());
    pty.wait_for("or cancel (q)? ");
    pty.type_keys("1\n");
    pty.wait_for("[Y/n] ");
    pty.type_keys("\u{4}");
    let out = finish(child);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn no_terminal_exits_1_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = finish(start(&dir.path().join("no-such-tty"), &request()));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-tty") && stderr.contains("no certificate chosen"),
        "{stderr}"
    );
}

#[test]
fn default_terminal_is_the_controlling_one() {
    // In a new session there is no controlling terminal, so /dev/tty
    // cannot be opened.
    let mut child = match Command::new("setsid")
        .args(["--wait", BIN, "chooser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: setsid(1) is not installed");
            return;
        }
        Err(e) => panic!("cannot run setsid: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&request())
        .expect("write request");
    let out = finish(child);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/dev/tty"), "{stderr}");
}

#[test]
fn bad_request_exits_1_without_asking() {
    let pty = Pty::open();
    let out = finish(start(&pty.path, b"{\"version\": 1}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a chooser request"), "{stderr}");
}

/// Runs the agent's side ([`Chooser::choose`]) against `p11agent chooser`
/// on the pty, typing `keys` once the list is shown.
fn round_trip(keys: &'static [&'static str]) -> Result<Answer, ChooserError> {
    let mut pty = Pty::open();
    let chooser = Chooser::new(BIN)
        .with_args([
            std::ffi::OsStr::new("chooser"),
            "--tty".as_ref(),
            pty.path.as_os_str(),
        ])
        .with_timeout(PATIENCE);
    let asking: JoinHandle<_> = std::thread::spawn(move || chooser.choose(ORIGIN, &candidates()));
    pty.wait_for("or cancel (q)? ");
    for (n, key) in keys.iter().enumerate() {
        if n > 0 {
            pty.wait_for("[Y/n] ");
        }
        pty.type_keys(key);
    }
    asking.join().expect("join")
}

#[test]
fn agent_side_gets_the_person_s_answer() {
    assert_eq!(
        round_trip(&["1\n", "\n"]).expect("answer"),
        Answer::Send {
            id: "a1".repeat(32),
            remember: true
        }
    );
    assert_eq!(
        round_trip(&["n\n", "no\n"]).expect("answer"),
        Answer::SendNone { remember: false }
    );
}

#[test]
fn agent_side_sees_cancel_as_exit_status_1() {
    match round_trip(&["q\n"]) {
        Err(ChooserError::Exited { status, .. }) => assert_eq!(status.code(), Some(1)),
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[test]
fn help_states_the_contract() {
    let out = Command::new(BIN)
        .args(["chooser", "--help"])
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "\"version\": 1",
        "{\"choice\": \"ID\"}",
        "{\"choice\": null}",
        "\"remember\":",
        "exits 1",
        "--tty <PATH>",
        "/dev/tty",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}
