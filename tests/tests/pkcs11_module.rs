//! The PKCS#11 module (`libp11agent_pkcs11.so`) as programs load it:
//! through cryptoki (in this process, as a library would) and through
//! pkcs11-tool, against a daemon on SoftHSM. Every signature is checked
//! with the certificate's public key by ring or openssl, which never see
//! the token.
//!
//! The module keeps its state in the process, so the tests of this file
//! take turns (`MODULE`), and each finalises it when done.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm, Token};
use p11agent_tests::{describe, have_openssl, pin_file, pkcs11_module, Daemon};
use ring::signature::{self as ring_sig, UnparsedPublicKey};

const PIN: &str = "246810";
const SO_PIN: &str = "13579111";
const PKCS11_TOOL: &str = "/usr/bin/pkcs11-tool";

/// One test at a time loads the module in this process.
static MODULE: Mutex<()> = Mutex::new(());

/// A token with an EC P-256 and an RSA-2048 identity, and a daemon that
/// signs anything with them (purpose "any") and lets this test process
/// and pkcs11-tool sign digests.
struct Setup {
    _hsm: SoftHsm,
    token: Token,
    ec: Provisioned,
    rsa: Provisioned,
    daemon: Daemon,
}

fn setup() -> Setup {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("PKCS11 Module Root").expect("pki");
    let token = hsm.create_token("module", PIN, SO_PIN).expect("token");
    let ec = token
        .add_identity(&pki, &LeafSpec::new("module ec").key(KeyAlg::EcP256))
        .expect("ec identity");
    let rsa = token
        .add_identity(&pki, &LeafSpec::new("module rsa").key(KeyAlg::Rsa2048))
        .expect("rsa identity");
    let pin = pin_file(hsm.dir(), PIN);
    let me = std::env::current_exe().expect("test executable");
    let digest_policy = format!(
        "[[allow_digest]]\nprogram = {:?}\n\n[[allow_digest]]\nprogram = {PKCS11_TOOL:?}\n",
        me.display().to_string()
    );
    let daemon = Daemon::start_configured(
        None,
        &[
            ("config.toml", "purpose = \"any\"\n"),
            ("digest.d/tests.toml", &digest_policy),
        ],
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
            "--poll-interval".as_ref(),
            "100".as_ref(),
        ],
        hsm.env(),
    );
    Setup {
        _hsm: hsm,
        token,
        ec,
        rsa,
        daemon,
    }
}

/// The module, initialised for `socket`; finalised on drop.
struct Loaded(Pkcs11);

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = self.0.clone().finalize();
    }
}

fn load(socket: &Path) -> Loaded {
    // The module reads P11AGENT_SOCK in C_Initialize; the tests that
    // load it take turns, so no other thread reads it meanwhile.
    std::env::set_var("P11AGENT_SOCK", socket);
    let pkcs11 = Pkcs11::new(pkcs11_module()).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(
            CInitializeFlags::OS_LOCKING_OK | CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS,
        ))
        .expect("C_Initialize");
    Loaded(pkcs11)
}

fn only_slot(pkcs11: &Pkcs11) -> Slot {
    let slots = pkcs11.get_slots_with_token().expect("slots");
    assert_eq!(slots.len(), 1, "one token, one slot");
    slots[0]
}

fn attribute_bytes(
    session: &Session,
    object: cryptoki::object::ObjectHandle,
    ty: AttributeType,
) -> Vec<u8> {
    let attrs = session.get_attributes(object, &[ty]).expect("attributes");
    match attrs.into_iter().next() {
        Some(
            Attribute::Value(v) | Attribute::Id(v) | Attribute::Label(v) | Attribute::EcPoint(v),
        ) => v,
        Some(Attribute::Modulus(v) | Attribute::Subject(v) | Attribute::EcParams(v)) => v,
        other => panic!("{ty:?}: {other:?}"),
    }
}

