//! When a client reconnects and repeats a request, and when it must not:
//! against a scripted fake agent, so that each transport failure happens
//! exactly where the test wants it (the end-to-end test with a real
//! daemon restart is tests/tests/reconnect.rs).

use std::io::Write as _;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use p11agent_client::proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_client::proto::{ErrorCode, FrameError, Pin, Request, Response, PROTOCOL_VERSION};
use p11agent_client::{AsyncClient, Client, ClientError};
use tempfile::TempDir;

/// What the fake agent does on one connection, after the handshake.
enum Then {
    /// Closes at once: the agent went away between two calls.
    Close,
    /// Reads one request and closes without answering: the agent died
    /// while working on it.
    ReadAndClose,
    /// Reads one request, answers it and closes.
    Answer(Box<Response>),
    /// Reads one request, sends half of a frame's length prefix and
    /// closes: the agent died in the middle of its answer.
    Partial,
    /// Closes, and stops listening for good (the socket file goes too).
    Vanish,
}

/// A fake agent serving one scripted connection per [`Then`], in order.
struct Fake {
    _dir: TempDir,
    path: PathBuf,
    /// One message each time a connection of the script is over.
    done: mpsc::Receiver<()>,
    thread: JoinHandle<(Vec<Request>, Option<UnixListener>)>,
}

impl Fake {
    fn start(script: Vec<Then>) -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let (tx, done) = mpsc::channel();
        let socket = path.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for then in script {
                let (mut stream, _) = listener.accept().expect("accept");
                let hello: Request = frame::read(&mut stream, MAX_REQUEST_FRAME).expect("hello");
                seen.push(hello);
                let welcome = Response::Hello {
                    version: PROTOCOL_VERSION,
                    agent: "fake agent".to_owned(),
                };
                frame::write(&mut stream, &welcome, MAX_RESPONSE_FRAME).expect("welcome");
                if !matches!(then, Then::Close | Then::Vanish) {
                    seen.push(frame::read(&mut stream, MAX_REQUEST_FRAME).expect("request"));
                }
                match then {
                    Then::Answer(response) => {
                        frame::write(&mut stream, &*response, MAX_RESPONSE_FRAME).expect("answer")
                    }
                    Then::Partial => stream.write_all(&[0, 0]).expect("partial frame"),
                    Then::Vanish => {
                        drop(stream);
                        drop(listener);
                        std::fs::remove_file(&socket).expect("remove socket");
                        let _ = tx.send(());
                        return (seen, None);
                    }
                    Then::Close | Then::ReadAndClose => {}
                }
                drop(stream);
                let _ = tx.send(());
            }
            (seen, Some(listener))
        });
        Fake {
            _dir: dir,
            path,
            done,
            thread,
        }
    }

    /// Waits until the fake has finished its current connection.
    fn wait_closed(&self) {
        self.done
            .recv_timeout(Duration::from_secs(10))
            .expect("the fake agent finished the connection");
    }

    /// The requests the fake received, in order, after checking that no
    /// connection beyond the script was made.
    fn finish(self) -> Vec<Request> {
        let (seen, listener) = self.thread.join().expect("fake agent thread");
        if let Some(listener) = listener {
            listener.set_nonblocking(true).expect("nonblocking");
            match listener.accept() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("the client connected once more than expected: {other:?}"),
            }
        }
        seen
    }
}

fn hello() -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
        client: Some(format!("p11agent-client {}", env!("CARGO_PKG_VERSION"))),
    }
}

fn no_decisions() -> Response {
    Response::Decisions {
        decisions: Vec::new(),
    }
}

fn login() -> Request {
    Request::Login {
        token: Some("card".to_owned()),
        pin: Some(Pin::new("1234".to_owned())),
    }
}

#[test]
fn a_request_the_dead_agent_never_answered_is_sent_again_on_a_new_connection() {
    let fake = Fake::start(vec![
        Then::ReadAndClose,
        Then::Answer(Box::new(no_decisions())),
    ]);
    let mut client = Client::connect(&fake.path).expect("connect");
    assert_eq!(client.decisions().expect("decisions").len(), 0);
    assert_eq!(
        fake.finish(),
        [hello(), Request::Decisions, hello(), Request::Decisions]
    );
}

