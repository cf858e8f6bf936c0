//! The request/response core both clients share: one connection's
//! framing, the handshake, and the reconnect policy (crate
//! documentation, "Reconnecting"), written once as async code over a
//! [`Transport`] (blocking or tokio).

use std::io;
use std::path::{Path, PathBuf};

use p11agent_proto::frame::{self, FrameDecoder, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{FrameError, Request, Response};

use crate::calls::{self, Call};
use crate::transport::Transport;
use crate::ClientError;

/// One connection: the stream, and the decoder that reads ahead on it
/// (so it goes wherever the stream goes, from a client to its event
/// stream, with any bytes already read).
#[derive(Debug)]
pub(crate) struct Connection<T> {
    stream: T,
    decoder: FrameDecoder,
}

impl<T: Transport> Connection<T> {
    pub(crate) fn new(stream: T) -> Self {
        Connection {
            stream,
            decoder: FrameDecoder::new(MAX_RESPONSE_FRAME),
        }
    }

    /// The stream, for settings that do not move bytes (blocking mode,
    /// polling for readability).
    pub(crate) fn stream(&self) -> &T {
        &self.stream
    }

    /// The next frame from the agent, decoded. Cancel-safe: what has
    /// arrived of a frame stays in the decoder.
    pub(crate) async fn response(&mut self) -> Result<Response, FrameError> {
        self.stream.receive(&mut self.decoder).await?.decode()
    }

    /// Writes `req` and reads its response, telling a connection that was
    /// already dead from other failures.
    async fn exchange(&mut self, req: &Request) -> Result<Response, Failure> {
        let request = frame::encode(req, MAX_REQUEST_FRAME).map_err(Failure::Final)?;
        self.stream
            .send(&request)
            .await
            .map_err(|e| Failure::dead_if_gone(e, false))?;
        match self.response().await {
            Ok(response) => Ok(response),
            // Nothing of the answer arrived: the agent went away with the
            // request, or before it.
            Err(FrameError::Closed) => Err(Failure::Stale {
                error: FrameError::Closed,
                delivered: true,
            }),
            Err(FrameError::Io(e)) if !self.decoder.in_frame() => {
                Err(Failure::dead_if_gone(e, true))
            }
            Err(e) => Err(Failure::Final(e)),
        }
    }
}

/// How one request/response exchange on a connection failed.
enum Failure {
    /// The connection was dead before the agent answered anything: the
    /// request could not be written (`delivered` false), or the stream
    /// ended before the first byte of the response (`delivered` true: the
    /// agent may have read the request before it went away). Sending the
    /// request again on a new connection may help.
    Stale {
        /// What the transport reported, returned when no retry follows.
        error: FrameError,
        /// Whether an agent may have received the request.
        delivered: bool,
    },
    /// Anything else, returned as is.
    Final(FrameError),
}

impl Failure {
    /// Classifies an I/O error before any of the answer arrived: only
    /// the errors a dead agent's socket gives make the connection stale
    /// (a live agent that closes on purpose sends EOF instead).
    fn dead_if_gone(e: io::Error, delivered: bool) -> Failure {
        let gone = matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        );
        let error = FrameError::Io(e);
        if gone {
            Failure::Stale { error, delivered }
        } else {
            Failure::Final(error)
        }
    }

    fn into_error(self) -> ClientError {
        match self {
            Failure::Stale { error, .. } | Failure::Final(error) => error.into(),
        }
    }

    /// Whether `req` may be sent again on a new connection after this
    /// failure (see the crate documentation, "Reconnecting"): a `login`
    /// only when it never left, since it tries a PIN.
    fn allows_retry_of(&self, req: &Request) -> bool {
        match self {
            Failure::Final(_) => false,
            Failure::Stale { delivered, .. } => {
                !*delivered || !matches!(req, Request::Login { .. })
            }
        }
    }
}

/// A connection after its handshake, and how to make it again.
#[derive(Debug)]
pub(crate) struct Core<T> {
    connection: Connection<T>,
    agent: String,
    path: PathBuf,
}

impl<T: Transport> Core<T> {
    /// Connects to the agent listening at `path` and performs the
    /// version handshake.
    pub(crate) async fn connect(path: PathBuf) -> Result<Self, ClientError> {
        let stream = T::connect(&path)
            .await
            .map_err(|e| ClientError::connect(path.clone(), e))?;
        let mut connection = Connection::new(stream);
        // Straight on the new stream: a handshake is never retried.
        let hello = connection
            .exchange(&calls::Hello.request())
            .await
            .map_err(Failure::into_error)?;
        Ok(Core {
            connection,
            agent: calls::Hello::answer(hello)?,
            path,
        })
    }

    /// The agent's name and version, from the handshake.
    pub(crate) fn agent(&self) -> &str {
        &self.agent
    }

    /// The socket this connection goes to.
    pub(crate) fn socket(&self) -> &Path {
        &self.path
    }

    /// Sends one request and reads its response, connecting again and
    /// repeating it once when the connection turns out to have been dead
    /// (see the crate documentation, "Reconnecting").
    pub(crate) async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        match self.connection.exchange(req).await {
            Ok(response) => Ok(response),
            Err(failure) if failure.allows_retry_of(req) => {
                *self = Self::connect(self.path.clone()).await?;
                self.connection
                    .exchange(req)
                    .await
                    .map_err(Failure::into_error)
            }
            Err(failure) => Err(failure.into_error()),
        }
    }

    /// Runs one typed call.
    pub(crate) async fn run<C: Call>(&mut self, call: C) -> Result<C::Output, ClientError> {
        C::answer(self.call(&call.request()).await?)
    }

    /// Turns the connection into an event stream's.
    pub(crate) async fn watch(mut self) -> Result<Connection<T>, ClientError> {
        self.run(calls::Watch).await?;
        Ok(self.connection)
    }
}
