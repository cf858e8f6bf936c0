//! Real browsers authenticate with a client key on a SoftHSM token
//! through the agent's PKCS#11 module: headless Chromium and Firefox ESR
//! fetch pages that only a verified client gets, from `openssl s_server`
//! and nginx, and the agent signs every digest they ask for.
//!
//! Chromium hashes every handshake itself and has the key sign the hash
//! (`CKM_ECDSA`, `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`),
//! so each of its signatures reaches the agent as `sign_digest`, which
//! the digest policy admits only for the programs it lists. Firefox does
//! so in TLS 1.2; in TLS 1.3 it signs the whole CertificateVerify input
//! with a hash-and-sign mechanism, which the agent's purpose binding
//! admits as it stands. The audit log shows which, for every handshake.
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
use p11agent_tests::{
    describe, digest_policy, have_openssl, p11agent_bin, pin_file, pkcs11_module, Daemon,
    OpensslServer,
};
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
        Self::configured_in(programs, None)
    }

    /// As [`Setup::new`], with the daemon's `XDG_CONFIG_HOME` at
    /// `config_home` when given (where `p11agent setup` wrote).
    fn configured_in(programs: &[&str], config_home: Option<&std::path::Path>) -> Setup {
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

        let pin = pin_file(dir.path(), PIN);
        let audit = dir.path().join("audit.log");
        let policy = digest_policy(programs);
        let daemon = Daemon::start_configured(
            None,
            &[("digest.d/browsers.toml", &policy)],
            &[
                "--module".as_ref(),
                hsm.module_path().as_os_str(),
                "--pin-file".as_ref(),
                pin.as_os_str(),
                "--audit-log".as_ref(),
                audit.as_os_str(),
            ],
            hsm.env()
                .into_iter()
                .chain(config_home.map(|home| ("XDG_CONFIG_HOME".into(), home.into())))
                .collect(),
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

    /// The audit log's records, parsed.
    fn audit_records(&self) -> Vec<serde_json::Value> {
        self.audit_log()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }

    /// Asserts that the signatures the agent was asked for by `program`
    /// since the audit log had `since` records were all made, at least
    /// one, with `identity` and as `how` says: the handshake just made
    /// was signed by the agent, with the key the page names.
    fn assert_signed_since(
        &self,
        since: usize,
        program: &str,
        identity: &Provisioned,
        how: Signed,
    ) {
        let records = self.audit_records();
        let signatures: Vec<_> = records[since..]
            .iter()
            .filter(|r| {
                (r["action"] == "sign" || r["action"] == "sign_digest")
                    && r["peer"]["exe"] == program
            })
            .collect();
        let id = identity.fingerprint_hex();
        let (action, member, name) = match how {
            Signed::Message(scheme) => ("sign", "scheme", scheme),
            Signed::Digest(mechanism) => ("sign_digest", "mechanism", mechanism),
        };
        assert!(
            !signatures.is_empty()
                && signatures.iter().all(|r| r["result"] == "ok"
                    && r["identity"] == id.as_str()
                    && r["action"] == action
                    && r[member] == name),
            "expected {how:?} signatures with {id} for {program}:\n{}",
            self.audit_log()
        );
    }
}

/// How a browser had a handshake signed, as the audit log shows it.
#[derive(Clone, Copy, Debug)]
enum Signed {
    /// `sign` with the whole TLS 1.3 CertificateVerify input, in this
    /// scheme (a hash-and-sign mechanism such as `CKM_ECDSA_SHA256`):
    /// purpose binding admits it, no digest policy is needed.
    Message(&'static str),
    /// `sign_digest` with this mechanism: the browser hashed.
    Digest(&'static str),
}

/// Fails, naming what is missing, unless everything these tests run is
/// installed (`scripts/install-deps` installs it): a browser test that
/// quietly does nothing would prove nothing.
fn require(what: &[(&str, bool)]) {
    let missing: Vec<&str> = what.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    assert!(
        missing.is_empty(),
        "{} missing: run scripts/install-deps",
        missing.join(", ")
    );
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

/// The handshakes each browser test makes against `openssl s_server`:
/// the client CA the server requires (a file of the setup's directory),
/// its CN, the user whose key that CA issued, the protocol, and the
/// server's extra arguments.
const HANDSHAKES: [(&str, &str, &str, &str, &[&str]); 4] = [
    ("ec-ca.pem", EC_CA, EC_USER, "TLSv1.3", &[]),
    ("ec-ca.pem", EC_CA, EC_USER, "TLSv1.2", &["-tls1_2"]),
    ("rsa-ca.pem", RSA_CA, RSA_USER, "TLSv1.3", &[]),
    ("rsa-ca.pem", RSA_CA, RSA_USER, "TLSv1.2", &["-tls1_2"]),
];

impl Setup {
    /// The identity whose subject CN is `user`.
    fn identity(&self, user: &str) -> &Provisioned {
        if user == EC_USER {
            &self.ec
        } else {
            &self.rsa
        }
    }
}

#[test]
fn chromium_authenticates_with_ec_and_rsa_keys_over_tls13_and_tls12() {
    require(&[("chromium", have_chromium()), ("openssl", have_openssl())]);
    let chromium_exe = real_executable(CHROMIUM);
    let setup = Setup::new(&[&chromium_exe]);
    let mut chromium = setup.chromium();
    for (ca_file, ca_cn, user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(ca_file, extra);
        let since = setup.audit_records().len();
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
        // Chromium always hashes itself (CKM_ECDSA, CKM_RSA_PKCS_PSS,
        // CKM_RSA_PKCS over a DigestInfo), and signs TLS 1.2 client
        // authentication with PKCS#1 v1.5, as cards without PSS need.
        let how = match (user, protocol) {
            (EC_USER, _) => Signed::Digest("ecdsa"),
            (_, "TLSv1.3") => Signed::Digest("rsa_pss"),
            _ => Signed::Digest("rsa_pkcs1"),
        };
        setup.assert_signed_since(since, &chromium_exe, setup.identity(user), how);
    }
}

#[test]
fn chromium_gets_nginx_page_for_verified_clients() {
    require(&[("chromium", have_chromium()), ("nginx", have_nginx())]);
    let chromium_exe = real_executable(CHROMIUM);
    let setup = Setup::new(&[&chromium_exe]);
    let read = |name: &str| std::fs::read_to_string(setup.dir.path().join(name)).expect(name);
    // nginx accepts clients of either CA and names both in its
    // CertificateRequest; the auto-select rule picks the key.
    let client_cas = read("ec-ca.pem") + &read("rsa-ca.pem");
    let nginx_dir = setup.dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir).expect("nginx dir");
    let nginx = Nginx::start(&nginx_dir, &read("srv.pem"), &read("srv.key"), &client_cas);
    let mut chromium = setup.chromium();
    for (ca_cn, user, how) in [
        (EC_CA, EC_USER, Signed::Digest("ecdsa")),
        (RSA_CA, RSA_USER, Signed::Digest("rsa_pss")),
    ] {
        let since = setup.audit_records().len();
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
        setup.assert_signed_since(since, &chromium_exe, setup.identity(user), how);
    }
}

#[test]
fn firefox_authenticates_with_ec_and_rsa_keys_over_tls13_and_tls12() {
    require(&[("firefox-esr", have_firefox()), ("openssl", have_openssl())]);
    let firefox_exe = real_executable(FIREFOX);
    let setup = Setup::new(&[&firefox_exe]);
    // One Firefox for every load: it starts in seconds, not one.
    let mut firefox = Firefox::start(pkcs11_module(), setup.daemon.socket(), &setup.server_ca_pem);
    for (ca_file, _, user, protocol, extra) in HANDSHAKES {
        // "Select Automatically" sends the first certificate that the
        // server's CA list admits: with one CA per key, the one meant.
        let server = setup.s_server(ca_file, extra);
        let since = setup.audit_records().len();
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
        // Firefox's NSS signs a TLS 1.3 CertificateVerify with a
        // hash-and-sign mechanism over the whole input, which reaches
        // the agent as a message it recognises; TLS 1.2 handshake hashes
        // as digests (RSA with PSS, which OpenSSL offers first).
        let how = match (user, protocol) {
            (EC_USER, "TLSv1.3") => Signed::Message("ecdsa_secp256r1_sha256"),
            (EC_USER, _) => Signed::Digest("ecdsa"),
            (_, "TLSv1.3") => Signed::Message("rsa_pss_rsae_sha256"),
            _ => Signed::Digest("rsa_pss"),
        };
        setup.assert_signed_since(since, &firefox_exe, setup.identity(user), how);
    }
}

/// Firefox against nginx with `ssl_verify_client on`: one nginx per
/// client CA, so that "Select Automatically" has one certificate to send.
#[test]
fn firefox_gets_nginx_page_for_verified_clients() {
    require(&[("firefox-esr", have_firefox()), ("nginx", have_nginx())]);
    let firefox_exe = real_executable(FIREFOX);
    let setup = Setup::new(&[&firefox_exe]);
    let read = |name: &str| std::fs::read_to_string(setup.dir.path().join(name)).expect(name);
    let mut firefox = Firefox::start(pkcs11_module(), setup.daemon.socket(), &setup.server_ca_pem);
    for (ca_file, user, how) in [
        (
            "ec-ca.pem",
            EC_USER,
            Signed::Message("ecdsa_secp256r1_sha256"),
        ),
        (
            "rsa-ca.pem",
            RSA_USER,
            Signed::Message("rsa_pss_rsae_sha256"),
        ),
    ] {
        // The folder's name goes into nginx's command line: no spaces.
        let nginx_dir = setup.dir.path().join(ca_file.replace(".pem", "-nginx"));
        std::fs::create_dir(&nginx_dir).expect("nginx dir");
        let nginx = Nginx::start(
            &nginx_dir,
            &read("srv.pem"),
            &read("srv.key"),
            &read(ca_file),
        );
        let since = setup.audit_records().len();
        let page = firefox.load(&url(nginx.port())).unwrap_or_else(|e| {
            panic!(
                "{user}: {e}\n--- nginx\n{}\n--- audit\n{}\n--- firefox\n{}",
                nginx.log(),
                setup.audit_log(),
                tail(&firefox.log(), 40)
            )
        });
        assert!(
            page.contains(&format!("verified client: CN={user}")),
            "nginx did not answer a verified {user}:\n{page}\n--- nginx\n{}",
            nginx.log()
        );
        setup.assert_signed_since(since, &firefox_exe, setup.identity(user), how);
    }
}

#[test]
fn chromium_gets_no_page_when_the_digest_policy_does_not_list_it() {
    require(&[("chromium", have_chromium()), ("openssl", have_openssl())]);
    let chromium_exe = real_executable(CHROMIUM);
    // A policy is there, but lists another browser only.
    let setup = Setup::new(&[&real_executable(FIREFOX)]);
    let mut chromium = setup.chromium();
    let server = setup.s_server("ec-ca.pem", &[]);
    let load = chromium.load(
        &url(server.port()),
        &[AutoSelect::issuer_cn(server.port(), EC_CA)],
    );
    // Chromium chose the certificate, and failed when its key would not
    // sign: no page, and the reason is the signature.
    assert!(
        !load.timed_out
            && !load.dom.contains(EC_USER)
            && load.error().as_deref() == Some("net::ERR_SSL_CLIENT_AUTH_SIGNATURE_FAILED"),
        "expected a failed client signature:\n{}\n{}",
        load.dom,
        describe_load(&load, &setup)
    );
    // The agent refused, and its audit log names the program.
    let refusals: Vec<_> = setup
        .audit_records()
        .into_iter()
        .filter(|r| r["peer"]["exe"] == chromium_exe.as_str())
        .collect();
    assert!(
        !refusals.is_empty()
            && refusals.iter().all(|r| r["action"] == "sign_digest"
                && r["result"] == "digest_not_allowed"
                && r["identity"] == setup.ec.fingerprint_hex().as_str()),
        "no refusal of {chromium_exe} in the audit log:\n{}",
        setup.audit_log()
    );
}

/// What the README tells a user to do works: `p11agent setup chromium`
/// registers the module in `~/.pki/nssdb` and writes the digest policy
/// beside the agent's default configuration, and a daemon started
/// afterwards lets Chromium authenticate.
#[test]
fn chromium_authenticates_after_p11agent_setup_chromium() {
    require(&[("chromium", have_chromium()), ("openssl", have_openssl())]);
    let home = tempfile::tempdir().expect("tempdir");
    let config_home = home.path().join(".config");
    let out = std::process::Command::new(p11agent_bin())
        .args(["setup", "chromium", "--module"])
        .arg(pkcs11_module())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
        .expect("run p11agent setup");
    assert!(out.status.success(), "setup: {}", describe(&out));

    let setup = Setup::configured_in(&[], Some(&config_home));
    let mut chromium = Chromium::in_home(home.path(), setup.daemon.socket(), &setup.server_ca_pem);
    let server = setup.s_server("ec-ca.pem", &[]);
    let since = setup.audit_records().len();
    let load = chromium.load(
        &url(server.port()),
        &[AutoSelect::issuer_cn(server.port(), EC_CA)],
    );
    assert_verified_page(&load.dom, "TLSv1.3", EC_USER, &|| {
        format!(
            "{}\n--- s_server\n{}",
            describe_load(&load, &setup),
            server.log()
        )
    });
    setup.assert_signed_since(
        since,
        &real_executable(CHROMIUM),
        &setup.ec,
        Signed::Digest("ecdsa"),
    );
}
