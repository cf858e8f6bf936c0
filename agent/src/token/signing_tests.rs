//! Signing through [`Tokens`] on real SoftHSM tokens, checked by
//! independent verifiers (ring; `openssl` for P-521).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use p11agent_proto::{Curve, KeyType, Scheme, Token};
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use secrecy::SecretString;

use super::found::KeyLocation;
use super::testing::{SoftHsm, USER_PIN};
use super::{FoundToken, Loaded, Module, SignError, Tokens};
use crate::pin::{PinError, PinKind, PinRequest, PinSource};

const LABEL: &str = "signer";

/// A PIN source that answers with a fixed PIN (or none) and records
/// every request.
#[derive(Debug)]
struct CountingPins {
    answer: Result<&'static str, fn() -> PinError>,
    asked: AtomicUsize,
    requests: Mutex<Vec<(PinKind, Option<String>)>>,
}

impl CountingPins {
    fn new(pin: &'static str) -> Arc<CountingPins> {
        CountingPins::answering(Ok(pin))
    }

    fn answering(answer: Result<&'static str, fn() -> PinError>) -> Arc<CountingPins> {
        Arc::new(CountingPins {
            answer,
            asked: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<(PinKind, Option<String>)> {
        self.requests.lock().expect("lock").clone()
    }
}

impl PinSource for CountingPins {
    fn pin(&self, request: &PinRequest<'_>) -> Result<SecretString, PinError> {
        assert_eq!(request.token.label, LABEL);
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.requests
            .lock()
            .expect("lock")
            .push((request.kind, request.warning.clone()));
        match self.answer {
            Ok(pin) => Ok(SecretString::from(pin)),
            Err(error) => Err(error()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa2048,
    P256,
    P384,
    P521,
    Ed25519,
}

/// A key generated on the token, with its public half for verifiers.
#[derive(Debug, Clone)]
struct TestKey {
    kind: Kind,
    id: Vec<u8>,
    /// RSA: (modulus, exponent); EC / Ed25519: the raw point in `.0`.
    public: (Vec<u8>, Vec<u8>),
}

/// Generates `kind` on the token with `CKA_ID` `id`.
fn generate(session: &Session, kind: Kind, id: u8, always_authenticate: bool) -> TestKey {
    let id = vec![id];
    let mut public_template = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Id(id.clone()),
    ];
    let mut private_template = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Id(id.clone()),
    ];
    if always_authenticate {
        private_template.push(Attribute::AlwaysAuthenticate(true));
    }
    let ec = |oid: &[u8]| Attribute::EcParams(oid.to_vec());
    let mechanism = match kind {
        Kind::Rsa2048 => {
            public_template.push(Attribute::ModulusBits(2048.into()));
            public_template.push(Attribute::PublicExponent(vec![1, 0, 1]));
            Mechanism::RsaPkcsKeyPairGen
        }
        Kind::P256 => {
            public_template.push(ec(&[
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            ]));
            Mechanism::EccKeyPairGen
        }
        Kind::P384 => {
            public_template.push(ec(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]));
            Mechanism::EccKeyPairGen
        }
        Kind::P521 => {
            public_template.push(ec(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]));
            Mechanism::EccKeyPairGen
        }
        Kind::Ed25519 => {
            let mut printable = vec![0x13, 12];
            printable.extend_from_slice(b"edwards25519");
            public_template.push(ec(&printable));
            Mechanism::EccEdwardsKeyPairGen
        }
    };
    let (public, _private) = session
        .generate_key_pair(&mechanism, &public_template, &private_template)
        .unwrap_or_else(|err| panic!("generate {kind:?}: {err}"));
    TestKey {
        kind,
        id,
        public: public_parts(session, public, kind),
    }
}

fn public_parts(session: &Session, public: ObjectHandle, kind: Kind) -> (Vec<u8>, Vec<u8>) {
    if kind == Kind::Rsa2048 {
        let attributes = session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .expect("RSA public key");
        let mut n = Vec::new();
        let mut e = Vec::new();
        for attribute in attributes {
            match attribute {
                Attribute::Modulus(v) => n = v,
                Attribute::PublicExponent(v) => e = v,
                _ => {}
            }
        }
        return (n, e);
    }
    let attributes = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .expect("EC point");
    let Some(Attribute::EcPoint(der)) = attributes.into_iter().next() else {
        panic!("no CKA_EC_POINT");
    };
    (unwrap_octet_string(&der), Vec::new())
}

/// The content of a DER OCTET STRING (SoftHSM wraps CKA_EC_POINT in one).
fn unwrap_octet_string(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x04, "CKA_EC_POINT is an OCTET STRING");
    let (len, start) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        other => panic!("unexpected length byte {other:#x}"),
    };
    assert_eq!(der.len(), start + len);
    der[start..].to_vec()
}

