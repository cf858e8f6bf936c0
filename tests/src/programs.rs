//! Real programs for the end-to-end tests of the PKCS#11 module: a
//! SoftHSM token with an EC P-256 and an RSA-2048 identity behind a
//! daemon whose digest policy lists the programs under test, `openssl
//! s_server` as a TLS server that verifies clients, a private `sshd`, and
//! a way to run each program with nothing of the system's or the user's
//! configuration (HOME, XDG_CONFIG_HOME and OPENSSL_CONF are the test's).
//!
//! Every process started here is killed on drop, so a failed assertion
//! leaves nothing running.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use tempfile::TempDir;

use crate::{
    describe, digest_policy, free_port, have_openssl, pin_file, pkcs11_module, Daemon,
    OpensslServer,
};

/// The token's user PIN; the daemon reads it from a file.
const PIN: &str = "864202";
const SO_PIN: &str = "24680135";
/// The token's label, which the module shows as its own.
pub const TOKEN: &str = "programs";
/// The CA that issued both client identities.
pub const CLIENT_CA: &str = "Programs Client CA";
/// CN (and label) of the EC P-256 identity.
pub const EC_USER: &str = "Programs EC User";
/// CN (and label) of the RSA-2048 identity.
pub const RSA_USER: &str = "Programs RSA User";
/// The programs, by the real paths the digest policy names them by.
pub const GNUTLS_CLI: &str = "/usr/bin/gnutls-cli";
/// curl (OpenSSL flavour, Debian's default).
pub const CURL: &str = "/usr/bin/curl";
/// OpenSSH 9.2 loads `-I MODULE` in the ssh process itself.
pub const SSH: &str = "/usr/bin/ssh";
/// The OpenSSH server, run privately per test.
pub const SSHD: &str = "/usr/sbin/sshd";
/// Lists the module's keys (`-D`) and makes host keys.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// OpenSSL's pkcs11-provider.
pub const PKCS11_PROVIDER: &str = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so";
/// libp11's OpenSSL engine.
pub const LIBP11_ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

/// How long one program may take to authenticate before it is killed
/// and the test fails: a handshake here takes well under a second, but
/// Java starts slowly on two busy cores.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Panics with the package to install when `path` is missing: a program
/// that is not installed is a failure, not a skip, since
/// `scripts/install-deps` brings every one of them.
pub fn require(package: &str, path: &str) {
    assert!(
        Path::new(path).exists(),
        "{package} missing ({path}): run scripts/install-deps"
    );
}

/// A token with an EC P-256 and an RSA-2048 identity from one client CA,
/// a server certificate for localhost, and a daemon whose digest policy
/// lists `programs` and whose purpose binding is the default (TLS only).
pub struct Setup {
    _hsm: SoftHsm,
    dir: TempDir,
    /// The EC P-256 identity.
    pub ec: Provisioned,
    /// The RSA-2048 identity.
    pub rsa: Provisioned,
    /// The daemon, with the token, the PIN file and the audit log.
    pub daemon: Daemon,
    audit: PathBuf,
}

