//! Client library for the p11agent signing agent.
//!
//! [`Client`] is a blocking connection, [`AsyncClient`] the same over
//! tokio. Both perform the version handshake on connect and offer one
//! typed call per request the agent answers; `watch` turns a connection
//! into a stream of the agent's events ([`EventStream`],
//! [`AsyncEventStream`]).
//!
//! The [`tls`] module plugs the agent into rustls 0.23 (ring provider):
//! a client-certificate resolver and signing key whose private-key
//! operations are done by the agent, and a helper that builds a
//! `ClientConfig` for one origin. It is always built (no feature flag):
//! the agent exists to do TLS client authentication, and rustls with
//! ring is a modest dependency.
//!
//! # Reconnecting
//!
//! A client outlives the agent it connected to: when a call finds its
//! connection dead — writing the request fails with `EPIPE` or
//! `ECONNRESET`, or the stream ends (EOF, `ECONNRESET`) before the first
//! byte of the response — the client connects to the same socket again,
//! repeats the `hello` handshake and sends the request once more. That
//! happens once per call and for those transport failures only: never
//! after the agent answered (an `error` response is an answer), and never
//! once part of a response frame has arrived, since the agent was then
//! alive and working on it. When nothing listens on the socket any more,
//! the call fails with [`ClientError::NotRunning`], as `connect` does; the
//! next call tries again.
//!
//! Sending a request a second time is safe because every request is
//! either read-only (`status`, `tokens`, `list`, `show`, `select`,
//! `decisions`), idempotent (`choose` records the same choice again,
//! `forget` and `logout` forget again), or worth doing again: a `sign`
//! repeated after the agent died is a fresh signature over the same
//! message from the new agent, and the first attempt's signature, if one
//! was made, was never delivered to anybody. The exception is `login`,
//! which tries a PIN (the one it carries, or the agent's PIN source's):
//! a PIN is never tried twice without a person asking, since a wrong one
//! counts towards locking the card. So a `login` is sent again only when
//! the first request demonstrably never reached an agent (its write
//! failed), not when the connection broke while it was being answered.
//!
//! ```no_run
//! let mut agent = p11agent_client::Client::connect_default()?;
//! for identity in agent.list(&Default::default())? {
//!     println!("{} {}", identity.id, identity.subject);
//! }
//! # Ok::<(), p11agent_client::ClientError>(())
//! ```

mod asynchronous;
mod blocking;
mod error;
mod events;
pub mod tls;

pub use asynchronous::AsyncClient;
pub use blocking::Client;
pub use error::ClientError;
pub use events::{AsyncEventStream, EventStream};
pub use p11agent_proto as proto;

use p11agent_proto::{
    FrameError, Identity, Request, Response, Status, TokenSummary, PROTOCOL_VERSION,
};

/// How one request/response exchange on a connection failed.
enum Failure {
    /// The connection was dead before the agent answered anything: the
    /// request could not be written (`delivered` false), or the stream
    /// ended before the first byte of the response (`delivered` true: the
    /// agent may have read the request before it went away). Sending the
    /// request again on a new connection may help.
    Stale {
        /// What the transport reported, returned when no retry follows.
        error: ClientError,
        /// Whether an agent may have received the request.
        delivered: bool,
    },
    /// Anything else, returned as is.
    Final(ClientError),
}

impl Failure {
    fn into_error(self) -> ClientError {
        match self {
            Failure::Stale { error, .. } | Failure::Final(error) => error,
        }
    }

    /// Whether `req` may be sent again on a new connection after this
    /// failure (see the crate documentation, "Reconnecting").
    fn allows_retry_of(&self, req: &Request) -> bool {
        match self {
            Failure::Final(_) => false,
            Failure::Stale { delivered, .. } => {
                !*delivered || !matches!(req, Request::Login { .. })
            }
        }
    }
}

/// Whether an I/O error says the peer is gone: the errors a dead agent's
/// socket gives (a live agent that closes on purpose sends EOF instead).
fn peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// Classifies a failure to write a request.
fn write_failure(e: FrameError) -> Failure {
    match e {
        FrameError::Io(io) if peer_gone(&io) => Failure::Stale {
            error: FrameError::Io(io).into(),
            delivered: false,
        },
        other => Failure::Final(other.into()),
    }
}

/// Classifies the outcome of reading the first byte of a response:
/// `Ok(true)` when a byte arrived, `Ok(false)` to read again.
fn first_byte(result: std::io::Result<usize>) -> Result<bool, Failure> {
    let stale = |error: FrameError| Failure::Stale {
        error: error.into(),
        delivered: true,
    };
    match result {
        Ok(0) => Err(stale(FrameError::Closed)),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(false),
        Err(e) if peer_gone(&e) => Err(stale(FrameError::Io(e))),
        Err(e) => Err(Failure::Final(FrameError::Io(e).into())),
    }
}

/// The first request on every connection.
fn hello() -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
        client: Some(format!("p11agent-client {}", env!("CARGO_PKG_VERSION"))),
    }
}

/// Checks the agent's answer to the handshake and returns its name.
fn expect_hello(resp: Response) -> Result<String, ClientError> {
    match resp {
        Response::Hello { version, agent } if version == PROTOCOL_VERSION => Ok(agent),
        Response::Hello { version, .. } => Err(ClientError::Version { agent: version }),
        other => Err(unexpected(other)),
    }
}

/// Turns an error response, or a response of the wrong kind, into an error.
fn unexpected(resp: Response) -> ClientError {
    match resp {
        Response::Error { code, message } => ClientError::Agent { code, message },
        other => ClientError::Protocol(format!("unexpected response: {other:?}")),
    }
}

/// Checks the agent's answer to `watch`.
fn expect_watching(resp: Response) -> Result<(), ClientError> {
    match resp {
        Response::Watching => Ok(()),
        other => Err(unexpected(other)),
    }
}

