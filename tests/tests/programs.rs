//! Command-line programs authenticate with a key on the token through the
//! agent's PKCS#11 module, as a user sets them up: gnutls-cli with the
//! module as its provider, `openssl s_client` through OpenSSL's
//! pkcs11-provider, and curl through libp11's OpenSSL engine, each against
//! `openssl s_server -Verify 1 -verify_return_error -www`, whose page only
//! a verified client gets, as does a Java SunPKCS11 client; and `ssh -I`
//! against a private sshd. The
//! agent's audit log shows that the agent made each signature for that
//! program.
//!
//! Every test has its own SoftHSM token, daemon, configuration files and
//! port; nothing of the system's is read or written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use p11agent_tests::{describe, have_openssl, pkcs11_module, Daemon, OpensslServer};
use tempfile::TempDir;

const PIN: &str = "864202";
const SO_PIN: &str = "24680135";
const CLIENT_CA: &str = "Programs Client CA";
const EC_USER: &str = "Programs EC User";
const RSA_USER: &str = "Programs RSA User";
const GNUTLS_CLI: &str = "/usr/bin/gnutls-cli";
const CURL: &str = "/usr/bin/curl";
const PKCS11_PROVIDER: &str = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so";
const LIBP11_ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

/// A token with an EC P-256 and an RSA-2048 identity from one client CA,
/// a server certificate for localhost, and a daemon whose digest policy
/// lists `programs` and whose purpose binding is the default (TLS only).
struct Setup {
    _hsm: SoftHsm,
    dir: TempDir,
    ec: Provisioned,
    rsa: Provisioned,
    daemon: Daemon,
    audit: PathBuf,
}

impl Setup {
    fn new(programs: &[&str]) -> Setup {
        for (what, path) in [
            ("gnutls-bin", GNUTLS_CLI),
            ("curl", CURL),
            ("pkcs11-provider", PKCS11_PROVIDER),
            ("libengine-pkcs11-openssl", LIBP11_ENGINE),
        ] {
            assert!(
                Path::new(path).exists(),
                "{what} missing ({path}): run scripts/install-deps"
            );
        }
        assert!(have_openssl(), "openssl missing: run scripts/install-deps");
        let hsm = SoftHsm::new().expect("softhsm");
        let token = hsm.create_token("programs", PIN, SO_PIN).expect("token");
        let pki = Pki::new(CLIENT_CA).expect("pki");
        let ec = token
            .add_identity(&pki, &LeafSpec::new(EC_USER).key(KeyAlg::EcP256))
            .expect("ec identity");
        let rsa = token
            .add_identity(&pki, &LeafSpec::new(RSA_USER).key(KeyAlg::Rsa2048))
            .expect("rsa identity");

        let dir = tempfile::tempdir().expect("tempdir");
        let server_pki = Pki::new("Programs Server CA").expect("pki");
        let server = server_pki.localhost_server().expect("server certificate");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect(name);
        };
        write("srv.pem", &server.chain_pem);
        write("srv.key", &server.key_pem);
        write("server-ca.pem", &server_pki.root_pem());
        write("client-ca.pem", &pki.root_pem());

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
            &[("digest.d/programs.toml", &policy)],
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
            ec,
            rsa,
            daemon,
            audit,
        }
    }

    /// `openssl s_server -www` that fails every handshake without a client
    /// certificate from the client CA, with `extra` arguments.
    fn s_server(&self, extra: &[&str]) -> OpensslServer {
        let ca = self.dir.path().join("client-ca.pem");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-CAfile".as_ref(),
            ca.as_os_str(),
            "-Verify".as_ref(),
            "1".as_ref(),
            "-verify_return_error".as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        OpensslServer::start(self.dir.path(), &args)
    }

    /// The `pkcs11:` URI of an identity's objects in the module: the
    /// module shows the token under its own label, and each object under
    /// the label it has on the token.
    fn uri(&self, user: &str, kind: &str) -> String {
        format!(
            "pkcs11:token=programs;object={};type={kind}",
            user.replace(' ', "%20")
        )
    }

    /// A file in the test's folder, written with `text`.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect(name);
        path
    }

    /// Runs `command` with the agent's socket, the test's folder as its
    /// working directory and HOME, and a GET request on stdin.
    fn run(&self, command: &mut Command) -> Output {
        command
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("P11AGENT_SOCK", self.daemon.socket())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run the program");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            // A program that reads no stdin closes it: that is no error.
            let _ = stdin.write_all(b"GET / HTTP/1.0\r\n\r\n");
        }
        child.wait_with_output().expect("program output")
    }

    fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }

    /// Asserts that since the audit log had `since` records, `program`
    /// had the agent make at least one signature with `identity`, every
    /// one of them with `action` (`sign` or `sign_digest`) and `result`.
    fn assert_audited(
        &self,
        since: usize,
        program: &str,
        identity: &Provisioned,
        action: &str,
        result: &str,
    ) {
        let records = self.audit_records();
        let by_program: Vec<_> = records[since..]
            .iter()
            .filter(|r| r["peer"]["exe"] == program && r["action"] != "connect")
            .collect();
        let id = identity.fingerprint_hex();
        assert!(
            !by_program.is_empty()
                && by_program.iter().all(|r| r["action"] == action
                    && r["identity"] == id.as_str()
                    && r["result"] == result),
            "expected {action} with {id} for {program} ({result}):\n{records:#?}"
        );
    }

    fn identity(&self, user: &str) -> &Provisioned {
        if user == EC_USER {
            &self.ec
        } else {
            &self.rsa
        }
    }
}