/// The private key of the identity whose certificate is `cert_der`,
/// found as ssh does: the certificate's CKA_ID, then `{CKA_ID, CKA_SIGN}`.
fn private_key(session: &Session, cert_der: &[u8]) -> cryptoki::object::ObjectHandle {
    let certs = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Value(cert_der.to_vec()),
        ])
        .expect("find certificate");
    assert_eq!(certs.len(), 1);
    let id = attribute_bytes(session, certs[0], AttributeType::Id);
    let keys = session
        .find_objects(&[Attribute::Id(id), Attribute::Sign(true)])
        .expect("find key");
    assert_eq!(keys.len(), 1, "one signing key per id");
    keys[0]
}

/// The uncompressed point of an EC certificate's key.
fn ec_point(identity: &Provisioned) -> &[u8] {
    &identity.public_key_spki[identity.public_key_spki.len() - 65..]
}

/// The RSAPublicKey DER of an RSA certificate's key.
fn rsa_public_key(identity: &Provisioned) -> Vec<u8> {
    p11agent_softhsm::PublicKey::from_spki_der(&identity.public_key_spki)
        .expect("spki")
        .key_bytes()
        .to_vec()
}

fn sha(bits: usize, data: &[u8]) -> Vec<u8> {
    let algorithm = match bits {
        256 => &ring::digest::SHA256,
        384 => &ring::digest::SHA384,
        _ => &ring::digest::SHA512,
    };
    ring::digest::digest(algorithm, data).as_ref().to_vec()
}

/// `r || s` as DER, for ring's ASN.1 verifiers.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |x: &[u8]| {
        let x = &x[x.iter().position(|b| *b != 0).unwrap_or(x.len() - 1)..];
        let mut out = vec![0x02];
        let pad = x[0] & 0x80 != 0;
        out.push((x.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(x);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [integer(r), integer(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

fn pss(hash: MechanismType, mgf: PkcsMgfType, salt: u64) -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: hash,
        mgf,
        s_len: salt.into(),
    }
}

#[test]
fn slots_tokens_and_objects_show_the_agent_s_identities() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let pkcs11 = &module.0;
    let slot = only_slot(pkcs11);
    let info = pkcs11.get_token_info(slot).expect("token info");
    assert_eq!(info.label(), "module");
    assert_eq!(info.serial_number(), setup.token.serial());
    assert!(!info.login_required(), "programs need no login");
    assert!(pkcs11.get_slot_info(slot).expect("slot").removable_device());
    let mechanisms = pkcs11.get_mechanism_list(slot).expect("mechanisms");
    for wanted in [
        MechanismType::ECDSA,
        MechanismType::ECDSA_SHA256,
        MechanismType::RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::SHA256,
        MechanismType::SHA384,
        MechanismType::SHA512,
    ] {
        assert!(
            mechanisms.contains(&wanted),
            "{wanted} not listed: {mechanisms:?}"
        );
    }
    assert!(!mechanisms.contains(&MechanismType::EDDSA));

    let session = pkcs11.open_ro_session(slot).expect("session");
    let all = session.find_objects(&[]).expect("find all");
    assert_eq!(all.len(), 6, "three objects per identity");
    for identity in [&setup.ec, &setup.rsa] {
        let key = private_key(&session, &identity.cert_der);
        let id = attribute_bytes(&session, key, AttributeType::Id);
        let label = attribute_bytes(&session, key, AttributeType::Label);
        for class in [
            ObjectClass::CERTIFICATE,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::PRIVATE_KEY,
        ] {
            let found = session
                .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                .expect("find");
            assert_eq!(found.len(), 1, "{class:?}");
            assert_eq!(
                attribute_bytes(&session, found[0], AttributeType::Label),
                label
            );
        }
        assert_eq!(
            attribute_bytes(&session, key, AttributeType::Subject),
            attribute_bytes(
                &session,
                private_key_cert(&session, &id),
                AttributeType::Subject
            )
        );
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysAuthenticate,
                    AttributeType::Token,
                ],
            )
            .expect("key attributes");
        assert_eq!(
            attrs,
            [
                Attribute::Private(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::AlwaysAuthenticate(false),
                Attribute::Token(true),
            ]
        );
        // A secret is no attribute a program gets.
        let secret = match identity.algorithm.is_rsa() {
            true => AttributeType::PrivateExponent,
            false => AttributeType::Value,
        };
        assert!(session
            .get_attributes(key, &[secret])
            .expect("an unavailable attribute is left out")
            .is_empty());
    }
    let ec_key = private_key(&session, &setup.ec.cert_der);
    let ec_public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
        ])
        .expect("find");
    let point = attribute_bytes(&session, ec_public[0], AttributeType::EcPoint);
    assert_eq!(&point[..2], [0x04, 0x41], "a DER OCTET STRING");
    assert_eq!(&point[2..], ec_point(&setup.ec));
    assert_eq!(
        attribute_bytes(&session, ec_key, AttributeType::EcParams),
        [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
    );
    let certs = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
        ])
        .expect("find");
    assert_eq!(certs.len(), 2);
    // Classes the module does not hold match nothing (NSS's trust
    // objects, which cryptoki cannot name, are in the unit tests).
    for class in [ObjectClass::DATA, ObjectClass::SECRET_KEY] {
        assert!(session
            .find_objects(&[Attribute::Class(class)])
            .expect("find")
            .is_empty());
    }
}

