//! The clients read ahead: one read may bring the end of an answer and
//! the start of what follows. Whatever came with an answer must reach
//! the caller, above all the first events that arrive in the same read
//! as `watching`, when the connection is handed to an event stream.

use std::io::Write as _;
use std::os::unix::net::UnixListener;
use std::thread::JoinHandle;

use p11agent_client::proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_client::proto::{Event, EventKind, Request, Response, PROTOCOL_VERSION};
use p11agent_client::{AsyncClient, Client};
use tempfile::TempDir;

/// A fake agent that answers the handshake, then answers `watch` with
/// `watching` and two events in a single write, and closes: the events
/// are there to be read only if the client kept what came with
/// `watching`.
fn agent_sending_events_with_watching() -> (TempDir, std::path::PathBuf, JoinHandle<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let _: Request = frame::read(&mut stream, MAX_REQUEST_FRAME).expect("hello");
        let welcome = Response::Hello {
            version: PROTOCOL_VERSION,
            agent: "fake agent".to_owned(),
        };
        frame::write(&mut stream, &welcome, MAX_RESPONSE_FRAME).expect("welcome");
        let watch: Request = frame::read(&mut stream, MAX_REQUEST_FRAME).expect("watch");
        assert_eq!(watch, Request::Watch);
        let mut burst = frame::encode(&Response::Watching, MAX_RESPONSE_FRAME).expect("encode");
        for detail in ["1", "2"] {
            let event = Event::new(EventKind::Login, "t").detail(detail);
            burst.extend(
                frame::encode(&Response::Event(event), MAX_RESPONSE_FRAME).expect("encode"),
            );
        }
        stream.write_all(&burst).expect("burst");
    });
    (dir, path, thread)
}

fn details(events: impl IntoIterator<Item = Event>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| e.detail.unwrap_or_default())
        .collect()
}

#[test]
fn events_that_came_with_watching_reach_the_blocking_stream() {
    let (_dir, path, agent) = agent_sending_events_with_watching();
    let client = Client::connect(&path).expect("connect");
    let events: Vec<Event> = client
        .watch()
        .expect("watch")
        .take(2)
        .map(|e| e.expect("event"))
        .collect();
    assert_eq!(details(events), ["1", "2"]);
    agent.join().expect("fake agent");
}

#[tokio::test]
async fn events_that_came_with_watching_reach_the_async_stream() {
    let (_dir, path, agent) = agent_sending_events_with_watching();
    let client = AsyncClient::connect(&path).await.expect("connect");
    let mut stream = client.watch().await.expect("watch");
    let mut events = Vec::new();
    for _ in 0..2 {
        events.push(stream.next().await.expect("an event").expect("decoded"));
    }
    assert_eq!(details(events), ["1", "2"]);
    agent.join().expect("fake agent");
}
