//! Requests, responses and error codes.
//!
//! Each frame carries one JSON object. Requests name their operation in
//! an `"op"` member, responses their kind in a `"type"` member; both use
//! snake_case names. See the crate README for the full exchange.

use serde::{Deserialize, Serialize};

use crate::digest::{DigestMechanism, HashAlgorithm};
use crate::event::Event;
use crate::identity::{Identity, Token, TokenSummary};
use crate::key::KeyType;
use crate::select::{ChooserMode, RememberedChoice, Selection};
use crate::{Pin, Scheme};

/// The protocol version this crate speaks. A client announces it in its
/// [`Request::Hello`]; the agent refuses versions it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// A message from a client to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// The version handshake; must be the first request on a connection.
    Hello {
        /// The protocol version the client speaks.
        version: u32,
        /// A free-form client name for the agent's logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// The agent's state: version, modules, counts.
    Status,
    /// Every token the agent sees.
    Tokens,
    /// The identities that match a filter.
    List {
        /// Conditions an identity must all meet; the default matches all.
        #[serde(default)]
        filter: Filter,
    },
    /// One identity, with its certificate.
    Show {
        /// The identity id (full SHA-256 hex, or a unique prefix of at
        /// least 8 hex digits).
        id: String,
    },
    /// A signature with an identity's private key, exactly as TLS puts
    /// it in CertificateVerify.
    Sign {
        /// The identity id (full SHA-256 hex, or a unique prefix).
        id: String,
        /// The TLS signature scheme.
        scheme: Scheme,
        /// The message to sign (not a digest: the agent hashes as the
        /// scheme says), standard base64 with padding.
        message: String,
    },
    /// A signature over a digest the client computed, for callers that
    /// hash themselves (PKCS#11 modules' raw mechanisms). Admitted only
    /// for the programs and identities the agent's digest policy lists;
    /// otherwise `digest_not_allowed`.
    SignDigest {
        /// The identity id (full SHA-256 hex, or a unique prefix).
        id: String,
        /// How to sign.
        mechanism: DigestMechanism,
        /// The hash that made the digest; its length must match.
        hash: HashAlgorithm,
        /// The digest, standard base64 with padding.
        digest: String,
    },
    /// Log in to a token ahead of the first signature.
    Login {
        /// Token label or serial; may be omitted when one token is present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The user PIN; when omitted the agent asks its PIN source
        /// (pinentry, PIN file) or uses the token's PIN pad.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<Pin>,
    },
    /// Log out of one token, or of all when `token` is omitted, and
    /// forget their PINs.
    Logout {
        /// Token label or serial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// The client certificate to send to a TLS server that asked for
    /// one, decided by the agent's candidate filter and policy.
    Select {
        /// The server's origin, `https://host:port` (a URL or `host:port`
        /// is accepted and normalised).
        origin: String,
        /// The server's `certificate_authorities`: DER distinguished
        /// names, standard base64. Empty: any issuer is accepted.
        #[serde(default)]
        ca_names: Vec<String>,
        /// The signature schemes the server accepts; omitted when unknown
        /// (the scheme check is then skipped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schemes: Option<Vec<Scheme>>,
        /// Who asks a person when one must choose.
        #[serde(default)]
        chooser: ChooserMode,
        /// An identity the client fixed (id or unique prefix): it is
        /// selected when the filter passes it, the CA list aside.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Whether the answer lists every excluded identity with its
        /// reasons (default true). A TLS client deciding during a
        /// handshake sets it false: with 1,000 identities that list is
        /// most of the answer and of the time it takes.
        #[serde(default = "yes")]
        explain: bool,
    },
    /// Records a person's choice for an origin, made after a
    /// [`Decision::Prompt`](crate::Decision::Prompt).
    Choose {
        /// The origin, as in [`Request::Select`].
        origin: String,
        /// The identity chosen; omitted or null for "send none".
        #[serde(default)]
        id: Option<String>,
        /// Whether to remember the choice for the origin (default true).
        #[serde(default = "yes")]
        remember: bool,
    },
    /// The choices remembered per origin.
    Decisions,
    /// Forgets remembered choices: one origin's, or all when `origin` is
    /// omitted.
    Forget {
        /// The origin whose choice to forget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// Turns the connection into an event stream: the agent answers
    /// [`Response::Watching`], then sends a [`Response::Event`] for each
    /// event until the client closes the connection or the agent stops.
    /// The client sends nothing more: any further frame ends the stream.
    Watch,
}

fn yes() -> bool {
    true
}

impl Request {
    /// Every operation name, as [`Request::op`] gives them.
    pub const OPS: &'static [&'static str] = &[
        "hello",
        "status",
        "tokens",
        "list",
        "show",
        "sign",
        "sign_digest",
        "login",
        "logout",
        "select",
        "choose",
        "decisions",
        "forget",
        "watch",
    ];

    /// The operation name as on the wire, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Status => "status",
            Request::Tokens => "tokens",
            Request::List { .. } => "list",
            Request::Show { .. } => "show",
            Request::Sign { .. } => "sign",
            Request::SignDigest { .. } => "sign_digest",
            Request::Login { .. } => "login",
            Request::Logout { .. } => "logout",
            Request::Select { .. } => "select",
            Request::Choose { .. } => "choose",
            Request::Decisions => "decisions",
            Request::Forget { .. } => "forget",
            Request::Watch => "watch",
        }
    }
}