/// A SoftHSM token "signer" with the given keys (id = index + 1, the
/// ones in `always_authenticate` with CKA_ALWAYS_AUTHENTICATE), scanned
/// and handed to a `Tokens` that asks `pins`. The provisioning session is
/// closed, so the token is logged out.
struct Fixture {
    // Dropped in this order: tokens (finalising SoftHSM), then the store.
    tokens: Tokens,
    found: FoundToken,
    keys: Vec<TestKey>,
    hsm: SoftHsm,
}

impl Fixture {
    fn new(
        kinds: &[Kind],
        always_authenticate: &[usize],
        pins: Arc<dyn PinSource>,
    ) -> Option<Fixture> {
        let hsm = SoftHsm::new()?;
        hsm.init_token(LABEL);
        let module = hsm.load();
        let slot = module
            .pkcs11()
            .get_slots_with_initialized_token()
            .expect("slots")
            .into_iter()
            .next()
            .expect("the token");
        let keys = {
            let session = module.pkcs11().open_rw_session(slot).expect("rw session");
            session
                .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
                .expect("login");
            let started = Instant::now();
            let keys: Vec<TestKey> = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    let id = u8::try_from(i + 1).expect("few keys");
                    generate(&session, *kind, id, always_authenticate.contains(&i))
                })
                .collect();
            eprintln!("generated {kinds:?} in {:?}", started.elapsed());
            keys
        };
        let found = module
            .scan()
            .expect("scan")
            .into_iter()
            .find(|t| t.token.label == LABEL)
            .expect("the signer token");
        Some(Fixture {
            tokens: Tokens::new(vec![Loaded::Local(module)], pins),
            found,
            keys,
            hsm,
        })
    }

    fn token(&self) -> &Token {
        &self.found.token
    }

    /// Where key `index` lives, with the schemes of the token that fit it.
    fn location(&self, index: usize) -> KeyLocation {
        let key = &self.keys[index];
        let (key_type, curve) = match key.kind {
            Kind::Rsa2048 => (KeyType::Rsa, None),
            Kind::P256 => (KeyType::Ec, Some(Curve::P256)),
            Kind::P384 => (KeyType::Ec, Some(Curve::P384)),
            Kind::P521 => (KeyType::Ec, Some(Curve::P521)),
            Kind::Ed25519 => (KeyType::Ed25519, None),
        };
        KeyLocation {
            id: format!("key-{index}"),
            token: self.found.token.clone(),
            key_id: key.id.clone(),
            key_type,
            curve,
            present: true,
            schemes: self
                .found
                .schemes
                .iter()
                .copied()
                .filter(|s| s.fits(key_type, curve))
                .collect(),
        }
    }

    /// Verifies `signature` of `message` under `scheme` with key `index`,
    /// independently of the agent.
    fn verify(&self, index: usize, scheme: Scheme, message: &[u8], signature: &[u8]) -> bool {
        let (a, b) = &self.keys[index].public;
        let ring_check = |algorithm: &'static dyn ring_sig::VerificationAlgorithm| {
            UnparsedPublicKey::new(algorithm, a)
                .verify(message, signature)
                .is_ok()
        };
        let rsa_check = |params: &'static ring_sig::RsaParameters| {
            ring_sig::RsaPublicKeyComponents { n: a, e: b }
                .verify(params, message, signature)
                .is_ok()
        };
        match scheme {
            Scheme::RsaPkcs1Sha256 => rsa_check(&ring_sig::RSA_PKCS1_2048_8192_SHA256),
            Scheme::RsaPkcs1Sha384 => rsa_check(&ring_sig::RSA_PKCS1_2048_8192_SHA384),
            Scheme::RsaPkcs1Sha512 => rsa_check(&ring_sig::RSA_PKCS1_2048_8192_SHA512),
            Scheme::RsaPssRsaeSha256 => rsa_check(&ring_sig::RSA_PSS_2048_8192_SHA256),
            Scheme::RsaPssRsaeSha384 => rsa_check(&ring_sig::RSA_PSS_2048_8192_SHA384),
            Scheme::RsaPssRsaeSha512 => rsa_check(&ring_sig::RSA_PSS_2048_8192_SHA512),
            Scheme::EcdsaSecp256r1Sha256 => ring_check(&ring_sig::ECDSA_P256_SHA256_ASN1),
            Scheme::EcdsaSecp384r1Sha384 => ring_check(&ring_sig::ECDSA_P384_SHA384_ASN1),
            Scheme::Ed25519 => ring_check(&ring_sig::ED25519),
            Scheme::EcdsaSecp521r1Sha512 => self.openssl_verify_p521(a, message, signature),
            other => panic!("no verifier for {other}"),
        }
    }

    /// `openssl dgst -sha512 -verify` with a P-521 SPKI built from `point`.
    fn openssl_verify_p521(&self, point: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let algorithm = tlv(
            0x30,
            &[
                // id-ecPublicKey, secp521r1
                &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01][..],
                &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23][..],
            ]
            .concat(),
        );
        let bits = tlv(0x03, &[&[0u8][..], point].concat());
        let spki = tlv(0x30, &[algorithm, bits].concat());
        std::fs::write(self.hsm.path("p521-pub.der"), spki).expect("write key");
        std::fs::write(self.hsm.path("p521.sig"), signature).expect("write signature");
        std::fs::write(self.hsm.path("p521.msg"), message).expect("write message");
        let output = Command::new("openssl")
            .args([
                "dgst",
                "-sha512",
                "-keyform",
                "DER",
                "-verify",
                "p521-pub.der",
                "-signature",
                "p521.sig",
                "p521.msg",
            ])
            .current_dir(self.hsm.path(""))
            .output()
            .expect("run openssl");
        output.status.success()
    }
}

