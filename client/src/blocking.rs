use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use p11agent_proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{paths, Filter, Identity, Request, Response, Scheme, Status, TokenSummary};

use crate::{ClientError, EventStream, Failure, ShownIdentity};

/// A blocking connection to the agent.
///
/// A call that finds the connection broken (the agent restarted)
/// connects again and repeats the request once; see the crate
/// documentation, "Reconnecting".
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    agent: String,
    path: PathBuf,
}

impl Client {
    /// Connects to the socket named by `P11AGENT_SOCK`, or the default
    /// socket when that is unset.
    pub fn connect_default() -> Result<Self, ClientError> {
        Self::connect(paths::client_socket())
    }

    /// Connects to the agent listening at `path` and performs the
    /// version handshake.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref().to_path_buf();
        let mut stream =
            UnixStream::connect(&path).map_err(|e| ClientError::connect(path.clone(), e))?;
        // Straight on the new stream: a handshake is never retried.
        let hello = exchange(&mut stream, &crate::hello()).map_err(Failure::into_error)?;
        Ok(Client {
            stream,
            agent: crate::expect_hello(hello)?,
            path,
        })
    }

    /// The agent's name and version, from the handshake.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Sends one request and reads its response.
    ///
    /// When the connection turns out to be dead before any of the
    /// response arrived, connects to the same socket again and sends the
    /// request once more; [`ClientError::NotRunning`] when no agent
    /// listens there any more. See the crate documentation,
    /// "Reconnecting", for when exactly, and why repeating is safe.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        match exchange(&mut self.stream, req) {
            Ok(response) => Ok(response),
            Err(failure) if failure.allows_retry_of(req) => {
                *self = Client::connect(&self.path)?;
                exchange(&mut self.stream, req).map_err(Failure::into_error)
            }
            Err(failure) => Err(failure.into_error()),
        }
    }

    /// The agent's status.
    pub fn status(&mut self) -> Result<Status, ClientError> {
        crate::into_status(self.call(&Request::Status)?)
    }

    /// Every token the agent sees.
    pub fn tokens(&mut self) -> Result<Vec<TokenSummary>, ClientError> {
        crate::into_tokens(self.call(&Request::Tokens)?)
    }

    /// The identities matching `filter`.
    pub fn list(&mut self, filter: &Filter) -> Result<Vec<Identity>, ClientError> {
        crate::into_identities(self.call(&Request::List {
            filter: filter.clone(),
        })?)
    }

    /// One identity by id or unique id prefix, with its certificate.
    pub fn show(&mut self, id: &str) -> Result<ShownIdentity, ClientError> {
        crate::into_shown(self.call(&Request::Show { id: id.to_owned() })?)
    }

    /// A signature by identity `id` (full id or unique prefix) over
    /// `message`, made with `scheme` exactly as TLS puts it in
    /// CertificateVerify (DER for ECDSA). The agent hashes `message`
    /// itself. An error answer (no key, wrong scheme, PIN trouble, ...)
    /// is [`ClientError::Agent`].
    pub fn sign(
        &mut self,
        id: &str,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        crate::into_signature(self.call(&crate::sign_request(id, scheme, message))?)
    }

    /// The client certificate the agent decides to send to a server
    /// (its candidate filter and policy; see the protocol README).
    pub fn select(
        &mut self,
        query: &crate::SelectQuery,
    ) -> Result<p11agent_proto::Selection, ClientError> {
        crate::into_selection(self.call(&query.request())?)
    }

    /// Reports a person's choice for `origin` (an identity id, or `None`
    /// for "send none"); when `remember` is set the agent remembers it
    /// and returns the record.
    pub fn choose(
        &mut self,
        origin: &str,
        id: Option<&str>,
        remember: bool,
    ) -> Result<Option<p11agent_proto::RememberedChoice>, ClientError> {
        crate::into_chosen(self.call(&crate::choose_request(origin, id, remember))?)
    }

    /// The choices the agent remembers, by origin.
    pub fn decisions(&mut self) -> Result<Vec<p11agent_proto::RememberedChoice>, ClientError> {
        crate::into_decisions(self.call(&Request::Decisions)?)
    }

    /// Forgets the choice remembered for `origin`, or every choice when
    /// `None`; returns the origins forgotten.
    pub fn forget(&mut self, origin: Option<&str>) -> Result<Vec<String>, ClientError> {
        crate::into_forgotten(self.call(&Request::Forget {
            origin: origin.map(str::to_owned),
        })?)
    }

    /// Turns this connection into a stream of the agent's events (tokens
    /// inserted and removed, identities added and removed, logins and
    /// logouts, modules failing): every event from the moment this
    /// returns, until the agent stops or the stream is dropped.
    ///
    /// The connection serves nothing else afterwards, hence `self`; open
    /// another for requests. A watcher that reads too slowly misses the
    /// oldest events and gets a [`Lagged`](p11agent_proto::EventKind::Lagged)
    /// event saying how many instead.
    ///
    /// ```no_run
    /// let agent = p11agent_client::Client::connect_default()?;
    /// for event in agent.watch()? {
    ///     let event = event?;
    ///     println!("{} {}", event.time, event.event);
    /// }
    /// # Ok::<(), p11agent_client::ClientError>(())
    /// ```
    pub fn watch(mut self) -> Result<EventStream, ClientError> {
        crate::expect_watching(self.call(&Request::Watch)?)?;
        Ok(EventStream::new(self.stream))
    }
}

/// Writes `req` and reads its response on `stream`, telling a connection
/// that was already dead from other failures.
fn exchange(stream: &mut UnixStream, req: &Request) -> Result<Response, Failure> {
    frame::write(stream, req, MAX_REQUEST_FRAME).map_err(crate::write_failure)?;
    // The first byte alone, so that an end of stream here (nothing of the
    // answer arrived) can be told from one inside the frame.
    let mut first = [0u8; 1];
    while !crate::first_byte(stream.read(&mut first))? {}
    frame::read(
        &mut first.as_slice().chain(&mut *stream),
        MAX_RESPONSE_FRAME,
    )
    .map_err(|e| Failure::Final(e.into()))
}
