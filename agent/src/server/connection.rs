//! One client connection: framing, the handshake, and error replies.
//! What each request does lives in `cmd/`.
//!
//! A connection handles one request at a time: it reads the next frame
//! only once the answer to the last has been written. A client that
//! sends requests without reading the answers therefore fills the
//! socket's kernel buffers and then blocks; the agent holds at most one
//! request body and one answer for it, and drops it when an answer is
//! not taken within the frame timeout.

use std::sync::Arc;
use std::time::Duration;

use p11agent_proto::frame::{tokio_io, FrameDecoder, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{
    decode_request, BadRequest, ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::broadcast;

use super::cmd::{self, Context};
use super::limits::{IdleConnections, Timeouts};
use super::reply::Reply;
use crate::service::{Agent, Peer, Subscription};

pub(super) struct Connection {
    stream: UnixStream,
    /// Reads the client's frames; holds what arrived of the next one.
    decoder: FrameDecoder,
    agent: Agent,
    /// Who connected, for the audit trail.
    peer: Peer,
    /// The listening socket's path, for `status`.
    socket: Arc<std::path::Path>,
    /// Answers this client when a token call it waits for hangs.
    reply: Arc<Reply>,
    greeted: bool,
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

impl Connection {
    pub(super) fn new(
        stream: UnixStream,
        agent: Agent,
        peer: Peer,
        socket: Arc<std::path::Path>,
    ) -> Self {
        Connection {
            reply: Arc::default(),
            stream,
            decoder: FrameDecoder::new(MAX_REQUEST_FRAME),
            agent,
            peer,
            socket,
            greeted: false,
        }
    }

    /// Answers frames until the client leaves, breaks the framing, is
    /// too slow (`timeouts`), or has its idle connection reclaimed from
    /// `idle` by the listener, or the agent shuts down.
    pub(super) async fn run(
        mut self,
        mut stop: broadcast::Receiver<()>,
        timeouts: Timeouts,
        idle: Arc<IdleConnections>,
    ) {
        loop {
            let request = tokio::select! {
                _ = stop.recv() => return,
                request = self.next_request(timeouts, &idle) => request,
            };
            let (response, next) = match request {
                Ok(request) => {
                    let answer = self.answer(request);
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
            // task, its slot and the answer for ever, and hold up shutdown.
            match tokio::time::timeout(timeouts.frame, send(&mut self.stream, &response)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "cannot answer client");
                    return;
                }
                Err(_) => {
                    tracing::debug!(
                        timeout = ?timeouts.frame,
                        "client did not take its answer in time; closing"
                    );
                    return;
                }
            }
            match next {
                Next::Continue => {}
                Next::Close => return,
                // A frame sent behind `watch` ends the stream before it
                // starts, as one sent later does.
                Next::Watch(_) if self.decoder.in_frame() => return,
                Next::Watch(events) => return self.stream_events(events, &mut stop).await,
            }
        }
    }

    /// Waits for the next request and parses it: up to `timeouts.idle`
    /// for its first byte, while the listener may reclaim the connection,
    /// then up to `timeouts.frame` for the rest of its frame. A request
    /// that arrived with the previous one is taken at once.
    ///
    /// Cancel-safe: what arrived of a frame stays in the decoder (only
    /// shutdown cancels it). The frame's bytes, which may hold a PIN, are
    /// wiped as soon as it is parsed.
    async fn next_request(
        &mut self,
        timeouts: Timeouts,
        idle: &Arc<IdleConnections>,
    ) -> Result<Result<Request, BadRequest>, ReadError> {
        if !self.decoder.in_frame() {
            // A real read, not a wait for readiness: readiness may be
            // reported before any byte is there, which would take the
            // connection out of the idle set for nothing.
            let mut ticket = idle.enter();
            let read = tokio::select! {
                () = ticket.reclaimed() => return Err(ReadError::Reclaimed),
                () = tokio::time::sleep(timeouts.idle) => return Err(ReadError::Idle(timeouts.idle)),
                read = self.stream.read(self.decoder.read_space(false)) => read,
            };
            if !ticket.leave() {
                return Err(ReadError::Reclaimed);
            }
            self.decoder.received(read)?;
        }
        let read = self.decoder.read_frame_async(&mut self.stream, false);
        match tokio::time::timeout(timeouts.frame, read).await {
            Ok(frame) => Ok(decode_request(&frame?)),
            Err(_) => Err(ReadError::TooSlow(timeouts.frame)),
        }
    }

    /// Sends events until the client sends anything or leaves, or the
    /// agent shuts down.
    ///
    /// A client that does not read stalls only this task: its writes
    /// wait, while the hub moves on and later reports what this client
    /// missed as a `lagged` event. Shutdown and the client's leaving are
    /// watched during those writes too, so a stalled client never holds
    /// up the agent's exit.
    async fn stream_events(
        &mut self,
        mut events: Subscription,
        stop: &mut broadcast::Receiver<()>,
    ) {
        let (mut reader, mut writer) = self.stream.split();
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
                sent = send(&mut writer, &response) => if let Err(e) = sent {
                    tracing::debug!(error = %e, "cannot send event");
                    return;
                },
            }
        }
    }

    fn answer(&mut self, request: Result<Request, BadRequest>) -> (Response, Next) {
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
            Request::Watch => {
                let (response, events) = cmd::watch::start(&self.agent);
                (response, Next::Watch(events))
            }
            request => {
                let blocks = cmd::blocks(&request);
                if blocks == cmd::Blocks::OnToken {
                    self.reply.arm(&self.stream);
                }
                let context = Context {
                    agent: &self.agent,
                    peer: &self.peer,
                    reply: &self.reply,
                    socket: &self.socket,
                };
                // What may wait for a token, a person or a file runs on
                // this connection's thread, which the runtime stops
                // using for other tasks meanwhile: no hand-off to another
                // thread and back (see reply.rs for what that costs).
                let response = match blocks {
                    cmd::Blocks::No => cmd::dispatch(&context, request),
                    _ => tokio::task::block_in_place(|| cmd::dispatch(&context, request)),
                };
                (response, Next::Continue)
            }
        }
    }
}

/// Writes one response; one too large to send becomes an `internal`
/// error, so the client still gets an answer.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, response: &Response) -> Result<(), FrameError> {
    match tokio_io::write(w, response, MAX_RESPONSE_FRAME).await {
        Err(e @ FrameError::TooLarge { .. }) => {
            let err = Response::error(ErrorCode::Internal, e.to_string());
            tokio_io::write(w, &err, MAX_RESPONSE_FRAME).await
        }
        other => other,
    }
}

/// Completes when the client sends anything or closes its end: on an
/// event stream, either ends the stream. Cancel-safe, as a plain read is.
async fn client_spoke<R: AsyncRead + Unpin>(r: &mut R) {
    let mut byte = [0u8; 1];
    let _ = r.read(&mut byte).await;
}
