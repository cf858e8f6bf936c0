use std::path::Path;

use p11agent_proto::{
    paths, DigestMechanism, Filter, HashAlgorithm, Identity, Pin, RememberedChoice, Request,
    Response, Scheme, Selection, Status, Token, TokenSummary,
};
use tokio::net::UnixStream;

use crate::calls;
use crate::connection::Core;
use crate::{AsyncEventStream, ClientError, SelectQuery, ShownIdentity};

/// A connection to the agent for tokio programs: [`Client`](crate::Client)'s
/// calls as futures, over the same core, reconnecting by the same rules.
#[derive(Debug)]
pub struct AsyncClient {
    core: Core<UnixStream>,
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
        let core = Core::connect(path.as_ref().to_path_buf()).await?;
        Ok(AsyncClient { core })
    }

    /// The agent's name and version, from the handshake.
    pub fn agent(&self) -> &str {
        self.core.agent()
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        self.core.socket()
    }

    /// Sends one request and reads its response; see
    /// [`Client::call`](crate::Client::call) for the reconnection.
    ///
    /// Not cancel-safe: dropped once the request is sent, it leaves that
    /// request's answer on its way, and the next call would take it for
    /// its own.
    pub async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.core.call(req).await
    }

    /// The agent's status.
    pub async fn status(&mut self) -> Result<Status, ClientError> {
        self.core.run(calls::Status).await
    }

    /// Every token the agent sees.
    pub async fn tokens(&mut self) -> Result<Vec<TokenSummary>, ClientError> {
        self.core.run(calls::Tokens).await
    }

    /// The identities matching `filter`.
    pub async fn list(&mut self, filter: &Filter) -> Result<Vec<Identity>, ClientError> {
        self.core.run(calls::List(filter)).await
    }

    /// One identity by id or unique id prefix, with its certificate.
    pub async fn show(&mut self, id: &str) -> Result<ShownIdentity, ClientError> {
        self.core.run(calls::Show(id)).await
    }

    /// A signature by identity `id` over `message` with `scheme`; see
    /// [`Client::sign`](crate::Client::sign).
    pub async fn sign(
        &mut self,
        id: &str,
        scheme: Scheme,
        message: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        self.core
            .run(calls::Sign {
                id,
                scheme,
                message,
            })
            .await
    }

    /// A signature by identity `id` over a digest; see
    /// [`Client::sign_digest`](crate::Client::sign_digest).
    pub async fn sign_digest(
        &mut self,
        id: &str,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        self.core
            .run(calls::SignDigest {
                id,
                mechanism,
                hash,
                digest,
            })
            .await
    }

    /// Logs in to `token` with `pin` or the agent's PIN source; see
    /// [`Client::login`](crate::Client::login).
    pub async fn login(
        &mut self,
        token: Option<&str>,
        pin: Option<Pin>,
    ) -> Result<Token, ClientError> {
        self.core.run(calls::Login { token, pin }).await
    }

    /// Logs out of `token`, or of every token; see
    /// [`Client::logout`](crate::Client::logout).
    pub async fn logout(&mut self, token: Option<&str>) -> Result<Vec<Token>, ClientError> {
        self.core.run(calls::Logout(token)).await
    }

    /// The client certificate the agent decides to send to a server; see
    /// [`Client::select`](crate::Client::select).
    pub async fn select(&mut self, query: &SelectQuery) -> Result<Selection, ClientError> {
        self.core.run(calls::Select(query)).await
    }

    /// Reports a person's choice for `origin`; see
    /// [`Client::choose`](crate::Client::choose).
    pub async fn choose(
        &mut self,
        origin: &str,
        id: Option<&str>,
        remember: bool,
    ) -> Result<Option<RememberedChoice>, ClientError> {
        self.core
            .run(calls::Choose {
                origin,
                id,
                remember,
            })
            .await
    }

    /// The choices the agent remembers, by origin.
    pub async fn decisions(&mut self) -> Result<Vec<RememberedChoice>, ClientError> {
        self.core.run(calls::Decisions).await
    }

    /// Forgets the choice remembered for `origin`, or every choice; see
    /// [`Client::forget`](crate::Client::forget).
    pub async fn forget(&mut self, origin: Option<&str>) -> Result<Vec<String>, ClientError> {
        self.core.run(calls::Forget(origin)).await
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
    pub async fn watch(self) -> Result<AsyncEventStream, ClientError> {
        Ok(AsyncEventStream::new(self.core.watch().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Programs spawn calls on tokio's multi-threaded runtime, so every
    /// future the async client and its event stream hand out must be
    /// `Send`; this fails to compile otherwise.
    #[test]
    fn futures_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let calls = |client: &mut AsyncClient, events: &mut AsyncEventStream| {
            send(&client.call(&Request::Status));
            send(&client.status());
            send(&client.tokens());
            send(&client.list(&Filter::default()));
            send(&client.show("id"));
            send(&client.sign("id", Scheme::Ed25519, b""));
            send(&client.login(None, None));
            send(&client.logout(None));
            send(&client.select(&SelectQuery::new("https://a.example")));
            send(&client.choose("https://a.example", None, false));
            send(&client.decisions());
            send(&client.forget(None));
            send(&events.next());
        };
        send(&calls);
        let connect_and_watch = async {
            let client = AsyncClient::connect("/nonexistent").await?;
            client.watch().await
        };
        send(&connect_and_watch);
    }
}
