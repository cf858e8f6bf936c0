use std::path::{Path, PathBuf};

use p11agent_proto::frame::{tokio_io, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{paths, Filter, Identity, Request, Response, Scheme, Status, TokenSummary};
use tokio::net::UnixStream;

use crate::{AsyncEventStream, ClientError, ShownIdentity};

/// A connection to the agent for tokio programs.
#[derive(Debug)]
pub struct AsyncClient {
    stream: UnixStream,
    agent: String,
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
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|e| ClientError::connect(path, e))?;
        let mut client = AsyncClient {
            stream,
            agent: String::new(),
        };
        client.agent = crate::expect_hello(client.call(&crate::hello()).await?)?;
        Ok(client)
    }

    /// The agent's name and version, from the handshake.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Sends one request and reads its response.
    pub async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        tokio_io::write(&mut self.stream, req, MAX_REQUEST_FRAME).await?;
        Ok(tokio_io::read(&mut self.stream, MAX_RESPONSE_FRAME).await?)
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