fn into_status(resp: Response) -> Result<Status, ClientError> {
    match resp {
        Response::Status(status) => Ok(status),
        other => Err(unexpected(other)),
    }
}

fn into_tokens(resp: Response) -> Result<Vec<TokenSummary>, ClientError> {
    match resp {
        Response::Tokens { tokens } => Ok(tokens),
        other => Err(unexpected(other)),
    }
}

fn into_identities(resp: Response) -> Result<Vec<Identity>, ClientError> {
    match resp {
        Response::Identities { identities } => Ok(identities),
        other => Err(unexpected(other)),
    }
}

/// The `sign` request for `message`, base64-encoded as the protocol wants.
fn sign_request(id: &str, scheme: p11agent_proto::Scheme, message: &[u8]) -> Request {
    use base64::Engine as _;
    Request::Sign {
        id: id.to_owned(),
        scheme,
        message: base64::engine::general_purpose::STANDARD.encode(message),
    }
}

fn into_signature(resp: Response) -> Result<Vec<u8>, ClientError> {
    use base64::Engine as _;
    match resp {
        Response::Signature { signature } => base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|e| ClientError::Protocol(format!("signature is not base64: {e}"))),
        other => Err(unexpected(other)),
    }
}

/// What a TLS server asked for, as [`Client::select`] sends it.
#[derive(Debug, Clone)]
pub struct SelectQuery {
    /// The server's origin, `https://host:port`.
    pub origin: String,
    /// The DER names of the server's `certificate_authorities`; empty
    /// accepts any issuer.
    pub ca_names: Vec<Vec<u8>>,
    /// The server's signature schemes, when known.
    pub schemes: Option<Vec<p11agent_proto::Scheme>>,
    /// Who asks a person when one must choose.
    pub chooser: p11agent_proto::ChooserMode,
    /// An identity the application fixed (id or unique prefix).
    pub id: Option<String>,
    /// Whether the answer lists every excluded identity and why (true
    /// unless set). Set it false where only the decision matters, as
    /// during a handshake.
    pub explain: bool,
}

impl SelectQuery {
    /// A query for `origin` with an empty CA list and unknown schemes,
    /// that asks for the excluded identities too.
    pub fn new(origin: impl Into<String>) -> Self {
        SelectQuery {
            origin: origin.into(),
            ca_names: Vec::new(),
            schemes: None,
            chooser: p11agent_proto::ChooserMode::default(),
            id: None,
            explain: true,
        }
    }

    fn request(&self) -> Request {
        use base64::Engine as _;
        Request::Select {
            origin: self.origin.clone(),
            ca_names: self
                .ca_names
                .iter()
                .map(|n| base64::engine::general_purpose::STANDARD.encode(n))
                .collect(),
            schemes: self.schemes.clone(),
            chooser: self.chooser,
            id: self.id.clone(),
            explain: self.explain,
        }
    }
}

fn into_selection(resp: Response) -> Result<p11agent_proto::Selection, ClientError> {
    match resp {
        Response::Selection(selection) => Ok(*selection),
        other => Err(unexpected(other)),
    }
}

fn choose_request(origin: &str, id: Option<&str>, remember: bool) -> Request {
    Request::Choose {
        origin: origin.to_owned(),
        id: id.map(str::to_owned),
        remember,
    }
}

fn into_chosen(resp: Response) -> Result<Option<p11agent_proto::RememberedChoice>, ClientError> {
    match resp {
        Response::Chosen { remembered } => Ok(remembered),
        other => Err(unexpected(other)),
    }
}

fn into_decisions(resp: Response) -> Result<Vec<p11agent_proto::RememberedChoice>, ClientError> {
    match resp {
        Response::Decisions { decisions } => Ok(decisions),
        other => Err(unexpected(other)),
    }
}

fn into_forgotten(resp: Response) -> Result<Vec<String>, ClientError> {
    match resp {
        Response::Forgotten { origins } => Ok(origins),
        other => Err(unexpected(other)),
    }
}

/// An identity with its certificate, as [`Client::show`] returns it.
#[derive(Debug, Clone)]
pub struct ShownIdentity {
    /// The identity record.
    pub identity: Identity,
    /// The certificate's DER encoding.
    pub certificate: Vec<u8>,
}

fn into_shown(resp: Response) -> Result<ShownIdentity, ClientError> {
    use base64::Engine as _;
    match resp {
        Response::Identity {
            identity,
            certificate,
        } => {
            let certificate = base64::engine::general_purpose::STANDARD
                .decode(certificate)
                .map_err(|e| ClientError::Protocol(format!("certificate is not base64: {e}")))?;
            Ok(ShownIdentity {
                identity: *identity,
                certificate,
            })
        }
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{ErrorCode, Scheme};

    #[test]
    fn sign_encodes_the_message_and_decodes_the_signature() {
        let req = sign_request("abcd", Scheme::Ed25519, b"\x00\x01hi");
        assert_eq!(
            req,
            Request::Sign {
                id: "abcd".into(),
                scheme: Scheme::Ed25519,
                message: "AAFoaQ==".into(),
            }
        );
        let sig = into_signature(Response::Signature {
            signature: "AAFoaQ==".into(),
        });
        assert_eq!(sig.ok(), Some(b"\x00\x01hi".to_vec()));
        let refused = into_signature(Response::error(ErrorCode::PinRequired, "no PIN"));
        assert!(matches!(
            refused,
            Err(ClientError::Agent {
                code: ErrorCode::PinRequired,
                ..
            })
        ));
        assert!(matches!(
            into_signature(Response::Signature {
                signature: "!!".into()
            }),
            Err(ClientError::Protocol(_))
        ));
    }
}
