//! The exact bytes on the wire: one frame per request and per response
//! kind, length prefix and JSON body, as this crate writes them. The
//! protocol is a contract with clients in other languages (the crate
//! README), so any change to the encoding, even one that serde would
//! still read back, must fail here first and be made on purpose.

use p11agent_proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{
    Basis, ChooserMode, ClientAuth, Curve, Decision, DigestMechanism, ErrorCode, Event, EventKind,
    Excluded, Filter, HashAlgorithm, Identity, KeyType, ModuleError, Pin, Reason, RememberedChoice,
    Request, Response, Scheme, Selection, Status, Token, TokenStatus, TokenSummary,
};

/// The JSON of [`token`], as a literal so that bodies can be spelled out
/// with `concat!`.
macro_rules! token_json {
    () => {
        r#"{"label":"card","serial":"0123","manufacturer":"SoftHSM project","model":"SoftHSM v2","slot":7,"module":"/usr/lib/softhsm/libsofthsm2.so"}"#
    };
}

/// The JSON of [`identity`].
macro_rules! identity_json {
    () => {
        concat!(
            r#"{"id":"3f2a9c1b","subject":"CN=Alice","issuer":"CN=Root","serial":"01","#,
            r#""not_before":"2025-01-01T00:00:00Z","not_after":"2027-01-01T00:00:00Z","#,
            r#""key_type":"ec","key_bits":256,"curve":"P-256","key_usage":["digitalSignature"],"#,
            r#""extended_key_usage":null,"has_private_key":true,"token":"#,
            token_json!(),
            r#","cert_uri":"pkcs11:object=a;type=cert","key_uri":"pkcs11:object=a;type=private","#,
            r#""client_auth":{"usable":false,"reasons":["expired"]},"#,
            r#""schemes":["ecdsa_secp256r1_sha256"],"present":true}"#
        )
    };
}

/// The JSON of [`choice`].
macro_rules! choice_json {
    () => {
        r#"{"origin":"https://a.example:443","id":"3f2a9c1b","decided_at":"2026-01-02T03:04:05Z","persistent":false}"#
    };
}

fn token() -> Token {
    Token {
        label: "card".into(),
        serial: "0123".into(),
        manufacturer: "SoftHSM project".into(),
        model: "SoftHSM v2".into(),
        slot: 7,
        module: "/usr/lib/softhsm/libsofthsm2.so".into(),
    }
}

fn identity() -> Identity {
    Identity {
        id: "3f2a9c1b".into(),
        subject: "CN=Alice".into(),
        issuer: "CN=Root".into(),
        serial: "01".into(),
        not_before: "2025-01-01T00:00:00Z".into(),
        not_after: "2027-01-01T00:00:00Z".into(),
        key_type: KeyType::Ec,
        key_bits: 256,
        curve: Some(Curve::P256),
        key_usage: Some(vec!["digitalSignature".into()]),
        extended_key_usage: None,
        has_private_key: true,
        token: token(),
        cert_uri: "pkcs11:object=a;type=cert".into(),
        key_uri: Some("pkcs11:object=a;type=private".into()),
        client_auth: ClientAuth::from_reasons(vec![Reason::Expired]),
        schemes: vec![Scheme::EcdsaSecp256r1Sha256],
        present: true,
    }
}

fn choice() -> RememberedChoice {
    RememberedChoice {
        origin: "https://a.example:443".into(),
        id: Some("3f2a9c1b".into()),
        subject: None,
        decided_at: "2026-01-02T03:04:05Z".into(),
        persistent: false,
    }
}

/// Checks that `bytes` is the frame `prefix` (hex) then `body`.
fn assert_wire(bytes: &[u8], prefix: &str, body: &str) {
    let want_prefix = hex::decode(prefix).expect("hex prefix");
    assert_eq!(hex::encode(&bytes[..4]), prefix, "length prefix of {body}");
    assert_eq!(
        String::from_utf8_lossy(&bytes[4..]),
        body,
        "body after {prefix}"
    );
    assert_eq!(
        u32::from_be_bytes([
            want_prefix[0],
            want_prefix[1],
            want_prefix[2],
            want_prefix[3]
        ]) as usize,
        body.len(),
        "the pinned prefix is the pinned body's length"
    );
}

/// Checks the exact frame of `request`, and that the frame reads back.
fn pin_request(request: Request, prefix: &str, body: &str) {
    let bytes = frame::encode(&request, MAX_REQUEST_FRAME).expect("encode");
    assert_wire(&bytes, prefix, body);
    let back: Request = frame::read(&mut &bytes[..], MAX_REQUEST_FRAME).expect("decode");
    assert_eq!(back, request);
}