/// Asserts that `out` is the page `s_server -www` gives a client it
/// verified, over `protocol`, with the certificate of `user`.
fn assert_verified(out: &Output, protocol: &str, user: &str, server: &OpensslServer) {
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains(&format!("Protocol  : {protocol}"))
            && page.contains("Client certificate")
            && page.contains(&format!("Subject: CN={user}")),
        "no {protocol} page for a verified {user}:\n{}\n--- s_server\n{}",
        describe(out),
        server.log()
    );
}

/// The handshakes each program makes: both keys, TLS 1.3 and 1.2.
const HANDSHAKES: [(&str, &str, &[&str]); 4] = [
    (EC_USER, "TLSv1.3", &[]),
    (EC_USER, "TLSv1.2", &["-tls1_2"]),
    (RSA_USER, "TLSv1.3", &[]),
    (RSA_USER, "TLSv1.2", &["-tls1_2"]),
];

/// gnutls-cli loads the module as its provider and hashes itself: every
/// signature is a digest, which the policy lets gnutls-cli have.
#[test]
fn gnutls_cli_authenticates_through_the_module() {
    let setup = Setup::new(&[GNUTLS_CLI]);
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(
            Command::new(GNUTLS_CLI)
                .arg("--provider")
                .arg(pkcs11_module())
                .arg("--x509certfile")
                .arg(setup.uri(user, "cert"))
                .arg("--x509keyfile")
                .arg(setup.uri(user, "private"))
                .arg("--x509cafile")
                .arg("server-ca.pem")
                .arg("-p")
                .arg(server.port().to_string())
                .arg("localhost"),
        );
        assert_verified(&out, protocol, user, &server);
        setup.assert_audited(since, GNUTLS_CLI, setup.identity(user), "sign_digest", "ok");
    }
}

/// `openssl s_client` with OpenSSL's pkcs11-provider over the module: the
/// provider signs the whole handshake message (hash-and-sign), which the
/// agent's purpose binding admits as TLS without any digest policy.
#[test]
fn openssl_s_client_authenticates_through_pkcs11_provider() {
    let setup = Setup::new(&[]);
    let config = setup.file(
        "openssl-provider.cnf",
        &format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nproviders = provider_sect\n\
             [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\
             [default_sect]\nactivate = 1\n\
             [pkcs11_sect]\nmodule = {PKCS11_PROVIDER}\n\
             pkcs11-module-path = {}\nactivate = 1\n",
            pkcs11_module().display()
        ),
    );
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(
            Command::new("openssl")
                .env("OPENSSL_CONF", &config)
                .arg("s_client")
                .arg("-connect")
                .arg(format!("127.0.0.1:{}", server.port()))
                .arg("-cert")
                .arg(setup.uri(user, "cert"))
                .arg("-key")
                .arg(setup.uri(user, "private"))
                .arg("-CAfile")
                .arg("server-ca.pem")
                .arg("-quiet")
                .arg("-ign_eof"),
        );
        assert_verified(&out, protocol, user, &server);
        let openssl = real_path("openssl");
        setup.assert_audited(since, &openssl, setup.identity(user), "sign", "ok");
    }
}

