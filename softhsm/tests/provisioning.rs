//! Provisioned objects carry the attributes the agent relies on.

mod common;

use common::*;
use p11agent_softhsm::cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use p11agent_softhsm::cryptoki::mechanism::Mechanism;
use p11agent_softhsm::cryptoki::object::{
    Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle,
};
use p11agent_softhsm::cryptoki::session::Session;
use p11agent_softhsm::{
    ExtendedKeyUsagePurpose, IssuedBy, KeyAlgorithm, KeyUsagePurpose, LeafSpec, Pki, Provisioned,
    PublicKey, SoftHsm,
};
use sha2::Digest;
use std::time::Instant;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AlgorithmIdentifier;

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der)
        .expect("certificate")
        .1
}

fn issuer_cert<'a>(pki: &'a Pki, cert: &X509Certificate<'_>) -> X509Certificate<'a> {
    let root = parse(pki.root_der());
    if cert.issuer().as_raw() == root.subject().as_raw() {
        return root;
    }
    let intermediate = parse(pki.intermediate_der().expect("intermediate"));
    assert_eq!(cert.issuer().as_raw(), intermediate.subject().as_raw());
    intermediate
}

/// Checks key, public key and certificate objects of one identity.
fn check_identity(session: &Session, pki: &Pki, p: &Provisioned, alg: KeyAlgorithm) {
    let key_id = p.key_id.clone().expect("identity has a key");
    assert_eq!(key_id, p.cert_id, "certificate CKA_ID == key CKA_ID");

    // Private key: on the token, private, sensitive, never extractable.
    let private = by_class_and_id(session, ObjectClass::PRIVATE_KEY, &key_id);
    assert_eq!(private.len(), 1, "{alg}: one private key");
    let private = private[0];
    for (ty, want) in [
        (AttributeType::Token, true),
        (AttributeType::Private, true),
        (AttributeType::Sensitive, true),
        (AttributeType::Extractable, false),
        (AttributeType::Sign, true),
        (AttributeType::AlwaysSensitive, true),
        (AttributeType::NeverExtractable, true),
        (AttributeType::Local, true),
    ] {
        assert_eq!(
            get_bool(session, private, ty),
            want,
            "{alg}: private {ty:?}"
        );
    }
    assert_eq!(
        get_bytes(session, private, AttributeType::Label),
        p.label.as_bytes()
    );
    // The private value cannot be read.
    assert!(session
        .get_attributes(private, &[AttributeType::Value])
        .map(|a| a.is_empty())
        .unwrap_or(true));

    // Public key: on the token, public, verify.
    let public = by_class_and_id(session, ObjectClass::PUBLIC_KEY, &key_id);
    assert_eq!(public.len(), 1, "{alg}: one public key");
    let public = public[0];
    assert!(get_bool(session, public, AttributeType::Token));
    assert!(!get_bool(session, public, AttributeType::Private));
    assert!(get_bool(session, public, AttributeType::Verify));

    // Certificate object.
    let cert_obj = find_one(
        session,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(p.cert_id.clone()),
        ],
    );
    check_certificate_object(session, cert_obj, p);

    // Certificate public key == token public key.
    let token_key = PublicKey::read_from_token(session, public, alg).expect("public key");
    let cert = parse(&p.cert_der);
    assert_eq!(cert.public_key().raw, token_key.spki_der(), "{alg}: SPKI");
    assert_eq!(p.public_key_spki, token_key.spki_der());

    // The chain verifies (x509-parser/ring: the CAs are ECDSA P-256).
    let issuer = issuer_cert(pki, &cert);
    cert.verify_signature(Some(issuer.public_key()))
        .unwrap_or_else(|e| panic!("{alg}: certificate signature: {e}"));

    // The key signs, and the signature verifies against the certificate.
    check_signature(session, private, public, &cert, alg);
}

