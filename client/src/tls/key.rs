//! A rustls signing key whose private half lives on a token behind the
//! agent.

use std::path::PathBuf;
use std::sync::Arc;

use p11agent_proto::{Identity, KeyType, Scheme};
use rustls::{SignatureAlgorithm, SignatureScheme};

use super::pool::Pool;

/// The signing key of one agent identity, for rustls.
///
/// [`choose_scheme`](rustls::sign::SigningKey::choose_scheme) picks the
/// first of the server's offered schemes, in the server's order, that
/// the agent can make with this key (the identity's `schemes`). The
/// [`Signer`](rustls::sign::Signer) it returns asks the agent for the
/// signature.
#[derive(Debug, Clone)]
pub struct AgentSigningKey {
    agent: Arc<Pool>,
    id: String,
    key_type: KeyType,
    schemes: Vec<Scheme>,
}

impl AgentSigningKey {
    /// The key of `identity`, signing through the agent at `socket`.
    ///
    /// When the identity lists no schemes although it is usable (an agent
    /// that does not report them), the schemes its key type and curve
    /// allow are assumed; the agent still refuses what its token cannot do.
    pub fn new(socket: impl Into<PathBuf>, identity: &Identity) -> Self {
        Self::pooled(Arc::new(Pool::new(socket)), identity)
    }

    /// The key of `identity`, signing on `agent`'s connections.
    pub(crate) fn pooled(agent: Arc<Pool>, identity: &Identity) -> Self {
        AgentSigningKey {
            agent,
            id: identity.id.clone(),
            key_type: identity.key_type,
            schemes: identity_schemes(identity),
        }
    }

    /// The identity's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The schemes the agent can make with this key.
    pub fn schemes(&self) -> &[Scheme] {
        &self.schemes
    }

    /// The first of `offered` (in the server's order) this key can make.
    pub fn pick_scheme(&self, offered: &[SignatureScheme]) -> Option<Scheme> {
        pick_scheme(&self.schemes, offered)
    }
}

/// The schemes an identity's key can make, as the agent reports them, or
/// as the key type allows when the agent reports none for a usable key.
pub(crate) fn identity_schemes(identity: &Identity) -> Vec<Scheme> {
    if !identity.schemes.is_empty() || !identity.has_private_key {
        return identity.schemes.clone();
    }
    Scheme::ALL
        .into_iter()
        .filter(|s| s.fits(identity.key_type, identity.curve))
        .collect()
}

/// The first of `offered` that is in `ours`.
pub(crate) fn pick_scheme(ours: &[Scheme], offered: &[SignatureScheme]) -> Option<Scheme> {
    offered
        .iter()
        .filter_map(|s| Scheme::from_code(u16::from(*s)))
        .find(|s| ours.contains(s))
}

impl rustls::sign::SigningKey for AgentSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let scheme = self.pick_scheme(offered)?;
        Some(Box::new(AgentSigner {
            agent: Arc::clone(&self.agent),
            id: self.id.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key_type {
            KeyType::Rsa => SignatureAlgorithm::RSA,
            KeyType::Ec => SignatureAlgorithm::ECDSA,
            KeyType::Ed25519 => SignatureAlgorithm::ED25519,
            // `Other`, and key types a newer protocol adds: none this
            // crate can sign with.
            _ => SignatureAlgorithm::Unknown(255),
        }
    }
}

/// Makes one signature through the agent.
///
/// `sign` uses a blocking connection to the agent: rustls calls it inside
/// the handshake, which may run on a tokio worker thread, and a blocking
/// connection needs no runtime. The connection is one the key's pool
/// kept from an earlier request (the resolver's `select`, a previous
/// handshake), or a new one, kept afterwards. The call blocks for as long
/// as the agent takes, which includes a PIN prompt when the token is not
/// logged in yet.
#[derive(Debug)]
pub struct AgentSigner {
    agent: Arc<Pool>,
    id: String,
    scheme: Scheme,
}

impl rustls::sign::Signer for AgentSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let result = self
            .agent
            .run(|agent| agent.sign(&self.id, self.scheme, message));
        result.map_err(|e| {
            rustls::Error::General(format!(
                "the agent could not sign with identity {} ({}): {e}",
                short_id(&self.id),
                self.scheme
            ))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::from(self.scheme.code())
    }
}

/// The first 16 hex digits of an id, for messages.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_order_decides_among_the_keys_schemes() {
        let ours = [Scheme::RsaPssRsaeSha256, Scheme::RsaPkcs1Sha256];
        let offered = [
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PSS_SHA256,
        ];
        assert_eq!(pick_scheme(&ours, &offered), Some(Scheme::RsaPkcs1Sha256));
        assert_eq!(
            pick_scheme(
                &ours,
                &[SignatureScheme::ED25519, SignatureScheme::Unknown(0x0999)]
            ),
            None
        );
        for s in Scheme::ALL {
            assert_eq!(u16::from(SignatureScheme::from(s.code())), s.code());
        }
        assert_eq!(
            format!("{:?}", SignatureScheme::from(Scheme::Ed25519.code())),
            "ED25519"
        );
    }
}
