//! One type per request the clients send: the [`Request`] it makes and
//! how its [`Response`] reads. Both clients run them through the same
//! core (`connection.rs`), so a typed method of either client is one line.

use base64::Engine as _;
use p11agent_proto as proto;
use p11agent_proto::{Request, Response, PROTOCOL_VERSION};

use crate::error::ClientError;
use crate::query::{SelectQuery, ShownIdentity};

/// A request and the reading of its answer.
pub(crate) trait Call {
    /// What the answer gives the caller.
    type Output;

    /// The request to send. By value, so that a PIN moves into it rather
    /// than being copied.
    fn request(self) -> Request;

    /// The caller's value from the agent's answer; the agent's error, or
    /// an answer of another kind, as an error.
    fn answer(response: Response) -> Result<Self::Output, ClientError>;
}

/// Turns an error response, or a response of the wrong kind, into an error.
pub(crate) fn unexpected(response: Response) -> ClientError {
    match response {
        Response::Error { code, message } => ClientError::Agent { code, message },
        other => ClientError::Protocol(format!("unexpected response: {other:?}")),
    }
}

/// The version handshake, first on every connection; gives the agent's
/// name.
pub(crate) struct Hello;

impl Call for Hello {
    type Output = String;

    fn request(self) -> Request {
        Request::Hello {
            version: PROTOCOL_VERSION,
            client: Some(format!("p11agent-client {}", env!("CARGO_PKG_VERSION"))),
        }
    }

