//! The `p11agent-softhsm` command line.

use std::path::Path;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p11agent-softhsm"))
        .args(args)
        .env("SOFTHSM2_CONF", "/nonexistent/must-not-be-used.conf")
        .output()
        .expect("run p11agent-softhsm")
}

fn ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("JSON output")
}

#[test]
fn demo_provisions_once_and_then_reuses() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("hsm");
    let d = dir.to_str().expect("utf8");

    let first = json(&["demo", "--dir", d, "--json"]);
    assert_eq!(first["token"]["label"], "p11agent-demo");
    assert_eq!(first["token"]["user_pin"], "123456");
    assert_eq!(first["reused"], false);
    assert!(Path::new(first["module"].as_str().expect("module")).is_file());
    let conf = first["conf"].as_str().expect("conf");
    assert_eq!(first["env"]["SOFTHSM2_CONF"], conf);
    assert!(conf.ends_with("hsm/softhsm2.conf"));
    for f in ["ca.pem", "intermediate.pem", "demo.json"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let subjects: Vec<&str> = first["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|i| i["subject"].as_str().expect("subject"))
        .collect();
    assert_eq!(
        subjects,
        [
            "CN=Demo RSA User,O=p11agent demo",
            "CN=Demo EC User,O=p11agent demo",
            "CN=Demo Certificate Without Key,O=p11agent demo",
            "CN=p11agent Test Intermediate CA",
        ]
    );
    assert_eq!(first["identities"][0]["key"], "rsa2048");
    assert_eq!(first["identities"][2]["has_private_key"], false);

    // Second run: same token, same report, marked reused; plain output too.
    let second = json(&["demo", "--dir", d, "--json"]);
    assert_eq!(second["reused"], true);
    assert_eq!(second["token"], first["token"]);
    assert_eq!(second["identities"], first["identities"]);
    let text = ok(&["demo", "--dir", d]);
    assert!(text.contains("Demo EC User"), "{text}");
    assert!(text.contains("SOFTHSM2_CONF"), "{text}");

    // The shell script's way of reading the module path.
    let raw = ok(&["demo", "--dir", d, "--json"]);
    assert!(raw
        .lines()
        .any(|l| l.trim_start().starts_with("\"module\": \"/")));

    let listed = json(&["list", "--dir", d, "--json"]);
    assert_eq!(
        listed[0]["certificates"].as_array().expect("certs").len(),
        4
    );
    assert!(ok(&["env", "--dir", d]).contains("export SOFTHSM2_CONF="));
}

#[test]
fn tokens_and_identities_by_hand() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().to_str().expect("utf8");

    let token = json(&[
        "token", "--dir", d, "--label", "alice", "--pin", "4321", "--json",
    ]);
    assert_eq!(token["token"]["label"], "alice");
    // A second token with the same label is refused.
    let dup = cli(&["token", "--dir", d, "--label", "alice"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let id = json(&[
        "identity",
        "--dir",
        d,
        "--token",
        "alice",
        "--pin",
        "4321",
        "--cn",
        "Zoë 測試",
        "--org",
        "Example",
        "--key",
        "ed25519",
        "--json",
    ]);
    assert_eq!(id["subject"], "CN=Zoë 測試,O=Example");
    assert_eq!(id["algorithm"], "ed25519");
    assert_eq!(id["key_id"], id["cert_id"]);
    assert!(
        tmp.path().join("ca.pem").is_file(),
        "PKI created on first use"
    );

    let odd = json(&[
        "identity",
        "--dir",
        d,
        "--token",
        "alice",
        "--pin",
        "4321",
        "--cn",
        "Odd",
        "--expired",
        "--eku",
        "server-auth",
        "--ku",
        "key-encipherment",
        "--issuer",
        "root",
        "--serial",
        "0a0b0c",
        "--mismatched-id",
        "--json",
    ]);
    assert_eq!(odd["issuer"], "CN=p11agent Test Root CA");
    assert_eq!(odd["serial"], "0a0b0c");
    assert_ne!(odd["key_id"], odd["cert_id"]);
    let pem = odd["pem"].as_str().expect("pem");
    let der = p11agent_softhsm::pem_decode_all("CERTIFICATE", pem).expect("pem")[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("cert");
    assert!(!cert.validity().is_valid());
    assert!(
        cert.extended_key_usage()
            .expect("eku")
            .expect("some")
            .value
            .server_auth
    );

    let keyless = json(&[
        "identity", "--dir", d, "--token", "alice", "--pin", "4321", "--cn", "Bare", "--no-key",
        "--eku", "none", "--ku", "none", "--json",
    ]);
    assert_eq!(keyless["key_id"], serde_json::Value::Null);

    ok(&["ca-certs", "--dir", d, "--token", "alice", "--pin", "4321"]);
    let listed = json(&["list", "--dir", d, "--json"]);
    assert_eq!(
        listed[0]["certificates"].as_array().expect("certs").len(),
        5
    );

    // Errors say what to do.
    let wrong_pin = cli(&["identity", "--dir", d, "--token", "alice", "--cn", "x"]);
    assert!(!wrong_pin.status.success());
    let missing = cli(&["identity", "--dir", d, "--token", "bob", "--cn", "x"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no token labelled \"bob\""));
    let bad_key = cli(&[
        "identity", "--dir", d, "--token", "alice", "--cn", "x", "--key", "dsa",
    ]);
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("rsa2048"));
}

#[test]
fn help_explains_the_commands() {
    let help = ok(&["--help"]);
    for word in ["demo", "token", "identity", "SOFTHSM2_CONF", "pkcs11-tool"] {
        assert!(help.contains(word), "{word} in {help}");
    }
    let identity = ok(&["identity", "--help"]);
    for word in [
        "--key",
        "ed25519",
        "--expired",
        "--no-key",
        "--mismatched-id",
        "client-auth",
    ] {
        assert!(identity.contains(word), "{word} in {identity}");
    }
}

#[test]
fn the_module_can_be_overridden() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().to_str().expect("utf8");
    let run = |module: &str| {
        Command::new(env!("CARGO_BIN_EXE_p11agent-softhsm"))
            .args(["demo", "--dir", d, "--json"])
            .env("P11AGENT_SOFTHSM_MODULE", module)
            .output()
            .expect("run")
    };
    let missing = run("/nonexistent/libsofthsm2.so");
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("P11AGENT_SOFTHSM_MODULE"), "{stderr}");

    let real = p11agent_softhsm::module_path().expect("module");
    let real = real.canonicalize().expect("canonical");
    let out = run(real.to_str().expect("utf8"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["module"], real.to_str().expect("utf8"));
}