/// Conditions on identities. Every field that is set must hold; text
/// matches are case-insensitive substrings unless the `_exact` variant is
/// used, which compares the RFC 4514 string as is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Substring of the subject DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The exact subject DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_exact: Option<String>,
    /// Substring of the issuer DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The exact issuer DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_exact: Option<String>,
    /// Prefix of the SHA-256 fingerprint (hex; colons allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The key type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    /// Token label (exact) or token serial (exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether a private key is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_key: Option<bool>,
    /// Whether the identity is usable for client authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<bool>,
    /// Whether its token is inserted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// The agent's description of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The agent's name and version, e.g. `p11agent 0.1.0`.
    pub agent: String,
    /// The protocol version it speaks.
    pub protocol_version: u32,
    /// The socket it listens on.
    pub socket: String,
    /// The PKCS#11 modules it loaded, by path.
    pub modules: Vec<String>,
    /// Those of `modules` loaded in a helper process of their own (module
    /// isolation); absent on the wire when none is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isolated_modules: Vec<String>,
    /// Modules that failed to load, with the reason.
    pub module_errors: Vec<ModuleError>,
    /// Number of tokens present.
    pub tokens: usize,
    /// Number of identities in the store.
    pub identities: usize,
    /// Seconds since the agent started.
    pub uptime_seconds: u64,
}

/// A module the agent could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleError {
    /// Path of the module.
    pub module: String,
    /// What went wrong.
    pub error: String,
}

