//! Pairing certificates with keys: by `CKA_ID` first, then by public key.
//! Pure: works on the records a scan read from a token.

use std::collections::{HashMap, HashSet};

use super::public_key::PublicKeyMaterial;

/// A certificate object as read from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CertRecord {
    /// `CKA_ID` (empty when absent).
    pub id: Vec<u8>,
    /// `CKA_LABEL` bytes (empty when absent).
    pub label: Vec<u8>,
    /// `CKA_VALUE`: the DER certificate.
    pub der: Vec<u8>,
    /// The certificate's public key, when it could be read.
    pub public_key: Option<PublicKeyMaterial>,
}

/// A private- or public-key object as read from a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyRecord {
    /// `CKA_ID` (empty when absent).
    pub id: Vec<u8>,
    /// `CKA_LABEL` bytes (empty when absent).
    pub label: Vec<u8>,
    /// The public key(s) the object's attributes may stand for (see
    /// [`key_public_keys`](super::public_key::key_public_keys)); empty
    /// when they do not give it.
    pub public_keys: Vec<PublicKeyMaterial>,
}

/// The key object a certificate pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyMatch {
    /// The private key at this index of the private keys.
    Private(usize),
    /// The public key at this index of the public keys, standing in for a
    /// private key that is not visible (before login).
    StandIn(usize),
}

/// The outcome of pairing one token's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pairing {
    /// For each certificate, in order, the key it pairs with.
    pub keys: Vec<Option<KeyMatch>>,
    /// Distinct key pairs on the token: the private keys, plus, when
    /// private keys are not visible, the distinct public keys that stood
    /// in for one.
    pub key_count: usize,
}

/// Pairs each certificate with a key.
///
/// A certificate pairs with the private key that has its `CKA_ID`; where
/// none has, with the private key that has its public key, directly or
/// through a public-key object with that public key whose `CKA_ID` a
/// private key has. When `private_keys_visible` is false (no login), a
/// certificate still unpaired pairs with a stand-in: the public-key
/// object with its `CKA_ID`, or else with its public key.
pub(super) fn pair(
    certs: &[CertRecord],
    private_keys: &[KeyRecord],
    public_keys: &[KeyRecord],
    private_keys_visible: bool,
) -> Pairing {
    let private = KeyIndex::new(private_keys);
    let public = KeyIndex::new(public_keys);

    let mut stand_ins = HashSet::new();
    let keys = certs
        .iter()
        .map(|cert| {
            if let Some(i) = find_private(cert, &private, &public) {
                return Some(KeyMatch::Private(i));
            }
            if private_keys_visible {
                return None;
            }
            let i = public
                .by_id(&cert.id, cert.public_key.as_ref())
                .or_else(|| public.by_key(cert.public_key.as_ref()))?;
            stand_ins.insert(key_identity(public_keys, i));
            Some(KeyMatch::StandIn(i))
        })
        .collect();

    Pairing {
        keys,
        key_count: private_keys.len() + stand_ins.len(),
    }
}

fn find_private(cert: &CertRecord, private: &KeyIndex<'_>, public: &KeyIndex<'_>) -> Option<usize> {
    let cert_key = cert.public_key.as_ref();
    if let Some(i) = private.by_id(&cert.id, cert_key) {
        return Some(i);
    }
    if let Some(i) = private.by_key(cert_key) {
        return Some(i);
    }
    // An EC private key has no CKA_EC_POINT: go through the public-key
    // object with the certificate's public key, and its CKA_ID.
    let cert_key = cert_key?;
    public
        .all_by_key(cert_key)
        .iter()
        .find_map(|&p| private.by_id(&public.records[p].id, Some(cert_key)))
}

/// What makes two stand-in public-key objects the same key pair.
#[derive(Debug, PartialEq, Eq, Hash)]
enum KeyIdentity {
    Key(PublicKeyMaterial),
    Id(Vec<u8>),
    Object(usize),
}

fn key_identity(records: &[KeyRecord], i: usize) -> KeyIdentity {
    let record = &records[i];
    if let Some(key) = record.public_keys.first() {
        KeyIdentity::Key(key.clone())
    } else if !record.id.is_empty() {
        KeyIdentity::Id(record.id.clone())
    } else {
        KeyIdentity::Object(i)
    }
}

/// Key records indexed by `CKA_ID` and by public key.
struct KeyIndex<'a> {
    records: &'a [KeyRecord],
    ids: HashMap<&'a [u8], Vec<usize>>,
    keys: HashMap<&'a PublicKeyMaterial, Vec<usize>>,
}