/// The certificate sharing `id`.
fn private_key_cert(session: &Session, id: &[u8]) -> cryptoki::object::ObjectHandle {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ])
        .expect("find")[0]
}

#[test]
fn every_hash_and_sign_mechanism_signs_verifiably() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let session = module
        .0
        .open_ro_session(only_slot(&module.0))
        .expect("session");
    let message = b"a message for the module to sign".as_slice();

    let ec = private_key(&session, &setup.ec.cert_der);
    let signature = session
        .sign(&Mechanism::EcdsaSha256, ec, message)
        .expect("ECDSA_SHA256");
    assert_eq!(signature.len(), 64, "r || s");
    UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, ec_point(&setup.ec))
        .verify(message, &signature)
        .expect("ECDSA_SHA256 verifies");

    let rsa = private_key(&session, &setup.rsa.cert_der);
    let rsa_public = rsa_public_key(&setup.rsa);
    let cases: [(Mechanism<'_>, &dyn ring_sig::VerificationAlgorithm); 6] = [
        (
            Mechanism::Sha256RsaPkcs,
            &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            Mechanism::Sha384RsaPkcs,
            &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        ),
        (
            Mechanism::Sha512RsaPkcs,
            &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        ),
        (
            Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32)),
            &ring_sig::RSA_PSS_2048_8192_SHA256,
        ),
        (
            Mechanism::Sha384RsaPkcsPss(pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48)),
            &ring_sig::RSA_PSS_2048_8192_SHA384,
        ),
        (
            Mechanism::Sha512RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64)),
            &ring_sig::RSA_PSS_2048_8192_SHA512,
        ),
    ];
    for (mechanism, verifier) in cases {
        let signature = session.sign(&mechanism, rsa, message).expect("sign");
        assert_eq!(signature.len(), 256);
        UnparsedPublicKey::new(verifier, &rsa_public)
            .verify(message, &signature)
            .unwrap_or_else(|_| panic!("{mechanism:?} does not verify"));
    }

    // Multi-part, as Firefox and Java sign: the same signature input.
    session
        .sign_init(&Mechanism::EcdsaSha256, ec)
        .expect("init");
    for part in message.chunks(7) {
        session.sign_update(part).expect("update");
    }
    let signature = session.sign_final().expect("final");
    UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, ec_point(&setup.ec))
        .verify(message, &signature)
        .expect("multi-part ECDSA verifies");

    // PSS parameters the agent cannot honour are refused up front.
    let odd_salt =
        Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 20));
    assert!(matches!(
        session.sign(&odd_salt, rsa, message),
        Err(CkError::Pkcs11(RvError::MechanismParamInvalid, _))
    ));
    // Digests are made in the module.
    assert_eq!(
        session.digest(&Mechanism::Sha384, message).expect("digest"),
        sha(384, message)
    );
}