/// A message from the agent to a client.
///
/// Decoded by hand (`response_de.rs`) rather than derived, so that a big
/// answer is not buffered before it is decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Hello {
        /// The protocol version the agent will speak on this connection.
        version: u32,
        /// The agent's name and version.
        agent: String,
    },
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::Tokens`].
    Tokens {
        /// The tokens present.
        tokens: Vec<TokenSummary>,
    },
    /// Answer to [`Request::List`].
    Identities {
        /// The identities that matched, ordered by token then subject.
        identities: Vec<Identity>,
    },
    /// Answer to [`Request::Show`].
    Identity {
        /// The identity.
        identity: Box<Identity>,
        /// The certificate's DER encoding, standard base64 with padding.
        certificate: String,
        /// The CA certificates above it that the agent found on tokens or
        /// in its CA folder, nearest first, DER in standard base64;
        /// omitted when none. Programs that build chains themselves (a
        /// PKCS#11 module's callers) need them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain: Vec<String>,
    },
    /// Answer to [`Request::Sign`].
    Signature {
        /// The signature as TLS puts it on the wire (DER for ECDSA),
        /// standard base64 with padding.
        signature: String,
    },
    /// Answer to [`Request::Login`].
    LoggedIn {
        /// The token now logged in.
        token: Token,
    },
    /// Answer to [`Request::Logout`].
    LoggedOut {
        /// The tokens that were logged in and no longer are.
        tokens: Vec<Token>,
    },
    /// Answer to [`Request::Select`].
    Selection(Box<Selection>),
    /// Answer to [`Request::Choose`].
    Chosen {
        /// The choice as recorded; `None` when `remember` was false.
        remembered: Option<RememberedChoice>,
    },
    /// Answer to [`Request::Decisions`].
    Decisions {
        /// The remembered choices, by origin.
        decisions: Vec<RememberedChoice>,
    },
    /// Answer to [`Request::Forget`].
    Forgotten {
        /// The origins whose choices were forgotten.
        origins: Vec<String>,
    },
    /// Answer to [`Request::Watch`]: events follow.
    Watching,
    /// One event on a connection that sent [`Request::Watch`].
    Event(Event),
    /// The request failed; the connection stays usable unless the code
    /// says otherwise (see [`ErrorCode::closes_connection`]).
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
    },
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame was not a JSON object of a known shape.
    Malformed,
    /// The JSON named an operation the agent does not know.
    UnknownRequest,
    /// The frame's length exceeded the maximum; the agent closes the
    /// connection after this error because it cannot find the next frame.
    FrameTooLarge,
    /// A request came before the `hello` handshake.
    HandshakeRequired,
    /// The client's protocol version is not spoken; the connection closes.
    UnsupportedVersion,
    /// No identity has the given id.
    NotFound,
    /// The id prefix matches more than one identity.
    Ambiguous,
    /// The identity's key cannot make the requested scheme (wrong key
    /// type or curve, or the token lacks the mechanism).
    UnsupportedScheme,
    /// The identity has no private key on its token.
    NoPrivateKey,
    /// No token matches, or several do and none was named.
    TokenNotFound,
    /// The token is not inserted (the message says which to insert).
    TokenAbsent,
    /// The token was removed while the request used it.
    TokenRemoved,
    /// The token's PKCS#11 module does not answer in time (hung or
    /// failing) or crashed; other modules are not affected.
    ModuleUnavailable,
    /// A PIN is needed and no PIN source is configured or able to give one.
    PinRequired,
    /// The token rejected the PIN. The message says how many tries remain
    /// when the token tells; the agent never retries by itself.
    PinIncorrect,
    /// The PIN is locked; only the security officer can unlock it.
    PinLocked,
    /// The user cancelled the PIN prompt.
    Cancelled,
    /// The token failed to sign.
    SigningFailed,
    /// The message is not one the identity's purpose allows (by default
    /// only TLS CertificateVerify inputs are signed).
    PurposeRefused,
    /// The agent's digest policy does not let this program have this
    /// identity sign a digest (the message says how to allow it).
    DigestNotAllowed,
    /// The origin is not a valid `scheme://host:port`, URL or
    /// `host:port`.
    InvalidOrigin,
    /// The remembered choices could not be saved or changed.
    DecisionsFailed,
    /// The request is not served on the extra socket (the one a remote
    /// shell reaches through `ssh -R`): only reading and signing are.
    RemoteRefused,
    /// The agent failed internally.
    Internal,
    /// A code this version of the crate does not know (from a newer agent).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Whether the agent closes the connection after sending this error.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge | ErrorCode::UnsupportedVersion
        )
    }

    /// The code as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownRequest => "unknown_request",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::HandshakeRequired => "handshake_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Ambiguous => "ambiguous",
            ErrorCode::UnsupportedScheme => "unsupported_scheme",
            ErrorCode::NoPrivateKey => "no_private_key",
            ErrorCode::TokenNotFound => "token_not_found",
            ErrorCode::TokenAbsent => "token_absent",
            ErrorCode::TokenRemoved => "token_removed",
            ErrorCode::ModuleUnavailable => "module_unavailable",
            ErrorCode::PinRequired => "pin_required",
            ErrorCode::PinIncorrect => "pin_incorrect",
            ErrorCode::PinLocked => "pin_locked",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::SigningFailed => "signing_failed",
            ErrorCode::PurposeRefused => "purpose_refused",
            ErrorCode::DigestNotAllowed => "digest_not_allowed",
            ErrorCode::InvalidOrigin => "invalid_origin",
            ErrorCode::DecisionsFailed => "decisions_failed",
            ErrorCode::RemoteRefused => "remote_refused",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Response {
    /// Builds an error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod op_tests {
    use super::*;

    /// `OPS` must name every operation, or the server would call a badly
    /// formed known request "unknown".
    #[test]
    fn ops_lists_every_operation() {
        let every = [
            Request::Hello {
                version: 1,
                client: None,
            },
            Request::Status,
            Request::Tokens,
            Request::List {
                filter: Filter::default(),
            },
            Request::Show { id: String::new() },
            Request::Sign {
                id: String::new(),
                scheme: Scheme::Ed25519,
                message: String::new(),
            },
            Request::SignDigest {
                id: String::new(),
                mechanism: DigestMechanism::Ecdsa,
                hash: HashAlgorithm::Sha256,
                digest: String::new(),
            },
            Request::Login {
                token: None,
                pin: None,
            },
            Request::Logout { token: None },
            Request::Select {
                origin: String::new(),
                ca_names: Vec::new(),
                schemes: None,
                chooser: ChooserMode::default(),
                id: None,
                explain: true,
            },
            Request::Choose {
                origin: String::new(),
                id: None,
                remember: true,
            },
            Request::Decisions,
            Request::Forget { origin: None },
            Request::Watch,
        ];
        assert_eq!(every.len(), Request::OPS.len());
        for request in &every {
            assert!(Request::OPS.contains(&request.op()), "{}", request.op());
        }
    }
}