/// curl with libp11's engine over the module: the engine hashes, so the
/// signatures are digests, admitted by the policy for curl.
#[test]
fn curl_authenticates_through_the_libp11_engine() {
    let setup = Setup::new(&[CURL]);
    let config = engine_config(&setup);
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(&mut curl(&setup, &config, user, &server));
        assert_verified(&out, protocol, user, &server);
        setup.assert_audited(since, CURL, setup.identity(user), "sign_digest", "ok");
    }
}

/// A program the digest policy does not list gets no digest signature:
/// curl's handshake fails, and the refusal is audited under its path.
#[test]
fn a_program_the_policy_does_not_list_is_refused_and_audited() {
    let setup = Setup::new(&[GNUTLS_CLI]);
    let config = engine_config(&setup);
    let server = setup.s_server(&[]);
    let since = setup.audit_records().len();
    let out = setup.run(&mut curl(&setup, &config, EC_USER, &server));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && !page.contains("Client certificate"),
        "curl must not get the page:\n{}",
        describe(&out)
    );
    setup.assert_audited(since, CURL, &setup.ec, "sign_digest", "digest_not_allowed");
}

fn engine_config(setup: &Setup) -> PathBuf {
    setup.file(
        "openssl-engine.cnf",
        &format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n\
             [pkcs11_section]\nengine_id = pkcs11\n\
             dynamic_path = {LIBP11_ENGINE}\nMODULE_PATH = {}\ninit = 0\n",
            pkcs11_module().display()
        ),
    )
}

fn curl(setup: &Setup, config: &Path, user: &str, server: &OpensslServer) -> Command {
    let mut command = Command::new(CURL);
    command
        .env("OPENSSL_CONF", config)
        .args(["-sS", "--max-time", "30", "--cacert", "server-ca.pem"])
        .args([
            "--engine",
            "pkcs11",
            "--key-type",
            "ENG",
            "--cert-type",
            "ENG",
        ])
        .arg("--cert")
        .arg(setup.uri(user, "cert"))
        .arg("--key")
        .arg(setup.uri(user, "private"))
        .arg(server.url());
    command
}

/// The real path of a program on PATH, as `/proc/PID/exe` shows it.
fn real_path(program: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::fs::canonicalize(&path)
        .unwrap_or_else(|e| panic!("{program} ({path}): {e}"))
        .display()
        .to_string()
}

/// `ssh -I MODULE` logs in to a private sshd on 127.0.0.1 whose
/// authorized keys are the token's (as `ssh-keygen -D` prints them): ssh
/// signs the session hash with `CKM_ECDSA` or `CKM_RSA_PKCS` over a
/// SHA-512 DigestInfo, digests the policy lets ssh have.
#[test]
fn ssh_logs_in_with_a_key_on_the_token() {
    let setup = Setup::new(&[SSH]);
    assert!(
        Path::new(SSHD).exists(),
        "openssh-server missing: run scripts/install-deps"
    );
    let sshd = Sshd::start(&setup);
    for (user, key_type) in [(EC_USER, "ecdsa-sha2-nistp256"), (RSA_USER, "ssh-rsa")] {
        sshd.authorize(&setup, key_type, user);
        let since = setup.audit_records().len();
        let out = setup.run(
            Command::new(SSH)
                .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
                .args(["-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=no"])
                .arg("-o")
                .arg(format!(
                    "UserKnownHostsFile={}",
                    setup.dir.path().join("known_hosts").display()
                ))
                .arg("-I")
                .arg(pkcs11_module())
                .arg("-p")
                .arg(sshd.port.to_string())
                .arg(format!("{}@127.0.0.1", whoami()))
                .arg("echo authenticated-through-the-agent"),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("authenticated-through-the-agent"),
            "ssh with {user}'s key: {}\n--- sshd\n{}",
            describe(&out),
            sshd.log()
        );
        setup.assert_audited(since, SSH, setup.identity(user), "sign_digest", "ok");
    }
}