#[test]
fn raw_mechanisms_sign_digests() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let session = module
        .0
        .open_ro_session(only_slot(&module.0))
        .expect("session");
    let message = b"what a browser signs".as_slice();

    let ec = private_key(&session, &setup.ec.cert_der);
    let ec_verify = |alg, signature: &[u8]| {
        UnparsedPublicKey::new(alg, ec_point(&setup.ec)).verify(message, signature)
    };
    let signature = session
        .sign(&Mechanism::Ecdsa, ec, &sha(256, message))
        .expect("ECDSA");
    ec_verify(&ring_sig::ECDSA_P256_SHA256_FIXED, &signature).expect("CKM_ECDSA verifies");
    // Hash-and-sign with another hash than the curve's goes as a digest.
    let signature = session
        .sign(&Mechanism::EcdsaSha384, ec, message)
        .expect("ECDSA_SHA384");
    ec_verify(
        &ring_sig::ECDSA_P256_SHA384_ASN1,
        &der_signature(&signature),
    )
    .expect("ECDSA_SHA384 on P-256 verifies");

    let rsa = private_key(&session, &setup.rsa.cert_der);
    let rsa_public = rsa_public_key(&setup.rsa);
    let rsa_verify =
        |alg, signature: &[u8]| UnparsedPublicKey::new(alg, &rsa_public).verify(message, signature);
    // ssh: a SHA-512 DigestInfo.
    let mut digest_info = vec![
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    digest_info.extend(sha(512, message));
    let signature = session
        .sign(&Mechanism::RsaPkcs, rsa, &digest_info)
        .expect("RSA_PKCS");
    rsa_verify(&ring_sig::RSA_PKCS1_2048_8192_SHA512, &signature).expect("CKM_RSA_PKCS verifies");
    // Chromium: a bare hash, MGF1 with the same hash, salt = hash length.
    let raw_pss = Mechanism::RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32));
    let signature = session
        .sign(&raw_pss, rsa, &sha(256, message))
        .expect("RSA_PKCS_PSS");
    rsa_verify(&ring_sig::RSA_PSS_2048_8192_SHA256, &signature).expect("CKM_RSA_PKCS_PSS verifies");
    // Not a DigestInfo the agent can sign.
    assert!(matches!(
        session.sign(&Mechanism::RsaPkcs, rsa, &sha(256, message)),
        Err(CkError::Pkcs11(RvError::DataInvalid, _))
    ));
}

/// Polls `check` for up to 15 s.
fn eventually(what: &str, daemon: &Daemon, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "never happened: {what}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_removed_token_leaves_its_slot_empty_and_signs_again_when_back() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let pkcs11 = &module.0;
    let slot = only_slot(pkcs11);
    let session = pkcs11.open_ro_session(slot).expect("session");
    let ec = private_key(&session, &setup.ec.cert_der);
    let message = b"before".as_slice();
    session
        .sign(&Mechanism::EcdsaSha256, ec, message)
        .expect("sign before removal");

    setup.token.remove().expect("remove");
    eventually("the slot reports no token", &setup.daemon, || {
        pkcs11.get_slots_with_token().expect("slots").is_empty()
    });
    assert!(!pkcs11
        .get_slot_info(slot)
        .expect("slot info")
        .token_present());
    assert!(matches!(
        pkcs11.get_token_info(slot),
        Err(CkError::Pkcs11(RvError::TokenNotPresent, _))
    ));
    // The token's sessions closed with it: a clean error, no signature.
    match session.sign(&Mechanism::EcdsaSha256, ec, message) {
        Err(CkError::Pkcs11(
            RvError::SessionHandleInvalid | RvError::DeviceRemoved | RvError::KeyHandleInvalid,
            _,
        )) => {}
        other => panic!("expected a clean error, got {other:?}"),
    }
    assert!(matches!(
        pkcs11.open_ro_session(slot),
        Err(CkError::Pkcs11(RvError::TokenNotPresent, _))
    ));

    setup.token.insert().expect("insert");
    eventually("the token is back in its slot", &setup.daemon, || {
        pkcs11.get_slots_with_token().expect("slots") == [slot]
    });
    let session = pkcs11.open_ro_session(slot).expect("session");
    let key = private_key(&session, &setup.ec.cert_der);
    assert_eq!(key, ec, "the same identity keeps its handles");
    let signature = session
        .sign(&Mechanism::EcdsaSha256, key, b"after")
        .expect("sign after");
    UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, ec_point(&setup.ec))
        .verify(b"after", &signature)
        .expect("verifies");
}