#[cfg(test)]
mod error_code_tests {
    use super::ErrorCode;

    /// Every code the agent sends is in the README's table, where client
    /// authors in other languages look them up.
    #[test]
    fn every_error_code_is_in_the_readme_table() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("### Error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has an error code table");
        use ErrorCode::*;
        let all = [
            Malformed,
            UnknownRequest,
            FrameTooLarge,
            HandshakeRequired,
            UnsupportedVersion,
            NotFound,
            Ambiguous,
            UnsupportedScheme,
            NoPrivateKey,
            TokenNotFound,
            TokenAbsent,
            TokenRemoved,
            ModuleUnavailable,
            PinRequired,
            PinIncorrect,
            PinLocked,
            Cancelled,
            SigningFailed,
            PurposeRefused,
            DigestNotAllowed,
            InvalidOrigin,
            DecisionsFailed,
            RemoteRefused,
            Internal,
        ];
        for code in all {
            // A new code fails to compile here until it is listed above.
            match code {
                Malformed | UnknownRequest | FrameTooLarge | HandshakeRequired
                | UnsupportedVersion | NotFound | Ambiguous | UnsupportedScheme | NoPrivateKey
                | TokenNotFound | TokenAbsent | TokenRemoved | ModuleUnavailable | PinRequired
                | PinIncorrect | PinLocked | Cancelled | SigningFailed | PurposeRefused
                | DigestNotAllowed | InvalidOrigin | DecisionsFailed | RemoteRefused | Internal => {
                }
                // Never sent: what a client makes of a code it does not know.
                Unknown => continue,
            }
            let name = serde_json::to_string(&code).expect("a code serialises");
            let name = name.trim_matches('"');
            assert!(
                table.contains(&format!("| `{name}`")) || table.contains(&format!(", `{name}`")),
                "`{name}` is missing from proto/README.md's error code table"
            );
        }
    }
}
