//! Real browsers authenticate with a client key on a SoftHSM token
//! through the agent's PKCS#11 module: headless Chromium and Firefox ESR
//! fetch pages that only a verified client gets, from `openssl s_server`
//! and nginx, and the agent signs every digest they ask for.
//!
//! Browsers hash the handshake themselves and have the key sign the hash
//! (`CKM_ECDSA`, `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`),
//! so each signature reaches the agent as `sign_digest`, which its digest
//! policy admits only for the browsers' executables.
//!
//! How the browsers are driven (and why Chromium needs no managed policy
//! file) is described in `p11agent_tests::browser`.

use std::ffi::OsStr;
use std::path::PathBuf;

use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use p11agent_tests::browser::{
    have_chromium, have_firefox, have_nginx, real_executable, AutoSelect, Chromium, Firefox, Nginx,
    PageLoad, CHROMIUM, FIREFOX,
};
use p11agent_tests::{have_openssl, pkcs11_module, Daemon, OpensslServer};
use tempfile::TempDir;

const PIN: &str = "135246";
const SO_PIN: &str = "97531024";

const EC_CA: &str = "Browser EC Client CA";
const RSA_CA: &str = "Browser RSA Client CA";
const EC_USER: &str = "Browser EC User";
const RSA_USER: &str = "Browser RSA User";

/// A token with an EC P-256 and an RSA-2048 identity, each issued by a CA
/// of its own (so a server asking for one CA gets exactly one of them,
/// whichever way a browser picks), a server certificate for 127.0.0.1
/// from a third CA, and a daemon whose digest policy lists `programs`.
struct Setup {
    _hsm: SoftHsm,
    dir: TempDir,
    server_ca_pem: String,
    ec: Provisioned,
    rsa: Provisioned,
    daemon: Daemon,
    audit: PathBuf,
}

impl Setup {
    fn new(programs: &[&str]) -> Setup {
        let hsm = SoftHsm::new().expect("softhsm");
        let token = hsm.create_token("browsers", PIN, SO_PIN).expect("token");
        let ec_pki = Pki::new(EC_CA).expect("pki");
        let rsa_pki = Pki::new(RSA_CA).expect("pki");
        let ec = token
            .add_identity(&ec_pki, &LeafSpec::new(EC_USER).key(KeyAlg::EcP256))
            .expect("ec identity");
        let rsa = token
            .add_identity(&rsa_pki, &LeafSpec::new(RSA_USER).key(KeyAlg::Rsa2048))
            .expect("rsa identity");

        let dir = tempfile::tempdir().expect("tempdir");
        let server_pki = Pki::new("Browser Test Server CA").expect("pki");
        let server = server_pki.localhost_server().expect("server certificate");
        std::fs::write(dir.path().join("srv.pem"), &server.chain_pem).expect("srv.pem");
        std::fs::write(dir.path().join("srv.key"), &server.key_pem).expect("srv.key");
        std::fs::write(dir.path().join("ec-ca.pem"), ec_pki.root_pem()).expect("ca");
        std::fs::write(dir.path().join("rsa-ca.pem"), rsa_pki.root_pem()).expect("ca");

        let pin = dir.path().join("pin");
        std::fs::write(&pin, format!("{PIN}\n")).expect("pin file");
        std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let audit = dir.path().join("audit.log");
        let policy: String = programs
            .iter()
            .map(|program| format!("[[allow_digest]]\nprogram = {program:?}\n\n"))
            .collect();
        let daemon = Daemon::start_configured(
            None,
            &[("p11agent/digest.d/browsers.toml", &policy)],
            &[
                "--module".as_ref(),
                hsm.module_path().as_os_str(),
                "--pin-file".as_ref(),
                pin.as_os_str(),
                "--audit-log".as_ref(),
                audit.as_os_str(),
            ],
            hsm.env(),
        );
        Setup {
            _hsm: hsm,
            dir,
            server_ca_pem: server_pki.root_pem(),
            ec,
            rsa,
            daemon,
            audit,
        }
    }

