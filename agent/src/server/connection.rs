//! One client connection: framing, the handshake, and error replies.
//! What each request does lives in `cmd/`.

use std::sync::Arc;

use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION};
use tokio::net::UnixStream;
use tokio::sync::broadcast;
use zeroize::Zeroize as _;

use super::cmd;
use crate::daemon::State;

pub(super) struct Connection {
    stream: UnixStream,
    state: Arc<State>,
    greeted: bool,
}

/// What to do after answering a frame.
enum Next {
    Continue,
    Close,
}

impl Connection {
    pub(super) fn new(stream: UnixStream, state: Arc<State>) -> Self {
        Connection {
            stream,
            state,
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
            if let Err(e) = self.send(&response).await {
                tracing::debug!(error = %e, "cannot answer client");
                return;
            }
            if let Next::Close = next {
                return;
            }
        }
    }

    async fn send(&mut self, response: &Response) -> Result<(), FrameError> {
        match tokio_io::write(&mut self.stream, response, MAX_RESPONSE_FRAME).await {
            Err(e @ FrameError::TooLarge { .. }) => {
                let err = Response::error(ErrorCode::Internal, e.to_string());
                tokio_io::write(&mut self.stream, &err, MAX_RESPONSE_FRAME).await
            }
            other => other,
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
            request => (cmd::dispatch(&self.state, request).await, Next::Continue),
        }
    }
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

const KNOWN_OPS: &[&str] = &[
    "hello", "status", "tokens", "list", "show", "sign", "login", "logout",
];
