//! What a scan of one token yields: the seam between the PKCS#11 layer
//! and the store. Nothing here refers to PKCS#11 types.

use p11agent_proto::{Scheme, Token};

/// Everything found on one token.
#[derive(Debug, Clone)]
pub struct FoundToken {
    /// The token's identifying fields, slot and module.
    pub token: Token,
    /// Every X.509 certificate object on the token.
    pub certificates: Vec<FoundCertificate>,
    /// Number of private keys on the token: visible private-key objects,
    /// or, before login, public-key objects standing in for them.
    pub key_count: usize,
    /// The signature schemes whose mechanisms the token offers, for any
    /// key type; an identity can use those its key type also allows.
    pub schemes: Vec<Scheme>,
}

/// One certificate object and, when paired, its private key.
#[derive(Debug, Clone)]
pub struct FoundCertificate {
    /// The certificate's DER encoding (`CKA_VALUE`).
    pub der: Vec<u8>,
    /// RFC 7512 URI of the certificate object.
    pub cert_uri: String,
    /// RFC 7512 URI of the paired private key; `None` when no key pairs
    /// with the certificate.
    pub key_uri: Option<String>,
    /// `CKA_ID` of the paired private key (present exactly when
    /// `key_uri` is), by which signing finds the key.
    pub key_id: Option<Vec<u8>>,
}
