//! A token provisioned the way a user or an administrator would, with
//! `softhsm2-util`, `pkcs11-tool` and `openssl`, not with this project's
//! fixtures: the agent must list every certificate on it with the fields
//! openssl reads from the same certificates.

use std::path::Path;
use std::process::Command;

use p11agent_softhsm::SoftHsm;
use p11agent_tests::{describe, Daemon};
use serde_json::Value;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn tool");
    assert!(out.status.success(), "{cmd:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pkcs11_tool(hsm: &SoftHsm, args: &[&str]) -> String {
    run(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(hsm.module_path())
        .args(["--token-label", "foreign", "--login", "--pin", "1111"])
        .args(args)
        .envs(hsm.env()))
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run(Command::new("openssl").current_dir(dir).args(args))
}

/// Generates a key pair on the token and a certificate for its public
/// key signed by the CA in `dir`; stores the certificate under `cert_id`.
fn provision(hsm: &SoftHsm, dir: &Path, name: &str, key_type: &str, key_id: &str, cert_id: &str) {
    pkcs11_tool(
        hsm,
        &[
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            key_id,
            "--label",
            name,
        ],
    );
    let pub_der = format!("{name}.pub.der");
    pkcs11_tool(
        hsm,
        &[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            key_id,
            "-o",
            &dir.join(&pub_der).to_string_lossy(),
        ],
    );
    openssl(
        dir,
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            &pub_der,
            "-out",
            &format!("{name}.pub.pem"),
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,emailProtection\n",
    )
    .expect("ext file");
    openssl(
        dir,
        &[
            "x509",
            "-new",
            "-subj",
            &format!("/C=DE/O=Elsewhere GmbH/CN={name}"),
            "-force_pubkey",
            &format!("{name}.pub.pem"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    pkcs11_tool(
        hsm,
        &[
            "--write-object",
            &dir.join(format!("{name}.der")).to_string_lossy(),
            "--type",
            "cert",
            "--id",
            cert_id,
            "--label",
            name,
        ],
    );
}

/// What openssl says about a DER certificate: (subject, issuer, serial).
fn openssl_view(dir: &Path, der: &str) -> (String, String, String) {
    let text = openssl(
        dir,
        &[
            "x509", "-inform", "DER", "-in", der, "-noout", "-subject", "-issuer", "-serial",
            "-nameopt", "RFC2253",
        ],
    );
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("openssl field")
            .trim()
            .to_owned()
    };
    (
        field("subject="),
        field("issuer="),
        field("serial=").to_lowercase(),
    )
}

#[test]
fn lists_every_certificate_of_a_hand_provisioned_token() {
    let hsm = SoftHsm::new().expect("softhsm");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run(Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "foreign",
            "--pin",
            "1111",
            "--so-pin",
            "22222222",
        ])
        .envs(hsm.env()));
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/O=Elsewhere GmbH/CN=Elsewhere Root CA",
            "-days",
            "60",
        ],
    );
    openssl(
        d,
        &["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"],
    );

    // Key and certificate share an id, as pkcs11-tool users usually do it.
    provision(&hsm, d, "Foreign EC", "EC:prime256v1", "0a", "0a");
    // The certificate's id differs from its key's: pairs by public key.
    provision(&hsm, d, "Foreign RSA", "rsa:2048", "0b", "0c");
    // The CA certificate, with no key.
    pkcs11_tool(
        &hsm,
        &[
            "--write-object",
            &d.join("ca.der").to_string_lossy(),
            "--type",
            "cert",
            "--id",
            "ff",
            "--label",
            "root",
        ],
    );

    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let json = daemon.cli_json(&["list", "--json"]);
    let identities = json["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 3, "{json:#}");

    let find = |subject: &str| -> &Value {
        identities
            .iter()
            .find(|i| i["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject} not listed: {json:#}"))
    };
    for (name, der, key_type, bits, curve) in [
        (
            "Foreign EC",
            "Foreign EC.der",
            "ec",
            256,
            Value::from("P-256"),
        ),
        ("Foreign RSA", "Foreign RSA.der", "rsa", 2048, Value::Null),
    ] {
        let (subject, issuer, serial) = openssl_view(d, der);
        let i = find(&subject);
        assert_eq!(subject, format!("CN={name},O=Elsewhere GmbH,C=DE"));
        assert_eq!(i["issuer"], issuer.as_str());
        assert_eq!(i["serial"], serial.as_str());
        assert_eq!(i["key_type"], key_type);
        assert_eq!(i["key_bits"], bits);
        assert_eq!(i["curve"], curve);
        assert_eq!(i["key_usage"], serde_json::json!(["digitalSignature"]));
        assert_eq!(
            i["extended_key_usage"],
            serde_json::json!(["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4"])
        );
        assert_eq!(i["has_private_key"], true, "{name}: {i:#}");
        assert_eq!(i["client_auth"]["usable"], true, "{name}: {i:#}");
        assert_eq!(i["token"]["label"], "foreign");
        let key_uri = i["key_uri"].as_str().expect("key uri");
        assert!(
            key_uri.starts_with("pkcs11:") && key_uri.contains("type=private"),
            "{key_uri}"
        );
        assert!(i["cert_uri"]
            .as_str()
            .is_some_and(|u| u.contains("type=cert")));
    }
    // The RSA key carries id 0b although its certificate says 0c.
    assert!(find("CN=Foreign RSA,O=Elsewhere GmbH,C=DE")["key_uri"]
        .as_str()
        .is_some_and(|u| u.contains("id=%0B") || u.contains("id=%0b")));

    let (subject, _, _) = openssl_view(d, "ca.der");
    let root = find(&subject);
    assert_eq!(root["has_private_key"], false);
    assert_eq!(
        root["client_auth"]["reasons"],
        serde_json::json!(["no_private_key"])
    );
}