/// A DER TLV with a short or one-byte long length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(u8::try_from(n).expect("short")),
        n => {
            out.push(0x81);
            out.push(u8::try_from(n).expect("below 256"));
        }
    }
    out.extend_from_slice(content);
    out
}

const ALL_KINDS: [Kind; 5] = [
    Kind::Rsa2048,
    Kind::P256,
    Kind::P384,
    Kind::P521,
    Kind::Ed25519,
];

#[test]
fn every_scheme_signs_and_verifies_independently() {
    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(&ALL_KINDS, &[], pins.clone()) else {
        return;
    };
    assert_eq!(
        fx.found.schemes,
        Scheme::ALL.to_vec(),
        "SoftHSM offers every scheme"
    );
    let message = b"TLS 1.3, client CertificateVerify\x00 transcript hash stand-in";
    let mut checked = Vec::new();
    for index in 0..fx.keys.len() {
        let location = fx.location(index);
        assert!(!location.schemes.is_empty(), "{:?}", fx.keys[index].kind);
        for &scheme in &location.schemes {
            let signature = fx
                .tokens
                .sign(&location, scheme, message)
                .unwrap_or_else(|err| panic!("{scheme}: {err}"));
            assert!(
                fx.verify(index, scheme, message, &signature),
                "{scheme}: the verifier rejects the signature"
            );
            assert!(
                !fx.verify(index, scheme, b"another message", &signature),
                "{scheme}: the verifier accepts a signature of another message"
            );
            checked.push(scheme);
        }
    }
    checked.sort();
    let mut all = Scheme::ALL.to_vec();
    all.sort();
    assert_eq!(checked, all);
    // One login on demand, kept for every later signature.
    assert_eq!(pins.asked(), 1);
    assert_eq!(pins.requests(), vec![(PinKind::User, None)]);

    // Latency per key type (logged in, key handle known), and the same
    // signature made directly with cryptoki on one session.
    let pkcs11 = fx
        .tokens
        .with_module(0, |m| Ok(m.pkcs11().clone()))
        .expect("module");
    let slot = cryptoki::slot::Slot::try_from(fx.token().slot).expect("slot");
    let direct = pkcs11.open_ro_session(slot).expect("session");
    let mechanisms = super::mechanisms::signing_mechanisms(&pkcs11, slot).expect("mechanisms");
    for index in 0..fx.keys.len() {
        let location = fx.location(index);
        let private = direct
            .find_objects(&[
                Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
                Attribute::Id(location.key_id.clone()),
            ])
            .expect("find")[0];
        for &scheme in &location.schemes {
            let rounds: u32 = if fx.keys[index].kind == Kind::Rsa2048 {
                20
            } else {
                100
            };
            let started = Instant::now();
            for _ in 0..rounds {
                fx.tokens.sign(&location, scheme, message).expect("sign");
            }
            let agent = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
            let plan = super::mechanisms::Plan::choose(scheme, &mechanisms).expect("plan");
            let started = Instant::now();
            for _ in 0..rounds {
                direct
                    .sign(&plan.mechanism(), private, &plan.input(message))
                    .expect("direct sign");
            }
            let raw = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
            eprintln!(
                "{:?} {scheme}: Tokens::sign {agent:.0} µs, direct cryptoki {raw:.0} µs",
                fx.keys[index].kind,
            );
        }
    }
}