    /// `openssl s_server -www` that fails every handshake without a
    /// client certificate issued by the CA in `client_ca` (a file of
    /// `dir`), with `extra` arguments (e.g. `-tls1_2`).
    fn s_server(&self, client_ca: &str, extra: &[&str]) -> OpensslServer {
        let ca = self.dir.path().join(client_ca);
        let mut args: Vec<&OsStr> = vec![
            "-CAfile".as_ref(),
            ca.as_os_str(),
            "-Verify".as_ref(),
            "1".as_ref(),
            "-verify_return_error".as_ref(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        OpensslServer::start(self.dir.path(), &args)
    }

    fn chromium(&self) -> Chromium {
        Chromium::new(pkcs11_module(), self.daemon.socket(), &self.server_ca_pem)
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(&self.audit).unwrap_or_default()
    }

    /// The audit records of signatures asked for by `program`.
    fn signatures_by(&self, program: &str) -> Vec<serde_json::Value> {
        self.audit_log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|r| r["action"] == "sign" && r["peer"]["exe"] == program)
            .collect()
    }
}

/// Whether everything these tests run is installed; says what is not.
fn have(what: &[(&str, bool)]) -> bool {
    let missing: Vec<&str> = what.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        eprintln!("skipped: {} missing", missing.join(", "));
    }
    missing.is_empty()
}

fn url(port: u16) -> String {
    format!("https://127.0.0.1:{port}/")
}

/// Asserts that `openssl s_server -www` showed the page it shows a
/// verified client: the session over `protocol`, with the client
/// certificate whose subject CN is `cn`.
fn assert_verified_page(page: &str, protocol: &str, cn: &str, context: &dyn Fn() -> String) {
    assert!(
        page.contains(&format!("Protocol  : {protocol}"))
            && page.contains("Client certificate")
            && page.contains(&format!("Subject: CN={cn}")),
        "no {protocol} page for a verified {cn}:\n{page}\n{}",
        context()
    );
}