fn check_certificate_object(session: &Session, cert_obj: ObjectHandle, p: &Provisioned) {
    let cert = parse(&p.cert_der);
    assert!(get_bool(session, cert_obj, AttributeType::Token));
    assert!(!get_bool(session, cert_obj, AttributeType::Private));
    match get(session, cert_obj, AttributeType::CertificateType) {
        Attribute::CertificateType(t) => assert_eq!(t, CertificateType::X_509),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        get_bytes(session, cert_obj, AttributeType::Value),
        p.cert_der
    );
    assert_eq!(
        get_bytes(session, cert_obj, AttributeType::Subject),
        cert.subject().as_raw()
    );
    assert_eq!(
        get_bytes(session, cert_obj, AttributeType::Issuer),
        cert.issuer().as_raw()
    );
    let serial = get_bytes(session, cert_obj, AttributeType::SerialNumber);
    assert_eq!(serial[0], 0x02, "CKA_SERIAL_NUMBER is a DER INTEGER");
    assert_eq!(&serial[2..], cert.raw_serial());
    assert_eq!(
        get_bytes(session, cert_obj, AttributeType::Label),
        p.label.as_bytes()
    );
}

fn bit_string(data: &[u8]) -> x509_parser::der_parser::asn1_rs::BitString<'_> {
    x509_parser::der_parser::asn1_rs::BitString::new(0, data)
}

fn alg_id(der: &[u8]) -> AlgorithmIdentifier<'_> {
    AlgorithmIdentifier::from_der(der)
        .expect("algorithm identifier")
        .1
}

/// DER ECDSA-Sig-Value from the token's raw r||s.
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let b = &b[b.iter().take_while(|x| **x == 0).count()..];
        let mut v = Vec::new();
        if b.first().is_none_or(|x| x & 0x80 != 0) {
            v.push(0);
        }
        v.extend_from_slice(b);
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

fn check_signature(
    session: &Session,
    private: ObjectHandle,
    public: ObjectHandle,
    cert: &X509Certificate<'_>,
    alg: KeyAlgorithm,
) {
    let msg = b"p11agent signing test";
    let spki = cert.public_key();
    match alg {
        KeyAlgorithm::Rsa1024 | KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
            let sig = session
                .sign(&Mechanism::Sha256RsaPkcs, private, msg)
                .expect("RSA sign");
            // sha256WithRSAEncryption
            let id = alg_id(&[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ]);
            x509_parser::verify::verify_signature(spki, &id, &bit_string(&sig), msg)
                .expect("RSA signature verifies in software");
        }
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 | KeyAlgorithm::EcP521 => {
            // SoftHSM has raw CKM_ECDSA only: hash first.
            let (digest, oid_last): (Vec<u8>, Option<u8>) = match alg {
                KeyAlgorithm::EcP256 => (sha2::Sha256::digest(msg).to_vec(), Some(0x02)),
                KeyAlgorithm::EcP384 => (sha2::Sha384::digest(msg).to_vec(), Some(0x03)),
                _ => (sha2::Sha512::digest(msg).to_vec(), None),
            };
            let sig = session
                .sign(&Mechanism::Ecdsa, private, &digest)
                .expect("ECDSA sign");
            session
                .verify(&Mechanism::Ecdsa, public, &digest, &sig)
                .expect("ECDSA verify on token");
            if let Some(last) = oid_last {
                // ecdsa-with-SHA256 / -SHA384 (ring has no P-521 verifier)
                let id_der = [
                    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last,
                ];
                let id = alg_id(&id_der);
                x509_parser::verify::verify_signature(
                    spki,
                    &id,
                    &bit_string(&ecdsa_der(&sig)),
                    msg,
                )
                .expect("ECDSA signature verifies in software");
            }
        }
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed25519NamedCurve => {
            let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            let sig = session.sign(&mech, private, msg).expect("EdDSA sign");
            assert_eq!(sig.len(), 64);
            let id = alg_id(&[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]);
            x509_parser::verify::verify_signature(spki, &id, &bit_string(&sig), msg)
                .expect("Ed25519 signature verifies in software");
        }
    }
}

