//! Scanning real SoftHSM tokens, provisioned with the command-line tools.

use std::time::Instant;

use cryptoki::object::{Attribute, CertificateType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::found::{FoundCertificate, FoundToken};
use super::testing::{SoftHsm, USER_PIN};

/// Writes a software key `NAME.pem` (with `NAME.der` and `NAME-pub.der`)
/// and a self-signed certificate `CERT.der` for it.
fn key_and_cert(hsm: &SoftHsm, name: &str, algorithm: &[&str], certs: &[&str]) {
    let pem = format!("{name}.pem");
    let mut genpkey = vec!["genpkey"];
    genpkey.extend_from_slice(algorithm);
    genpkey.extend_from_slice(&["-out", &pem]);
    hsm.openssl(&genpkey);
    hsm.openssl(&[
        "pkey",
        "-in",
        &pem,
        "-outform",
        "DER",
        "-out",
        &format!("{name}.der"),
    ]);
    hsm.openssl(&[
        "pkey",
        "-in",
        &pem,
        "-pubout",
        "-outform",
        "DER",
        "-out",
        &format!("{name}-pub.der"),
    ]);
    for cert in certs {
        hsm.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &pem,
            "-subj",
            &format!("/CN={cert}"),
            "-days",
            "30",
            "-outform",
            "DER",
            "-out",
            &format!("{cert}.der"),
        ]);
    }
}

fn write(hsm: &SoftHsm, token: &str, file: &str, kind: &str, id: &str, label: &str) {
    hsm.pkcs11_tool(
        token,
        &[
            "--write-object",
            file,
            "--type",
            kind,
            "--id",
            id,
            "--label",
            label,
        ],
    );
}

const EC_P256: [&str; 4] = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// Token `t1`:
/// - k1 (P-256, id 01): private + public key; certificates c1 and c1b
///   (renewed), id 01 — pair by id;
/// - k2 (RSA-2048, id 12): private + public key; certificate "RSA cert; ü",
///   id 02 — pairs by public key (the RSA private key shows its modulus);
/// - k3 (P-256, id 13): private + public key; certificate c3, id 03 —
///   pairs by public key through the public-key object (an EC private key
///   has no CKA_EC_POINT);
/// - k6 (Ed25519, generated on the token, id 06); certificate c6, id 16 —
///   pairs by public key (SoftHSM writes CKA_EC_PARAMS as "edwards25519");
/// - ca: a certificate without key, id 04;
/// - k20: a lone public key, id 20.
///
/// Token "Second Token": the ca certificate only.
fn provision(hsm: &SoftHsm) {
    hsm.init_token("t1");
    hsm.init_token("Second Token");

    key_and_cert(hsm, "k1", &EC_P256, &["c1", "c1b"]);
    key_and_cert(
        hsm,
        "k2",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        &["c2"],
    );
    key_and_cert(hsm, "k3", &EC_P256, &["c3"]);
    key_and_cert(hsm, "ca", &EC_P256, &["ca"]);
    key_and_cert(hsm, "k20", &EC_P256, &[]);

    write(hsm, "t1", "k1.der", "privkey", "01", "k1");
    write(hsm, "t1", "k1-pub.der", "pubkey", "01", "k1");
    write(hsm, "t1", "c1.der", "cert", "01", "c1");
    write(hsm, "t1", "c1b.der", "cert", "01", "c1b");
    write(hsm, "t1", "k2.der", "privkey", "12", "k2");
    write(hsm, "t1", "k2-pub.der", "pubkey", "12", "k2");
    write(hsm, "t1", "c2.der", "cert", "02", "RSA cert; ü");
    write(hsm, "t1", "k3.der", "privkey", "13", "k3");
    write(hsm, "t1", "k3-pub.der", "pubkey", "13", "k3");
    write(hsm, "t1", "c3.der", "cert", "03", "c3");
    write(hsm, "t1", "ca.der", "cert", "04", "ca");
    write(hsm, "t1", "k20-pub.der", "pubkey", "20", "k20");
    write(hsm, "Second Token", "ca.der", "cert", "04", "ca");

    // Ed25519: pkcs11-tool cannot import the key, so generate it on the
    // token and certify its public key with another key (force_pubkey).
    hsm.pkcs11_tool(
        "t1",
        &[
            "--keypairgen",
            "--key-type",
            "EC:edwards25519",
            "--id",
            "06",
            "--label",
            "k6",
        ],
    );
    hsm.pkcs11_tool(
        "t1",
        &[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "06",
            "--output-file",
            "k6-pub.pem",
        ],
    );
    hsm.openssl(&[
        "req", "-new", "-key", "ca.pem", "-subj", "/CN=c6", "-out", "c6.csr",
    ]);
    hsm.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.pem",
        "-subj",
        "/CN=ca",
        "-out",
        "ca-cert.pem",
    ]);
    hsm.openssl(&[
        "x509",
        "-req",
        "-in",
        "c6.csr",
        "-CA",
        "ca-cert.pem",
        "-CAkey",
        "ca.pem",
        "-force_pubkey",
        "k6-pub.pem",
        "-days",
        "30",
        "-outform",
        "DER",
        "-out",
        "c6.der",
    ]);
    write(hsm, "t1", "c6.der", "cert", "16", "c6");
}

