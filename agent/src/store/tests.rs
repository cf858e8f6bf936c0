//! Store tests with rcgen certificates.

use std::time::Instant;

use p11agent_proto::{Filter, KeyType, Reason};
use rcgen::{
    BasicConstraints, ExtendedKeyUsagePurpose as Eku, IsCa, KeyUsagePurpose as Ku, SerialNumber,
};
use sha2::Digest as _;
use time::macros::datetime;

use super::test_certs::*;
use super::*;

/// A store with one token holding one certificate.
fn store_with(der: Vec<u8>, with_key: bool) -> Store {
    let mut store = Store::new();
    store.insert_token(found(
        token("tok", "1", 0),
        vec![found_cert(der, "c", with_key)],
    ));
    store
}

/// The reasons for a single certificate at `NOW`.
fn reasons_for(der: Vec<u8>, with_key: bool) -> Vec<Reason> {
    let store = store_with(der, with_key);
    let all = store.query(&Filter::default(), NOW);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].client_auth.usable,
        all[0].client_auth.reasons.is_empty()
    );
    all[0].client_auth.reasons.clone()
}

// ---- reasons ---------------------------------------------------------

#[test]
fn usable_certificates() {
    assert_eq!(reasons_for(self_signed(&params("plain")), true), []);
    let mut p = params("client");
    p.key_usages = vec![Ku::DigitalSignature, Ku::KeyEncipherment];
    p.extended_key_usages = vec![Eku::ServerAuth, Eku::ClientAuth];
    assert_eq!(reasons_for(self_signed(&p), true), []);
    let mut p = params("any");
    p.extended_key_usages = vec![Eku::Any];
    assert_eq!(reasons_for(self_signed(&p), true), []);
}

#[test]
fn reason_no_private_key() {
    assert_eq!(
        reasons_for(self_signed(&params("nokey")), false),
        [Reason::NoPrivateKey]
    );
}

#[test]
fn reason_expired() {
    let mut p = params("old");
    p.not_before = datetime!(2020-01-01 00:00 UTC);
    p.not_after = datetime!(2021-01-01 00:00 UTC);
    assert_eq!(reasons_for(self_signed(&p), true), [Reason::Expired]);
}

#[test]
fn reason_not_yet_valid() {
    let mut p = params("future");
    p.not_before = datetime!(2030-01-01 00:00 UTC);
    p.not_after = datetime!(2040-01-01 00:00 UTC);
    assert_eq!(reasons_for(self_signed(&p), true), [Reason::NotYetValid]);
}

#[test]
fn reason_key_usage() {
    let mut p = params("encipher");
    p.key_usages = vec![Ku::KeyEncipherment, Ku::DataEncipherment];
    assert_eq!(reasons_for(self_signed(&p), true), [Reason::KeyUsage]);
}

#[test]
fn reason_extended_key_usage() {
    let mut p = params("server");
    p.extended_key_usages = vec![Eku::ServerAuth, Eku::Other(vec![1, 2, 3, 4])];
    assert_eq!(
        reasons_for(self_signed(&p), true),
        [Reason::ExtendedKeyUsage]
    );
}

