//! One client connection: framing, the handshake, and error replies.
//! What each request does lives in `cmd/`.
//!
//! Each connection has a thread of its own, which reads a request with a
//! blocking read, answers it on the spot (a signature is made right
//! there) and writes the answer: one read and one write per request, and
//! the client's write wakes the very thread that answers. Handing
//! requests through the async runtime instead cost two to three thread
//! wake-ups per request, which on the project's machine was more CPU
//! than a P-256 signature on SoftHSM (docs/BENCHMARKS.md). The listener
//! stays async, and a `watch` connection moves onto the runtime, which
//! streams events to it.
//!
//! A connection handles one request at a time: it reads the next frame
//! only once the answer to the last has been written. A client that
//! sends requests without reading the answers therefore fills the
//! socket's kernel buffers and then blocks; the agent holds at most one
//! request body and one answer for it, and drops it when an answer is
//! not taken within the frame timeout.

use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_proto::frame::{encode, FrameDecoder, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{
    decode_request, BadRequest, ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::sync::{broadcast, OwnedSemaphorePermit};

use super::cmd::{self, Context};
use super::limits::{IdleConnections, LiveConnections, Timeouts};
use super::reply::Reply;
use crate::service::{Agent, Peer, Subscription};

/// What a connection shares with the listener and the other connections.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) agent: Agent,
    /// The listening socket's path, for `status`.
    pub(super) socket: Arc<Path>,
    pub(super) timeouts: Timeouts,
    /// Connections waiting for a request, which the listener may close.
    pub(super) idle: Arc<IdleConnections>,
    /// Every connection, for shutdown.
    pub(super) live: Arc<LiveConnections>,
    /// Stops event streams, which run on the runtime.
    pub(super) stop: broadcast::Sender<()>,
    /// The runtime: event streams, and what the service spawns.
    pub(super) runtime: tokio::runtime::Handle,
}

pub(super) struct Connection {
    stream: Arc<UnixStream>,
    /// Reads the client's frames; holds what arrived of the next one.
    decoder: FrameDecoder,
    /// Who connected, for the audit trail.
    peer: Peer,
    /// Answers this client when a token call it waits for hangs.
    reply: Arc<Reply>,
    greeted: bool,
    /// Whether the socket's read timeout is the idle timeout (else the
    /// frame's remaining time): changed only when a frame comes in parts.
    idle_timeout_set: bool,
}

/// Why no request frame came.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    /// No request began within the idle timeout.
    #[error("no request for {0:?}; closing an idle connection")]
    Idle(Duration),
    /// The listener needed the slot of this idle connection.
    #[error("all connection slots taken; closing this idle connection for a newcomer")]
    Reclaimed,
    /// A frame began but did not end within the frame timeout.
    #[error("frame not complete within {0:?}; closing")]
    TooSlow(Duration),
    /// The frame itself was bad, or the stream failed or ended.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// What to do after answering a frame.
enum Next {
    Continue,
    Close,
    /// Stream these events until the client leaves (`watch`).
    Watch(Subscription),
}

/// Serves `stream` from `peer` on a thread of its own, holding `permit`
/// (its connection slot) until it closes. A connection without a thread
/// is closed.
pub(super) fn spawn(stream: UnixStream, peer: Peer, shared: Shared, permit: OwnedSemaphorePermit) {
    let spawned = std::thread::Builder::new()
        .name("p11agent-conn".to_owned())
        .spawn(move || {
            let _runtime = shared.runtime.enter();
            let stream = Arc::new(stream);
            let Some(_live) = shared.live.register(&stream) else {
                return;
            };
            if let Err(e) = prepare(&stream, shared.timeouts) {
                tracing::debug!(error = %e, "cannot set up a connection");
                return;
            }
            let connection = Connection {
                reply: Arc::new(Reply::new(Arc::clone(&stream))),
                stream,
                decoder: FrameDecoder::new(MAX_REQUEST_FRAME),
                peer,
                greeted: false,
                idle_timeout_set: true,
            };
            connection.run(&shared, permit);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread for a connection; closing it");
    }
}

/// Makes the socket blocking, with the idle timeout on reads and the
/// frame timeout on writes.
fn prepare(stream: &UnixStream, timeouts: Timeouts) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(nonzero(timeouts.idle)))?;
    stream.set_write_timeout(Some(nonzero(timeouts.frame)))
}