/// A session logged in as the user on the token in `slot`: login is per
/// process, so every session of `module` then sees the private keys.
fn logged_in_session(module: &super::Module, slot: u64) -> cryptoki::session::Session {
    let cryptoki_slot = module
        .pkcs11()
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| s.id() == slot)
        .expect("the token's slot");
    let session = module
        .pkcs11()
        .open_ro_session(cryptoki_slot)
        .expect("session");
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .expect("login");
    session
}

fn token<'a>(found: &'a [FoundToken], label: &str) -> &'a FoundToken {
    found
        .iter()
        .find(|t| t.token.label == label)
        .unwrap_or_else(|| panic!("token {label:?} not found in {found:#?}"))
}

fn cert<'a>(token: &'a FoundToken, label_in_uri: &str) -> &'a FoundCertificate {
    let needle = format!(";object={label_in_uri};type=cert");
    token
        .certificates
        .iter()
        .find(|c| c.cert_uri.ends_with(&needle))
        .unwrap_or_else(|| panic!("certificate {label_in_uri:?} not found in {token:#?}"))
}

fn key_uri_tail(cert: &FoundCertificate) -> Option<&str> {
    let uri = cert.key_uri.as_deref()?;
    Some(&uri[uri.find(";id=").unwrap_or(0)..])
}

fn common_name(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).expect("certificate parses");
    cert.subject().to_string()
}