#[test]
fn ca_certificate_without_key() {
    let mut p = params("Root CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign];
    assert_eq!(
        reasons_for(self_signed(&p), false),
        [Reason::NoPrivateKey, Reason::KeyUsage]
    );
}

#[test]
fn reasons_depend_on_now() {
    let store = store_with(self_signed(&params("t")), true);
    let at = |now| {
        store.query(&Filter::default(), now)[0]
            .client_auth
            .reasons
            .clone()
    };
    assert_eq!(at(NOW), []);
    assert_eq!(at(NOT_AFTER), []);
    assert_eq!(at(datetime!(2034-01-01 00:00:01 UTC)), [Reason::Expired]);
    assert_eq!(
        at(datetime!(2023-12-31 23:59:59 UTC)),
        [Reason::NotYetValid]
    );
}

#[test]
fn identity_fields_and_json() {
    let mut p = params("Zoë Ærøskøbing 測試");
    p.serial_number = Some(SerialNumber::from_slice(&[0x0a, 0xbc]));
    p.key_usages = vec![Ku::DigitalSignature];
    let der = self_signed(&p);
    let store = store_with(der.clone(), true);
    let all = store.query(&Filter::default(), NOW);
    let id = &all[0];
    assert_eq!(id.subject, "CN=Zoë Ærøskøbing 測試");
    assert_eq!(id.serial, "0abc");
    assert_eq!(id.key_usage, Some(vec!["digitalSignature".to_owned()]));
    assert_eq!(id.extended_key_usage, None);
    assert!(id.has_private_key);
    assert_eq!(id.token, token("tok", "1", 0));
    assert_eq!(id.cert_uri, "pkcs11:token=t;object=c;type=cert");
    assert_eq!(
        id.key_uri.as_deref(),
        Some("pkcs11:token=t;object=c;type=private")
    );

    let json = serde_json::to_value(id).expect("serialises");
    assert_eq!(json["subject"], "CN=Zoë Ærøskøbing 測試");
    assert_eq!(json["key_type"], "ec");
    assert_eq!(json["curve"], "P-256");
    assert_eq!(json["not_before"], "2024-01-01T00:00:00Z");
    assert_eq!(json["client_auth"]["usable"], true);

    let nokey = store_with(der, false);
    let json = serde_json::to_value(&nokey.query(&Filter::default(), NOW)[0]).expect("serialises");
    assert_eq!(json["client_auth"]["reasons"][0], "no_private_key");
    assert_eq!(json["key_uri"], serde_json::Value::Null);
}

// ---- filters ---------------------------------------------------------

/// Two tokens with a mix of certificates:
///
/// * token "alpha" (serial A1, slot 0): alice (EC, key, usable),
///   bob (RSA, key, server-only EKU), root CA (EC, no key);
/// * token "beta" (serial B2, slot 1): carol (Ed25519, key, usable,
///   issued by the test issuer).
fn sample() -> (Store, Vec<Vec<u8>>) {
    let mut p = params("ignored");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example Corp");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Alice Example");
    let alice = self_signed(&p);

    let mut p = params("Bob");
    p.extended_key_usages = vec![Eku::ServerAuth];
    let bob = for_public_key(&p, &FakeRsaKey::new_2048());

    let mut p = params("Root CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = self_signed(&p);

    let carol = for_public_key(&params("Carol"), &ed25519_key());

    let mut store = Store::new();
    store.insert_token(found(
        token("alpha", "A1", 0),
        vec![
            found_cert(alice.clone(), "alice", true),
            found_cert(bob.clone(), "bob", true),
            found_cert(root.clone(), "root", false),
        ],
    ));
    store.insert_token(found(
        token("beta", "B2", 1),
        vec![found_cert(carol.clone(), "carol", true)],
    ));
    (store, vec![alice, bob, root, carol])
}

/// Common names of the identities matching `filter`, in listing order.
fn names(store: &Store, filter: Filter) -> Vec<String> {
    store
        .query(&filter, NOW)
        .into_iter()
        .map(|i| i.subject)
        .collect()
}

#[test]
fn no_filter_lists_everything_in_order() {
    let (store, _) = sample();
    assert_eq!(
        names(&store, Filter::default()),
        [
            "CN=Alice Example,O=Example Corp",
            "CN=Bob",
            "CN=Root CA",
            "CN=Carol"
        ]
    );
    assert_eq!(store.len(), 4);
    assert_ne!(store.len(), 0);
    assert_eq!(store.token_count(), 2);
}

#[test]
fn filter_subject_substring_case_insensitive() {
    let (store, _) = sample();
    let f = Filter {
        subject: Some("aLiCe".into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f), ["CN=Alice Example,O=Example Corp"]);
    let f = Filter {
        subject: Some("o=example".into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f).len(), 1);
}

#[test]
fn filter_subject_exact() {
    let (store, _) = sample();
    let f = |s: &str| Filter {
        subject_exact: Some(s.into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f("CN=Bob")), ["CN=Bob"]);
    assert!(names(&store, f("cn=bob")).is_empty());
    assert!(names(&store, f("CN=Alice Example")).is_empty());
}

#[test]
fn filter_issuer() {
    let (store, _) = sample();
    let f = Filter {
        issuer: Some("test ISSUER".into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f), ["CN=Bob", "CN=Carol"]);
    let f = Filter {
        issuer_exact: Some("CN=Root CA".into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f), ["CN=Root CA"]);
    let f = Filter {
        issuer_exact: Some("CN=Test".into()),
        ..Filter::default()
    };
    assert!(names(&store, f).is_empty());
}

#[test]
fn filter_fingerprint() {
    let (store, ders) = sample();
    let bob_id = hex::encode(sha2::Sha256::digest(&ders[1]));
    let colons: String = bob_id[..12]
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    for fp in [bob_id.clone(), bob_id[..6].to_owned(), colons] {
        let f = Filter {
            fingerprint: Some(fp.clone()),
            ..Filter::default()
        };
        assert_eq!(names(&store, f), ["CN=Bob"], "fingerprint {fp}");
    }
    let f = Filter {
        fingerprint: Some("zz".into()),
        ..Filter::default()
    };
    assert!(names(&store, f).is_empty());
}

#[test]
fn filter_key_type() {
    let (store, _) = sample();
    let f = |k| Filter {
        key_type: Some(k),
        ..Filter::default()
    };
    assert_eq!(names(&store, f(KeyType::Rsa)), ["CN=Bob"]);
    assert_eq!(names(&store, f(KeyType::Ed25519)), ["CN=Carol"]);
    assert_eq!(
        names(&store, f(KeyType::Ec)),
        ["CN=Alice Example,O=Example Corp", "CN=Root CA"]
    );
}

#[test]
fn filter_token_by_label_or_serial() {
    let (store, _) = sample();
    let f = |t: &str| Filter {
        token: Some(t.into()),
        ..Filter::default()
    };
    assert_eq!(names(&store, f("beta")), ["CN=Carol"]);
    assert_eq!(names(&store, f("B2")), ["CN=Carol"]);
    assert_eq!(names(&store, f("A1")).len(), 3);
    assert!(names(&store, f("Beta")).is_empty());
    assert!(names(&store, f("bet")).is_empty());
}

#[test]
fn filter_has_key() {
    let (store, _) = sample();
    let f = |h| Filter {
        has_key: Some(h),
        ..Filter::default()
    };
    assert_eq!(names(&store, f(false)), ["CN=Root CA"]);
    assert_eq!(names(&store, f(true)).len(), 3);
}

#[test]
fn filter_client_auth() {
    let (store, _) = sample();
    let f = |u| Filter {
        client_auth: Some(u),
        ..Filter::default()
    };
    assert_eq!(
        names(&store, f(true)),
        ["CN=Alice Example,O=Example Corp", "CN=Carol"]
    );
    assert_eq!(names(&store, f(false)), ["CN=Bob", "CN=Root CA"]);
    // Usability is evaluated at the time given.
    let later = store.query(&f(true), datetime!(2040-01-01 00:00 UTC));
    assert!(later.is_empty());
}

#[test]
fn filters_combine() {
    let (store, _) = sample();
    let f = Filter {
        token: Some("alpha".into()),
        has_key: Some(true),
        key_type: Some(KeyType::Ec),
        subject: Some("alice".into()),
        client_auth: Some(true),
        ..Filter::default()
    };
    assert_eq!(names(&store, f), ["CN=Alice Example,O=Example Corp"]);
    let f = Filter {
        token: Some("beta".into()),
        key_type: Some(KeyType::Ec),
        ..Filter::default()
    };
    assert!(names(&store, f).is_empty());
}

// ---- tokens ----------------------------------------------------------

#[test]
fn tokens_summaries_in_order() {
    let (mut store, _) = sample();
    store.insert_token(found(token("aardvark", "Z9", 7), Vec::new()));
    let tokens = store.tokens();
    let labels: Vec<_> = tokens.iter().map(|t| t.token.label.as_str()).collect();
    assert_eq!(labels, ["aardvark", "alpha", "beta"]);
    assert_eq!((tokens[1].certificates, tokens[1].keys), (3, 2));
    assert_eq!((tokens[2].certificates, tokens[2].keys), (1, 1));
    assert_eq!((tokens[0].certificates, tokens[0].keys), (0, 0));
    assert_eq!(store.token_count(), 3);
    assert_eq!(store.len(), 4);
}

#[test]
fn listing_orders_by_token_then_subject() {
    let mut store = Store::new();
    let cert = |n: &str| found_cert(self_signed(&params(n)), n, true);
    store.insert_token(found(token("same", "2", 0), vec![cert("b"), cert("a")]));
    store.insert_token(found(token("same", "1", 5), vec![cert("d")]));
    store.insert_token(found(token("same", "1", 3), vec![cert("c")]));
    store.insert_token(found(token("earlier", "9", 9), vec![cert("z")]));
    assert_eq!(
        names(&store, Filter::default()),
        ["CN=z", "CN=c", "CN=d", "CN=a", "CN=b"]
    );
}

#[test]
fn unreadable_certificates_are_skipped_but_counted() {
    let good = self_signed(&params("good"));
    let ed448 = patch(
        &self_signed_with(&params("ed448"), &ed25519_key()),
        DER_OID_ED25519,
        DER_OID_ED448,
    );
    let mut store = Store::new();
    store.insert_token(found(
        token("t", "1", 0),
        vec![
            found_cert(b"garbage".to_vec(), "garbage", true),
            found_cert(ed448, "ed448", true),
            found_cert(good, "good", true),
        ],
    ));
    assert_eq!(names(&store, Filter::default()), ["CN=ed448", "CN=good"]);
    assert_eq!(store.tokens()[0].certificates, 3);
    assert_eq!(store.len(), 2);
}

#[test]
fn unsupported_ed448_key_is_listed_but_unusable() {
    let ed448 = patch(
        &self_signed_with(&params("ed448"), &ed25519_key()),
        DER_OID_ED25519,
        DER_OID_ED448,
    );
    let store = store_with(ed448.clone(), true);
    let all = store.query(&Filter::default(), NOW);
    assert_eq!(all.len(), 1);
    let id = &all[0];
    assert_eq!(id.subject, "CN=ed448");
    assert_eq!(id.key_type, KeyType::Other);
    assert_eq!(id.key_bits, 0);
    assert_eq!(id.curve, None);
    assert!(id.has_private_key);
    assert!(!id.client_auth.usable);
    assert_eq!(id.client_auth.reasons, [Reason::UnsupportedKey]);

    let json = serde_json::to_value(id).expect("serialises");
    assert_eq!(json["key_type"], "other");
    assert_eq!(json["key_bits"], 0);
    assert_eq!(json["curve"], serde_json::Value::Null);
    assert_eq!(json["client_auth"]["usable"], false);
    assert!(json["client_auth"]["reasons"]
        .as_array()
        .expect("array")
        .contains(&serde_json::json!("unsupported_key")));

    // Filters see it; it is never offered for client authentication.
    let f = |key_type, client_auth| Filter {
        key_type,
        client_auth,
        ..Filter::default()
    };
    assert_eq!(names(&store, f(Some(KeyType::Other), None)), ["CN=ed448"]);
    assert_eq!(names(&store, f(None, Some(false))), ["CN=ed448"]);
    assert!(names(&store, f(None, Some(true))).is_empty());
    let shown = store.get(&id.id, NOW).expect("found by id");
    let (identity, der) = (shown.identity, shown.der);
    assert_eq!(identity.client_auth.reasons, [Reason::UnsupportedKey]);
    assert_eq!(der, ed448.as_slice());

    // Without a key both reasons apply, no_private_key first.
    assert_eq!(
        reasons_for(ed448, false),
        [Reason::NoPrivateKey, Reason::UnsupportedKey]
    );
}

#[test]
fn unsupported_curve_is_listed_as_ec_without_curve() {
    let p192 = patch(
        &for_public_key(&params("p192"), &FakeEcKey::uncompressed(24)),
        DER_OID_P256,
        DER_OID_P192,
    );
    let store = store_with(p192, true);
    let all = store.query(&Filter::default(), NOW);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].key_type, all[0].key_bits, all[0].curve),
        (KeyType::Ec, 192, None)
    );
    assert_eq!(all[0].client_auth.reasons, [Reason::UnsupportedKey]);
}