#[test]
fn every_key_type_is_generated_on_the_token_with_a_matching_certificate() {
    let hsm = SoftHsm::new().expect("environment");
    let token = hsm
        .create_token("all-keys", "1234", "12345678")
        .expect("token");
    let pki = Pki::standard().expect("pki");
    let mut made = Vec::new();
    for alg in KeyAlgorithm::ALL {
        let started = Instant::now();
        let p = token
            .add_identity(&pki, &LeafSpec::new(format!("User {alg}")).key(alg))
            .expect("identity");
        eprintln!(
            "{alg}: key generated, issued and stored in {:?}",
            started.elapsed()
        );
        assert_eq!(p.algorithm, alg);
        made.push((alg, p));
    }
    with_session(&hsm, &token, |session| {
        for (alg, p) in &made {
            check_identity(session, &pki, p, *alg);
        }
        // Ed25519 CKA_EC_PARAMS: the public key keeps what was given; SoftHSM
        // gives the private key the PrintableString form in both cases.
        for (alg, p) in &made {
            if !alg.is_ed25519() {
                continue;
            }
            let id = p.key_id.clone().expect("key");
            let public = by_class_and_id(session, ObjectClass::PUBLIC_KEY, &id)[0];
            let private = by_class_and_id(session, ObjectClass::PRIVATE_KEY, &id)[0];
            assert_eq!(
                get_bytes(session, public, AttributeType::EcParams),
                alg.ec_params().expect("params")
            );
            assert_eq!(
                get_bytes(session, private, AttributeType::EcParams),
                b"\x13\x0cedwards25519"
            );
            // CKA_EC_POINT is OCTET STRING-wrapped.
            let point = get_bytes(session, public, AttributeType::EcPoint);
            assert_eq!(&point[..2], &[0x04, 0x20]);
        }
    });
}

#[test]
fn leaf_spec_controls_subject_serial_validity_and_usages() {
    let hsm = SoftHsm::new().expect("environment");
    let token = hsm
        .create_token("specs", "1234", "12345678")
        .expect("token");
    let pki = Pki::standard().expect("pki");
    let now = OffsetDateTime::now_utc();

    let (utf8, expired, future, no_ext, wrong, by_root, chosen_id) = token
        .provision(|p| {
            Ok((
                p.add_identity(
                    &pki,
                    &LeafSpec::new("Zoë Ærøskøbing 測試")
                        .organization("Ørg, Inc.")
                        .organizational_unit("Test + QA")
                        .country("DK")
                        .serial(vec![0x01, 0x02, 0x03, 0x04])
                        .issued_by_intermediate(),
                )?,
                p.add_identity(&pki, &LeafSpec::new("Expired").expired())?,
                p.add_identity(&pki, &LeafSpec::new("Future").not_yet_valid())?,
                p.add_identity(
                    &pki,
                    &LeafSpec::new("No extensions")
                        .no_key_usage()
                        .no_extended_key_usage(),
                )?,
                p.add_identity(
                    &pki,
                    &LeafSpec::new("Wrong usages")
                        .key_usage([KeyUsagePurpose::KeyEncipherment])
                        .extended_key_usage([ExtendedKeyUsagePurpose::ServerAuth]),
                )?,
                p.add_identity(&pki, &LeafSpec::new("By root").issued_by(IssuedBy::Root))?,
                p.add_identity(
                    &pki,
                    &LeafSpec::new("Chosen id")
                        .id(vec![0xca, 0xfe])
                        .label("my label")
                        .always_authenticate(),
                )?,
            ))
        })
        .expect("provision");

    // UTF-8 subject, chosen serial.
    let cert = parse(&utf8.cert_der);
    assert_eq!(
        utf8.subject,
        "CN=Zoë Ærøskøbing 測試,OU=Test \\+ QA,O=Ørg\\, Inc.,C=DK"
    );
    let cn = cert.subject().iter_common_name().next().expect("CN");
    assert_eq!(cn.as_str().expect("utf8"), "Zoë Ærøskøbing 測試");
    assert_eq!(cert.raw_serial(), &[0x01, 0x02, 0x03, 0x04]);
    assert_eq!(utf8.serial, vec![0x01, 0x02, 0x03, 0x04]);
    let ku = cert.key_usage().expect("ku").expect("present").value;
    assert!(ku.digital_signature() && !ku.key_encipherment());
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(
        cert.issuer().as_raw(),
        parse(pki.intermediate_der().expect("int"))
            .subject()
            .as_raw()
    );

    // Validity really in the past / future.
    let v = parse(&expired.cert_der).validity().clone();
    assert!(v.not_after.timestamp() < now.unix_timestamp());
    assert!(v.not_before.timestamp() < v.not_after.timestamp());
    let v = parse(&future.cert_der).validity().clone();
    assert!(v.not_before.timestamp() > now.unix_timestamp());

    // Absent extensions.
    let c = parse(&no_ext.cert_der);
    assert!(c.key_usage().expect("ku").is_none());
    assert!(c.extended_key_usage().expect("eku").is_none());

    // Wrong usages.
    let c = parse(&wrong.cert_der);
    let ku = c.key_usage().expect("ku").expect("present").value;
    assert!(ku.key_encipherment() && !ku.digital_signature());
    let eku = c.extended_key_usage().expect("eku").expect("present").value;
    assert!(eku.server_auth && !eku.client_auth);

    // Issued by the root.
    assert_eq!(
        parse(&by_root.cert_der).issuer().as_raw(),
        parse(pki.root_der()).subject().as_raw()
    );
    assert_eq!(by_root.issuer, pki.root_subject());

    // Chosen id and label, CKA_ALWAYS_AUTHENTICATE.
    assert_eq!(chosen_id.cert_id, vec![0xca, 0xfe]);
    assert_eq!(chosen_id.label, "my label");
    with_session(&hsm, &token, |session| {
        let private = by_class_and_id(session, ObjectClass::PRIVATE_KEY, &[0xca, 0xfe]);
        assert_eq!(private.len(), 1);
        assert!(get_bool(
            session,
            private[0],
            AttributeType::AlwaysAuthenticate
        ));
        let cert = by_class_and_id(session, ObjectClass::CERTIFICATE, &[0xca, 0xfe]);
        assert_eq!(
            get_bytes(session, cert[0], AttributeType::Label),
            b"my label"
        );
        // Other keys do not require it.
        let other = by_class_and_id(
            session,
            ObjectClass::PRIVATE_KEY,
            expired.key_id.as_deref().expect("key"),
        );
        assert!(!get_bool(
            session,
            other[0],
            AttributeType::AlwaysAuthenticate
        ));
    });
}