/// Checks the exact frame of `response`, and that the frame reads back.
fn pin_response(response: Response, prefix: &str, body: &str) {
    let bytes = frame::encode(&response, MAX_RESPONSE_FRAME).expect("encode");
    assert_wire(&bytes, prefix, body);
    let back: Response = frame::read(&mut &bytes[..], MAX_RESPONSE_FRAME).expect("decode");
    assert_eq!(back, response);
}

#[test]
fn every_request_on_the_wire() {
    let mut ops = Vec::new();
    let mut pin = |request: Request, prefix: &str, body: &str| {
        ops.push(request.op());
        pin_request(request, prefix, body);
    };
    pin(
        Request::Hello {
            version: 1,
            client: Some("t 1".into()),
        },
        "00000029",
        r#"{"op":"hello","version":1,"client":"t 1"}"#,
    );
    pin(Request::Status, "0000000f", r#"{"op":"status"}"#);
    pin(Request::Tokens, "0000000f", r#"{"op":"tokens"}"#);
    pin(
        Request::List {
            filter: Filter {
                subject: Some("Alice".into()),
                has_key: Some(true),
                ..Filter::default()
            },
        },
        "00000039",
        r#"{"op":"list","filter":{"subject":"Alice","has_key":true}}"#,
    );
    pin(
        Request::Show {
            id: "3f2a9c1b".into(),
        },
        "0000001d",
        r#"{"op":"show","id":"3f2a9c1b"}"#,
    );
    pin(
        Request::Sign {
            id: "3f2a9c1b".into(),
            scheme: Scheme::Ed25519,
            message: "AAE=".into(),
        },
        "00000041",
        r#"{"op":"sign","id":"3f2a9c1b","scheme":"ed25519","message":"AAE="}"#,
    );
    pin(
        Request::SignDigest {
            id: "3f2a9c1b".into(),
            mechanism: DigestMechanism::Ecdsa,
            hash: HashAlgorithm::Sha256,
            digest: "AAE=".into(),
        },
        "00000058",
        r#"{"op":"sign_digest","id":"3f2a9c1b","mechanism":"ecdsa","hash":"sha256","digest":"AAE="}"#,
    );
    pin(
        Request::Login {
            token: Some("card".into()),
            pin: Some(Pin::new("1234".into())),
        },
        "0000002a",
        r#"{"op":"login","token":"card","pin":"1234"}"#,
    );
    pin(
        Request::Logout { token: None },
        "0000000f",
        r#"{"op":"logout"}"#,
    );
    pin(
        Request::Select {
            origin: "https://a.example:443".into(),
            ca_names: vec!["MAA=".into()],
            schemes: Some(vec![Scheme::RsaPssRsaeSha256]),
            chooser: ChooserMode::Client,
            id: None,
            explain: false,
        },
        "00000089",
        concat!(
            r#"{"op":"select","origin":"https://a.example:443","ca_names":["MAA="],"#,
            r#""schemes":["rsa_pss_rsae_sha256"],"chooser":"client","explain":false}"#
        ),
    );
    pin(
        Request::Choose {
            origin: "https://a.example:443".into(),
            id: None,
            remember: true,
        },
        "0000004a",
        r#"{"op":"choose","origin":"https://a.example:443","id":null,"remember":true}"#,
    );
    pin(Request::Decisions, "00000012", r#"{"op":"decisions"}"#);
    pin(
        Request::Forget {
            origin: Some("https://a.example:443".into()),
        },
        "00000030",
        r#"{"op":"forget","origin":"https://a.example:443"}"#,
    );
    pin(Request::Watch, "0000000e", r#"{"op":"watch"}"#);
    assert_eq!(ops, Request::OPS, "one request of every kind, in order");
}

#[test]
fn every_response_on_the_wire() {
    pin_response(
        Response::Hello {
            version: 1,
            agent: "p11agent 0.1.0".into(),
        },
        "00000035",
        r#"{"type":"hello","version":1,"agent":"p11agent 0.1.0"}"#,
    );
    pin_response(
        Response::Status(Status {
            agent: "p11agent 0.1.0".into(),
            protocol_version: 1,
            socket: "/run/a.sock".into(),
            modules: vec!["/m.so".into()],
            isolated_modules: Vec::new(),
            module_errors: vec![ModuleError {
                module: "/x.so".into(),
                error: "gone".into(),
            }],
            tokens: 1,
            identities: 2,
            uptime_seconds: 3,
        }),
        "000000cb",
        concat!(
            r#"{"type":"status","agent":"p11agent 0.1.0","protocol_version":1,"#,
            r#""socket":"/run/a.sock","modules":["/m.so"],"#,
            r#""module_errors":[{"module":"/x.so","error":"gone"}],"#,
            r#""tokens":1,"identities":2,"uptime_seconds":3}"#
        ),
    );
    pin_response(
        Response::Tokens {
            tokens: vec![TokenSummary {
                token: token(),
                certificates: 2,
                keys: 1,
                status: TokenStatus::Absent,
            }],
        },
        "000000d3",
        concat!(
            r#"{"type":"tokens","tokens":[{"label":"card","serial":"0123","#,
            r#""manufacturer":"SoftHSM project","model":"SoftHSM v2","slot":7,"#,
            r#""module":"/usr/lib/softhsm/libsofthsm2.so","#,
            r#""certificates":2,"keys":1,"status":"absent"}]}"#
        ),
    );
    pin_response(
        Response::Identities {
            identities: vec![identity()],
        },
        "00000280",
        concat!(
            r#"{"type":"identities","identities":["#,
            identity_json!(),
            "]}"
        ),
    );
    pin_response(
        Response::Identity {
            identity: Box::new(identity()),
            certificate: "MAA=".into(),
            chain: Vec::new(),
        },
        "0000028f",
        concat!(
            r#"{"type":"identity","identity":"#,
            identity_json!(),
            r#","certificate":"MAA="}"#
        ),
    );
    pin_response(
        Response::Identity {
            identity: Box::new(identity()),
            certificate: "MAA=".into(),
            chain: vec!["MAE=".into()],
        },
        "000002a0",
        concat!(
            r#"{"type":"identity","identity":"#,
            identity_json!(),
            r#","certificate":"MAA=","chain":["MAE="]}"#
        ),
    );
    pin_response(
        Response::Signature {
            signature: "AAE=".into(),
        },
        "00000027",
        r#"{"type":"signature","signature":"AAE="}"#,
    );
    pin_response(
        Response::LoggedIn { token: token() },
        "000000a7",
        concat!(r#"{"type":"logged_in","token":"#, token_json!(), "}"),
    );
    pin_response(
        Response::LoggedOut {
            tokens: vec![token()],
        },
        "000000ab",
        concat!(r#"{"type":"logged_out","tokens":["#, token_json!(), "]}"),
    );
    pin_response(
        Response::Selection(Box::new(Selection {
            origin: "https://a.example:443".into(),
            decision: Decision::Selected,
            basis: Basis::Rule,
            rule: Some(0),
            identity: Some(identity()),
            chain: vec!["MAA=".into()],
            candidates: vec![],
            choices: vec!["3f2a9c1b".into()],
            excluded: vec![Excluded {
                id: "99".into(),
                subject: "CN=Bob".into(),
                issuer: "CN=Root".into(),
                reasons: vec![Reason::NoPrivateKey, Reason::IssuerNotAccepted],
            }],
        })),
        "00000374",
        concat!(
            r#"{"type":"selection","origin":"https://a.example:443","decision":"selected","#,
            r#""basis":"rule","rule":0,"identity":"#,
            identity_json!(),
            r#","chain":["MAA="],"candidates":[],"choices":["3f2a9c1b"],"#,
            r#""excluded":[{"id":"99","subject":"CN=Bob","issuer":"CN=Root","#,
            r#""reasons":["no_private_key","issuer_not_accepted"]}]}"#
        ),
    );
    pin_response(
        Response::Chosen {
            remembered: Some(choice()),
        },
        "00000088",
        concat!(r#"{"type":"chosen","remembered":"#, choice_json!(), "}"),
    );
    pin_response(
        Response::Decisions {
            decisions: vec![choice()],
        },
        "0000008c",
        concat!(r#"{"type":"decisions","decisions":["#, choice_json!(), "]}"),
    );
    pin_response(
        Response::Forgotten {
            origins: vec!["https://a.example:443".into()],
        },
        "00000038",
        r#"{"type":"forgotten","origins":["https://a.example:443"]}"#,
    );
    pin_response(Response::Watching, "00000013", r#"{"type":"watching"}"#);
    pin_response(
        Response::Event(
            Event::new(EventKind::IdentityAdded, "2026-01-02T03:04:05Z")
                .token(token())
                .identity("3f2a9c1b", "CN=Alice")
                .detail("d"),
        ),
        "0000010c",
        concat!(
            r#"{"type":"event","event":"identity_added","token":"#,
            token_json!(),
            r#","id":"3f2a9c1b","subject":"CN=Alice","detail":"d","#,
            r#""time":"2026-01-02T03:04:05Z"}"#
        ),
    );
    pin_response(
        Response::error(ErrorCode::PinIncorrect, "wrong PIN"),
        "0000003d",
        r#"{"type":"error","code":"pin_incorrect","message":"wrong PIN"}"#,
    );
}