/// A socket timeout cannot be zero (that means none).
fn nonzero(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

impl Connection {
    /// Answers frames until the client leaves, breaks the framing, is
    /// too slow, has its idle connection reclaimed by the listener, or
    /// the agent shuts down.
    fn run(mut self, shared: &Shared, permit: OwnedSemaphorePermit) {
        loop {
            let request = self.next_request(shared.timeouts, &shared.idle);
            let (response, next) = match request {
                Ok(request) => {
                    let answer = self.answer(shared, request);
                    if self.reply.answered() {
                        // The client was told its module hung; this late
                        // answer would be a second one.
                        tracing::debug!("closing a connection answered while its call hung");
                        return;
                    }
                    answer
                }
                Err(ReadError::Frame(FrameError::Closed)) => return,
                Err(ReadError::Frame(e @ FrameError::TooLarge { .. })) => (
                    Response::error(ErrorCode::FrameTooLarge, e.to_string()),
                    Next::Close,
                ),
                Err(ReadError::Frame(e @ FrameError::Empty)) => (
                    Response::error(ErrorCode::Malformed, e.to_string()),
                    Next::Continue,
                ),
                Err(ReadError::Frame(e)) => {
                    tracing::debug!(error = %e, "connection dropped mid-frame");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connection closed");
                    return;
                }
            };
            // A client that does not take its answer (it stopped reading,
            // or sends requests without reading) would otherwise hold this
            // thread, its slot and the answer for ever, and hold up
            // shutdown.
            if let Err(e) = self.send(&response, shared.timeouts.frame) {
                tracing::debug!(error = %e, "cannot answer client; closing");
                return;
            }
            match next {
                Next::Continue => {}
                Next::Close => return,
                // A frame sent behind `watch` ends the stream before it
                // starts, as one sent later does.
                Next::Watch(_) if self.decoder.in_frame() => return,
                Next::Watch(events) => return self.hand_over(shared, events, permit),
            }
        }
    }

    /// Waits for the next request and parses it: up to `timeouts.idle`
    /// for its first bytes, while the listener may reclaim the
    /// connection, then up to `timeouts.frame` for the rest of its frame.
    /// A request that arrived with the previous one is taken at once.
    ///
    /// The frame's bytes, which may hold a PIN, are wiped as soon as it
    /// is parsed.
    fn next_request(
        &mut self,
        timeouts: Timeouts,
        idle: &Arc<IdleConnections>,
    ) -> Result<Result<Request, BadRequest>, ReadError> {
        if !self.decoder.in_frame() {
            if !self.idle_timeout_set {
                self.set_read_timeout(timeouts.idle)?;
                self.idle_timeout_set = true;
            }
            let ticket = idle.enter(&self.stream);
            let read = (&*self.stream).read(self.decoder.read_space(false));
            if !ticket.leave() {
                return Err(ReadError::Reclaimed);
            }
            match read {
                Err(e) if timed_out(&e) => return Err(ReadError::Idle(timeouts.idle)),
                read => self.decoder.received(read)?,
            }
        }
        let deadline = Instant::now() + timeouts.frame;
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(decode_request(&frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::TooSlow(timeouts.frame));
            }
            self.set_read_timeout(left)?;
            self.idle_timeout_set = false;
            match (&*self.stream).read(self.decoder.read_space(false)) {
                Err(e) if timed_out(&e) => return Err(ReadError::TooSlow(timeouts.frame)),
                read => self.decoder.received(read)?,
            }
        }
    }

    fn set_read_timeout(&self, timeout: Duration) -> Result<(), FrameError> {
        Ok(self.stream.set_read_timeout(Some(nonzero(timeout)))?)
    }

    /// Writes one response within `timeout`; one too large to send
    /// becomes an `internal` error, so the client still gets an answer.
    fn send(&self, response: &Response, timeout: Duration) -> Result<(), FrameError> {
        let frame = match encode(response, MAX_RESPONSE_FRAME) {
            Err(e @ FrameError::TooLarge { .. }) => encode(
                &Response::error(ErrorCode::Internal, e.to_string()),
                MAX_RESPONSE_FRAME,
            )?,
            other => other?,
        };
        write_within(&self.stream, &frame, timeout)
    }

    /// Moves the connection onto the runtime, which streams `events` to
    /// it until the client sends anything or leaves, or the agent shuts
    /// down; the thread ends.
    fn hand_over(self, shared: &Shared, events: Subscription, permit: OwnedSemaphorePermit) {
        let stream = match self
            .stream
            .try_clone()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
        {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot start an event stream");
                return;
            }
        };
        let stop = shared.stop.subscribe();
        shared.runtime.spawn(async move {
            match tokio::net::UnixStream::from_std(stream) {
                Ok(stream) => stream_events(stream, events, stop).await,
                Err(e) => tracing::debug!(error = %e, "cannot start an event stream"),
            }
            drop(permit);
        });
    }

    fn answer(
        &mut self,
        shared: &Shared,
        request: Result<Request, BadRequest>,
    ) -> (Response, Next) {
        let request = match request {
            Ok(request) => request,
            Err(BadRequest { code, message }) => {
                return (Response::error(code, message), Next::Continue)
            }
        };
        tracing::debug!(op = request.op(), "request");
        match request {
            Request::Hello { version, client } => {
                if version != PROTOCOL_VERSION {
                    let msg = format!(
                        "protocol version {version} is not supported; this agent speaks {PROTOCOL_VERSION}"
                    );
                    return (
                        Response::error(ErrorCode::UnsupportedVersion, msg),
                        Next::Close,
                    );
                }
                tracing::debug!(client = client.as_deref().unwrap_or("-"), "hello");
                self.greeted = true;
                (cmd::hello::run(), Next::Continue)
            }
            _ if !self.greeted => (
                Response::error(
                    ErrorCode::HandshakeRequired,
                    "send {\"op\":\"hello\",\"version\":1} first",
                ),
                Next::Continue,
            ),
            request if self.peer.remote && !cmd::served_remotely(&request) => {
                let op = request.op();
                shared
                    .agent
                    .remote_request(&self.peer, op, ErrorCode::RemoteRefused.as_str());
                (
                    Response::error(
                        ErrorCode::RemoteRefused,
                        format!(
                            "{op} is not served on the agent's extra socket, which remote \
                             shells reach: only hello, status, tokens, list, show, select and \
                             sign are; run it on the machine where the agent runs"
                        ),
                    ),
                    Next::Continue,
                )
            }
            Request::Watch => {
                let (response, events) = cmd::watch::start(&shared.agent);
                (response, Next::Watch(events))
            }
            request => {
                let op = request.op();
                let context = Context {
                    agent: &shared.agent,
                    peer: &self.peer,
                    reply: &self.reply,
                    socket: &shared.socket,
                };
                let response = cmd::dispatch(&context, request);
                if self.peer.remote {
                    let result = match &response {
                        Response::Error { code, .. } => code.as_str(),
                        _ => "ok",
                    };
                    shared.agent.remote_request(&self.peer, op, result);
                }
                (response, Next::Continue)
            }
        }
    }
}