#[test]
fn insert_token_replaces_previous_contents() {
    let mut store = Store::new();
    let one = self_signed(&params("one"));
    let two = self_signed(&params("two"));
    let three = self_signed(&params("three"));
    store.insert_token(found(
        token("t", "S", 0),
        vec![found_cert(one, "one", true), found_cert(two, "two", true)],
    ));
    assert_eq!(store.len(), 2);
    // Same module, slot and serial, new label and contents.
    store.insert_token(found(
        token("renamed", "S", 0),
        vec![found_cert(three, "three", false)],
    ));
    assert_eq!(store.token_count(), 1);
    assert_eq!(names(&store, Filter::default()), ["CN=three"]);
    assert_eq!(store.tokens()[0].token.label, "renamed");
    assert_eq!(store.tokens()[0].keys, 0);
    // Another slot or another serial is another token.
    store.insert_token(found(token("t", "S", 1), Vec::new()));
    store.insert_token(found(token("t", "T", 0), Vec::new()));
    assert_eq!(store.token_count(), 3);
    // Emptying a token keeps it listed.
    store.insert_token(found(token("renamed", "S", 0), Vec::new()));
    assert_eq!(store.token_count(), 3);
    assert_eq!(store.len(), 0);
}

#[test]
fn remove_token() {
    let (mut store, _) = sample();
    assert!(store.remove_token(&token("alpha", "A1", 0)));
    assert!(!store.remove_token(&token("alpha", "A1", 0)));
    // The label does not matter, serial does.
    assert!(!store.remove_token(&token("beta", "XX", 1)));
    assert_eq!(names(&store, Filter::default()), ["CN=Carol"]);
    assert!(store.remove_token(&token("relabelled", "B2", 1)));
    assert_eq!(store.len(), 0);
    assert_eq!(store.token_count(), 0);
}