/// `C_WaitForSlotEvent` reports a token leaving and coming back: blocking
/// (the call returns when the agent says so) and with `CKF_DONT_BLOCK`
/// (`CKR_NO_EVENT` until something happened).
#[test]
fn slot_events_report_removal_and_insertion() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let pkcs11 = &module.0;
    let slot = only_slot(pkcs11);
    // The token's arrival when the module first listed it.
    while pkcs11.get_slot_event().expect("slot event").is_some() {}

    // On its own thread, so that a wait that never returns fails the
    // test (finalising the module on drop ends the wait) instead of
    // hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = pkcs11.clone();
    std::thread::spawn(move || tx.send(waiting.wait_for_slot_event()));
    std::thread::sleep(Duration::from_millis(200));
    setup.token.remove().expect("remove");
    let event = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("C_WaitForSlotEvent returned")
        .expect("C_WaitForSlotEvent");
    assert_eq!(event, slot, "the removal, on the token's slot");
    assert!(!pkcs11
        .get_slot_info(slot)
        .expect("slot info")
        .token_present());
    assert_eq!(pkcs11.get_slot_event().expect("slot event"), None);

    setup.token.insert().expect("insert");
    eventually("the insertion is reported", &setup.daemon, || {
        pkcs11.get_slot_event().expect("slot event") == Some(slot)
    });
    assert!(pkcs11
        .get_slot_info(slot)
        .expect("slot info")
        .token_present());
}

#[test]
// fork(2) is unsafe in nix: the one unsafe block of the tests.
#[allow(unsafe_code)]
fn a_forked_child_signs_on_its_own_connections() {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let session = module
        .0
        .open_ro_session(only_slot(&module.0))
        .expect("session");
    let ec = private_key(&session, &setup.ec.cert_der);
    session
        .sign(&Mechanism::EcdsaSha256, ec, b"parent")
        .expect("parent signs");
    let point = ec_point(&setup.ec).to_vec();

    // SAFETY: the child only signs through the module (which this test
    // alone uses) and leaves with `_exit`, running nothing of the
    // harness's.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let verified = session
                .sign(&Mechanism::EcdsaSha256, ec, b"child")
                .ok()
                .is_some_and(|signature| {
                    UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, &point)
                        .verify(b"child", &signature)
                        .is_ok()
                });
            // Runs no destructor: the parent's objects are the parent's.
            std::process::exit(if verified { 0 } else { 3 })
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("wait");
            let log = setup.daemon.log();
            assert_eq!(
                status,
                WaitStatus::Exited(child, 0),
                "the child did not sign\n{log}"
            );
            // On a connection of its own: the agent saw the child as the
            // peer (a connection inherited from the parent would show
            // the parent's pid).
            assert!(
                log.contains(&format!("\"pid\":{child},")),
                "the child signed on its parent's connection\n{log}"
            );
        }
    }
    // The parent's connections were not disturbed by the child's.
    let signature = session
        .sign(&Mechanism::EcdsaSha256, ec, b"parent again")
        .expect("parent signs");
    UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, &point)
        .verify(b"parent again", &signature)
        .expect("verifies");
}

