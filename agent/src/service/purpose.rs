//! Purpose binding: what an identity's key may sign.
//!
//! With [`Purpose::Tls`] (the default) the agent signs only what a TLS
//! client signs in CertificateVerify:
//!
//! - TLS 1.3 (RFC 8446 section 4.4.3): 64 spaces, the context string
//!   `TLS 1.3, client CertificateVerify`, a zero byte, and the transcript
//!   hash: 32 or 48 bytes, the hash lengths of the TLS 1.3 cipher suites;
//! - TLS 1.2 (RFC 5246 section 7.4.8): the handshake messages so far,
//!   which must parse as a sequence of handshake messages (type, 24-bit
//!   length, body) that fills the input exactly and starts with a
//!   ClientHello.
//!
//! Anything else (a 32-byte digest of a document, a file, a git commit)
//! is refused, so a local process cannot use a person's smartcard as a
//! general signing oracle. [`Purpose::Any`], configured per identity,
//! lifts the restriction.
//!
//! The TLS 1.2 check is a shape check, not a proof: a transcript is
//! whatever the peers exchanged. It keeps a plain document or a digest
//! out, which is what matters for a same-user attacker who has not also
//! got a TLS implementation to dress the data up; the audit log records
//! every signature either way.

use serde::Deserialize;

/// What an identity's key may sign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Purpose {
    /// TLS CertificateVerify inputs only.
    #[default]
    Tls,
    /// Anything.
    Any,
}

/// The purpose of every identity: a default, and overrides by id or id
/// prefix (the longest matching prefix wins); and which identities need
/// each signature confirmed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Purposes {
    default: Purpose,
    overrides: Vec<(String, Purpose)>,
    confirm: Vec<String>,
}

impl Purposes {
    /// `default` for all but the identities `overrides` names (by id or
    /// id prefix, hex, case and colons ignored).
    pub(crate) fn new(
        default: Purpose,
        overrides: impl IntoIterator<Item = (String, Purpose)>,
    ) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(prefix, purpose)| (normalise(&prefix), purpose))
            .collect();
        Purposes {
            default,
            overrides,
            confirm: Vec::new(),
        }
    }

    /// Also require confirmation of each signature by the identities
    /// `prefixes` name.
    pub(crate) fn confirming(mut self, prefixes: impl IntoIterator<Item = String>) -> Self {
        self.confirm = prefixes.into_iter().map(|p| normalise(&p)).collect();
        self
    }

    /// Whether each signature of identity `id` needs the person's yes.
    pub(crate) fn needs_confirmation(&self, id: &str) -> bool {
        self.confirm
            .iter()
            .any(|prefix| id.starts_with(prefix.as_str()))
    }

    /// The purpose of the identity with full id `id`.
    pub(crate) fn of(&self, id: &str) -> Purpose {
        self.overrides
            .iter()
            .filter(|(prefix, _)| id.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, purpose)| *purpose)
    }
}

fn normalise(prefix: &str) -> String {
    prefix
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The TLS 1.3 client CertificateVerify context string.
const TLS13_CONTEXT: &[u8] = b"TLS 1.3, client CertificateVerify";
/// TLS handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Handshake message types a TLS 1.2 client's transcript holds up to its
/// CertificateVerify (RFC 5246 and extensions: hello, certificate, key
/// exchange, request, hello done, status, supplemental data).
const TLS12_TYPES: &[u8] = &[1, 2, 4, 11, 12, 13, 14, 16, 22, 23];

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the message ({len} bytes) is not a TLS CertificateVerify input, and this identity \
     may sign only those (purpose \"tls\"); to sign other data with it, set its purpose \
     to \"any\" in the agent's configuration"
)]
pub(crate) struct NotTls {
    len: usize,
}