#[test]
fn absent_tokens_stay_listed_until_they_come_back() {
    let (mut store, ders) = sample();
    let alpha = token("alpha", "A1", 0);
    let ids: Vec<String> = store
        .identities_of(&alpha)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!ids.is_empty());
    assert!(store.mark_absent(&alpha));
    assert!(!store.mark_absent(&alpha), "already absent");
    assert_eq!(
        store.present_tokens(Some(&alpha.module)),
        [token("beta", "B2", 1)]
    );
    let absent = store.query(
        &Filter {
            present: Some(false),
            ..Filter::default()
        },
        NOW,
    );
    assert_eq!(absent.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids);
    assert!(absent.iter().all(|i| !i.present));
    let summary = store.tokens();
    assert_eq!(summary[0].status, TokenStatus::Absent);
    // A lookup still finds it, and says where its key was.
    let key = store
        .signing_key(&ids[0], NOW)
        .expect("found")
        .key
        .expect("has a key");
    assert!(!key.present);

    // The same token (serial) back in another slot replaces the record.
    let back = token("alpha", "A1", 7);
    store.insert_token(found(
        back.clone(),
        vec![found_cert(ders[0].clone(), "a", true)],
    ));
    assert_eq!(store.token_count(), 2);
    let alpha_now = store.query(
        &Filter {
            token: Some("alpha".into()),
            ..Filter::default()
        },
        NOW,
    );
    assert_eq!(alpha_now.len(), 1);
    assert!(alpha_now[0].present);
    assert_eq!(alpha_now[0].token.slot, 7);
}

