//! `p11agent watch` and the client library's `watch` against a live
//! daemon: logins and logouts are reported to every watcher, a watcher
//! that never reads holds up nobody, and a watch ends cleanly when the
//! daemon stops.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use p11agent_proto::{Event, EventKind, Filter, Pin, Request, Response};
use p11agent_softhsm::{LeafSpec, Pki, SoftHsm, Token};
use p11agent_tests::{describe, p11agent_bin, run_cli, Daemon};

const PIN: &str = "246810";

/// How long anything here may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A daemon serving one SoftHSM token with one identity.
struct Setup {
    // Dropped in order: the daemon before the tokens it serves.
    daemon: Daemon,
    token: Token,
    _hsm: SoftHsm,
}

fn setup(label: &str) -> Setup {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Watch Root").expect("pki");
    let token = hsm.create_token(label, PIN, "12345678").expect("token");
    token
        .add_identity(&pki, &LeafSpec::new("Watched User"))
        .expect("identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    Setup {
        daemon,
        token,
        _hsm: hsm,
    }
}

/// Waits until the daemon has started `count` event streams in all.
///
/// A watcher only sees events emitted after its stream started, and
/// `p11agent watch` prints nothing until the first event; the daemon's
/// debug log is where the start shows.
fn wait_for_streams(daemon: &Daemon, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while daemon.log().matches("event stream started").count() < count {
        assert!(
            Instant::now() < deadline,
            "{count} event streams never started\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `p11agent watch` running against a daemon, its stdout read line by
/// line on a thread; killed on drop if still running.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(daemon: &Daemon, args: &[&str]) -> Watcher {
        let mut child = Command::new(p11agent_bin())
            .arg("watch")
            .args(args)
            .arg("--socket")
            .arg(daemon.socket())
            .env_remove("P11AGENT_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn p11agent watch");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The next line printed, within the deadline.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("p11agent watch printed a line")
    }

    /// The next line, parsed as `--json` prints it.
    fn event(&self) -> Event {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"))
    }

    /// Waits for the process to exit; its exit code and stderr.
    fn wait(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
                }
                return (status.code(), stderr);
            }
            assert!(Instant::now() < deadline, "p11agent watch never ended");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Forwards a library watcher's events to a channel from a thread, so
/// that the test can wait for them with a deadline.
fn library_watcher(daemon: &Daemon) -> mpsc::Receiver<Event> {
    let events = daemon.client().watch().expect("watch");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for event in events {
            let event = event.expect("event");
            if send.send(event).is_err() {
                return;
            }
        }
    });
    receive
}

fn next_event(events: &mpsc::Receiver<Event>) -> Event {
    events.recv_timeout(PATIENCE).expect("an event in time")
}

/// `p11agent login --pin-stdin LABEL`, asserting success.
fn cli_login(daemon: &Daemon, label: &str) {
    let mut child = Command::new(p11agent_bin())
        .args(["login", label, "--pin-stdin", "--socket"])
        .arg(daemon.socket())
        .env_remove("P11AGENT_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn p11agent login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PIN}\n").as_bytes())
        .expect("write PIN");
    let out = child.wait_with_output().expect("p11agent login");
    assert!(out.status.success(), "{}", describe(&out));
}

fn assert_about(event: &Event, kind: EventKind, token: &Token) {
    assert_eq!(event.event, kind, "{event:?}");
    let about = event.token.as_ref().expect("the event names its token");
    assert_eq!(about.label, token.label());
    assert_eq!(about.serial, token.serial());
    time::OffsetDateTime::parse(&event.time, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("time {:?} is not RFC 3339: {e}", event.time));
}

#[test]
fn logins_and_logouts_reach_the_command_line_and_library_watchers() {
    let Setup { daemon, token, .. } = &setup("watched");
    let cli = Watcher::start(daemon, &["--json"]);
    let library = library_watcher(daemon);
    wait_for_streams(daemon, 2);

    cli_login(daemon, token.label());
    let out = daemon.cli(&["logout", token.label()]);
    assert!(out.status.success(), "{}", describe(&out));

    assert_about(&cli.event(), EventKind::Login, token);
    assert_about(&cli.event(), EventKind::Logout, token);
    assert_about(&next_event(&library), EventKind::Login, token);
    assert_about(&next_event(&library), EventKind::Logout, token);

    // A logout with nobody logged in changes nothing and reports nothing:
    // the next event either watcher sees is the next real login.
    let out = daemon.cli(&["logout"]);
    assert!(out.status.success(), "{}", describe(&out));
    cli_login(daemon, token.label());
    assert_about(&cli.event(), EventKind::Login, token);
    assert_about(&next_event(&library), EventKind::Login, token);
}

#[test]
fn a_watcher_that_never_reads_holds_up_nobody() {
    let Setup { daemon, token, .. } = &setup("stalled");
    let stalled = daemon.client().watch().expect("watch");
    let reader = library_watcher(daemon);
    wait_for_streams(daemon, 2);

    let mut client = daemon.client();
    const ROUNDS: usize = 20;
    for _ in 0..ROUNDS {
        let login = client
            .call(&Request::Login {
                token: Some(token.label().to_owned()),
                pin: Some(Pin::new(PIN.to_owned())),
            })
            .expect("login");
        assert!(matches!(login, Response::LoggedIn { .. }), "{login:?}");
        let listed = client.list(&Filter::default()).expect("list");
        assert_eq!(listed.len(), 1);
        let logout = client
            .call(&Request::Logout { token: None })
            .expect("logout");
        assert!(
            matches!(&logout, Response::LoggedOut { tokens } if tokens.len() == 1),
            "{logout:?}"
        );
    }
    for _ in 0..ROUNDS {
        assert_about(&next_event(&reader), EventKind::Login, token);
        assert_about(&next_event(&reader), EventKind::Logout, token);
    }

    // Read at last, the stalled watcher has every event too.
    let kinds: Vec<EventKind> = stalled
        .take(2 * ROUNDS)
        .map(|event| event.expect("event").event)
        .collect();
    let expected: Vec<EventKind> = (0..ROUNDS)
        .flat_map(|_| [EventKind::Login, EventKind::Logout])
        .collect();
    assert_eq!(kinds, expected);
}

#[test]
fn watch_ends_cleanly_when_the_daemon_stops() {
    let Setup {
        daemon,
        token,
        _hsm,
    } = setup("stopping");
    let watcher = Watcher::start(&daemon, &[]);
    wait_for_streams(&daemon, 1);

    cli_login(&daemon, token.label());
    let line = watcher.line();
    let expected = format!(" login  {} (serial ", token.label());
    assert!(line.contains(&expected), "{line}");

    // Dropping the daemon sends it SIGTERM and waits for it to exit.
    drop(daemon);
    let (code, stderr) = watcher.wait();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn watch_without_an_agent_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_cli(&["watch"], &dir.path().join("nobody.sock"), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_client_sees_its_stream_start_before_any_event() {
    // The library's watch returns once the agent subscribed it, so an
    // event caused right after is never missed, with no waiting at all.
    let Setup { daemon, token, .. } = &setup("ordered");
    let events = library_watcher(daemon);
    cli_login(daemon, token.label());
    assert_about(&next_event(&events), EventKind::Login, token);
}