#[test]
fn a_scheme_the_key_cannot_make_is_refused_before_the_token() {
    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(&[Kind::P256], &[], pins.clone()) else {
        return;
    };
    let location = fx.location(0);
    assert_eq!(location.schemes, vec![Scheme::EcdsaSecp256r1Sha256]);
    for scheme in [
        Scheme::RsaPkcs1Sha256,
        Scheme::RsaPssRsaeSha256,
        Scheme::EcdsaSecp384r1Sha384,
        Scheme::Ed25519,
    ] {
        let err = fx
            .tokens
            .sign(&location, scheme, b"m")
            .expect_err("refused");
        assert!(
            matches!(err, SignError::UnsupportedScheme { .. }),
            "{err:?}"
        );
    }
    // Even a scheme listed for the key is refused when the key type
    // cannot make it (a store bug must not produce a wrong signature).
    let mut wrong = location.clone();
    wrong.schemes.push(Scheme::RsaPkcs1Sha256);
    let err = fx
        .tokens
        .sign(&wrong, Scheme::RsaPkcs1Sha256, b"m")
        .expect_err("refused");
    assert!(matches!(err, SignError::UnsupportedScheme { .. }), "{err}");
    eprintln!("{err}");
    assert_eq!(pins.asked(), 0, "nothing reached the token");
}