#[test]
fn eight_threads_sign_at_once() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let setup = setup();
    let module = load(setup.daemon.socket());
    let slot = only_slot(&module.0);
    let point = ec_point(&setup.ec);
    let rsa_public = rsa_public_key(&setup.rsa);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let (pkcs11, setup, rsa_public) = (&module.0, &setup, &rsa_public);
                scope.spawn(move || {
                    let session = pkcs11.open_ro_session(slot).expect("session");
                    let ec = private_key(&session, &setup.ec.cert_der);
                    let rsa = private_key(&session, &setup.rsa.cert_der);
                    for round in 0..5 {
                        let message = format!("thread {n} round {round}");
                        let signature = session
                            .sign(&Mechanism::EcdsaSha256, ec, message.as_bytes())
                            .expect("ECDSA");
                        UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, point)
                            .verify(message.as_bytes(), &signature)
                            .expect("ECDSA verifies");
                        let signature = session
                            .sign(&Mechanism::Sha256RsaPkcs, rsa, message.as_bytes())
                            .expect("RSA");
                        UnparsedPublicKey::new(&ring_sig::RSA_PKCS1_2048_8192_SHA256, rsa_public)
                            .verify(message.as_bytes(), &signature)
                            .expect("RSA verifies");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
    });
}

#[test]
fn pkcs11_tool_lists_and_signs_what_openssl_verifies() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        Path::new(PKCS11_TOOL).exists() && have_openssl(),
        "pkcs11-tool or openssl missing: run scripts/install-deps"
    );
    let setup = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = |args: &[&str]| {
        let out = Command::new(PKCS11_TOOL)
            .arg("--module")
            .arg(pkcs11_module())
            .args(args)
            .env("P11AGENT_SOCK", setup.daemon.socket())
            .current_dir(dir.path())
            .output()
            .expect("run pkcs11-tool");
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?}: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listing = tool(&["--list-slots", "--list-objects"]);
    assert!(listing.contains("p11agent: module"), "{listing}");
    for name in ["module ec", "module rsa"] {
        assert_eq!(
            listing.matches(&format!("label:      {name}")).count(),
            3,
            "{listing}"
        );
    }
    std::fs::write(dir.path().join("msg"), b"signed by pkcs11-tool").expect("msg");
    for (identity, label, mechanism, format) in [
        (&setup.ec, "module ec", "ECDSA-SHA256", "openssl"),
        (&setup.rsa, "module rsa", "SHA256-RSA-PKCS", "rsa"),
    ] {
        std::fs::write(dir.path().join("cert.pem"), identity.cert_pem()).expect("cert");
        let id = listed_id(&listing, label);
        tool(&[
            "--sign",
            "-m",
            mechanism,
            "--id",
            &id,
            "-i",
            "msg",
            "-o",
            "sig",
            "--signature-format",
            format,
        ]);
        let public = Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in", "cert.pem"])
            .current_dir(dir.path())
            .output()
            .expect("openssl x509");
        std::fs::write(dir.path().join("pub.pem"), &public.stdout).expect("pub");
        let verify = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "msg",
            ])
            .current_dir(dir.path())
            .output()
            .expect("openssl dgst");
        assert!(
            verify.status.success(),
            "{mechanism}: {}",
            describe(&verify)
        );
    }
}

/// The hex CKA_ID pkcs11-tool lists for the certificate labelled `label`.
fn listed_id(listing: &str, label: &str) -> String {
    let block = listing
        .split("Certificate Object")
        .find(|block| block.contains(&format!("label:      {label}")))
        .unwrap_or_else(|| panic!("no certificate {label}:\n{listing}"));
    let line = block
        .lines()
        .find(|line| line.trim_start().starts_with("ID:"))
        .expect("an ID line");
    line.trim_start()
        .trim_start_matches("ID:")
        .trim()
        .to_owned()
}

