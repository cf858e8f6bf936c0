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

use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::broadcast;
use zeroize::Zeroize as _;

use super::cmd::{self, Context};
use super::limits::{IdleConnections, Timeouts};
use super::reply::Reply;
use crate::service::{Agent, Peer, Subscription};

pub(super) struct Connection {
    stream: UnixStream,
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
            let body = tokio::select! {
                _ = stop.recv() => return,
                body = self.next_frame(timeouts, &idle) => body,
            };
            let (response, next) = match body {
                Ok(mut body) => {
                    let answer = self.answer(&body);
                    body.zeroize();
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
                Next::Watch(events) => return self.stream_events(events, &mut stop).await,
            }
        }
    }

    /// Waits for the next request frame: up to `timeouts.idle` for its
    /// first byte, while the listener may reclaim the connection, then up
    /// to `timeouts.frame` for the rest.
    ///
    /// Cancel-safe while waiting for the first byte; cancelled later, it
    /// leaves the stream inside a frame (only shutdown cancels it then).
    async fn next_frame(
        &mut self,
        timeouts: Timeouts,
        idle: &Arc<IdleConnections>,
    ) -> Result<Vec<u8>, ReadError> {
        let mut first = [0u8; 1];
        let mut ticket = idle.enter();
        let arrived = tokio::select! {
            () = ticket.reclaimed() => return Err(ReadError::Reclaimed),
            () = tokio::time::sleep(timeouts.idle) => return Err(ReadError::Idle(timeouts.idle)),
            read = self.stream.read(&mut first) => read.map_err(FrameError::Io)?,
        };
        if !ticket.leave() {
            return Err(ReadError::Reclaimed);
        }
        if arrived == 0 {
            return Err(FrameError::Closed.into());
        }
        let mut frame = first.as_slice().chain(&mut self.stream);
        match tokio::time::timeout(
            timeouts.frame,
            tokio_io::read_body(&mut frame, MAX_REQUEST_FRAME),
        )
        .await
        {
            Ok(body) => Ok(body?),
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

    fn answer(&mut self, body: &[u8]) -> (Response, Next) {
        let request = match decode_request(body) {
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

/// A request body the agent cannot take, and the error it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct BadRequest {
    /// `malformed` or `unknown_request`.
    pub(crate) code: ErrorCode,
    /// What is wrong, for the client's user.
    pub(crate) message: String,
}

impl BadRequest {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BadRequest {
            code,
            message: message.into(),
        }
    }
}

/// Parses a request body (a frame's contents), telling a shape it does
/// not know (`unknown_request`) from input that is not a request at all
/// (`malformed`). Public for the fuzz driver (`agent/examples/fuzz.rs`)
/// and property tests: this is where every client byte is parsed.
///
/// The body is decoded straight into [`Request`], whose PIN wipes itself;
/// only a body that fails is looked at again, for its `op` alone, so a
/// PIN never sits in an intermediate `serde_json::Value`.
pub(crate) fn decode_request(body: &[u8]) -> Result<Request, BadRequest> {
    let error = match serde_json::from_slice::<Request>(body) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    #[derive(serde::Deserialize)]
    struct OpOnly {
        op: String,
    }
    match serde_json::from_slice::<OpOnly>(body) {
        Ok(OpOnly { op }) if KNOWN_OPS.contains(&op.as_str()) => Err(BadRequest::new(
            ErrorCode::Malformed,
            format!("bad {op} request: {error}"),
        )),
        Ok(OpOnly { op }) => Err(BadRequest::new(
            ErrorCode::UnknownRequest,
            format!("unknown op {op:?}"),
        )),
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => Err(
            BadRequest::new(ErrorCode::Malformed, format!("not JSON: {error}")),
        ),
        Err(_) => Err(BadRequest::new(
            ErrorCode::Malformed,
            "a request is a JSON object with a string member \"op\"",
        )),
    }
}

const KNOWN_OPS: &[&str] = Request::OPS;

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Every error the parser gives is one of the two it documents, with
    /// something to tell the user.
    fn typed(result: Result<Request, BadRequest>) -> Result<(), TestCaseError> {
        if let Err(e) = result {
            prop_assert!(
                matches!(e.code, ErrorCode::Malformed | ErrorCode::UnknownRequest),
                "unexpected code {}",
                e.code
            );
            prop_assert!(!e.message.is_empty());
        }
        Ok(())
    }

    /// JSON values of any shape, a few levels deep.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                vec((any::<String>(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// Objects with a real op and members of any name and value, some of
    /// them the members the op takes.
    fn request_like() -> impl Strategy<Value = Vec<u8>> {
        let names = proptest::sample::select(vec![
            "version", "client", "filter", "id", "scheme", "message", "token", "pin", "origin",
            "ca_names", "schemes", "chooser", "remember", "op", "subject", "has_key",
        ]);
        (
            proptest::sample::select(Request::OPS.to_vec()),
            vec((names, json()), 0..5),
        )
            .prop_map(|(op, members)| {
                let mut object = serde_json::Map::new();
                object.insert("op".to_owned(), op.into());
                for (name, value) in members {
                    object.insert(name.to_owned(), value);
                }
                serde_json::to_vec(&object).unwrap_or_default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_bytes_give_a_request_or_a_typed_error(body in vec(any::<u8>(), 0..512)) {
            typed(decode_request(&body))?;
        }

        #[test]
        fn arbitrary_json_gives_a_request_or_a_typed_error(value in json()) {
            let body = serde_json::to_vec(&value).unwrap_or_default();
            typed(decode_request(&body))?;
        }

        #[test]
        fn request_shaped_garbage_gives_a_request_or_a_typed_error(body in request_like()) {
            typed(decode_request(&body))?;
        }

        // Ops without members (`status`, `tokens`, `decisions`, `watch`)
        // are left out: serde ignores extra members of an internally
        // tagged unit variant, so those parse whatever else is present.
        #[test]
        fn a_known_op_with_bad_members_is_malformed(op in proptest::sample::select(vec![
            "hello", "list", "show", "sign", "login", "logout", "select", "choose", "forget",
        ])) {
            let body = format!(r#"{{"op":"{op}","no_such_member":1}}"#);
            let error = decode_request(body.as_bytes()).expect_err("unknown member");
            prop_assert_eq!(error.code, ErrorCode::Malformed);
        }

        #[test]
        fn an_unknown_op_is_unknown(op in "[a-z_]{1,16}") {
            prop_assume!(!Request::OPS.contains(&op.as_str()));
            let body = format!(r#"{{"op":"{op}"}}"#);
            let error = decode_request(body.as_bytes()).expect_err("unknown op");
            prop_assert_eq!(error.code, ErrorCode::UnknownRequest);
        }
    }
}