#[test]
fn digests_sign_through_the_raw_mechanisms_and_verify_independently() {
    use p11agent_proto::{DigestMechanism, HashAlgorithm};
    use sha2::Digest as _;

    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(&[Kind::Rsa2048, Kind::P256, Kind::P384], &[], pins.clone()) else {
        return;
    };
    let message = b"a document the client hashed itself";
    let digest = |hash| match hash {
        HashAlgorithm::Sha256 => sha2::Sha256::digest(message).to_vec(),
        HashAlgorithm::Sha384 => sha2::Sha384::digest(message).to_vec(),
        _ => sha2::Sha512::digest(message).to_vec(),
    };

    // Refused before the token: nothing asks for a PIN.
    let short = fx.tokens.sign_digest(
        &fx.location(0),
        DigestMechanism::RsaPkcs1,
        HashAlgorithm::Sha256,
        &digest(HashAlgorithm::Sha384),
    );
    assert!(
        matches!(short, Err(SignError::DigestLength { .. })),
        "{short:?}"
    );
    let wrong_key = fx.tokens.sign_digest(
        &fx.location(1),
        DigestMechanism::RsaPss,
        HashAlgorithm::Sha256,
        &digest(HashAlgorithm::Sha256),
    );
    assert!(
        matches!(wrong_key, Err(SignError::UnsupportedDigest { .. })),
        "{wrong_key:?}"
    );
    assert_eq!(pins.asked(), 0, "nothing reached the token");

    // ring verifies the message under the scheme that hashes it as the
    // client did: the same signature as over the digest.
    let cases = [
        (
            0,
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha256,
            Scheme::RsaPkcs1Sha256,
        ),
        (
            0,
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha384,
            Scheme::RsaPkcs1Sha384,
        ),
        (
            0,
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha512,
            Scheme::RsaPkcs1Sha512,
        ),
        (
            0,
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha256,
            Scheme::RsaPssRsaeSha256,
        ),
        (
            0,
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha384,
            Scheme::RsaPssRsaeSha384,
        ),
        (
            0,
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha512,
            Scheme::RsaPssRsaeSha512,
        ),
        (
            1,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha256,
            Scheme::EcdsaSecp256r1Sha256,
        ),
        (
            2,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha384,
            Scheme::EcdsaSecp384r1Sha384,
        ),
    ];
    for (index, mechanism, hash, scheme) in cases {
        let signature = fx
            .tokens
            .sign_digest(&fx.location(index), mechanism, hash, &digest(hash))
            .unwrap_or_else(|err| panic!("{mechanism:?} {hash:?}: {err}"));
        assert!(
            fx.verify(index, scheme, message, &signature),
            "{mechanism:?} {hash:?}: the verifier rejects the signature"
        );
        assert!(
            !fx.verify(index, scheme, b"another message", &signature),
            "{mechanism:?} {hash:?}: the verifier accepts another message"
        );
    }
    // The same login as for messages: once, on demand.
    assert_eq!(pins.asked(), 1);
}