#[test]
fn certificates_without_keys_mismatched_ids_and_ca_certificates() {
    let hsm = SoftHsm::new().expect("environment");
    let token = hsm.create_token("odd", "1234", "12345678").expect("token");
    let pki = Pki::standard().expect("pki");

    let keyless = token
        .add_certificate_without_key(&pki, &LeafSpec::new("No key"))
        .expect("keyless");
    let mismatched = token
        .add_identity_with_mismatched_id(
            &pki,
            &LeafSpec::new("Mismatched").key(KeyAlgorithm::EcP384),
        )
        .expect("mismatched");
    let cas = token.add_ca_certificates(&pki).expect("CA certificates");
    let [root, intermediate] = &cas[..] else {
        panic!("root and intermediate expected, got {cas:?}");
    };
    assert_eq!(root.label, "p11agent Test Root CA");
    assert_eq!(intermediate.label, "p11agent Test Intermediate CA");

    assert!(!keyless.has_private_key());
    assert_eq!(keyless.key_id, None);
    let key_id = mismatched.key_id.clone().expect("key");
    assert_ne!(key_id, mismatched.cert_id);
    assert_eq!(root.subject, pki.root_subject());
    assert_eq!(root.subject, root.issuer, "root is self-signed");
    assert_eq!(
        Some(intermediate.subject.clone()),
        pki.intermediate_subject()
    );

    with_session(&hsm, &token, |session| {
        // Key-less: a certificate, no key objects at all.
        let with_id = find(session, &[Attribute::Id(keyless.cert_id.clone())]);
        assert_eq!(with_id.len(), 1);
        check_certificate_object(session, with_id[0], &keyless);
        let keys = find(session, &[Attribute::Class(ObjectClass::PRIVATE_KEY)]);
        assert_eq!(keys.len(), 1, "only the mismatched identity has a key");

        // Mismatched: nothing of the key carries the certificate's id ...
        assert_eq!(
            find(session, &[Attribute::Id(mismatched.cert_id.clone())]).len(),
            1
        );
        let public = by_class_and_id(session, ObjectClass::PUBLIC_KEY, &key_id);
        let private = by_class_and_id(session, ObjectClass::PRIVATE_KEY, &key_id);
        assert_eq!((public.len(), private.len()), (1, 1));
        // ... but the public keys are the same.
        let token_key =
            PublicKey::read_from_token(session, public[0], KeyAlgorithm::EcP384).expect("key");
        assert_eq!(
            parse(&mismatched.cert_der).public_key().raw,
            token_key.spki_der()
        );

        // CA certificates are stored as certificates without keys.
        for ca in [root, intermediate] {
            let obj = find_one(
                session,
                &[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::Id(ca.cert_id.clone()),
                ],
            );
            check_certificate_object(session, obj, ca);
        }
        assert_eq!(
            find(session, &[Attribute::Class(ObjectClass::CERTIFICATE)]).len(),
            4
        );
    });

    // Certificates are public: visible without login.
    let inventory = hsm.inventory().expect("inventory");
    assert_eq!(inventory.len(), 1);
    assert_eq!(inventory[0].certificates.len(), 4);
    assert_eq!(inventory[0].public_keys, 1);
    let listed = |fp: &str| {
        inventory[0]
            .certificates
            .iter()
            .find(|c| c.fingerprint == fp)
            .cloned()
            .expect("listed")
    };
    assert!(!listed(&keyless.fingerprint_hex()).public_key_with_same_id);
    assert!(!listed(&mismatched.fingerprint_hex()).public_key_with_same_id);
}