fn describe_load(load: &PageLoad, setup: &Setup) -> String {
    format!(
        "timed out: {}\n--- chromium log (tail)\n{}\n--- audit\n{}\n--- daemon log (tail)\n{}",
        load.timed_out,
        tail(&load.log, 40),
        setup.audit_log(),
        tail(&setup.daemon.log(), 60)
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn chromium_authenticates_with_ec_and_rsa_keys_over_tls13_and_tls12() {
    if !have(&[("chromium", have_chromium()), ("openssl", have_openssl())]) {
        return;
    }
    let chromium_exe = real_executable(CHROMIUM);
    let setup = Setup::new(&[&chromium_exe]);
    let mut chromium = setup.chromium();
    for (ca_file, ca_cn, user) in [
        ("ec-ca.pem", EC_CA, EC_USER),
        ("rsa-ca.pem", RSA_CA, RSA_USER),
    ] {
        for (protocol, extra) in [("TLSv1.3", &[][..]), ("TLSv1.2", &["-tls1_2"][..])] {
            let server = setup.s_server(ca_file, extra);
            let load = chromium.load(
                &url(server.port()),
                &[AutoSelect::issuer_cn(server.port(), ca_cn)],
            );
            assert_verified_page(&load.dom, protocol, user, &|| {
                format!(
                    "{}\n--- s_server\n{}",
                    describe_load(&load, &setup),
                    server.log()
                )
            });
        }
    }
    // Every handshake's signature was a digest the agent signed for
    // Chromium, with the key the page names.
    let signed = setup.signatures_by(&chromium_exe);
    for identity in [&setup.ec, &setup.rsa] {
        let id = identity.fingerprint_hex();
        assert!(
            signed
                .iter()
                .filter(|r| r["identity"] == id.as_str())
                .count()
                >= 2,
            "fewer than two signatures by {id}:\n{}",
            setup.audit_log()
        );
    }
}

#[test]
fn chromium_gets_nginx_page_for_verified_clients() {
    if !have(&[("chromium", have_chromium()), ("nginx", have_nginx())]) {
        return;
    }
    let setup = Setup::new(&[&real_executable(CHROMIUM)]);
    let server_pki_pem = std::fs::read_to_string(setup.dir.path().join("srv.pem")).expect("srv");
    let key_pem = std::fs::read_to_string(setup.dir.path().join("srv.key")).expect("key");
    // Either CA will do for nginx; the rule picks which key Chromium uses.
    let mut client_cas = std::fs::read_to_string(setup.dir.path().join("ec-ca.pem")).expect("ca");
    client_cas.push_str(&std::fs::read_to_string(setup.dir.path().join("rsa-ca.pem")).expect("ca"));
    let nginx_dir = setup.dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir).expect("nginx dir");
    let nginx = Nginx::start(&nginx_dir, &server_pki_pem, &key_pem, &client_cas);
    let mut chromium = setup.chromium();
    for (ca_cn, user) in [(EC_CA, EC_USER), (RSA_CA, RSA_USER)] {
        let load = chromium.load(
            &url(nginx.port()),
            &[AutoSelect::issuer_cn(nginx.port(), ca_cn)],
        );
        assert!(
            load.dom.contains(&format!("verified client: CN={user}")),
            "nginx did not answer a verified {user}:\n{}\n{}\n--- nginx\n{}",
            load.dom,
            describe_load(&load, &setup),
            nginx.log()
        );
    }
}

#[test]
fn firefox_authenticates_with_ec_and_rsa_keys_over_tls13_and_tls12() {
    if !have(&[("firefox-esr", have_firefox()), ("openssl", have_openssl())]) {
        return;
    }
    let firefox_exe = real_executable(FIREFOX);
    let setup = Setup::new(&[&firefox_exe]);
    let mut firefox = Firefox::start(pkcs11_module(), setup.daemon.socket(), &setup.server_ca_pem);
    for (ca_file, user) in [("ec-ca.pem", EC_USER), ("rsa-ca.pem", RSA_USER)] {
        for (protocol, extra) in [("TLSv1.3", &[][..]), ("TLSv1.2", &["-tls1_2"][..])] {
            let server = setup.s_server(ca_file, extra);
            let page = firefox.load(&url(server.port())).unwrap_or_else(|e| {
                panic!(
                    "{user} over {protocol}: {e}\n--- s_server\n{}\n--- audit\n{}\n--- firefox\n{}\n--- daemon\n{}",
                    server.log(),
                    setup.audit_log(),
                    tail(&firefox.log(), 40),
                    tail(&setup.daemon.log(), 60)
                )
            });
            assert_verified_page(&page, protocol, user, &|| {
                format!(
                    "--- s_server\n{}\n--- audit\n{}",
                    server.log(),
                    setup.audit_log()
                )
            });
        }
    }
    let signed = setup.signatures_by(&firefox_exe);
    for identity in [&setup.ec, &setup.rsa] {
        let id = identity.fingerprint_hex();
        assert!(
            signed
                .iter()
                .filter(|r| r["identity"] == id.as_str())
                .count()
                >= 2,
            "fewer than two signatures by {id}:\n{}",
            setup.audit_log()
        );
    }
}

#[test]
fn chromium_gets_no_page_when_the_digest_policy_does_not_list_it() {
    if !have(&[("chromium", have_chromium()), ("openssl", have_openssl())]) {
        return;
    }
    let chromium_exe = real_executable(CHROMIUM);
    // Another browser is listed: the policy is there, Chromium not in it.
    let setup = Setup::new(&[&real_executable(FIREFOX)]);
    let mut chromium = setup.chromium();
    let server = setup.s_server("ec-ca.pem", &[]);
    let load = chromium.load(
        &url(server.port()),
        &[AutoSelect::issuer_cn(server.port(), EC_CA)],
    );
    assert!(
        !load.timed_out && !load.dom.contains("Client certificate") && !load.dom.contains(EC_USER),
        "Chromium got the page without a signature:\n{}\n{}",
        load.dom,
        describe_load(&load, &setup)
    );
    // It got as far as asking the agent, which refused and said whom.
    let refusals: Vec<serde_json::Value> = setup
        .audit_log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|r| r["peer"]["exe"] == chromium_exe.as_str())
        .collect();
    assert!(
        !refusals.is_empty()
            && refusals
                .iter()
                .all(|r| r.to_string().contains("digest_not_allowed")),
        "no refusal of Chromium in the audit log:\n{}\n{}",
        setup.audit_log(),
        describe_load(&load, &setup)
    );
    assert!(
        setup
            .signatures_by(&chromium_exe)
            .iter()
            .all(|r| r["outcome"] != "ok"),
        "{}",
        setup.audit_log()
    );
}