impl<'a> KeyIndex<'a> {
    fn new(records: &'a [KeyRecord]) -> Self {
        let mut ids: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut keys: HashMap<&PublicKeyMaterial, Vec<usize>> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            if !record.id.is_empty() {
                ids.entry(record.id.as_slice()).or_default().push(i);
            }
            for key in &record.public_keys {
                let entry = keys.entry(key).or_default();
                if entry.last() != Some(&i) {
                    entry.push(i);
                }
            }
        }
        KeyIndex { records, ids, keys }
    }

    /// The record with this (non-empty) id; among several, the one with
    /// `key` if any has it.
    fn by_id(&self, id: &[u8], key: Option<&PublicKeyMaterial>) -> Option<usize> {
        if id.is_empty() {
            return None;
        }
        let candidates = self.ids.get(id)?;
        key.and_then(|key| {
            candidates
                .iter()
                .copied()
                .find(|&i| self.records[i].public_keys.contains(key))
        })
        .or_else(|| candidates.first().copied())
    }

    fn by_key(&self, key: Option<&PublicKeyMaterial>) -> Option<usize> {
        self.all_by_key(key?).first().copied()
    }

    fn all_by_key(&self, key: &PublicKeyMaterial) -> &[usize] {
        self.keys.get(key).map(Vec::as_slice).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec(n: u8) -> PublicKeyMaterial {
        PublicKeyMaterial::Ec {
            point: vec![4, n, n],
        }
    }

    fn cert(id: &[u8], key: Option<PublicKeyMaterial>) -> CertRecord {
        CertRecord {
            id: id.to_vec(),
            label: b"c".to_vec(),
            der: vec![0x30],
            public_key: key,
        }
    }

    fn key(id: &[u8], keys: Vec<PublicKeyMaterial>) -> KeyRecord {
        KeyRecord {
            id: id.to_vec(),
            label: b"k".to_vec(),
            public_keys: keys,
        }
    }

    #[test]
    fn pairs_by_id_first() {
        let certs = [cert(&[1], Some(ec(1)))];
        // Key 0 has the public key, key 1 the id: the id wins.
        let private = [key(&[9], vec![ec(1)]), key(&[1], vec![])];
        let pairing = pair(&certs, &private, &[], true);
        assert_eq!(pairing.keys, vec![Some(KeyMatch::Private(1))]);
        assert_eq!(pairing.key_count, 2);
    }

    #[test]
    fn among_keys_sharing_an_id_the_one_with_the_public_key_wins() {
        let certs = [cert(&[1], Some(ec(2)))];
        let private = [key(&[1], vec![ec(1)]), key(&[1], vec![ec(2)])];
        assert_eq!(
            pair(&certs, &private, &[], true).keys,
            vec![Some(KeyMatch::Private(1))]
        );
    }

    #[test]
    fn pairs_by_public_key_when_ids_differ() {
        let certs = [cert(&[2], Some(ec(2)))];
        let private = [key(&[1], vec![ec(1)]), key(&[12], vec![ec(2)])];
        assert_eq!(
            pair(&certs, &private, &[], true).keys,
            vec![Some(KeyMatch::Private(1))]
        );
    }

    #[test]
    fn pairs_through_the_public_key_object_when_the_private_key_lacks_the_point() {
        let certs = [cert(&[3], Some(ec(3)))];
        let private = [key(&[13], vec![])];
        let public = [key(&[13], vec![ec(3)])];
        let pairing = pair(&certs, &private, &public, true);
        assert_eq!(pairing.keys, vec![Some(KeyMatch::Private(0))]);
        assert_eq!(pairing.key_count, 1);
    }

    #[test]
    fn logged_in_a_public_key_alone_is_not_a_pair() {
        let certs = [cert(&[1], Some(ec(1)))];
        let public = [key(&[1], vec![ec(1)])];
        let pairing = pair(&certs, &[], &public, true);
        assert_eq!(pairing.keys, vec![None]);
        assert_eq!(pairing.key_count, 0);
    }

    #[test]
    fn before_login_public_keys_stand_in_by_id_then_by_key() {
        let certs = [
            cert(&[1], Some(ec(1))),
            cert(&[2], Some(ec(2))),
            cert(&[4], Some(ec(4))),
            cert(&[], None),
        ];
        let public = [
            key(&[1], vec![ec(1)]),
            key(&[12], vec![ec(2)]),
            key(&[20], vec![ec(20)]),
        ];
        let pairing = pair(&certs, &[], &public, false);
        assert_eq!(
            pairing.keys,
            vec![
                Some(KeyMatch::StandIn(0)),
                Some(KeyMatch::StandIn(1)),
                None,
                None
            ]
        );
        // The lone public key 20 is not evidence of a pair.
        assert_eq!(pairing.key_count, 2);
    }

    #[test]
    fn renewed_certificates_share_a_key_and_count_once() {
        let certs = [
            cert(&[1], Some(ec(1))),
            cert(&[1], Some(ec(1))),
            cert(&[7], Some(ec(1))),
        ];
        let public = [key(&[1], vec![ec(1)])];
        let pairing = pair(&certs, &[], &public, false);
        assert_eq!(pairing.keys, vec![Some(KeyMatch::StandIn(0)); 3]);
        assert_eq!(pairing.key_count, 1);

        // Two public-key objects for one key pair count once.
        let public = [key(&[1], vec![ec(1)]), key(&[7], vec![ec(1)])];
        let pairing = pair(&certs, &[], &public, false);
        assert_eq!(
            pairing.keys,
            vec![
                Some(KeyMatch::StandIn(0)),
                Some(KeyMatch::StandIn(0)),
                Some(KeyMatch::StandIn(1))
            ]
        );
        assert_eq!(pairing.key_count, 1);
    }

    #[test]
    fn visible_private_keys_are_not_counted_again_before_login() {
        // A token with an unprotected private key (CKA_PRIVATE false) and
        // a hidden one: the first is seen, the second stood in for.
        let certs = [cert(&[1], Some(ec(1))), cert(&[2], Some(ec(2)))];
        let private = [key(&[1], vec![])];
        let public = [key(&[1], vec![ec(1)]), key(&[2], vec![ec(2)])];
        let pairing = pair(&certs, &private, &public, false);
        assert_eq!(
            pairing.keys,
            vec![Some(KeyMatch::Private(0)), Some(KeyMatch::StandIn(1))]
        );
        assert_eq!(pairing.key_count, 2);
    }

    #[test]
    fn empty_ids_never_pair() {
        let certs = [cert(&[], None)];
        let private = [key(&[], vec![])];
        let public = [key(&[], vec![])];
        assert_eq!(pair(&certs, &private, &public, false).keys, vec![None]);
    }
}
