//! One client connection: framing, the handshake, and error replies.
//! What each request does lives in `cmd/`.

use std::sync::Arc;

use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::broadcast;
use zeroize::Zeroize as _;

use super::cmd;
use crate::audit::Peer;
use crate::daemon::State;
use crate::events::Subscription;

pub(super) struct Connection {
    stream: UnixStream,
    state: Arc<State>,
    /// Who connected, for the audit trail.
    peer: Peer,
    greeted: bool,
}

/// What to do after answering a frame.
enum Next {
    Continue,
    Close,
    /// Stream these events until the client leaves (`watch`).
    Watch(Subscription),
}

impl Connection {
    pub(super) fn new(stream: UnixStream, state: Arc<State>, peer: Peer) -> Self {
        Connection {
            stream,
            state,
            peer,
            greeted: false,
        }
    }

    /// Answers frames until the client leaves, breaks the framing, or the
    /// agent shuts down.
    pub(super) async fn run(mut self, mut stop: broadcast::Receiver<()>) {
        loop {
            let body = tokio::select! {
                _ = stop.recv() => return,
                body = tokio_io::read_body(&mut self.stream, MAX_REQUEST_FRAME) => body,
            };
            let (response, next) = match body {
                Ok(mut body) => {
                    let answer = self.answer(&body).await;
                    body.zeroize();
                    answer
                }
                Err(FrameError::Closed) => return,
                Err(e @ FrameError::TooLarge { .. }) => (
                    Response::error(ErrorCode::FrameTooLarge, e.to_string()),
                    Next::Close,
                ),
                Err(e @ FrameError::Empty) => (
                    Response::error(ErrorCode::Malformed, e.to_string()),
                    Next::Continue,
                ),
                Err(e) => {
                    tracing::debug!(error = %e, "connection dropped mid-frame");
                    return;
                }
            };
            if let Err(e) = send(&mut self.stream, &response).await {
                tracing::debug!(error = %e, "cannot answer client");
                return;
            }
            match next {
                Next::Continue => {}
                Next::Close => return,
                Next::Watch(events) => return self.stream_events(events, &mut stop).await,
            }
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

    async fn answer(&mut self, body: &[u8]) -> (Response, Next) {
        let request = match decode(body) {
            Ok(request) => request,
            Err((code, message)) => return (Response::error(code, message), Next::Continue),
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
                let (response, events) = cmd::watch::start(&self.state);
                (response, Next::Watch(events))
            }
            request => (
                cmd::dispatch(&self.state, &self.peer, request).await,
                Next::Continue,
            ),
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

/// Parses a request body, telling a shape it does not know
/// (`unknown_request`) from input that is not a request at all
/// (`malformed`).
///
/// The body is decoded straight into [`Request`], whose PIN wipes itself;
/// only a body that fails is looked at again, for its `op` alone, so a
/// PIN never sits in an intermediate `serde_json::Value`.
fn decode(body: &[u8]) -> Result<Request, (ErrorCode, String)> {
    let error = match serde_json::from_slice::<Request>(body) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    #[derive(serde::Deserialize)]
    struct OpOnly {
        op: String,
    }
    match serde_json::from_slice::<OpOnly>(body) {
        Ok(OpOnly { op }) if KNOWN_OPS.contains(&op.as_str()) => {
            Err((ErrorCode::Malformed, format!("bad {op} request: {error}")))
        }
        Ok(OpOnly { op }) => Err((ErrorCode::UnknownRequest, format!("unknown op {op:?}"))),
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
            Err((ErrorCode::Malformed, format!("not JSON: {error}")))
        }
        Err(_) => Err((
            ErrorCode::Malformed,
            "a request is a JSON object with a string member \"op\"".to_owned(),
        )),
    }
}

const KNOWN_OPS: &[&str] = Request::OPS;
