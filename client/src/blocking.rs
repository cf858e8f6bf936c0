use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use p11agent_proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{paths, Filter, Identity, Request, Response, Scheme, Status, TokenSummary};

use crate::{ClientError, EventStream, ShownIdentity};

/// A blocking connection to the agent.
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
        let stream =
            UnixStream::connect(&path).map_err(|e| ClientError::connect(path.clone(), e))?;
        let mut client = Client {
            stream,
            agent: String::new(),
            path,
        };
        client.agent = crate::expect_hello(client.call(&crate::hello())?)?;
        Ok(client)
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
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        frame::write(&mut self.stream, req, MAX_REQUEST_FRAME)?;
        Ok(frame::read(&mut self.stream, MAX_RESPONSE_FRAME)?)
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
