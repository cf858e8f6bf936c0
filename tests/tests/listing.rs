//! Provisioned identities come back from `p11agent list --json` exactly
//! as provisioned, across two tokens; each client-auth reason code is
//! produced by a certificate built to trigger exactly it.

use p11agent_softhsm::{Eku, KeyAlg, KeyUsage, LeafSpec, Pki, SoftHsm};
use p11agent_tests::Daemon;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("whole seconds")
}

struct Expect {
    spec: LeafSpec,
    subject: &'static str,
    issuer: &'static str,
    key_type: &'static str,
    key_bits: u32,
    curve: Value,
    key_usage: Value,
    eku: Value,
    reasons: Value,
}

#[test]
fn identities_across_two_tokens_match_what_was_provisioned() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::with_intermediate("Listing Root CA", "Listing Issuing CA").expect("pki");
    let a = hsm
        .create_token("alpha", "1234", "12345678")
        .expect("token alpha");
    let b = hsm
        .create_token("beta", "5678", "87654321")
        .expect("token beta");

    let now = at(OffsetDateTime::now_utc());
    let (nb, na) = (now - Duration::days(1), now + Duration::days(365));
    let root = "CN=Listing Root CA";
    let inter = "CN=Listing Issuing CA";
    let client_auth = json!(["1.3.6.1.5.5.7.3.2"]);
    let ds = json!(["digitalSignature"]);
    let base = |cn: &str| LeafSpec::new(cn).validity(nb, na);

    let on_alpha = vec![
        Expect {
            spec: base("RSA 2048 User")
                .key(KeyAlg::Rsa2048)
                .serial([0x01, 0x23, 0x45]),
            subject: "CN=RSA 2048 User",
            issuer: root,
            key_type: "rsa",
            key_bits: 2048,
            curve: Value::Null,
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!([]),
        },
        Expect {
            spec: base("RSA 3072 User")
                .key(KeyAlg::Rsa3072)
                .issued_by_intermediate(),
            subject: "CN=RSA 3072 User",
            issuer: inter,
            key_type: "rsa",
            key_bits: 3072,
            curve: Value::Null,
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!([]),
        },
        Expect {
            spec: base("P-256 User")
                .key(KeyAlg::EcP256)
                .issued_by_intermediate(),
            subject: "CN=P-256 User",
            issuer: inter,
            key_type: "ec",
            key_bits: 256,
            curve: json!("P-256"),
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!([]),
        },
        Expect {
            spec: base("P-384 User")
                .key(KeyAlg::EcP384)
                .key_usage(KeyUsage::Absent),
            subject: "CN=P-384 User",
            issuer: root,
            key_type: "ec",
            key_bits: 384,
            curve: json!("P-384"),
            key_usage: Value::Null,
            eku: client_auth.clone(),
            reasons: json!([]),
        },
        Expect {
            spec: base("P-521 User").key(KeyAlg::EcP521).eku(Eku::Absent),
            subject: "CN=P-521 User",
            issuer: root,
            key_type: "ec",
            key_bits: 521,
            curve: json!("P-521"),
            key_usage: ds.clone(),
            eku: Value::Null,
            reasons: json!([]),
        },
        Expect {
            spec: base("Zoë Ærøskøbing 測試")
                .key(KeyAlg::Ed25519)
                .organization("Ünïcödé, Inc."),
            subject: "CN=Zoë Ærøskøbing 測試,O=Ünïcödé\\, Inc.",
            issuer: root,
            key_type: "ed25519",
            key_bits: 256,
            curve: Value::Null,
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!([]),
        },
    ];
    // Each of these is built to trigger exactly one reason code.
    let on_beta = vec![
        Expect {
            spec: LeafSpec::new("Expired User")
                .validity(now - Duration::days(30), now - Duration::days(1)),
            subject: "CN=Expired User",
            issuer: root,
            key_type: "ec",
            key_bits: 256,
            curve: json!("P-256"),
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!(["expired"]),
        },
        Expect {
            spec: LeafSpec::new("Future User")
                .validity(now + Duration::days(1), now + Duration::days(30)),
            subject: "CN=Future User",
            issuer: root,
            key_type: "ec",
            key_bits: 256,
            curve: json!("P-256"),
            key_usage: ds.clone(),
            eku: client_auth.clone(),
            reasons: json!(["not_yet_valid"]),
        },
        Expect {
            spec: base("Encipher Only User").key_usage(KeyUsage::KeyEnciphermentOnly),
            subject: "CN=Encipher Only User",
            issuer: root,
            key_type: "ec",
            key_bits: 256,
            curve: json!("P-256"),
            key_usage: json!(["keyEncipherment"]),
            eku: client_auth.clone(),
            reasons: json!(["key_usage"]),
        },
        Expect {
            spec: base("Server Only User").eku(Eku::ServerAuthOnly),
            subject: "CN=Server Only User",
            issuer: root,
            key_type: "ec",
            key_bits: 256,
            curve: json!("P-256"),
            key_usage: ds.clone(),
            eku: json!(["1.3.6.1.5.5.7.3.1"]),
            reasons: json!(["extended_key_usage"]),
        },
    ];

    for e in &on_alpha {
        a.add_identity(&pki, &e.spec).expect("provision on alpha");
    }
    for e in &on_beta {
        b.add_identity(&pki, &e.spec).expect("provision on beta");
    }
    let keyless = base("Keyless User");
    b.add_certificate_without_key(&pki, &keyless)
        .expect("keyless");
    let mismatched = base("Mismatched Id User");
    b.add_identity_with_mismatched_id(&pki, &mismatched)
        .expect("mismatched");
    b.add_ca_certificates(&pki).expect("CA certificates");

    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let json = daemon.cli_json(&["list", "--json"]);
    let identities = json["identities"].as_array().expect("identities");
    let find = |subject: &str| -> &Value {
        identities
            .iter()
            .find(|i| i["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject} not listed in {json:#}"))
    };
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).expect("format");

    for (label, expected) in [("alpha", &on_alpha), ("beta", &on_beta)] {
        for e in expected {
            let i = find(e.subject);
            let ctx = format!("{}: {i:#}", e.subject);
            assert_eq!(i["issuer"], e.issuer, "{ctx}");
            assert_eq!(i["key_type"], e.key_type, "{ctx}");
            assert_eq!(i["key_bits"], e.key_bits, "{ctx}");
            assert_eq!(i["curve"], e.curve, "{ctx}");
            assert_eq!(i["key_usage"], e.key_usage, "{ctx}");
            assert_eq!(i["extended_key_usage"], e.eku, "{ctx}");
            assert_eq!(i["has_private_key"], true, "{ctx}");
            assert_eq!(i["token"]["label"], label, "{ctx}");
            assert_eq!(i["client_auth"]["reasons"], e.reasons, "{ctx}");
            assert_eq!(i["client_auth"]["usable"], e.reasons == json!([]), "{ctx}");
            let (nb, na) = e.spec.validity_range();
            assert_eq!(i["not_before"], rfc3339(nb), "{ctx}");
            assert_eq!(i["not_after"], rfc3339(na), "{ctx}");
            assert!(
                i["key_uri"]
                    .as_str()
                    .is_some_and(|u| u.contains("type=private")),
                "{ctx}"
            );
            assert_eq!(i["id"].as_str().map(str::len), Some(64), "{ctx}");
        }
    }
    assert_eq!(find("CN=RSA 2048 User")["serial"], "012345");

    let keyless = find("CN=Keyless User");
    assert_eq!(keyless["has_private_key"], false);
    assert_eq!(keyless["key_uri"], Value::Null);
    assert_eq!(
        keyless["client_auth"],
        json!({"usable": false, "reasons": ["no_private_key"]})
    );

    let mismatched = find("CN=Mismatched Id User");
    assert_eq!(
        mismatched["has_private_key"], true,
        "paired by public key: {mismatched:#}"
    );
    assert_eq!(mismatched["client_auth"]["usable"], true);

    for ca in [root, inter] {
        let i = find(ca);
        assert_eq!(i["has_private_key"], false);
        assert!(i["client_auth"]["reasons"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("no_private_key"))));
    }

    let total = on_alpha.len() + on_beta.len() + 4;
    assert_eq!(identities.len(), total, "{json:#}");
    let tokens = daemon.cli_json(&["tokens", "--json"]);
    let count = |label: &str, field: &str| {
        tokens["tokens"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["label"] == label))
            .map(|t| t[field].clone())
    };
    assert_eq!(count("alpha", "certificates"), Some(json!(6)));
    assert_eq!(count("alpha", "keys"), Some(json!(6)));
    assert_eq!(count("beta", "certificates"), Some(json!(8)));
    assert_eq!(count("beta", "keys"), Some(json!(5)));

    // Filters reach the same records through the client library.
    let mut client = daemon.client();
    let on_alpha_ec = client
        .list(&p11agent_proto::Filter {
            token: Some("alpha".into()),
            key_type: Some(p11agent_proto::KeyType::Ec),
            ..Default::default()
        })
        .expect("filtered list");
    let mut subjects: Vec<_> = on_alpha_ec.iter().map(|i| i.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["CN=P-256 User", "CN=P-384 User", "CN=P-521 User"]
    );
    let unusable = client
        .list(&p11agent_proto::Filter {
            client_auth: Some(false),
            token: Some("beta".into()),
            ..Default::default()
        })
        .expect("unusable");
    assert_eq!(unusable.len(), 7);
}

#[test]
fn a_token_with_a_thousand_certificates_is_fully_listed() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Scale Root").expect("pki");
    let token = hsm
        .create_token("thousand", "1234", "12345678")
        .expect("token");
    token.add_many(&pki, 1000).expect("1000 identities");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let identities = daemon.client().list(&Default::default()).expect("list");
    assert_eq!(identities.len(), 1000);
    let mut ids: Vec<_> = identities.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "distinct certificates");
    assert!(identities
        .iter()
        .all(|i| i.has_private_key && i.client_auth.usable));
    let status = daemon.client().status().expect("status");
    assert_eq!(status.identities, 1000);
}