impl Setup {
    /// `programs` are the real paths (as `/proc/PID/exe` shows them) the
    /// digest policy lists, one `[[allow_digest]]` each.
    pub fn new(programs: &[&str]) -> Setup {
        assert!(have_openssl(), "openssl missing: run scripts/install-deps");
        let hsm = SoftHsm::new().expect("softhsm");
        let token = hsm.create_token(TOKEN, PIN, SO_PIN).expect("token");
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
        // A CA that issued neither identity, for servers that must refuse.
        write(
            "other-ca.pem",
            &Pki::new("Some Other CA").expect("pki").root_pem(),
        );
        // The programs' own HOME and XDG_CONFIG_HOME, and an OpenSSL
        // configuration that loads nothing, for those that need none.
        for sub in ["home", "xdg"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect(sub);
        }
        write("openssl-empty.cnf", "# nothing: no system configuration\n");

        let pin = pin_file(dir.path(), PIN);
        let audit = dir.path().join("audit.log");
        let policy = digest_policy(programs);
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

    /// The test's folder: certificates, configuration files, logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `openssl s_server -www` that fails every handshake without a client
    /// certificate from the client CA, with `extra` arguments.
    pub fn s_server(&self, extra: &[&str]) -> OpensslServer {
        self.s_server_trusting("client-ca.pem", extra)
    }

    /// As [`Setup::s_server`], trusting only the CA in `ca_file` (in the
    /// test's folder) for client certificates.
    pub fn s_server_trusting(&self, ca_file: &str, extra: &[&str]) -> OpensslServer {
        let ca = self.dir().join(ca_file);
        let mut args: Vec<&OsStr> = vec![
            "-CAfile".as_ref(),
            ca.as_os_str(),
            "-Verify".as_ref(),
            "1".as_ref(),
            "-verify_return_error".as_ref(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        OpensslServer::start(self.dir(), &args)
    }

    /// The `pkcs11:` URI of an identity's objects in the module: the
    /// module shows the token under its own label, and each object under
    /// the label it has on the token.
    pub fn uri(&self, user: &str, kind: &str) -> String {
        format!(
            "pkcs11:token={TOKEN};object={};type={kind}",
            user.replace(' ', "%20")
        )
    }

    /// A file in the test's folder, written with `text`.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, text).expect(name);
        path
    }

    /// Prepares `command` as a user's program would run: with the agent's
    /// socket, the test's folder as working directory, and HOME,
    /// XDG_CONFIG_HOME and (unless the test set its own) OPENSSL_CONF in
    /// the test's folder, so that no configuration of the system's or the
    /// user's (a p11-kit module, an ssh agent, an OpenSSL provider) takes
    /// part.
    fn isolate(&self, command: &mut Command) {
        let has_openssl_conf = command
            .get_envs()
            .any(|(name, value)| name == "OPENSSL_CONF" && value.is_some());
        if !has_openssl_conf {
            command.env("OPENSSL_CONF", self.dir().join("openssl-empty.cnf"));
        }
        command
            .current_dir(self.dir())
            .env("HOME", self.dir().join("home"))
            .env("XDG_CONFIG_HOME", self.dir().join("xdg"))
            .env("P11AGENT_SOCK", self.daemon.socket())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("JAVA_TOOL_OPTIONS")
            .env_remove("PKCS11SPY");
    }

    /// Runs `command` isolated (see [`Setup::isolate`]) with `stdin` as
    /// its input, killing it after [`RUN_TIMEOUT`]. Output goes to files,
    /// so a program that writes much while nobody reads never blocks.
    pub fn run_with_input(&self, command: &mut Command, stdin: &[u8]) -> Output {
        self.isolate(command);
        // Each run's files keep their own name, for a look after a failure.
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let name = format!("run-{}", RUNS.fetch_add(1, Ordering::Relaxed));
        let out_path = self.dir().join(format!("{name}.out"));
        let err_path = self.dir().join(format!("{name}.err"));
        let in_path = self.dir().join(format!("{name}.in"));
        std::fs::write(&in_path, stdin).expect("stdin file");
        command
            .stdin(File::open(&in_path).expect("stdin file"))
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"));
        let mut child = Guard(command.spawn().expect("run the program"));
        let status = child.wait_until(Instant::now() + RUN_TIMEOUT);
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// Runs `command` (see [`Setup::run_with_input`]) with an HTTP GET
    /// request on stdin, for clients that send what they read.
    pub fn run(&self, command: &mut Command) -> Output {
        self.run_with_input(command, b"GET / HTTP/1.0\r\n\r\n")
    }

    /// Every record of the agent's audit log so far.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }

    /// Asserts that since the audit log had `since` records, `program`
    /// had the agent make at least one signature with `identity`, every
    /// one of them with `action` (`sign` or `sign_digest`) and `result`.
    pub fn assert_audited(
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
            "expected {action} with {id} for {program} ({result}):\n{records:#?}\n--- daemon\n{}",
            self.daemon.log()
        );
    }

    /// The identity whose certificate's CN is `user`.
    pub fn identity(&self, user: &str) -> &Provisioned {
        if user == EC_USER {
            &self.ec
        } else {
            &self.rsa
        }
    }

    /// An OpenSSL configuration that activates the default provider and
    /// pkcs11-provider over the module.
    pub fn provider_config(&self) -> PathBuf {
        self.file(
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
        )
    }

    /// An OpenSSL configuration that loads libp11's engine over the module.
    pub fn engine_config(&self) -> PathBuf {
        self.file(
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

    /// The OpenSSH public key (`TYPE BASE64`) of `identity`, as
    /// `ssh-keygen -D MODULE` lists it from the module's objects: the
    /// test asserts that the module shows this very key, converted
    /// independently from the certificate's SubjectPublicKeyInfo.
    pub fn ssh_public_key(&self, identity: &Provisioned) -> String {
        let spki = self.file(
            &format!("{}.spki.pem", identity.fingerprint_hex()),
            &pem("PUBLIC KEY", &identity.public_key_spki),
        );
        let out = Command::new(SSH_KEYGEN)
            .args(["-i", "-m", "PKCS8", "-f"])
            .arg(&spki)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-keygen -i");
        assert!(out.status.success(), "ssh-keygen -i: {}", describe(&out));
        let expected = key_blob(&String::from_utf8_lossy(&out.stdout))
            .expect("ssh-keygen -i prints a public key");

        let listed =
            self.run_with_input(Command::new(SSH_KEYGEN).arg("-D").arg(pkcs11_module()), b"");
        assert!(
            listed.status.success(),
            "ssh-keygen -D: {}",
            describe(&listed)
        );
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter_map(key_blob)
            .find(|key| *key == expected)
            .unwrap_or_else(|| {
                panic!(
                    "ssh-keygen -D does not list {expected}:\n{}",
                    describe(&listed)
                )
            })
    }
}

/// `TYPE BASE64` of an OpenSSH public key line, without its comment.
fn key_blob(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let blob = words.next()?;
    (kind.starts_with("ssh-") || kind.starts_with("ecdsa-")).then(|| format!("{kind} {blob}"))
}

/// `der` in PEM with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Asserts that `out` is the page `s_server -www` gives a client it
/// verified, over `protocol`, with the certificate of `user`.
pub fn assert_verified(out: &Output, protocol: &str, user: &str, server: &OpensslServer) {
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

/// Asserts that `out` is no page for a verified client: the server
/// refused the handshake.
pub fn assert_not_verified(out: &Output, server: &OpensslServer) {
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        !page.contains("Client certificate"),
        "the server must not have verified the client:\n{}\n--- s_server\n{}",
        describe(out),
        server.log()
    );
}

/// The handshakes each TLS program makes: both keys, TLS 1.3 and 1.2,
/// as `s_server` arguments.
pub const HANDSHAKES: [(&str, &str, &[&str]); 4] = [
    (EC_USER, "TLSv1.3", &[]),
    (EC_USER, "TLSv1.2", &["-tls1_2"]),
    (RSA_USER, "TLSv1.3", &[]),
    (RSA_USER, "TLSv1.2", &["-tls1_2"]),
];

/// The real path of a program on PATH, as `/proc/PID/exe` shows it.
pub fn real_path(program: &str) -> String {
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

/// A child process killed (SIGKILL) and reaped on drop.
struct Guard(Child);

impl Guard {
    /// Waits for the child until `deadline`, then kills it.
    fn wait_until(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.0.kill();
                return self.0.wait().expect("reap a killed program");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A private `sshd` on 127.0.0.1, run in the foreground as the current
/// user with its own host key and configuration in a folder of its own,
/// and killed on drop. It lets the current user in by public key only,
/// with the keys in [`Sshd::authorize`]'s file, which it reads on every
/// connection.
pub struct Sshd {
    child: Guard,
    port: u16,
    dir: PathBuf,
}

impl Sshd {
    /// Starts sshd with its files in `dir` (created); retries on another
    /// port when the one picked was taken in the meantime.
    pub fn start(dir: &Path) -> Sshd {
        require("openssh-server", SSHD);
        std::fs::create_dir_all(dir).expect("sshd folder");
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            let out = Command::new(SSH_KEYGEN)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "test host", "-f"])
                .arg(&host_key)
                .stdin(Stdio::null())
                .output()
                .expect("run ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {}", describe(&out));
        }
        std::fs::write(dir.join("authorized_keys"), "").expect("authorized_keys");
        if nix::unistd::Uid::effective().is_root() {
            // sshd running as root separates privileges into this folder
            // (the package creates it at boot) and refuses to start
            // without it: say so plainly.
            assert!(
                Path::new("/run/sshd").is_dir(),
                "sshd as root needs /run/sshd (mkdir -m 755 /run/sshd)"
            );
        }
        for attempt in 0..10 {
            let port = free_port();
            // StrictModes: the temporary folders are not the user's home.
            // PermitRootLogin: the tests also run as root (containers).
            // sshd ignores HOME: no user's or system's file is read but
            // this configuration.
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\n\
                 HostKey {host}\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 AuthorizedPrincipalsFile none\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin yes\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nHostbasedAuthentication no\n\
                 AllowAgentForwarding no\nAllowTcpForwarding no\nX11Forwarding no\n\
                 PrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n",
                host = host_key.display(),
                dir = dir.display()
            );
            let config_path = dir.join("sshd_config");
            std::fs::write(&config_path, config).expect("sshd_config");
            let log = dir.join(format!("sshd.{port}.{attempt}.log"));
            let child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("sshd log"))
                .stderr(File::create(&log).expect("sshd log"))
                .spawn()
                .expect("run sshd");
            let mut sshd = Sshd {
                child: Guard(child),
                port,
                dir: dir.to_path_buf(),
            };
            if sshd.wait_listening() {
                return sshd;
            }
            eprintln!(
                "sshd did not start on port {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("sshd did not start on any port");
    }

    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Makes `keys` (OpenSSH public key lines) the only ones let in.
    pub fn authorize(&self, keys: &[&str]) {
        let text: String = keys.iter().map(|key| format!("{key}\n")).collect();
        std::fs::write(self.dir.join("authorized_keys"), text).expect("authorized_keys");
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

/// The name of the current user, for `ssh USER@127.0.0.1`.
pub fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|user| user.name)
        .expect("the current user has a name")
}

/// `ssh` to `sshd` through the module as its PKCS11Provider, running
/// `echo authenticated-through-agent`, with `public_key` (an OpenSSH
/// public key line) as its only identity: with `IdentitiesOnly`, ssh
/// uses a PKCS#11 key only when its public key is also given as an
/// IdentityFile (OpenSSH's `pubkey_prepare`), which picks the identity
/// under test. No agent, no configuration file, no known host is read.
pub fn ssh_command(setup: &Setup, sshd: &Sshd, public_key: &str) -> Command {
    require("openssh-client", SSH);
    let key_file = setup.file("ssh-identity.pub", &format!("{public_key}\n"));
    let mut command = Command::new(SSH);
    command
        // -v: a failure shows which keys ssh offered and what sshd said.
        .args(["-v", "-F", "/dev/null"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            setup.dir().join("known_hosts").display()
        ))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes"])
        .args(["-o", "ConnectTimeout=20"])
        .arg("-i")
        .arg(key_file)
        .arg("-I")
        .arg(pkcs11_module())
        .arg("-p")
        .arg(sshd.port().to_string())
        .arg(format!("{}@127.0.0.1", user_name()))
        .arg("echo authenticated-through-agent");
    command
}

/// A Java TLS client over SunPKCS11: configures the provider from the
/// file in `args[0]`, opens the PKCS11 KeyStore, uses the private key
/// whose alias (the module's `CKA_LABEL`) is `args[1]`, trusts the CA in
/// `args[2]`, connects to localhost port `args[3]` with protocol
/// `args[4]` (`TLSv1.3` or `TLSv1.2`), sends a GET and prints the answer.
///
/// The key manager is wrapped to always name `args[1]`: Java's own picks
/// whichever key the server's request fits first, and both identities on
/// the token come from the same CA.
const JAVA_CLIENT: &str = r#"
import java.io.*;
import java.net.Socket;
import java.security.*;
import java.security.cert.*;
import javax.net.ssl.*;

public class P11Client {
    public static void main(String[] args) throws Exception {
        Provider provider = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(provider);
        KeyStore keys = KeyStore.getInstance("PKCS11", provider);
        // The module needs no PIN (the agent has its own): any will do.
        keys.load(null, "unused".toCharArray());
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("NewSunX509");
        kmf.init(keys, null);
        X509ExtendedKeyManager inner = (X509ExtendedKeyManager) kmf.getKeyManagers()[0];
        String alias = aliasFor(inner, args[1]);
        X509ExtendedKeyManager fixed = new X509ExtendedKeyManager() {
            public String chooseClientAlias(String[] t, Principal[] i, Socket s) { return alias; }
            public String chooseEngineClientAlias(String[] t, Principal[] i, SSLEngine e) { return alias; }
            public String chooseServerAlias(String t, Principal[] i, Socket s) { return null; }
            public String[] getClientAliases(String t, Principal[] i) { return new String[] { alias }; }
            public String[] getServerAliases(String t, Principal[] i) { return null; }
            public X509Certificate[] getCertificateChain(String a) { return inner.getCertificateChain(a); }
            public PrivateKey getPrivateKey(String a) { return inner.getPrivateKey(a); }
        };

        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(args[2])) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);

        SSLContext context = SSLContext.getInstance("TLS");
        context.init(new KeyManager[] { fixed }, tmf.getTrustManagers(), null);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory()
                .createSocket("localhost", Integer.parseInt(args[3]))) {
            socket.setEnabledProtocols(new String[] { args[4] });
            socket.startHandshake();
            OutputStream out = socket.getOutputStream();
            out.write("GET / HTTP/1.0\r\n\r\n".getBytes("US-ASCII"));
            out.flush();
            socket.getInputStream().transferTo(System.out);
        }
        System.out.flush();
    }

    // The key manager's alias of the private key entry whose certificate's
    // subject is CN=<cn>: NewSunX509 names entries by its own counters.
    static String aliasFor(X509ExtendedKeyManager km, String cn) {
        for (String type : new String[] { "EC", "RSA" }) {
            String[] aliases = km.getClientAliases(type, null);
            if (aliases == null) continue;
            for (String alias : aliases) {
                X509Certificate[] chain = km.getCertificateChain(alias);
                if (chain != null && chain[0].getSubjectX500Principal().getName().equals("CN=" + cn)) {
                    return alias;
                }
            }
        }
        throw new IllegalStateException("no key for CN=" + cn);
    }
}
"#;

/// The Java client, compiled into the test's folder with `javac`.
pub struct JavaClient {
    /// The canonical `java`, as `/proc/PID/exe` shows it: what the digest
    /// policy lists.
    pub java: String,
    classes: PathBuf,
    config: PathBuf,
}

impl JavaClient {
    /// Compiles the client (`javac`, from the JDK's `bin` beside `java`)
    /// and writes the SunPKCS11 configuration for the module.
    pub fn compile(setup: &Setup) -> JavaClient {
        let java = real_path("java");
        let javac = Path::new(&java).with_file_name("javac");
        assert!(
            javac.exists(),
            "javac missing beside {java}: run scripts/install-deps (a JDK)"
        );
        let source_dir = setup.dir().join("java");
        std::fs::create_dir_all(&source_dir).expect("java folder");
        let source = source_dir.join("P11Client.java");
        std::fs::write(&source, JAVA_CLIENT).expect("java source");
        let classes = setup.dir().join("classes");
        let out = setup.run_with_input(
            Command::new(&javac).arg("-d").arg(&classes).arg(&source),
            b"",
        );
        assert!(out.status.success(), "javac: {}", describe(&out));
        let config = setup.file(
            "sunpkcs11.cfg",
            &format!("name = p11agent\nlibrary = {}\n", pkcs11_module().display()),
        );
        JavaClient {
            java,
            classes,
            config,
        }
    }

    /// `java P11Client` connecting as `user` with `protocol` to `server`.
    pub fn command(&self, user: &str, protocol: &str, server: &OpensslServer) -> Command {
        let mut command = Command::new(&self.java);
        command
            // No JIT warm-up for a run this short: starts faster.
            .args(["-XX:TieredStopAtLevel=1", "-Xshare:auto"])
            .arg("-cp")
            .arg(&self.classes)
            .arg("P11Client")
            .arg(&self.config)
            .arg(user)
            .arg("server-ca.pem")
            .arg(server.port().to_string())
            .arg(protocol);
        command
    }
}
