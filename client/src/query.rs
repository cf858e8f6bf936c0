//! The values of the calls that carry more than one field: what a TLS
//! server asked for, and an identity shown with its certificate.

use p11agent_proto::Identity;

/// What a TLS server asked for, as [`Client::select`](crate::Client::select) sends it.
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
}

/// An identity with its certificate, as [`Client::show`](crate::Client::show) returns it.
#[derive(Debug, Clone)]
pub struct ShownIdentity {
    /// The identity record.
    pub identity: Identity,
    /// The certificate's DER encoding.
    pub certificate: Vec<u8>,
    /// The CA certificates above it that the agent found, nearest first,
    /// DER.
    pub chain: Vec<Vec<u8>>,
}