#[test]
fn scan_pairs_certificates_with_keys_before_and_after_login() {
    let Some(hsm) = SoftHsm::new() else { return };
    provision(&hsm);
    let module = hsm.load();
    // Scans read each object in one call, not through cryptoki.
    let slot = module
        .pkcs11()
        .get_slots_with_initialized_token()
        .expect("slots")[0];
    let session = module.pkcs11().open_ro_session(slot).expect("session");
    assert!(module.raw_attributes(&session).is_some());
    drop(session);

    // Before login: private keys are invisible; public keys stand in.
    let started = Instant::now();
    let found = module.scan().expect("scan");
    eprintln!("scan of 2 tokens, 7 certificates: {:?}", started.elapsed());
    // SoftHSM's free slot (uninitialised token) is left out.
    assert_eq!(found.len(), 2, "{found:#?}");

    let t1 = token(&found, "t1");
    assert_eq!(t1.token.manufacturer, "SoftHSM project");
    assert_eq!(t1.token.model, "SoftHSM v2");
    assert!(!t1.token.serial.is_empty() && !t1.token.serial.ends_with(' '));
    assert_eq!(t1.token.module, super::testing::SOFTHSM_MODULE);
    assert_eq!(t1.certificates.len(), 6);

    let c1 = cert(t1, "c1");
    assert_eq!(common_name(&c1.der), "CN=c1");
    assert!(c1
        .cert_uri
        .starts_with("pkcs11:token=t1;manufacturer=SoftHSM%20project;serial="));
    assert!(c1
        .cert_uri
        .ends_with(";model=SoftHSM%20v2;id=%01;object=c1;type=cert"));
    assert_eq!(key_uri_tail(c1), Some(";id=%01;object=k1;type=private"));
    assert_eq!(
        key_uri_tail(cert(t1, "c1b")),
        Some(";id=%01;object=k1;type=private")
    );
    let c2 = cert(t1, "RSA%20cert%3B%20%C3%BC");
    assert_eq!(common_name(&c2.der), "CN=c2");
    assert_eq!(key_uri_tail(c2), Some(";id=%12;object=k2;type=private"));
    assert_eq!(
        key_uri_tail(cert(t1, "c3")),
        Some(";id=%13;object=k3;type=private")
    );
    assert_eq!(
        key_uri_tail(cert(t1, "c6")),
        Some(";id=%06;object=k6;type=private")
    );
    assert_eq!(cert(t1, "ca").key_uri, None);
    // k1, k2, k3, k6; not the lone public key k20.
    assert_eq!(t1.key_count, 4);

    let second = token(&found, "Second Token");
    assert_eq!(second.certificates.len(), 1);
    assert_eq!(second.key_count, 0);
    let ca = &second.certificates[0];
    assert!(ca.cert_uri.starts_with("pkcs11:token=Second%20Token;"));
    assert_eq!(ca.key_uri, None);

    // After login: the private keys themselves. Login is per process, so
    // a session logged in here makes the scan's session see them too.
    let slot = t1.token.slot;
    let login = logged_in_session(&module, slot);
    let t1 = module.scan_slot(slot).expect("scan after login");
    assert_eq!(t1.certificates.len(), 6);
    assert_eq!(
        key_uri_tail(cert(&t1, "c1")),
        Some(";id=%01;object=k1;type=private")
    );
    assert_eq!(
        key_uri_tail(cert(&t1, "c1b")),
        Some(";id=%01;object=k1;type=private")
    );
    assert_eq!(
        key_uri_tail(cert(&t1, "RSA%20cert%3B%20%C3%BC")),
        Some(";id=%12;object=k2;type=private")
    );
    assert_eq!(
        key_uri_tail(cert(&t1, "c3")),
        Some(";id=%13;object=k3;type=private")
    );
    assert_eq!(
        key_uri_tail(cert(&t1, "c6")),
        Some(";id=%06;object=k6;type=private")
    );
    assert_eq!(cert(&t1, "ca").key_uri, None);
    assert_eq!(t1.key_count, 4);

    drop(login);
    module.finalize().expect("finalize");
}

#[test]
fn tokens_created_by_another_process_appear_after_reinitialize() {
    let Some(hsm) = SoftHsm::new() else { return };
    let mut module = hsm.load();
    assert!(
        module.scan().expect("scan").is_empty(),
        "no initialised token yet"
    );

    hsm.init_token("late");
    let before = module.scan().expect("scan");
    eprintln!(
        "token created by another process after C_Initialize: visible without reinitialising: {}",
        !before.is_empty()
    );
    module.reinitialize().expect("reinitialize");
    let after = module.scan().expect("scan");
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0].token.label, "late");
    assert!(after[0].certificates.is_empty());
}

#[test]
fn scan_of_a_hundred_certificates() {
    scan_of_many_certificates(100);
}

/// SoftHSM takes ~40 s to create the 2,000 objects (its file store
/// slows down with every object), so this one runs on demand:
/// `cargo test --release -p p11agent thousand -- --ignored --nocapture`.
#[test]
#[ignore = "slow to provision; run with --ignored to measure"]
fn scan_of_a_thousand_certificates() {
    scan_of_many_certificates(1000);
}

