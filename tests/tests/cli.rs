//! The command line's human output and `--json` for status, tokens, list
//! and show, and its message when no agent is running.

use p11agent_softhsm::{LeafSpec, Pki, SoftHsm};
use p11agent_tests::{describe, run_cli, Daemon};

struct Fixture {
    _hsm: SoftHsm,
    daemon: Daemon,
    root_cn: String,
}

fn fixture() -> Fixture {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("CLI Test Root").expect("pki");
    let token = hsm
        .create_token("cli-token", "1234", "12345678")
        .expect("token");
    token
        .add_identity(&pki, &LeafSpec::new("Alice Cli"))
        .expect("identity");
    token
        .add_certificate_without_key(&pki, &LeafSpec::new("Keyless Bob"))
        .expect("keyless");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    Fixture {
        _hsm: hsm,
        daemon,
        root_cn: "CLI Test Root".into(),
    }
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn list_tokens_show_and_status_in_both_forms() {
    let f = fixture();
    let d = &f.daemon;

    let table = stdout(&d.cli(&["list"]));
    let header = table.lines().next().expect("header");
    for column in [
        "ID",
        "SUBJECT",
        "ISSUER",
        "KEY",
        "PRIVATE KEY",
        "TOKEN",
        "CLIENT AUTH",
    ] {
        assert!(header.contains(column), "missing column {column}: {header}");
    }
    let alice = table
        .lines()
        .find(|l| l.contains("CN=Alice Cli"))
        .expect("alice row");
    assert!(
        alice.contains("usable") && alice.contains("cli-token"),
        "{alice}"
    );
    assert!(alice.contains(&format!("CN={}", f.root_cn)), "{alice}");
    let bob = table
        .lines()
        .find(|l| l.contains("CN=Keyless Bob"))
        .expect("bob row");
    assert!(bob.contains("no_private_key"), "{bob}");

    let json = d.cli_json(&["list", "--json"]);
    let identities = json["identities"].as_array().expect("identities array");
    assert_eq!(identities.len(), 2);
    let alice_id = identities
        .iter()
        .find(|i| i["subject"] == "CN=Alice Cli")
        .and_then(|i| i["id"].as_str())
        .expect("alice in json")
        .to_owned();

    // Filters narrow the listing.
    let usable = d.cli_json(&["list", "--json", "--usable"]);
    assert_eq!(usable["identities"].as_array().map(Vec::len), Some(1));
    assert_eq!(usable["identities"][0]["subject"], "CN=Alice Cli");
    let keyless = d.cli_json(&["list", "--json", "--no-key", "--subject", "bob"]);
    assert_eq!(keyless["identities"][0]["subject"], "CN=Keyless Bob");
    let none = stdout(&d.cli(&["list", "--subject", "nobody-has-this"]));
    assert!(none.contains("No certificates match"), "{none}");

    // show: human, JSON, PEM; by full id and by prefix.
    let human = stdout(&d.cli(&["show", &alice_id[..12]]));
    assert!(
        human.contains(&format!("id:                 {alice_id}")),
        "{human}"
    );
    assert!(
        human.contains("subject:            CN=Alice Cli"),
        "{human}"
    );
    assert!(human.contains("client auth:        usable"), "{human}");
    assert!(human.contains("1.3.6.1.5.5.7.3.2 (clientAuth)"), "{human}");
    let shown = d.cli_json(&["show", &alice_id, "--json"]);
    assert_eq!(shown["id"], alice_id.as_str());
    assert_eq!(shown["has_private_key"], true);
    let pem = stdout(&d.cli(&["show", &alice_id, "--pem"]));
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    assert_eq!(shown["certificate_pem"], pem.as_str());
    // The PEM really is the certificate: openssl reads the same subject.
    let dir = tempfile::tempdir().expect("tempdir");
    let pem_path = dir.path().join("alice.pem");
    std::fs::write(&pem_path, &pem).expect("write pem");
    let openssl = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-fingerprint",
            "-sha256",
            "-in",
        ])
        .arg(&pem_path)
        .output()
        .expect("openssl");
    let text = stdout(&openssl).to_lowercase().replace(':', "");
    assert!(
        text.contains(&alice_id),
        "openssl fingerprint differs: {text}"
    );

    let missing = d.cli(&["show", "00000000deadbeef"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("not_found"),
        "{}",
        describe(&missing)
    );

    // tokens
    let tokens = stdout(&d.cli(&["tokens"]));
    assert!(tokens
        .lines()
        .next()
        .is_some_and(|h| h.contains("LABEL") && h.contains("CERTS")));
    let row = tokens
        .lines()
        .find(|l| l.starts_with("cli-token"))
        .expect("token row");
    assert!(row.contains("SoftHSM"), "{row}");
    let tokens = d.cli_json(&["tokens", "--json"]);
    let t = &tokens["tokens"][0];
    assert_eq!(t["label"], "cli-token");
    assert_eq!(t["certificates"], 2);
    assert_eq!(t["keys"], 1);
    assert!(t["module"].as_str().is_some_and(|m| m.contains("softhsm")));

    // status
    let status = stdout(&d.cli(&["status"]));
    assert!(
        status.contains("is running") && status.contains("identities: 2"),
        "{status}"
    );
    let status = d.cli_json(&["status", "--json"]);
    assert_eq!(status["tokens"], 1);
    assert_eq!(status["protocol_version"], 1);
}

#[test]
fn says_how_to_start_the_agent_when_none_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nobody-home.sock");
    for args in [
        &["list"][..],
        &["tokens", "--json"],
        &["status"],
        &["show", "abcdef0123"],
    ] {
        let out = run_cli(args, &socket, &[]);
        assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not running"), "{stderr}");
        assert!(stderr.contains("p11agent daemon"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