    fn answer(response: Response) -> Result<String, ClientError> {
        match response {
            Response::Hello { version, agent } if version == PROTOCOL_VERSION => Ok(agent),
            Response::Hello { version, .. } => Err(ClientError::Version { agent: version }),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Status;

impl Call for Status {
    type Output = proto::Status;

    fn request(self) -> Request {
        Request::Status
    }

    fn answer(response: Response) -> Result<proto::Status, ClientError> {
        match response {
            Response::Status(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Tokens;

impl Call for Tokens {
    type Output = Vec<proto::TokenSummary>;

    fn request(self) -> Request {
        Request::Tokens
    }

    fn answer(response: Response) -> Result<Self::Output, ClientError> {
        match response {
            Response::Tokens { tokens } => Ok(tokens),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct List<'a>(pub &'a proto::Filter);

impl Call for List<'_> {
    type Output = Vec<proto::Identity>;

    fn request(self) -> Request {
        Request::List {
            filter: self.0.clone(),
        }
    }

    fn answer(response: Response) -> Result<Self::Output, ClientError> {
        match response {
            Response::Identities { identities } => Ok(identities),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Show<'a>(pub &'a str);

impl Call for Show<'_> {
    type Output = ShownIdentity;

    fn request(self) -> Request {
        Request::Show {
            id: self.0.to_owned(),
        }
    }

    fn answer(response: Response) -> Result<ShownIdentity, ClientError> {
        let Response::Identity {
            identity,
            certificate,
            chain,
        } = response
        else {
            return Err(unexpected(response));
        };
        let decode = |b64: String| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| ClientError::Protocol(format!("certificate is not base64: {e}")))
        };
        Ok(ShownIdentity {
            identity: *identity,
            certificate: decode(certificate)?,
            chain: chain.into_iter().map(decode).collect::<Result<_, _>>()?,
        })
    }
}

/// A signature over `message`, base64-encoded as the protocol wants.
pub(crate) struct Sign<'a> {
    pub id: &'a str,
    pub scheme: proto::Scheme,
    pub message: &'a [u8],
}

impl Call for Sign<'_> {
    type Output = Vec<u8>;

    fn request(self) -> Request {
        Request::Sign {
            id: self.id.to_owned(),
            scheme: self.scheme,
            message: base64::engine::general_purpose::STANDARD.encode(self.message),
        }
    }

    fn answer(response: Response) -> Result<Vec<u8>, ClientError> {
        match response {
            Response::Signature { signature } => base64::engine::general_purpose::STANDARD
                .decode(signature)
                .map_err(|e| ClientError::Protocol(format!("signature is not base64: {e}"))),
            other => Err(unexpected(other)),
        }
    }
}

/// A signature over a digest the caller computed.
pub(crate) struct SignDigest<'a> {
    pub id: &'a str,
    pub mechanism: proto::DigestMechanism,
    pub hash: proto::HashAlgorithm,
    pub digest: &'a [u8],
}

impl Call for SignDigest<'_> {
    type Output = Vec<u8>;

    fn request(self) -> Request {
        Request::SignDigest {
            id: self.id.to_owned(),
            mechanism: self.mechanism,
            hash: self.hash,
            digest: base64::engine::general_purpose::STANDARD.encode(self.digest),
        }
    }

    fn answer(response: Response) -> Result<Vec<u8>, ClientError> {
        Sign::answer(response)
    }
}

pub(crate) struct Login<'a> {
    pub token: Option<&'a str>,
    pub pin: Option<proto::Pin>,
}

impl Call for Login<'_> {
    type Output = proto::Token;

    fn request(self) -> Request {
        Request::Login {
            token: self.token.map(str::to_owned),
            pin: self.pin,
        }
    }

    fn answer(response: Response) -> Result<proto::Token, ClientError> {
        match response {
            Response::LoggedIn { token } => Ok(token),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Logout<'a>(pub Option<&'a str>);

impl Call for Logout<'_> {
    type Output = Vec<proto::Token>;

    fn request(self) -> Request {
        Request::Logout {
            token: self.0.map(str::to_owned),
        }
    }

    fn answer(response: Response) -> Result<Self::Output, ClientError> {
        match response {
            Response::LoggedOut { tokens } => Ok(tokens),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Select<'a>(pub &'a SelectQuery);

impl Call for Select<'_> {
    type Output = proto::Selection;

    fn request(self) -> Request {
        let query = self.0;
        Request::Select {
            origin: query.origin.clone(),
            ca_names: query
                .ca_names
                .iter()
                .map(|n| base64::engine::general_purpose::STANDARD.encode(n))
                .collect(),
            schemes: query.schemes.clone(),
            chooser: query.chooser,
            id: query.id.clone(),
            explain: query.explain,
        }
    }

    fn answer(response: Response) -> Result<proto::Selection, ClientError> {
        match response {
            Response::Selection(selection) => Ok(*selection),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Choose<'a> {
    pub origin: &'a str,
    pub id: Option<&'a str>,
    pub remember: bool,
}

impl Call for Choose<'_> {
    type Output = Option<proto::RememberedChoice>;

    fn request(self) -> Request {
        Request::Choose {
            origin: self.origin.to_owned(),
            id: self.id.map(str::to_owned),
            remember: self.remember,
        }
    }

    fn answer(response: Response) -> Result<Self::Output, ClientError> {
        match response {
            Response::Chosen { remembered } => Ok(remembered),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Decisions;

impl Call for Decisions {
    type Output = Vec<proto::RememberedChoice>;

    fn request(self) -> Request {
        Request::Decisions
    }

    fn answer(response: Response) -> Result<Self::Output, ClientError> {
        match response {
            Response::Decisions { decisions } => Ok(decisions),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) struct Forget<'a>(pub Option<&'a str>);

impl Call for Forget<'_> {
    type Output = Vec<String>;

    fn request(self) -> Request {
        Request::Forget {
            origin: self.0.map(str::to_owned),
        }
    }

    fn answer(response: Response) -> Result<Vec<String>, ClientError> {
        match response {
            Response::Forgotten { origins } => Ok(origins),
            other => Err(unexpected(other)),
        }
    }
}

/// Turns the connection into an event stream.
pub(crate) struct Watch;

impl Call for Watch {
    type Output = ();

    fn request(self) -> Request {
        Request::Watch
    }

    fn answer(response: Response) -> Result<(), ClientError> {
        match response {
            Response::Watching => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{ErrorCode, Pin, Scheme, Token};

    #[test]
    fn sign_encodes_the_message_and_decodes_the_signature() {
        let req = Sign {
            id: "abcd",
            scheme: Scheme::Ed25519,
            message: b"\x00\x01hi",
        }
        .request();
        assert_eq!(
            req,
            Request::Sign {
                id: "abcd".into(),
                scheme: Scheme::Ed25519,
                message: "AAFoaQ==".into(),
            }
        );
        let sig = Sign::answer(Response::Signature {
            signature: "AAFoaQ==".into(),
        });
        assert_eq!(sig.ok(), Some(b"\x00\x01hi".to_vec()));
        let refused = Sign::answer(Response::error(ErrorCode::PinRequired, "no PIN"));
        assert!(matches!(
            refused,
            Err(ClientError::Agent {
                code: ErrorCode::PinRequired,
                ..
            })
        ));
        assert!(matches!(
            Sign::answer(Response::Signature {
                signature: "!!".into()
            }),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn login_and_logout_ask_and_read_as_the_protocol_says() {
        let token = Token {
            label: "card".into(),
            serial: "01".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 0,
            module: "/m.so".into(),
        };
        let login = Login {
            token: Some("card"),
            pin: Some(Pin::new("1234".into())),
        };
        assert_eq!(
            login.request(),
            Request::Login {
                token: Some("card".into()),
                pin: Some(Pin::new("1234".into())),
            }
        );
        let logged_in = Login::answer(Response::LoggedIn {
            token: token.clone(),
        });
        assert_eq!(logged_in.ok(), Some(token.clone()));
        assert!(matches!(
            Login::answer(Response::error(ErrorCode::PinIncorrect, "wrong")),
            Err(ClientError::Agent {
                code: ErrorCode::PinIncorrect,
                ..
            })
        ));
        assert_eq!(Logout(None).request(), Request::Logout { token: None });
        let logged_out = Logout::answer(Response::LoggedOut {
            tokens: vec![token.clone()],
        });
        assert_eq!(logged_out.ok(), Some(vec![token]));
        assert!(matches!(
            Logout::answer(Response::Watching),
            Err(ClientError::Protocol(_))
        ));
    }
}