/// Whether a read or write failed for its socket timeout.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Writes all of `bytes` within `timeout` in all (the socket's write
/// timeout bounds each wait for room; this bounds their sum).
fn write_within(
    mut stream: &UnixStream,
    mut bytes: &[u8],
    timeout: Duration,
) -> Result<(), FrameError> {
    let deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(FrameError::Io(ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                return Err(FrameError::Io(std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!("client did not take its answer within {timeout:?}"),
                )))
            }
            Err(e) => return Err(FrameError::Io(e)),
        }
        if !bytes.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FrameError::Io(ErrorKind::TimedOut.into()));
            }
            stream.set_write_timeout(Some(nonzero(left)))?;
        }
    }
    Ok(())
}

/// Sends events until the client sends anything or leaves, or the agent
/// shuts down.
///
/// A client that does not read stalls only this task: its writes wait,
/// while the hub moves on and later reports what this client missed as
/// a `lagged` event. Shutdown and the client's leaving are watched
/// during those writes too, so a stalled client never holds up the
/// agent's exit.
async fn stream_events(
    mut stream: tokio::net::UnixStream,
    mut events: Subscription,
    mut stop: broadcast::Receiver<()>,
) {
    let (mut reader, mut writer) = stream.split();
    loop {
        let response = tokio::select! {
            _ = stop.recv() => return,
            _ = client_spoke(&mut reader) => return,
            next = cmd::watch::next(&mut events) => match next {
                Some(response) => response,
                None => return,
            },
        };
        tokio::select! {
            _ = stop.recv() => return,
            _ = client_spoke(&mut reader) => return,
            sent = send_async(&mut writer, &response) => if let Err(e) = sent {
                tracing::debug!(error = %e, "cannot send event");
                return;
            },
        }
    }
}

/// Writes one event frame.
async fn send_async<W: AsyncWrite + Unpin>(
    w: &mut W,
    response: &Response,
) -> Result<(), FrameError> {
    p11agent_proto::frame::tokio_io::write(w, response, MAX_RESPONSE_FRAME).await
}

/// Completes when the client sends anything or closes its end: on an
/// event stream, either ends the stream. Cancel-safe, as a plain read is.
async fn client_spoke<R: AsyncRead + Unpin>(r: &mut R) {
    let mut byte = [0u8; 1];
    let _ = r.read(&mut byte).await;
}
