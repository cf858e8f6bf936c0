use std::os::unix::net::UnixStream;
use std::path::Path;

use p11agent_proto::{
    paths, DigestMechanism, Filter, HashAlgorithm, Identity, Pin, RememberedChoice, Request,
    Response, Scheme, Selection, Status, Token, TokenSummary,
};

use crate::calls::{self, Call};
use crate::connection::Core;
use crate::transport::wait;
use crate::{ClientError, EventStream, SelectQuery, ShownIdentity};

/// A blocking connection to the agent.
///
/// A call that finds the connection broken (the agent restarted)
/// connects again and repeats the request once; see the crate
/// documentation, "Reconnecting".
#[derive(Debug)]
pub struct Client {
    core: Core<UnixStream>,
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
        let core = wait(Core::connect(path.as_ref().to_path_buf()))?;
        Ok(Client { core })
    }

    /// The agent's name and version, from the handshake.
    pub fn agent(&self) -> &str {
        self.core.agent()
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        self.core.socket()
    }

    /// Sends one request and reads its response.
    ///
    /// When the connection turns out to be dead before any of the
    /// response arrived, connects to the same socket again and sends the
    /// request once more; [`ClientError::NotRunning`] when no agent
    /// listens there any more. See the crate documentation,
    /// "Reconnecting", for when exactly, and why repeating is safe.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        wait(self.core.call(req))
    }

    fn run<C: Call>(&mut self, call: C) -> Result<C::Output, ClientError> {
        wait(self.core.run(call))
    }

    /// The agent's status.
    pub fn status(&mut self) -> Result<Status, ClientError> {
        self.run(calls::Status)
    }

    /// Every token the agent sees.
    pub fn tokens(&mut self) -> Result<Vec<TokenSummary>, ClientError> {
        self.run(calls::Tokens)
    }

    /// The identities matching `filter`.
    pub fn list(&mut self, filter: &Filter) -> Result<Vec<Identity>, ClientError> {
        self.run(calls::List(filter))
    }

    /// One identity by id or unique id prefix, with its certificate.
    pub fn show(&mut self, id: &str) -> Result<ShownIdentity, ClientError> {
        self.run(calls::Show(id))
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
        self.run(calls::Sign {
            id,
            scheme,
            message,
        })
    }

    /// A signature by identity `id` over `digest`, a hash the caller
    /// computed with `hash`, made with `mechanism` (DER for ECDSA). The
    /// agent signs digests only for the programs its digest policy
    /// lists; others get [`ClientError::Agent`] with
    /// `digest_not_allowed`.
    pub fn sign_digest(
        &mut self,
        id: &str,
        mechanism: DigestMechanism,
        hash: HashAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        self.run(calls::SignDigest {
            id,
            mechanism,
            hash,
            digest,
        })
    }

    /// Logs in to `token` (label or serial; `None` when only one token
    /// is present) with `pin`, or, without one, with whatever the agent's
    /// PIN source (pinentry, PIN file, PIN pad) gives; returns the token.
    ///
    /// A login that reached the agent is never sent twice, even when the
    /// connection broke before the answer: a wrong PIN counts towards
    /// locking the card (crate documentation, "Reconnecting").
    pub fn login(&mut self, token: Option<&str>, pin: Option<Pin>) -> Result<Token, ClientError> {
        self.run(calls::Login { token, pin })
    }

    /// Logs out of `token`, or of every token when `None`, and has the
    /// agent forget their PINs; returns the tokens that were logged in.
    pub fn logout(&mut self, token: Option<&str>) -> Result<Vec<Token>, ClientError> {
        self.run(calls::Logout(token))
    }

    /// The client certificate the agent decides to send to a server
    /// (its candidate filter and policy; see the protocol README).
    pub fn select(&mut self, query: &SelectQuery) -> Result<Selection, ClientError> {
        self.run(calls::Select(query))
    }

    /// Reports a person's choice for `origin` (an identity id, or `None`
    /// for "send none"); when `remember` is set the agent remembers it
    /// and returns the record.
    pub fn choose(
        &mut self,
        origin: &str,
        id: Option<&str>,
        remember: bool,
    ) -> Result<Option<RememberedChoice>, ClientError> {
        self.run(calls::Choose {
            origin,
            id,
            remember,
        })
    }

    /// The choices the agent remembers, by origin.
    pub fn decisions(&mut self) -> Result<Vec<RememberedChoice>, ClientError> {
        self.run(calls::Decisions)
    }

    /// Forgets the choice remembered for `origin`, or every choice when
    /// `None`; returns the origins forgotten.
    pub fn forget(&mut self, origin: Option<&str>) -> Result<Vec<String>, ClientError> {
        self.run(calls::Forget(origin))
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
    pub fn watch(self) -> Result<EventStream, ClientError> {
        Ok(EventStream::new(wait(self.core.watch())?))
    }
}