/// Creates `n` certificates and `n` public keys (same key, id by index)
/// in-process, then times a scan with a fresh module instance.
fn scan_of_many_certificates(n: usize) {
    let Some(hsm) = SoftHsm::new() else { return };
    hsm.init_token("big");
    key_and_cert(&hsm, "k", &EC_P256, &["c"]);
    let der = std::fs::read(hsm.path("c.der")).expect("c.der");
    let (_, parsed) = X509Certificate::from_der(&der).expect("parses");
    let subject = parsed.subject().as_raw().to_vec();
    let point = parsed.public_key().subject_public_key.data.to_vec();
    let mut ec_point = vec![0x04, u8::try_from(point.len()).expect("short point")];
    ec_point.extend_from_slice(&point);
    let p256_params = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let garbage = [b"not a certificate".as_slice(), &[0; 10 * 1024]].concat();

    let module = hsm.load();
    let slot = module
        .pkcs11()
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .next()
        .expect("the big token");
    let started = Instant::now();
    {
        let session = module.pkcs11().open_rw_session(slot).expect("rw session");
        session
            .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
            .expect("login");
        for i in 0..n {
            let id = u16::try_from(i).expect("small").to_be_bytes().to_vec();
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Subject(subject.clone()),
                    Attribute::Value(der.clone()),
                    Attribute::Id(id.clone()),
                    Attribute::Label(format!("cert {i}").into_bytes()),
                ])
                .expect("create certificate");
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::EcParams(p256_params.clone()),
                    Attribute::EcPoint(ec_point.clone()),
                    Attribute::Id(id),
                    Attribute::Label(format!("key {i}").into_bytes()),
                ])
                .expect("create public key");
        }
        // A certificate object whose value is not a certificate: listed
        // (the store decides what to make of it), never paired, and no
        // harm to the others. Larger than a scan's one-call buffer, so
        // read as cryptoki reads.
        session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Subject(subject.clone()),
                Attribute::Value(garbage.clone()),
                Attribute::Id(vec![0xff, 0xff]),
                Attribute::Label(b"garbage".to_vec()),
            ])
            .expect("create garbage certificate");
        // Objects a scan has no use for: not listed, not counted as keys.
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Application(b"app".to_vec()),
                Attribute::Value(b"some data".to_vec()),
                Attribute::Label(b"data".to_vec()),
            ])
            .expect("create data object");
        session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Sensitive(false),
                Attribute::Value(vec![7; 32]),
                Attribute::Id(vec![0, 1]),
                Attribute::Label(b"secret".to_vec()),
            ])
            .expect("create secret key");
    }
    eprintln!(
        "created {n} certificates and {n} public keys in {:?}",
        started.elapsed()
    );
    // Scan with a fresh instance, as the daemon would after a restart.
    module.finalize().expect("finalize");
    let module = hsm.load();

    let started = Instant::now();
    let found = module.scan().expect("scan");
    let elapsed = started.elapsed();
    eprintln!("scanned {n} certificates and {n} public keys in {elapsed:?}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].certificates.len(), n + 1);
    let unpaired: Vec<&FoundCertificate> = found[0]
        .certificates
        .iter()
        .filter(|c| c.key_uri.is_none())
        .collect();
    assert_eq!(unpaired.len(), 1);
    assert_eq!(unpaired[0].der, garbage);
    // Every public key has the same point: one key pair.
    assert_eq!(found[0].key_count, 1);

    let started = Instant::now();
    let again = module.scan().expect("scan");
    eprintln!("scanned again (warm) in {:?}", started.elapsed());
    assert_eq!(again[0].certificates.len(), n + 1);
}

#[test]
fn the_object_fingerprint_holds_still_and_moves_when_the_objects_do() {
    let Some(hsm) = SoftHsm::new() else { return };
    provision(&hsm);
    let mut module = hsm.load();
    let slot = token(&module.scan().expect("scan"), "t1").token.slot;
    let first = module.object_fingerprint(slot).expect("fingerprint");
    assert_eq!(module.object_fingerprint(slot).expect("again"), first);

    // Private keys become visible: other objects.
    let login = logged_in_session(&module, slot);
    let logged_in = module.object_fingerprint(slot).expect("after login");
    assert_ne!(logged_in, first);
    drop(login);

    // Another process writes a certificate; SoftHSM shows it here once
    // re-initialised.
    hsm.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=later",
        "-days",
        "1",
        "-outform",
        "DER",
        "-keyout",
        "later.key",
        "-out",
        "later.der",
    ]);
    let before = module.object_fingerprint(slot).expect("before");
    write(&hsm, "t1", "later.der", "cert", "77", "later");
    module.reinitialize().expect("reinitialize");
    let after = module.object_fingerprint(slot).expect("after");
    assert_ne!(after, before);
}