/// CA certificates on the token appear as authority certificates next
/// to the identity they issued, so that programs building a chain (NSS
/// sends the intermediates a server asks for) find them in the module.
#[test]
fn the_ca_certificates_above_an_identity_are_shown() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::with_intermediate("Module Chain Root", "Module Chain Issuing").expect("pki");
    let token = hsm.create_token("chain", PIN, SO_PIN).expect("token");
    token
        .add_identity(
            &pki,
            &LeafSpec::new("chain leaf")
                .key(KeyAlg::EcP256)
                .issued_by_intermediate(),
        )
        .expect("identity");
    token.add_ca_certificates(&pki).expect("CA certificates");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let module = load(daemon.socket());
    let pkcs11 = &module.0;
    let session = pkcs11.open_ro_session(only_slot(pkcs11)).expect("session");
    // cryptoki has no CKA_CERTIFICATE_CATEGORY: a CA certificate is the
    // one without a CKA_ID, since no key of the program's goes with it.
    let certificates = session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .expect("find certificates");
    let mut shown: Vec<Vec<u8>> = certificates
        .iter()
        .filter(|&&c| attribute_bytes(&session, c, AttributeType::Id).is_empty())
        .map(|&ca| attribute_bytes(&session, ca, AttributeType::Value))
        .collect();
    shown.sort();
    let mut expected = vec![
        pki.intermediate_der().expect("intermediate").to_vec(),
        pki.root_der().to_vec(),
    ];
    expected.sort();
    assert_eq!(shown, expected, "the intermediate and the root, once each");
    let keys = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .expect("find keys");
    assert_eq!(keys.len(), 1, "CA certificates bring no keys");
}

/// Ed25519 identities stay hidden by default (Debian's libp11 cannot list
/// the other keys of a token that holds one), and with
/// `P11AGENT_PKCS11_ED25519=1` appear and sign with `CKM_EDDSA`.
#[test]
fn ed25519_identities_appear_only_when_asked_for_and_sign() {
    let _turn = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Module Ed25519 Root").expect("pki");
    let token = hsm.create_token("edwards", PIN, SO_PIN).expect("token");
    let ed = token
        .add_identity(&pki, &LeafSpec::new("module ed").key(KeyAlg::Ed25519))
        .expect("ed25519 identity");
    token
        .add_identity(&pki, &LeafSpec::new("module ec").key(KeyAlg::EcP256))
        .expect("ec identity");
    let pin = pin_file(hsm.dir(), PIN);
    let daemon = Daemon::start_configured(
        None,
        &[("config.toml", "purpose = \"any\"\n")],
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
        ],
        hsm.env(),
    );
    let private_keys = |module: &Loaded| {
        let session = module
            .0
            .open_ro_session(only_slot(&module.0))
            .expect("session");
        session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .expect("find keys")
            .len()
    };

    let module = load(daemon.socket());
    assert_eq!(private_keys(&module), 1, "the EC key alone by default");
    drop(module);

    std::env::set_var("P11AGENT_PKCS11_ED25519", "1");
    let module = load(daemon.socket());
    std::env::remove_var("P11AGENT_PKCS11_ED25519");
    assert_eq!(private_keys(&module), 2, "the Ed25519 key too when asked");
    let session = module
        .0
        .open_ro_session(only_slot(&module.0))
        .expect("session");
    let key = private_key(&session, &ed.cert_der);
    let message = b"signed with an Edwards key through the agent";
    let signature = session
        .sign(
            &Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            key,
            message,
        )
        .expect("CKM_EDDSA");
    // An Ed25519 SubjectPublicKeyInfo ends with the 32-byte key.
    let spki = &ed.public_key_spki;
    UnparsedPublicKey::new(&ring_sig::ED25519, &spki[spki.len() - 32..])
        .verify(message, &signature)
        .expect("verifies");
}
