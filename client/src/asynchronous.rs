use std::path::{Path, PathBuf};

use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{paths, Filter, Identity, Request, Response, Scheme, Status, TokenSummary};
use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;

use crate::{AsyncEventStream, ClientError, Failure, ShownIdentity};

/// A connection to the agent for tokio programs.
///
/// A call that finds the connection broken (the agent restarted)
/// connects again and repeats the request once; see the crate
/// documentation, "Reconnecting".
#[derive(Debug)]
pub struct AsyncClient {
    stream: UnixStream,
    agent: String,
    path: PathBuf,
}

impl AsyncClient {
    /// Connects to the socket named by `P11AGENT_SOCK`, or the default
    /// socket when that is unset.
    pub async fn connect_default() -> Result<Self, ClientError> {
        Self::connect(paths::client_socket()).await
    }

    /// Connects to the agent listening at `path` and performs the
    /// version handshake.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let mut stream = UnixStream::connect(&path)
            .await
            .map_err(|e| ClientError::connect(path.clone(), e))?;
        // Straight on the new stream: a handshake is never retried.
        let hello = exchange(&mut stream, &crate::hello())
            .await
            .map_err(Failure::into_error)?;
        Ok(AsyncClient {
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
    ///
    /// Not cancel-safe: dropping the future while a response is being
    /// read leaves the connection at an unknown position in the stream.
    pub async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        match exchange(&mut self.stream, req).await {
            Ok(response) => Ok(response),
            Err(failure) if failure.allows_retry_of(req) => {
                *self = AsyncClient::connect(&self.path).await?;
                exchange(&mut self.stream, req)
                    .await
                    .map_err(Failure::into_error)
            }
            Err(failure) => Err(failure.into_error()),
        }
    }

    /// The agent's status.
    pub async fn status(&mut self) -> Result<Status, ClientError> {
        crate::into_status(self.call(&Request::Status).await?)
    }

    /// Every token the agent sees.
    pub async fn tokens(&mut self) -> Result<Vec<TokenSummary>, ClientError> {
        crate::into_tokens(self.call(&Request::Tokens).await?)
    }

    /// The identities matching `filter`.
    pub async fn list(&mut self, filter: &Filter) -> Result<Vec<Identity>, ClientError> {
        crate::into_identities(
            self.call(&Request::List {
                filter: filter.clone(),
            })
            .await?,
        )
    }

    /// One identity by id or unique id prefix, with its certificate.
    pub async fn show(&mut self, id: &str) -> Result<ShownIdentity, ClientError> {
        crate::into_shown(self.call(&Request::Show { id: id.to_owned() }).await?)
    }

    /// A signature by identity `id` over `message` with `scheme`; see
    /// [`Client::sign`](crate::Client::sign).
    pub async fn sign(
        &mut self,
        id: &str,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        crate::into_signature(self.call(&crate::sign_request(id, scheme, message)).await?)
    }

    /// The client certificate the agent decides to send to a server
    /// (its candidate filter and policy; see the protocol README).
    pub async fn select(
        &mut self,
        query: &crate::SelectQuery,
    ) -> Result<p11agent_proto::Selection, ClientError> {
        crate::into_selection(self.call(&query.request()).await?)
    }

    /// Reports a person's choice for `origin` (an identity id, or `None`
    /// for "send none"); when `remember` is set the agent remembers it
    /// and returns the record.
    pub async fn choose(
        &mut self,
        origin: &str,
        id: Option<&str>,
        remember: bool,
    ) -> Result<Option<p11agent_proto::RememberedChoice>, ClientError> {
        crate::into_chosen(
            self.call(&crate::choose_request(origin, id, remember))
                .await?,
        )
    }

    /// The choices the agent remembers, by origin.
    pub async fn decisions(
        &mut self,
    ) -> Result<Vec<p11agent_proto::RememberedChoice>, ClientError> {
        crate::into_decisions(self.call(&Request::Decisions).await?)
    }

    /// Forgets the choice remembered for `origin`, or every choice when
    /// `None`; returns the origins forgotten.
    pub async fn forget(&mut self, origin: Option<&str>) -> Result<Vec<String>, ClientError> {
        crate::into_forgotten(
            self.call(&Request::Forget {
                origin: origin.map(str::to_owned),
            })
            .await?,
        )
    }

    /// Turns this connection into a stream of the agent's events; see
    /// [`Client::watch`](crate::Client::watch).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), p11agent_client::ClientError> {
    /// let agent = p11agent_client::AsyncClient::connect_default().await?;
    /// let mut events = agent.watch().await?;
    /// while let Some(event) = events.next().await {
    ///     let event = event?;
    ///     println!("{} {}", event.time, event.event);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn watch(mut self) -> Result<AsyncEventStream, ClientError> {
        crate::expect_watching(self.call(&Request::Watch).await?)?;
        Ok(AsyncEventStream::new(self.stream))
    }
}

/// Writes `req` and reads its response on `stream`, telling a connection
/// that was already dead from other failures.
async fn exchange(stream: &mut UnixStream, req: &Request) -> Result<Response, Failure> {
    tokio_io::write(stream, req, MAX_REQUEST_FRAME)
        .await
        .map_err(crate::write_failure)?;
    // The first byte alone, so that an end of stream here (nothing of the
    // answer arrived) can be told from one inside the frame.
    let mut first = [0u8; 1];
    while !crate::first_byte(stream.read(&mut first).await)? {}
    tokio_io::read(
        &mut first.as_slice().chain(&mut *stream),
        MAX_RESPONSE_FRAME,
    )
    .await
    .map_err(|e| Failure::Final(e.into()))
}
