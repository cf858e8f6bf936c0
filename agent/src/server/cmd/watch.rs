//! `watch`: the connection becomes a stream of the agent's events.
//!
//! The connection owns the stream's framing and its end (the client
//! speaking or leaving, shutdown); this module says what is sent.

use p11agent_proto::Response;

use crate::service::{Agent, Subscription};

/// Starts watching: the answer to send, and the events to follow it.
///
/// The subscription is taken before the answer goes out, so a client
/// that has read `watching` misses nothing emitted after it.
pub(crate) fn start(agent: &Agent) -> (Response, Subscription) {
    let events = agent.subscribe();
    tracing::debug!("event stream started");
    (Response::Watching, events)
}

/// The next frame of the stream, or `None` once the hub is gone.
/// Cancel-safe, as [`Subscription::recv`] is.
pub(crate) async fn next(events: &mut Subscription) -> Option<Response> {
    events.recv().await.map(Response::Event)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use p11agent_client::AsyncClient;
    use p11agent_proto::{Event, EventKind, Token};

    use crate::server::{ServerOptions, Timeouts};
    use crate::service::{Agent, AgentOptions, EVENT_BACKLOG as CAPACITY};

    const TOTAL: usize = 5000;
    const BATCH: usize = 500;

    async fn agent() -> Agent {
        Agent::start(AgentOptions::for_tests()).await
    }

    fn serve(
        socket: &Path,
        agent: Agent,
        stopped: tokio::sync::oneshot::Receiver<()>,
    ) -> tokio::task::JoinHandle<()> {
        let socket = crate::server::bind(socket).expect("bind");
        let options = ServerOptions {
            timeouts: Timeouts::default(),
            allowed_uids: Vec::new(),
        };
        tokio::spawn(crate::server::serve(socket, None, agent, options, async {
            let _ = stopped.await;
        }))
    }

    /// Event `n`, made large so that a watcher that does not read fills
    /// its socket's buffer after a few hundred events at most.
    fn numbered(n: usize) -> Event {
        Event::now(EventKind::Login)
            .token(Token {
                label: "bulk".into(),
                serial: "0123456789abcdef".into(),
                manufacturer: "test".into(),
                model: "test".into(),
                slot: 0,
                module: "/nonexistent.so".into(),
            })
            .identity("00".repeat(32), format!("CN={}", "x".repeat(1024)))
            .detail(n.to_string())
    }

    fn number(event: &Event) -> usize {
        event
            .detail
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("event without a number: {event:?}"))
    }

    /// A watcher that reads nothing and a watcher that reads everything:
    /// the first holds up neither the hub (emitting never waits), nor the
    /// second, nor other requests; it is told afterwards what it missed;
    /// shutdown ends both streams.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_that_never_reads_holds_up_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let agent = agent().await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = serve(&path, agent.clone(), stopped);

        let connect = || AsyncClient::connect(&path);
        let mut stalled = connect()
            .await
            .expect("connect")
            .watch()
            .await
            .expect("watch");
        let mut reader = connect()
            .await
            .expect("connect")
            .watch()
            .await
            .expect("watch");

        // Batches below the hub's capacity, each read in full before the
        // next, so the reading watcher never falls behind; `emit` is
        // synchronous, so had it waited for the stalled watcher this
        // test would hang instead of finishing.
        for batch in (0..TOTAL).step_by(BATCH) {
            for n in batch..batch + BATCH {
                agent.emit(numbered(n));
            }
            for n in batch..batch + BATCH {
                let event = reader.next().await.expect("event").expect("decoded");
                assert_eq!(event.event, EventKind::Login, "{event:?}");
                assert_eq!(number(&event), n);
            }
        }

        let status = connect().await.expect("connect").status().await;
        assert!(status.is_ok(), "other requests are answered: {status:?}");

        // Everything the stalled watcher did not get, it is told about.
        let (mut received, mut missed, mut lagged_notices) = (0, 0, 0);
        while received + missed < TOTAL {
            let event = stalled.next().await.expect("event").expect("decoded");
            match event.event {
                EventKind::Lagged => {
                    missed += number(&event);
                    lagged_notices += 1;
                }
                _ => {
                    assert_eq!(number(&event), received + missed, "in order, no repeats");
                    received += 1;
                }
            }
        }
        assert_eq!(received + missed, TOTAL);
        assert!(lagged_notices > 0, "the stalled watcher fell behind");
        assert!(received >= CAPACITY, "it still got the backlog");

        stop.send(()).expect("server running");
        server.await.expect("server task");
        assert!(reader.next().await.is_none(), "shutdown ends the stream");
        assert!(stalled.next().await.is_none(), "shutdown ends the stream");
    }

    /// A frame from a watching client ends its stream; the agent does not
    /// answer it.
    #[tokio::test]
    async fn a_request_on_a_watching_connection_ends_the_stream() {
        use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
        use p11agent_proto::{FrameError, Request, Response, PROTOCOL_VERSION};

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = serve(&path, agent().await, stopped);

        let mut stream = tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect");
        async fn call(
            stream: &mut tokio::net::UnixStream,
            request: &Request,
        ) -> Result<Response, FrameError> {
            tokio_io::write(stream, request, MAX_REQUEST_FRAME).await?;
            tokio_io::read(stream, MAX_RESPONSE_FRAME).await
        }
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            client: None,
        };
        let answer = call(&mut stream, &hello).await;
        assert!(matches!(answer, Ok(Response::Hello { .. })), "{answer:?}");
        let answer = call(&mut stream, &Request::Watch).await;
        assert!(matches!(answer, Ok(Response::Watching)), "{answer:?}");
        // The agent closes without reading the rest of the frame, which
        // Linux reports to this end as a reset rather than an EOF.
        let after = call(&mut stream, &Request::Status).await;
        let closed = match &after {
            Err(FrameError::Closed) => true,
            Err(FrameError::Io(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
            _ => false,
        };
        assert!(closed, "closed without an answer: {after:?}");

        stop.send(()).expect("server running");
        server.await.expect("server task");
    }
}