// ---- lookup ----------------------------------------------------------

#[test]
fn get_by_full_id_and_prefix() {
    let (store, ders) = sample();
    let carol = hex::encode(sha2::Sha256::digest(&ders[3]));
    let shown = store.get(&carol, NOW).expect("full id");
    let (identity, der) = (shown.identity, shown.der);
    assert_eq!(identity.subject, "CN=Carol");
    assert_eq!(der, ders[3].as_slice());
    assert!(identity.client_auth.usable);

    let identity = store
        .get(&carol[..8], NOW)
        .expect("8-digit prefix")
        .identity;
    assert_eq!(identity.id, carol);
    let identity = store
        .get(&carol[..8].to_uppercase(), NOW)
        .expect("upper case")
        .identity;
    assert_eq!(identity.id, carol);
    let colons = format!(
        "{}:{}:{}:{}",
        &carol[0..2],
        &carol[2..4],
        &carol[4..6],
        &carol[6..8]
    );
    let identity = store.get(&colons, NOW).expect("colons").identity;
    assert_eq!(identity.id, carol);

    // The verdict is computed for the time given.
    let identity = store
        .get(&carol, datetime!(2040-01-01 00:00 UTC))
        .expect("id")
        .identity;
    assert_eq!(identity.client_auth.reasons, [Reason::Expired]);
}

#[test]
fn get_too_short_and_not_found() {
    let (store, ders) = sample();
    let alice = hex::encode(sha2::Sha256::digest(&ders[0]));
    assert_eq!(store.get(&alice[..7], NOW), Err(LookupError::TooShort(7)));
    assert_eq!(store.get("", NOW), Err(LookupError::TooShort(0)));
    // Eight digits that match nothing: flip the first digit.
    let first = if alice.starts_with('0') { "1" } else { "0" };
    let missing = format!("{first}{}", &alice[1..8]);
    let others_start_with = store
        .query(&Filter::default(), NOW)
        .iter()
        .any(|i| i.id.starts_with(&missing));
    if !others_start_with {
        assert_eq!(
            store.get(&missing, NOW),
            Err(LookupError::NotFound(missing.clone()))
        );
    }
    assert!(matches!(
        store.get("not-hex-at-all", NOW),
        Err(LookupError::NotFound(_))
    ));
}

