//! Client-certificate selection through the real daemon and CLI: the
//! candidate filter's reason codes, chains and CA lists, auto-select
//! policy, remembered choices and the chooser program.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use p11agent_client::proto::Scheme;
use p11agent_softhsm::{Eku, KeyAlg, KeyUsage, LeafSpec, Pki, Provisioned, SoftHsm, Token};
use p11agent_tests::{describe, Daemon};
use serde_json::Value;

const USER_PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// A daemon over one SoftHSM token, with a config file.
struct Setup {
    hsm: SoftHsm,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            hsm: SoftHsm::new().expect("softhsm"),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn token(&self, label: &str) -> Token {
        self.hsm
            .create_token(label, USER_PIN, SO_PIN)
            .expect("token")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to a file in the setup's directory.
    fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Starts a daemon with `config` (TOML) and extra arguments.
    fn daemon(&self, config: &str, extra: &[&str]) -> Daemon {
        let config = self.write("config.toml", config);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--module".as_ref(),
            self.hsm.module_path().as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        Daemon::start_with_args(&args, self.hsm.env())
    }
}

/// `p11agent select --json` for `origin` with CA files and schemes.
fn select(daemon: &Daemon, origin: &str, cas: &[&Path], schemes: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "select".into(),
        "--json".into(),
        "--origin".into(),
        origin.into(),
    ];
    for ca in cas {
        args.push("--ca".into());
        args.push(ca.display().to_string());
    }
    for scheme in schemes {
        args.push("--scheme".into());
        args.push((*scheme).into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.cli_json(&args)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

/// id → reason codes of the excluded identities.
fn excluded(selection: &Value) -> BTreeMap<String, Vec<String>> {
    selection["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .map(|e| {
            let reasons = e["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .map(|r| r.as_str().expect("reason").to_owned())
                .collect();
            (e["id"].as_str().expect("id").to_owned(), reasons)
        })
        .collect()
}

fn decision(selection: &Value) -> (&str, Option<&str>) {
    (
        selection["decision"].as_str().expect("decision"),
        selection["identity"]["id"].as_str(),
    )
}

#[test]
fn every_reason_code_where_expected() {
    let setup = Setup::new();
    let pki = Pki::new("Matrix Root").expect("pki");
    let other = Pki::new("Matrix Other Root").expect("other pki");
    let token = setup.token("matrix");
    let add = |token: &Token, pki: &Pki, spec: LeafSpec| -> Provisioned {
        token.add_identity(pki, &spec).expect("identity")
    };
    let usable = add(&token, &pki, LeafSpec::new("usable"));
    let no_key = token
        .add_certificate_without_key(&pki, &LeafSpec::new("no key"))
        .expect("certificate");
    let expired = add(&token, &pki, LeafSpec::new("expired").expired());
    let future = add(&token, &pki, LeafSpec::new("future").not_yet_valid());
    let ku = add(
        &token,
        &pki,
        LeafSpec::new("key usage").key_usage(KeyUsage::KeyEnciphermentOnly),
    );
    let eku = add(
        &token,
        &pki,
        LeafSpec::new("eku").extended_key_usage(Eku::ServerAuthOnly),
    );
    let foreign = add(&token, &other, LeafSpec::new("foreign issuer"));
    let p384 = add(&token, &pki, LeafSpec::new("p384").key(KeyAlg::EcP384));
    let several = add(
        &token,
        &other,
        LeafSpec::new("several")
            .expired()
            .extended_key_usage(Eku::ServerAuthOnly),
    );
    let root = setup.write("root.pem", pki.root_pem());
    let daemon = setup.daemon("", &[]);

    let selection = select(
        &daemon,
        "https://matrix.test",
        &[&root],
        &["ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"],
    );
    assert_eq!(ids(&selection["candidates"]), [usable.fingerprint_hex()]);
    let reasons = excluded(&selection);
    let expect: Vec<(&Provisioned, &[&str])> = vec![
        (&no_key, &["no_private_key"]),
        (&expired, &["expired"]),
        (&future, &["not_yet_valid"]),
        (&ku, &["key_usage"]),
        (&eku, &["extended_key_usage"]),
        (&foreign, &["issuer_not_accepted"]),
        (&p384, &["no_common_scheme"]),
        (
            &several,
            &["expired", "extended_key_usage", "issuer_not_accepted"],
        ),
    ];
    for (identity, codes) in &expect {
        assert_eq!(
            reasons.get(&identity.fingerprint_hex()).map(Vec::as_slice),
            Some(&codes.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()[..]),
            "{}: {selection:#}",
            identity.subject
        );
    }
    assert_eq!(reasons.len(), expect.len(), "{selection:#}");
    // One usable candidate and no rule: a person must still say yes.
    assert_eq!(decision(&selection), ("prompt", None));
    assert_eq!(selection["basis"], "user_must_choose");

    // Asked as a handshake asks (no explanation): the same decision and
    // candidates, without the list of the others.
    let mut query = p11agent_client::SelectQuery::new("https://matrix.test");
    query.ca_names = vec![pki.root_subject_der().expect("root name")];
    query.schemes = Some(vec![Scheme::EcdsaSecp256r1Sha256, Scheme::RsaPssRsaeSha256]);
    query.chooser = p11agent_client::proto::ChooserMode::Client;
    query.explain = false;
    let quiet = daemon.client().select(&query).expect("select");
    assert_eq!(quiet.decision.as_str(), "prompt");
    let quiet_ids: Vec<&str> = quiet.candidates.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(quiet_ids, [usable.fingerprint_hex()]);
    assert!(quiet.excluded.is_empty(), "{quiet:?}");
    query.explain = true;
    let told = daemon.client().select(&query).expect("select");
    assert_eq!(told.excluded.len(), expect.len());

    // Without a CA list and schemes, the foreign and P-384 identities
    // are candidates too.
    let selection = select(&daemon, "https://matrix.test", &[], &[]);
    let candidates = ids(&selection["candidates"]);
    for identity in [&usable, &foreign, &p384] {
        assert!(candidates.contains(&identity.fingerprint_hex()));
    }
    assert_eq!(candidates.len(), 3, "{selection:#}");

    // explain says the same in words.
    let out = daemon.cli(&[
        "explain",
        "--origin",
        "https://matrix.test",
        "--ca",
        root.to_str().expect("path"),
        "--scheme",
        "ecdsa_secp256r1_sha256",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Origin: https://matrix.test:443",
        "CN=Matrix Root",
        "issuer_not_accepted: issued by CN=Matrix Other Root",
        "no_common_scheme",
        "not_yet_valid",
        "ask the user to choose among 1 certificate(s)",
    ] {
        assert!(report.contains(needle), "{needle:?} missing:\n{report}");
    }
}

#[test]
fn chains_match_root_or_intermediate_names() {
    let setup = Setup::new();
    let pki = Pki::with_intermediate("Chain Root", "Chain Intermediate").expect("pki");
    let other = Pki::new("Chain Other").expect("other");
    let token = setup.token("chains");
    token.add_ca_certificates(&pki).expect("CA certificates");
    let leaf = token
        .add_identity(&pki, &LeafSpec::new("chained").issued_by_intermediate())
        .expect("identity");
    let direct = token
        .add_identity(&pki, &LeafSpec::new("direct"))
        .expect("identity");
    let root = setup.write("root.pem", pki.root_pem());
    let intermediate = setup.write(
        "intermediate.der",
        pki.intermediate_der().expect("intermediate"),
    );
    let other_root = setup.write("other.pem", other.root_pem());
    // A bare DER name is accepted as a CA too.
    let root_name = setup.write("root-name.der", pki.root_subject_der().expect("name"));
    let daemon = setup.daemon("", &[]);
    let origin = "https://chains.test:8443";

    let candidates = |cas: &[&Path]| ids(&select(&daemon, origin, cas, &[])["candidates"]);
    let (l, d) = (leaf.fingerprint_hex(), direct.fingerprint_hex());
    assert_eq!(candidates(&[&root]), [l.clone(), d.clone()]);
    assert_eq!(candidates(&[&root_name]), [l.clone(), d.clone()]);
    assert_eq!(candidates(&[&intermediate]), std::slice::from_ref(&l));
    assert_eq!(candidates(&[]), [l.clone(), d.clone()]);
    let selection = select(&daemon, origin, &[&other_root], &[]);
    assert!(ids(&selection["candidates"]).is_empty());
    assert_eq!(excluded(&selection)[&l], ["issuer_not_accepted"]);
    assert_eq!(decision(&selection), ("none", None));

    // A 200-name list with the root last.
    let mut big = String::new();
    for i in 0..199 {
        big.push_str(
            &Pki::root_only(&format!("Noise CA {i}"))
                .expect("pki")
                .root_pem(),
        );
    }
    big.push_str(&pki.root_pem());
    let big = setup.write("big.pem", big);
    assert_eq!(candidates(&[&big]), [l.clone(), d]);
}

#[test]
fn an_intermediate_from_the_ca_folder_completes_the_chain() {
    let setup = Setup::new();
    let pki = Pki::with_intermediate("Folder Root", "Folder Intermediate").expect("pki");
    let token = setup.token("folder");
    // Only the leaf is on the token.
    let leaf = token
        .add_identity(&pki, &LeafSpec::new("folder user").issued_by_intermediate())
        .expect("identity");
    let root = setup.write("root.pem", pki.root_pem());
    let folder = setup.path("cas");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(
        folder.join("intermediate.pem"),
        pki.intermediate_pem().expect("intermediate"),
    )
    .expect("write");

    // Without the folder the root is not known to be above the leaf.
    let daemon = setup.daemon("", &[]);
    let selection = select(&daemon, "https://folder.test", &[&root], &[]);
    assert_eq!(
        excluded(&selection)[&leaf.fingerprint_hex()],
        ["issuer_not_accepted"]
    );
    drop(daemon);

    let config = format!(
        "send_when_single_candidate = [\"https://folder.test\"]\nca_dir = {:?}\n",
        folder.display().to_string()
    );
    let daemon = setup.daemon(&config, &[]);
    let selection = select(&daemon, "https://folder.test", &[&root], &[]);
    assert_eq!(
        decision(&selection),
        ("selected", Some(leaf.fingerprint_hex().as_str()))
    );
    assert_eq!(selection["basis"], "single_candidate");
    // The chain sent: the leaf, then the intermediate from the folder.
    let chain: Vec<&str> = selection["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| c.as_str().expect("base64"))
        .collect();
    use base64::Engine as _;
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    assert_eq!(
        chain,
        [
            b64(&leaf.cert_der),
            b64(pki.intermediate_der().expect("intermediate"))
        ]
    );
}

/// Three identities from one CA on one token, for policy tests.
struct PolicySetup {
    setup: Setup,
    alice: Provisioned,
    bob: Provisioned,
    carol: Provisioned,
}

fn policy_setup() -> PolicySetup {
    let setup = Setup::new();
    let corp = Pki::new("Corp Root").expect("pki");
    let partner = Pki::new("Partner Root").expect("pki");
    let token = setup.token("policy");
    let alice = token
        .add_identity(&corp, &LeafSpec::new("alice").organization("Corp"))
        .expect("alice");
    let bob = token
        .add_identity(
            &corp,
            &LeafSpec::new("bob")
                .organization("Corp")
                .organizational_unit("Ops"),
        )
        .expect("bob");
    let carol = token
        .add_identity(&partner, &LeafSpec::new("carol").organization("Partner"))
        .expect("carol");
    PolicySetup {
        setup,
        alice,
        bob,
        carol,
    }
}

#[test]
fn auto_select_rules_from_the_config_file() {
    let p = policy_setup();
    // Rules as TOML tables and as JSON strings (Chromium's storage form).
    let config = r#"
auto_select = [
  { pattern = "https://[*.]corp.test:8443", filter = { SUBJECT = { OU = "Ops" } } },
  '{"pattern": "https://[*.]corp.test", "filter": {"ISSUER": {"CN": "Corp Root"}}}',
  { pattern = "https://partner.test", filter = { ISSUER = { CN = "Partner Root" }, SUBJECT = { O = "Partner" } } },
  { pattern = "*://wild.test", filter = { SUBJECT = { CN = "nobody" } } },
]
force_prompt_on_multiple_matches = false
"#;
    let daemon = p.setup.daemon(config, &[]);
    let id = |i: &Provisioned| i.fingerprint_hex();
    let check = |origin: &str, want: (&str, Option<String>), rule: Option<u64>| {
        let selection = select(&daemon, origin, &[], &[]);
        let (decision, identity) = decision(&selection);
        assert_eq!(
            (decision, identity.map(str::to_owned)),
            (want.0, want.1),
            "{origin}: {selection:#}"
        );
        assert_eq!(selection["rule"].as_u64(), rule, "{origin}: {selection:#}");
    };
    // Port 8443 of a subdomain: rule 0 (OU=Ops) picks bob.
    check(
        "https://www.corp.test:8443",
        ("selected", Some(id(&p.bob))),
        Some(0),
    );
    // Another port: rule 0 does not apply; rule 1 matches alice and bob
    // and the first (alice, by subject order) is sent.
    check(
        "https://corp.test",
        ("selected", Some(id(&p.alice))),
        Some(1),
    );
    check(
        "https://a.b.corp.test:9000",
        ("selected", Some(id(&p.alice))),
        Some(1),
    );
    // ISSUER and SUBJECT together.
    check(
        "https://partner.test:443",
        ("selected", Some(id(&p.carol))),
        Some(2),
    );
    // Scheme matters, and a lookalike host is not a subdomain.
    check("http://corp.test", ("prompt", None), None);
    check("https://corp.test.evil", ("prompt", None), None);
    // A rule whose filter matches nobody does not decide.
    check("https://wild.test", ("prompt", None), None);
    drop(daemon);

    // With force_prompt_on_multiple_matches, rule 1's two matches are put
    // to the user; one match is still sent.
    let forced = config.replace(
        "force_prompt_on_multiple_matches = false",
        "force_prompt_on_multiple_matches = true",
    );
    let daemon = p.setup.daemon(&forced, &[]);
    let selection = select(&daemon, "https://corp.test", &[], &[]);
    assert_eq!(decision(&selection), ("prompt", None));
    assert_eq!(selection["basis"], "rule");
    let choices: Vec<&str> = selection["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .map(|c| c.as_str().expect("id"))
        .collect();
    assert_eq!(choices, [id(&p.alice), id(&p.bob)]);
    let selection = select(&daemon, "https://partner.test", &[], &[]);
    assert_eq!(decision(&selection).0, "selected");
    drop(daemon);

    // A broken rule stops the daemon with a message naming it.
    let config = p.setup.write(
        "bad.toml",
        "auto_select = [{ pattern = \"https://x.test\", filter = { ISSUER = { Cn = \"x\" } } }]\n",
    );
    let out = std::process::Command::new(p11agent_tests::p11agent_bin())
        .args(["daemon", "--config"])
        .arg(&config)
        .arg("--socket")
        .arg(p.setup.path("bad.sock"))
        .output()
        .expect("run daemon");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auto-select rule 0") && stderr.contains("Cn"),
        "{stderr}"
    );
}

#[test]
fn nothing_is_sent_silently_unless_configured() {
    let setup = Setup::new();
    let pki = Pki::new("Single Root").expect("pki");
    let token = setup.token("single");
    let only = token
        .add_identity(&pki, &LeafSpec::new("only one"))
        .expect("identity");
    let daemon = setup.daemon("", &[]);
    let selection = select(&daemon, "https://intranet.test", &[], &[]);
    assert_eq!(decision(&selection), ("prompt", None));
    assert_eq!(selection["basis"], "user_must_choose");
    // Asked to decide itself, with no chooser program the agent declines.
    let mut client = daemon.client();
    let mut query = p11agent_client::SelectQuery::new("https://intranet.test");
    query.chooser = p11agent_client::proto::ChooserMode::Agent;
    let answer = client.select(&query).expect("select");
    assert_eq!(answer.decision, p11agent_client::proto::Decision::Declined);
    assert_eq!(answer.basis, p11agent_client::proto::Basis::NoChooser);
    assert!(answer.chain.is_empty() && answer.identity.is_none());
    drop(daemon);

    let daemon = setup.daemon(
        "send_when_single_candidate = [\"https://[*.]intranet.test\"]\n",
        &[],
    );
    let selection = select(&daemon, "https://www.intranet.test:8443", &[], &[]);
    assert_eq!(
        decision(&selection),
        ("selected", Some(only.fingerprint_hex().as_str()))
    );
    assert_eq!(selection["basis"], "single_candidate");
    let selection = select(&daemon, "https://elsewhere.test", &[], &[]);
    assert_eq!(decision(&selection), ("prompt", None));
}

#[test]
fn choices_are_remembered_per_origin_listed_and_forgotten() {
    use p11agent_client::proto::{Basis, ChooserMode, Decision};
    use p11agent_client::SelectQuery;

    let p = policy_setup();
    let file = p.setup.path("state/decisions.json");
    let file_arg = file.display().to_string();
    let daemon = p.setup.daemon("", &["--decisions-file", file_arg.as_str()]);
    let mut client = daemon.client();
    let query = |origin: &str| {
        let mut q = SelectQuery::new(origin);
        q.chooser = ChooserMode::Client;
        q
    };

    // The user picks bob for corp.test (as an application would report).
    let first = client.select(&query("https://corp.test")).expect("select");
    assert_eq!(first.decision, Decision::Prompt);
    let remembered = client
        .choose("https://corp.test", Some(&p.bob.fingerprint_hex()), true)
        .expect("choose")
        .expect("remembered");
    assert_eq!(remembered.origin, "https://corp.test:443");
    assert!(remembered.persistent);

    // Reused for the same origin however it is spelt, not for another.
    for spelling in ["https://corp.test", "https://CORP.test:443/x", "corp.test"] {
        let again = client.select(&query(spelling)).expect("select");
        assert_eq!(
            (again.decision, again.basis),
            (Decision::Selected, Basis::Remembered),
            "{spelling}"
        );
        assert_eq!(again.identity.map(|i| i.id), Some(p.bob.fingerprint_hex()));
    }
    for other in [
        "https://corp.test:8443",
        "https://www.corp.test",
        "http://corp.test",
    ] {
        let other_answer = client.select(&query(other)).expect("select");
        assert_eq!(other_answer.decision, Decision::Prompt, "{other}");
    }

    // "Send none" is remembered too.
    client
        .choose("https://tracker.test", None, true)
        .expect("choose none");
    let none = client
        .select(&query("https://tracker.test"))
        .expect("select");
    assert_eq!(
        (none.decision, none.basis),
        (Decision::Declined, Basis::Remembered)
    );
    // Not remembering leaves nothing behind.
    let kept = client
        .choose("https://once.test", Some(&p.alice.fingerprint_hex()), false)
        .expect("choose once");
    assert!(kept.is_none());

    // `decisions` lists both; the file is private and survives a restart.
    let listed = daemon.cli_json(&["decisions", "--json"]);
    let listed = &listed["decisions"];
    let origins: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["origin"].as_str().expect("origin"))
        .collect();
    assert_eq!(
        origins,
        ["https://corp.test:443", "https://tracker.test:443"]
    );
    assert_eq!(listed[0]["subject"], "CN=bob,OU=Ops,O=Corp");
    assert!(listed[1]["id"].is_null());
    let text = daemon.cli(&["decisions"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("send no certificate") && text.contains("CN=bob"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file)
        .expect("decisions file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(client);
    drop(daemon);
    let daemon = p.setup.daemon("", &["--decisions-file", file_arg.as_str()]);
    let selection = select(&daemon, "https://corp.test", &[], &[]);
    assert_eq!(
        decision(&selection),
        ("selected", Some(p.bob.fingerprint_hex().as_str()))
    );

    // `forget ORIGIN` clears one, `forget --all` the rest.
    let out = daemon.cli(&["forget", "corp.test"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("https://corp.test:443"));
    assert_eq!(
        decision(&select(&daemon, "https://corp.test", &[], &[])).0,
        "prompt"
    );
    assert_eq!(
        decision(&select(&daemon, "https://tracker.test", &[], &[])).0,
        "declined"
    );
    let forgotten = daemon.cli_json(&["forget", "--all", "--json"]);
    assert_eq!(
        forgotten["forgotten"],
        serde_json::json!(["https://tracker.test:443"])
    );
    assert_eq!(
        decision(&select(&daemon, "https://tracker.test", &[], &[])).0,
        "prompt"
    );
    let out = daemon.cli(&["forget"]);
    assert!(!out.status.success(), "forget needs ORIGIN or --all");
}

#[test]
fn the_agents_chooser_program_decides_and_is_remembered() {
    use p11agent_client::proto::{Basis, ChooserMode, Decision};
    use p11agent_client::SelectQuery;

    let p = policy_setup();
    // A chooser that records its request and picks carol.
    let request_log = p.setup.path("chooser-request.json");
    let script = p.setup.write(
        "chooser.sh",
        format!(
            "#!/bin/sh\ncat > '{}'\nprintf '{{\"choice\": \"{}\"}}\\n'\n",
            request_log.display(),
            p.carol.fingerprint_hex()
        ),
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let script_arg = script.display().to_string();
    let daemon = p.setup.daemon("", &["--chooser", script_arg.as_str()]);
    let mut client = daemon.client();
    let mut query = SelectQuery::new("https://shop.test");
    query.chooser = ChooserMode::Agent;

    let chosen = client.select(&query).expect("select");
    assert_eq!(
        (chosen.decision, chosen.basis),
        (Decision::Selected, Basis::Chooser)
    );
    assert_eq!(
        chosen.identity.map(|i| i.id),
        Some(p.carol.fingerprint_hex())
    );
    assert_eq!(chosen.chain.len(), 1);
    let request: Value =
        serde_json::from_slice(&std::fs::read(&request_log).expect("request")).expect("json");
    assert_eq!(request["version"], 1);
    assert_eq!(request["origin"], "https://shop.test:443");
    assert_eq!(request["candidates"].as_array().map(Vec::len), Some(3));

    // Remembered: the program is not asked again.
    std::fs::remove_file(&request_log).expect("rm");
    let again = client.select(&query).expect("select");
    assert_eq!(again.basis, Basis::Remembered);
    assert!(!request_log.exists(), "the chooser ran again");
}