impl Purpose {
    /// Whether `message` may be signed under this purpose.
    pub(crate) fn allows(self, message: &[u8]) -> Result<(), NotTls> {
        match self {
            Purpose::Any => Ok(()),
            Purpose::Tls
                if is_tls13_certificate_verify(message) || is_tls12_transcript(message) =>
            {
                Ok(())
            }
            Purpose::Tls => Err(NotTls { len: message.len() }),
        }
    }
}

fn is_tls13_certificate_verify(message: &[u8]) -> bool {
    let prefix = 64 + TLS13_CONTEXT.len() + 1;
    message.len() >= prefix
        && message[..64].iter().all(|&b| b == 0x20)
        && &message[64..64 + TLS13_CONTEXT.len()] == TLS13_CONTEXT
        && message[prefix - 1] == 0
        && matches!(message.len() - prefix, 32 | 48)
}

fn is_tls12_transcript(message: &[u8]) -> bool {
    if message.first() != Some(&CLIENT_HELLO) {
        return false;
    }
    let mut rest = message;
    let mut count = 0;
    while let [kind, a, b, c, body @ ..] = rest {
        let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
        if !TLS12_TYPES.contains(kind) || body.len() < len {
            return false;
        }
        rest = &body[len..];
        count += 1;
    }
    // A client signs after at least ClientHello, ServerHello, Certificate
    // (or key exchange), CertificateRequest and ServerHelloDone.
    rest.is_empty() && count >= 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls13(hash_len: usize) -> Vec<u8> {
        let mut m = vec![0x20; 64];
        m.extend_from_slice(TLS13_CONTEXT);
        m.push(0);
        m.extend(std::iter::repeat_n(0xab, hash_len));
        m
    }

    fn handshake(kind: u8, body_len: usize) -> Vec<u8> {
        let mut m = vec![kind, 0, (body_len >> 8) as u8, body_len as u8];
        m.extend(std::iter::repeat_n(7, body_len));
        m
    }

    fn tls12() -> Vec<u8> {
        [
            handshake(1, 200),
            handshake(2, 90),
            handshake(11, 900),
            handshake(12, 300),
            handshake(13, 40),
            handshake(14, 0),
            handshake(11, 700),
            handshake(16, 66),
        ]
        .concat()
    }

    #[test]
    fn overrides_by_longest_prefix() {
        let purposes = Purposes::new(
            Purpose::Tls,
            [
                ("AB:12".to_owned(), Purpose::Any),
                ("ab12cd".to_owned(), Purpose::Tls),
            ],
        );
        assert_eq!(purposes.of("ab12ff00"), Purpose::Any);
        assert_eq!(purposes.of("ab12cd00"), Purpose::Tls);
        assert_eq!(purposes.of("ffff"), Purpose::Tls);
        assert_eq!(Purposes::default().of("ab12"), Purpose::Tls);
    }

    #[test]
    fn tls_inputs_pass() {
        assert_eq!(Purpose::Tls.allows(&tls13(32)), Ok(()));
        assert_eq!(Purpose::Tls.allows(&tls13(48)), Ok(()));
        assert_eq!(Purpose::Tls.allows(&tls12()), Ok(()));
    }

    #[test]
    fn other_data_is_refused_under_tls_and_signed_under_any() {
        let mut server_context = tls13(32);
        server_context[64 + 8] = b's'; // "TLS 1.3, server ..." is not ours
        let mut truncated = tls12();
        truncated.pop();
        let cases: Vec<Vec<u8>> = vec![
            vec![0x42; 32],
            b"a document to sign\n".to_vec(),
            tls13(31),
            tls13(64),
            server_context,
            truncated,
            handshake(1, 10),
            [
                handshake(1, 10),
                handshake(99, 4),
                handshake(14, 0),
                handshake(16, 3),
            ]
            .concat(),
            Vec::new(),
        ];
        for message in &cases {
            assert!(Purpose::Tls.allows(message).is_err(), "{message:?}");
            assert_eq!(Purpose::Any.allows(message), Ok(()));
        }
    }
}
