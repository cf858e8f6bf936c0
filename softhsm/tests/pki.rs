//! The test PKI without tokens: CA structure, server certificates, saving
//! and loading.

use p11agent_softhsm::{pem_decode_all, IssuedBy, KeyAlgorithm, LeafSpec, Pki, PublicKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der)
        .expect("certificate")
        .1
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("SKI")
}

fn aki(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                k.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("AKI")
}

#[test]
fn root_and_intermediate_form_a_chain() {
    let pki = Pki::with_intermediate("Chain Root", "Chain Intermediate").expect("pki");
    let root = parse(pki.root_der());
    let int = parse(pki.intermediate_der().expect("intermediate"));
    assert_eq!(pki.root_subject(), "CN=Chain Root");
    assert_eq!(
        pki.intermediate_subject().as_deref(),
        Some("CN=Chain Intermediate")
    );
    assert_eq!(root.subject().as_raw(), root.issuer().as_raw());
    assert_eq!(int.issuer().as_raw(), root.subject().as_raw());
    assert_eq!(
        pki.root_subject_der().expect("der"),
        root.subject().as_raw()
    );
    assert!(root.is_ca() && int.is_ca());
    int.verify_signature(Some(root.public_key()))
        .expect("intermediate signed by root");
    root.verify_signature(None).expect("root self-signed");
    assert_eq!(aki(&int), ski(&root));
    assert_eq!(
        pem_decode_all("CERTIFICATE", &pki.root_pem()).expect("pem"),
        vec![pki.root_der().to_vec()]
    );
    assert_eq!(
        pki.intermediates_for(IssuedBy::Intermediate)
            .expect("chain"),
        vec![pki.intermediate_der().expect("int").to_vec()]
    );
    assert!(pki
        .intermediates_for(IssuedBy::Root)
        .expect("chain")
        .is_empty());

    let root_only = Pki::root_only("Lonely Root").expect("pki");
    assert!(root_only.intermediate_der().is_none());
    assert!(root_only.intermediate_pem().is_none());
}

#[test]
fn server_certificate_for_localhost() {
    let pki = Pki::standard().expect("pki");
    let server = pki.localhost_server().expect("server");
    let chain = pem_decode_all("CERTIFICATE", &server.chain_pem).expect("chain");
    assert_eq!(chain.len(), 2, "leaf + intermediate");
    assert_eq!(chain[0], server.cert_der);
    assert_eq!(chain[1], pki.intermediate_der().expect("int"));
    assert_eq!(
        pem_decode_all("PRIVATE KEY", &server.key_pem).expect("key"),
        vec![server.key_der.clone()]
    );
    let key = rcgen::KeyPair::from_pem(&server.key_pem).expect("key parses");

    let cert = parse(&server.cert_der);
    assert_eq!(
        rcgen::PublicKeyData::subject_public_key_info(&key),
        cert.public_key().raw
    );
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.server_auth && !eku.client_auth);
    let san = cert
        .subject_alternative_name()
        .expect("san")
        .expect("present")
        .value
        .general_names
        .clone();
    assert!(san.contains(&GeneralName::DNSName("localhost")));
    assert!(san.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    cert.verify_signature(Some(parse(&chain[1]).public_key()))
        .expect("signed by the intermediate");

    // A software client identity too.
    let client = pki
        .issue_software(&LeafSpec::new("Software Client").key(KeyAlgorithm::Ed25519))
        .expect("client");
    assert_eq!(
        PublicKey::from_spki_der(parse(&client.cert_der).public_key().raw)
            .expect("key")
            .algorithm(),
        KeyAlgorithm::Ed25519
    );
    assert!(pki
        .issue_software(&LeafSpec::new("x").key(KeyAlgorithm::Rsa2048))
        .is_err());
}

#[test]
fn a_saved_pki_issues_certificates_that_chain_byte_for_byte() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = Pki::standard().expect("pki");
    pki.save(dir.path()).expect("save");
    assert!(Pki::exists_in(dir.path()));
    let mode = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.path().join(name))
            .expect("file")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca.key.pem"), 0o600);
    assert_eq!(mode("intermediate.key.pem"), 0o600);

    let loaded = Pki::load(dir.path()).expect("load");
    assert_eq!(loaded.root_der(), pki.root_der());
    assert_eq!(loaded.intermediate_der(), pki.intermediate_der());

    let server = loaded.localhost_server().expect("server");
    let cert = parse(&server.cert_der);
    let int = parse(pki.intermediate_der().expect("int"));
    assert_eq!(cert.issuer().as_raw(), int.subject().as_raw());
    assert_eq!(aki(&cert), ski(&int));
    cert.verify_signature(Some(int.public_key()))
        .expect("signature");
}

#[test]
fn public_keys_round_trip_through_spki() {
    let pki = Pki::root_only("SPKI Root").expect("pki");
    let root = parse(pki.root_der());
    let key = PublicKey::from_spki_der(root.public_key().raw).expect("P-256");
    assert_eq!(key.algorithm(), KeyAlgorithm::EcP256);
    assert_eq!(key.spki_der(), root.public_key().raw);
    assert_eq!(key.key_bytes().len(), 65);
    // OCTET STRING-wrapped and raw points give the same key.
    let mut wrapped = vec![0x04, 65];
    wrapped.extend_from_slice(key.key_bytes());
    assert_eq!(
        PublicKey::from_ec_point(KeyAlgorithm::EcP256, &wrapped).expect("wrapped"),
        key
    );
    assert!(PublicKey::from_ec_point(KeyAlgorithm::EcP384, &wrapped).is_err());
}