#[test]
fn a_connection_closed_between_calls_is_replaced() {
    let fake = Fake::start(vec![Then::Close, Then::Answer(Box::new(no_decisions()))]);
    let mut client = Client::connect(&fake.path).expect("connect");
    fake.wait_closed();
    assert_eq!(client.decisions().expect("decisions").len(), 0);
    assert_eq!(fake.finish(), [hello(), hello(), Request::Decisions]);
}

#[test]
fn an_error_answer_is_returned_not_retried() {
    let fake = Fake::start(vec![Then::Answer(Box::new(Response::error(
        ErrorCode::Internal,
        "boom",
    )))]);
    let mut client = Client::connect(&fake.path).expect("connect");
    match client.decisions() {
        Err(ClientError::Agent {
            code: ErrorCode::Internal,
            message,
        }) => assert_eq!(message, "boom"),
        other => panic!("expected the agent's error, got {other:?}"),
    }
    assert_eq!(fake.finish(), [hello(), Request::Decisions]);
}

#[test]
fn a_partly_received_answer_is_an_error_not_a_retry() {
    let fake = Fake::start(vec![Then::Partial]);
    let mut client = Client::connect(&fake.path).expect("connect");
    assert!(
        matches!(
            client.decisions(),
            Err(ClientError::Frame(FrameError::Truncated))
        ),
        "a truncated frame is reported"
    );
    assert_eq!(fake.finish(), [hello(), Request::Decisions]);
}

#[test]
fn a_login_that_reached_the_agent_is_never_sent_twice() {
    let fake = Fake::start(vec![Then::ReadAndClose]);
    let mut client = Client::connect(&fake.path).expect("connect");
    assert!(
        matches!(
            client.call(&login()),
            Err(ClientError::Frame(FrameError::Closed))
        ),
        "the broken connection is reported"
    );
    assert_eq!(fake.finish(), [hello(), login()]);
}

#[test]
fn a_login_that_could_not_be_written_is_sent_on_a_new_connection() {
    let refused = Response::error(ErrorCode::PinIncorrect, "wrong PIN");
    let fake = Fake::start(vec![Then::Close, Then::Answer(Box::new(refused.clone()))]);
    let mut client = Client::connect(&fake.path).expect("connect");
    fake.wait_closed();
    assert_eq!(client.call(&login()).expect("login answered"), refused);
    assert_eq!(fake.finish(), [hello(), hello(), login()]);
}

#[test]
fn no_agent_behind_the_socket_any_more_is_not_running() {
    let fake = Fake::start(vec![Then::Vanish]);
    let mut client = Client::connect(&fake.path).expect("connect");
    fake.wait_closed();
    for _ in 0..2 {
        match client.status() {
            Err(ClientError::NotRunning { path, .. }) => assert_eq!(path, fake.path),
            other => panic!("expected NotRunning, got {other:?}"),
        }
    }
    assert_eq!(fake.finish(), [hello()]);
}

#[tokio::test]
async fn the_async_client_reconnects_too() {
    let fake = Fake::start(vec![
        Then::ReadAndClose,
        Then::Answer(Box::new(no_decisions())),
    ]);
    let mut client = AsyncClient::connect(&fake.path).await.expect("connect");
    assert_eq!(client.decisions().await.expect("decisions").len(), 0);
    assert_eq!(client.socket(), fake.path);
    assert_eq!(
        fake.finish(),
        [hello(), Request::Decisions, hello(), Request::Decisions]
    );
}

#[tokio::test]
async fn the_async_client_does_not_retry_a_partial_answer() {
    let fake = Fake::start(vec![Then::Partial]);
    let mut client = AsyncClient::connect(&fake.path).await.expect("connect");
    assert!(matches!(
        client.decisions().await,
        Err(ClientError::Frame(FrameError::Truncated))
    ));
    assert_eq!(fake.finish(), [hello(), Request::Decisions]);
}

#[tokio::test]
async fn the_async_client_reports_an_agent_gone_for_good() {
    let fake = Fake::start(vec![Then::Vanish]);
    let mut client = AsyncClient::connect(&fake.path).await.expect("connect");
    fake.wait_closed();
    assert!(matches!(
        client.status().await,
        Err(ClientError::NotRunning { .. })
    ));
    assert_eq!(fake.finish(), [hello()]);
}