const SSH: &str = "/usr/bin/ssh";
const SSHD: &str = "/usr/sbin/sshd";

/// A private sshd on 127.0.0.1: its host key, configuration, authorized
/// keys and log in the test's folder; killed on drop.
struct Sshd {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl Sshd {
    fn start(setup: &Setup) -> Sshd {
        let dir = setup.dir.path().join("sshd");
        std::fs::create_dir_all(&dir).expect("sshd folder");
        let host_key = dir.join("host_key");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .expect("ssh-keygen");
        assert!(keygen.status.success(), "{}", describe(&keygen));
        if nix::unistd::Uid::effective().is_root() {
            // sshd run as root wants its privilege separation folder,
            // which only a booted system's tmpfiles create.
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let port = p11agent_tests::free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\n\
                 AuthorizedKeysFile {}\nPidFile {}\nStrictModes no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n",
                host_key.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display(),
            ),
        )
        .expect("sshd_config");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run sshd");
        let sshd = Sshd { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sshd never listened:\n{}",
                sshd.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        sshd
    }

    /// Makes `user`'s key of `key_type` (as `ssh-keygen -D` lists it
    /// through the module, labelled) the only authorized key.
    fn authorize(&self, setup: &Setup, key_type: &str, user: &str) {
        let out = setup.run(Command::new("ssh-keygen").arg("-D").arg(pkcs11_module()));
        let listed = String::from_utf8_lossy(&out.stdout);
        let key = listed
            .lines()
            .find(|line| line.starts_with(key_type) && line.ends_with(user))
            .unwrap_or_else(|| panic!("no {key_type} key listed: {}", describe(&out)));
        std::fs::write(self.dir.join("authorized_keys"), format!("{key}\n"))
            .expect("authorized_keys");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A Java 17 TLS client with SunPKCS11 over the module as its key store
/// (`tests/java/SunPkcs11Client.java`, run from source): the key manager
/// picks the token's key for the server's CA, and the agent signs it,
/// TLS 1.3 and 1.2.
#[test]
fn java_sunpkcs11_authenticates_through_the_module() {
    let java = real_path("java");
    let setup = Setup::new(&[&java]);
    let config = setup.file(
        "sunpkcs11.cfg",
        &format!("name = p11agent\nlibrary = {}\n", pkcs11_module().display()),
    );
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/SunPkcs11Client.java");
    for protocol in ["TLSv1.3", "TLSv1.2"] {
        let server = setup.s_server(&[]);
        let since = setup.audit_records().len();
        let out = setup.run(
            Command::new(&java)
                .arg(&client)
                .arg(&config)
                .arg("server-ca.pem")
                .arg(server.port().to_string())
                .arg(protocol),
        );
        let page = String::from_utf8_lossy(&out.stdout);
        let user = [EC_USER, RSA_USER]
            .into_iter()
            .find(|user| page.contains(&format!("Subject: CN={user}")))
            .unwrap_or_else(|| {
                panic!(
                    "no {protocol} page for a verified client: {}\n--- s_server\n{}",
                    describe(&out),
                    server.log()
                )
            });
        assert_verified(&out, protocol, user, &server);
        let records = setup.audit_records();
        let id = setup.identity(user).fingerprint_hex();
        assert!(
            records[since..]
                .iter()
                .any(|r| r["peer"]["exe"] == java.as_str()
                    && r["identity"] == id.as_str()
                    && r["result"] == "ok"),
            "no signature by {user} for java in the audit log:\n{records:#?}"
        );
    }
}