#[test]
fn get_ambiguous_prefix() {
    // SHA-256 prefixes of 8 digits do not collide on demand, so give two
    // stored identities ids that share a prefix.
    let (mut store, _) = sample();
    let shared = "0123456789abcdef";
    let entries = store.tokens.iter_mut().flat_map(|t| t.entries.iter_mut());
    for (n, entry) in entries.take(2).enumerate() {
        entry.identity.id = format!("{shared}{n:048x}");
    }
    match store.get(&shared[..8], NOW) {
        Err(LookupError::Ambiguous { prefix, ids }) => {
            assert_eq!(prefix, "01234567");
            assert_eq!(ids.len(), 2);
            assert!(ids[0] < ids[1]);
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
    // One more digit than the shared part tells them apart.
    let identity = store
        .get(&format!("{shared}{:048x}", 1), NOW)
        .expect("unique")
        .identity;
    assert!(identity.id.ends_with('1'));
}

#[test]
fn same_certificate_on_two_tokens() {
    let der = self_signed(&params("shared"));
    let mut store = Store::new();
    store.insert_token(found(
        token("a-first", "1", 0),
        vec![found_cert(der.clone(), "c", false)],
    ));
    store.insert_token(found(
        token("b-second", "2", 1),
        vec![found_cert(der.clone(), "c", true)],
    ));
    let all = store.query(&Filter::default(), NOW);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, all[1].id);
    assert_ne!(all[0].token, all[1].token);

    // Not ambiguous: the usable copy wins over listing order.
    let shown = store.get(&all[0].id[..10], NOW).expect("found");
    let (identity, got) = (shown.identity, shown.der);
    assert_eq!(identity.token.label, "b-second");
    assert!(identity.client_auth.usable);
    assert_eq!(got, der.as_slice());

    // Neither usable: the copy with a key still wins.
    let identity = store
        .get(&all[0].id, datetime!(2040-01-01 00:00 UTC))
        .expect("found")
        .identity;
    assert_eq!(identity.token.label, "b-second");
}

// ---- scale -----------------------------------------------------------

#[test]
fn thousand_identities() {
    let started = Instant::now();
    let certificates = thousand_certificates();
    let generated = started.elapsed();

    let mut store = Store::new();
    let started = Instant::now();
    store.insert_token(found(token("big", "1", 0), certificates));
    let inserted = started.elapsed();
    assert_eq!(store.len(), 1000);

    let started = Instant::now();
    let all = store.query(&Filter::default(), NOW);
    let queried = started.elapsed();
    assert_eq!(all.len(), 1000);
    let started = Instant::now();
    let again = store.query(&Filter::default(), NOW);
    let requeried = started.elapsed();
    assert_eq!(again, all);
    assert!(all.windows(2).all(|w| w[0].subject < w[1].subject));

    let filter = Filter {
        subject: Some("user 05".into()),
        client_auth: Some(true),
        ..Filter::default()
    };
    let started = Instant::now();
    let some = store.query(&filter, NOW);
    let filtered = started.elapsed();
    assert_eq!(some.len(), 67);

    let started = Instant::now();
    let json = serde_json::to_vec(&all).expect("serialises");
    let serialised = started.elapsed();

    eprintln!(
        "1000 identities: generate {generated:?}, insert {inserted:?}, \
         query all {queried:?} (again {requeried:?}), filtered query {filtered:?}, \
         JSON {serialised:?} ({} bytes)",
        json.len()
    );
}

#[test]
fn keys_seen_after_a_login_outlive_a_scan_that_cannot_see_them() {
    let (mut store, ders) = sample();
    let alpha = token("alpha", "A1", 0);
    let alice = hex::encode(sha2::Sha256::digest(&ders[0]));
    assert!(
        store
            .get(&alice, NOW)
            .expect("alice")
            .identity
            .has_private_key
    );
    // Put back, scanned without a login: the private key is not visible.
    store.mark_absent(&alpha);
    store.insert_token(found(
        alpha.clone(),
        vec![found_cert(ders[0].clone(), "alice", false)],
    ));
    let identity = store.get(&alice, NOW).expect("alice").identity;
    assert!(identity.has_private_key && identity.present);
    assert!(identity.client_auth.usable);
    assert!(store.signing_key(&alice, NOW).expect("found").key.is_some());
    // Another token with the same certificate does not inherit it.
    store.insert_token(found(
        token("gamma", "G1", 2),
        vec![found_cert(ders[0].clone(), "alice", false)],
    ));
    let copies = store.query(
        &Filter {
            token: Some("gamma".into()),
            ..Filter::default()
        },
        NOW,
    );
    assert!(!copies[0].has_private_key);
}