#[test]
fn a_wrong_pin_is_reported_once_and_never_retried() {
    let pins = CountingPins::new("9999");
    let Some(fx) = Fixture::new(&[Kind::P256], &[], pins.clone()) else {
        return;
    };
    let location = fx.location(0);
    let err = fx
        .tokens
        .sign(&location, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("wrong PIN");
    eprintln!("{err}");
    let SignError::PinIncorrect { warning, .. } = &err else {
        panic!("not PinIncorrect: {err:?}");
    };
    assert!(err.to_string().contains("did not retry"), "{err}");
    assert_eq!(pins.asked(), 1, "asked exactly once");
    // Exactly one failed attempt: SoftHSM now reports "count low", not
    // "final try" or "locked", and the error passed that on.
    let slot = cryptoki::slot::Slot::try_from(fx.token().slot).expect("slot");
    let pkcs11 = fx
        .tokens
        .with_module(0, |m| Ok(m.pkcs11().clone()))
        .expect("module");
    let info = pkcs11.get_token_info(slot).expect("token info");
    assert!(info.user_pin_count_low());
    assert!(!info.user_pin_final_try());
    assert!(!info.user_pin_locked());
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("few tries left")),
        "{warning:?}"
    );

    // The next request asks again, with the warning shown.
    let err = fx
        .tokens
        .sign(&location, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("wrong PIN again");
    assert!(matches!(err, SignError::PinIncorrect { .. }), "{err:?}");
    assert_eq!(pins.asked(), 2);
    assert!(pins.requests()[1].1.is_some(), "{:?}", pins.requests());

    // An explicit login with the right PIN works, and signing then needs
    // no PIN.
    fx.tokens
        .login(fx.token(), Some(SecretString::from(USER_PIN)))
        .expect("login");
    let info = pkcs11.get_token_info(slot).expect("token info");
    assert!(!info.user_pin_count_low(), "a good login resets the count");
    let signature = fx
        .tokens
        .sign(&location, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert!(fx.verify(0, Scheme::EcdsaSecp256r1Sha256, b"m", &signature));
    assert_eq!(pins.asked(), 2);
}

#[test]
fn an_always_authenticate_key_gets_a_context_specific_login_per_signature() {
    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(
        &[Kind::P256, Kind::Ed25519, Kind::P256],
        &[0, 1],
        pins.clone(),
    ) else {
        return;
    };
    for round in 0..2 {
        for (index, scheme) in [(0, Scheme::EcdsaSecp256r1Sha256), (1, Scheme::Ed25519)] {
            let message = format!("round {round}");
            let signature = fx
                .tokens
                .sign(&fx.location(index), scheme, message.as_bytes())
                .unwrap_or_else(|err| panic!("{scheme}: {err}"));
            assert!(fx.verify(index, scheme, message.as_bytes(), &signature));
        }
    }
    // One user login, then one context-specific login per signature.
    let kinds: Vec<PinKind> = pins.requests().into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds[0], PinKind::User);
    assert_eq!(kinds[1..], [PinKind::ContextSpecific; 4]);
    // A key without the attribute signs without a prompt.
    let signature = fx
        .tokens
        .sign(&fx.location(2), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert!(fx.verify(2, Scheme::EcdsaSecp256r1Sha256, b"m", &signature));
    assert_eq!(pins.asked(), 5);

    let started = Instant::now();
    for _ in 0..20 {
        fx.tokens
            .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
            .expect("sign");
    }
    eprintln!(
        "P-256 with CKA_ALWAYS_AUTHENTICATE: {:.0} µs per signature",
        started.elapsed().as_secs_f64() * 1e6 / 20.0
    );
}

#[test]
fn a_wrong_context_specific_pin_is_reported_and_the_login_survives() {
    // The user PIN is right; a PIN source that is right once, then wrong.
    #[derive(Debug, Default)]
    struct RightThenWrong(AtomicUsize);
    impl PinSource for RightThenWrong {
        fn pin(&self, _: &PinRequest<'_>) -> Result<SecretString, PinError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(SecretString::from(if n == 0 { USER_PIN } else { "0000" }))
        }
    }
    let pins = Arc::new(RightThenWrong::default());
    let Some(fx) = Fixture::new(&[Kind::P256, Kind::P256], &[0], pins.clone()) else {
        return;
    };
    let err = fx
        .tokens
        .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("wrong context-specific PIN");
    assert!(matches!(err, SignError::PinIncorrect { .. }), "{err:?}");
    assert_eq!(pins.0.load(Ordering::SeqCst), 2);
    // The user login holds (the failed session was closed, not the
    // anchor), so the other key signs without a PIN.
    fx.tokens
        .sign(&fx.location(1), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert_eq!(pins.0.load(Ordering::SeqCst), 2);
}

#[test]
fn pin_source_outcomes_map_to_their_errors() {
    /// Whether the error is the one the PIN source's answer calls for.
    type Expected = fn(&SignError) -> bool;
    let cases: [(fn() -> PinError, Expected); 3] = [
        (
            || PinError::Unavailable("no PIN source configured".into()),
            |err| matches!(err, SignError::PinRequired { .. }),
        ),
        (
            || PinError::Cancelled,
            |err| matches!(err, SignError::Cancelled { .. }),
        ),
        (
            || PinError::Failed("pinentry crashed".into()),
            |err| matches!(err, SignError::PinSourceFailed { .. }),
        ),
    ];
    for (answer, expected) in cases {
        let pins = CountingPins::answering(Err(answer));
        let Some(fx) = Fixture::new(&[Kind::P256], &[], pins.clone()) else {
            return;
        };
        let err = fx
            .tokens
            .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
            .expect_err("no PIN");
        eprintln!("{err}");
        assert!(expected(&err), "{err:?}");
        assert_eq!(pins.asked(), 1);
    }
}

#[test]
fn login_logout_and_missing_things() {
    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(&[Kind::P256], &[], pins.clone()) else {
        return;
    };
    // Not logged in yet.
    assert!(!fx.tokens.logout(fx.token()).expect("logout"));
    // Login with the PIN source; twice is fine.
    fx.tokens.login(fx.token(), None).expect("login");
    fx.tokens.login(fx.token(), None).expect("login again");
    assert_eq!(pins.asked(), 1);
    fx.tokens
        .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert_eq!(pins.asked(), 1);
    assert!(fx.tokens.logout(fx.token()).expect("logout"));
    assert!(!fx.tokens.logout(fx.token()).expect("logout again"));
    // After logout the next signature asks again.
    fx.tokens
        .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert_eq!(pins.asked(), 2);

    // A key id not on the token.
    let mut missing = fx.location(0);
    missing.key_id = vec![0x77];
    let err = fx
        .tokens
        .sign(&missing, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("no such key");
    assert!(matches!(err, SignError::KeyNotFound { .. }), "{err:?}");
    eprintln!("{err}");

    // Another token's serial in the slot: absent.
    let mut other = fx.location(0);
    other.token.serial = "0000000000000000".into();
    let err = fx
        .tokens
        .sign(&other, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("absent");
    assert!(matches!(err, SignError::TokenAbsent { .. }), "{err:?}");
    eprintln!("{err}");
    // A module that is not loaded: absent.
    let mut other = fx.location(0);
    other.token.module = "/nonexistent/module.so".into();
    let err = fx
        .tokens
        .sign(&other, Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect_err("absent");
    assert!(matches!(err, SignError::TokenAbsent { .. }), "{err:?}");
    assert_eq!(pins.asked(), 2);

    // Forgetting the token (as on removal) closes its sessions, which
    // ends the login: the next signature asks for the PIN again.
    fx.tokens.forget(fx.token());
    fx.tokens
        .sign(&fx.location(0), Scheme::EcdsaSecp256r1Sha256, b"m")
        .expect("sign");
    assert_eq!(pins.asked(), 3);
}

#[test]
fn parallel_signatures_share_one_login_and_a_bounded_pool() {
    let pins = CountingPins::new(USER_PIN);
    let Some(fx) = Fixture::new(&[Kind::P256], &[], pins.clone()) else {
        return;
    };
    let location = fx.location(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (fx, location) = (&fx, &location);
            scope.spawn(move || {
                for i in 0..25 {
                    let message = format!("thread {thread} signature {i}");
                    let signature = fx
                        .tokens
                        .sign(location, Scheme::EcdsaSecp256r1Sha256, message.as_bytes())
                        .expect("sign");
                    assert!(fx.verify(
                        0,
                        Scheme::EcdsaSecp256r1Sha256,
                        message.as_bytes(),
                        &signature
                    ));
                }
            });
        }
    });
    eprintln!(
        "200 P-256 signatures on 8 threads: {:?} ({:.0} µs each, wall clock)",
        started.elapsed(),
        started.elapsed().as_secs_f64() * 1e6 / 200.0
    );
    // Concurrent first signatures waited for one login.
    assert_eq!(pins.asked(), 1);
}

#[test]
fn tokens_owns_modules_and_finalises_them() {
    let Some(hsm) = SoftHsm::new() else { return };
    let module: Module = hsm.load();
    let tokens = Tokens::new(vec![Loaded::Local(module)], CountingPins::new(USER_PIN));
    assert_eq!(tokens.module_count(), 1);
    drop(tokens);
    // Finalised: loading again initialises afresh.
    let module = hsm.load();
    module.finalize().expect("finalize");
}