#[test]
fn add_many_puts_a_thousand_certificates_on_a_token() {
    let hsm = SoftHsm::new().expect("environment");
    let token = hsm.create_token("bulk", "1234", "12345678").expect("token");
    let pki = Pki::standard().expect("pki");
    let started = Instant::now();
    let made = token.add_many(&pki, 1000).expect("add_many");
    let elapsed = started.elapsed();
    eprintln!(
        "add_many(1000): {elapsed:?} ({:?} per identity) in {}",
        elapsed / 1000,
        hsm.dir().display()
    );
    assert_eq!(made.len(), 1000);
    let mut ids: Vec<_> = made.iter().map(|p| p.cert_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "distinct CKA_IDs");
    assert_eq!(made[999].subject, "CN=Bulk User 0999");

    let started = Instant::now();
    let (certs, private, public) = with_session(&hsm, &token, |session| {
        let count = |class| find(session, &[Attribute::Class(class)]).len();
        (
            count(ObjectClass::CERTIFICATE),
            count(ObjectClass::PRIVATE_KEY),
            count(ObjectClass::PUBLIC_KEY),
        )
    });
    eprintln!(
        "counting objects (initialise, login, 3 finds): {:?}",
        started.elapsed()
    );
    assert_eq!((certs, private, public), (1000, 1000, 1000));
}

#[test]
fn tokens_can_be_removed_reinserted_reopened_and_deleted() {
    let hsm = SoftHsm::new().expect("environment");
    let pki = Pki::root_only("Removal Root").expect("pki");
    let a = hsm.create_token("card-a", "1111", "11111111").expect("a");
    let b = hsm.create_token("card-b", "2222", "22222222").expect("b");
    let id = a
        .add_identity(&pki, &LeafSpec::new("On A"))
        .expect("identity");
    assert_eq!(id.issuer, "CN=Removal Root");

    let labels = |hsm: &SoftHsm| {
        let mut l: Vec<String> = hsm
            .tokens()
            .expect("tokens")
            .into_iter()
            .map(|t| t.label)
            .collect();
        l.sort();
        l
    };
    assert_eq!(labels(&hsm), ["card-a", "card-b"]);
    let slot_ids: Vec<u64> = hsm
        .tokens()
        .expect("tokens")
        .iter()
        .map(|t| t.slot_id)
        .collect();
    assert!(slot_ids.contains(&a.slot_id()) && slot_ids.contains(&b.slot_id()));

    a.remove().expect("remove");
    assert!(!a.is_present());
    assert_eq!(labels(&hsm), ["card-b"]);
    assert!(matches!(
        a.add_identity(&pki, &LeafSpec::new("x")),
        Err(p11agent_softhsm::Error::TokenNotPresent(_))
    ));

    a.insert().expect("insert");
    assert_eq!(labels(&hsm), ["card-a", "card-b"]);
    // Same token, same objects, same PIN.
    let reopened = hsm.open_token("card-a", "1111", "11111111").expect("open");
    assert_eq!(reopened.serial(), a.serial());
    let inventory = hsm.inventory().expect("inventory");
    let on_a = inventory
        .iter()
        .find(|t| t.token.serial == a.serial())
        .expect("a listed");
    assert_eq!(on_a.certificates.len(), 1);
    assert_eq!(on_a.certificates[0].fingerprint, id.fingerprint_hex());
    reopened
        .add_identity(&pki, &LeafSpec::new("Second on A"))
        .expect("provision reopened");

    // A wrong PIN fails at provisioning, with the module's error.
    let wrong = hsm.open_token("card-b", "9999", "22222222").expect("open");
    let err = wrong
        .add_identity(&pki, &LeafSpec::new("x"))
        .expect_err("wrong PIN");
    assert!(err.to_string().contains("PIN is incorrect"), "{err}");

    b.delete().expect("delete");
    assert_eq!(labels(&hsm), ["card-a"]);
    assert!(matches!(
        hsm.open_token("card-b", "2222", "22222222"),
        Err(p11agent_softhsm::Error::TokenNotFound(_))
    ));

    // Duplicate labels are allowed by SoftHSM but cannot be opened by label.
    hsm.create_token("card-a", "3333", "33333333")
        .expect("duplicate");
    assert!(matches!(
        hsm.open_token("card-a", "1111", "11111111"),
        Err(p11agent_softhsm::Error::AmbiguousToken(_))
    ));
}

#[test]
fn temporary_environments_vanish_and_persistent_ones_stay() {
    let hsm = SoftHsm::new().expect("environment");
    let dir = hsm.dir().to_path_buf();
    let token = hsm.create_token("t", "1234", "12345678").expect("token");
    let conf = std::fs::read_to_string(hsm.conf_path()).expect("conf");
    assert!(conf.contains(&format!(
        "directories.tokendir = {}",
        hsm.tokens_dir().display()
    )));
    assert!(conf.contains("objectstore.backend = file"));
    assert!(conf.contains("slots.removable = false"));
    assert_eq!(
        hsm.env(),
        vec![(
            "SOFTHSM2_CONF".to_string(),
            hsm.conf_path().into_os_string()
        )]
    );
    drop(hsm);
    assert!(dir.exists(), "a token keeps its environment alive");
    drop(token);
    assert!(!dir.exists(), "removed when the last handle goes");

    let keep = tempfile::tempdir().expect("tempdir");
    let pki = Pki::root_only("Persistent Root").expect("pki");
    {
        let hsm = SoftHsm::persistent(keep.path()).expect("persistent");
        let t = hsm.create_token("kept", "1234", "12345678").expect("token");
        t.add_identity(&pki, &LeafSpec::new("Kept"))
            .expect("identity");
    }
    let again = SoftHsm::persistent(keep.path()).expect("reopen");
    let inventory = again.inventory().expect("inventory");
    assert_eq!(inventory.len(), 1);
    assert_eq!(inventory[0].token.label, "kept");
    assert_eq!(inventory[0].certificates[0].subject, "CN=Kept");
}

#[test]
fn invalid_arguments_are_refused() {
    let hsm = SoftHsm::new().expect("environment");
    assert!(hsm
        .create_token(&"x".repeat(33), "1234", "12345678")
        .is_err());
    assert!(hsm.create_token("short-pin", "123", "12345678").is_err());
    assert!(hsm.tokens().expect("tokens").is_empty());
    assert!("rsa512".parse::<KeyAlgorithm>().is_err());
    let pki = Pki::root_only("Only Root").expect("pki");
    let token = hsm.create_token("t", "1234", "12345678").expect("token");
    assert!(matches!(
        token.add_identity(&pki, &LeafSpec::new("x").issued_by(IssuedBy::Intermediate)),
        Err(p11agent_softhsm::Error::NoIntermediate)
    ));
}
