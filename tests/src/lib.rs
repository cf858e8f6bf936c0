//! Shared helpers for the end-to-end tests: building and locating the
//! `p11agent` binary, running a daemon against a SoftHSM environment, and
//! running the command line against it.

pub mod browser;
pub mod programs;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use p11agent_client::{Client, ClientError};
use tempfile::TempDir;

/// The `p11agent` binary, built once per test process.
///
/// Test binaries of this crate do not get the agent's binary built for
/// them (it belongs to another package), so the first call runs
/// `cargo build` for it in the profile the tests were built with.
pub fn p11agent_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build(&["-p", "p11agent", "--bin", "p11agent"]).join("p11agent"))
}

/// The PKCS#11 module `libp11agent_pkcs11.so`, built once per test
/// process as [`p11agent_bin`] is.
pub fn pkcs11_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| build(&["-p", "p11agent-pkcs11", "--lib"]).join("libp11agent_pkcs11.so"))
}

/// The slow card module `libp11agent_bench_slowcard.so` (a wrapper
/// that can make another module slow, absent or crash), built once per
/// test process as [`p11agent_bin`] is.
pub fn slowcard_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        build(&["-p", "p11agent-bench-slowcard", "--lib"]).join("libp11agent_bench_slowcard.so")
    })
}

/// The environment that makes [`slowcard_module`] forward to `module`
/// without a card's delays; a test adds its switch (abort, flaky).
pub fn slowcard_env(module: &Path) -> Vec<(String, OsString)> {
    vec![
        ("P11AGENT_SLOWCARD_MODULE".into(), module.into()),
        ("P11AGENT_SLOWCARD_PROFILE".into(), "none".into()),
    ]
}

/// Whether `signature` (DER) is an ECDSA P-256 signature over
/// [`tls13_input`] of `label` by the key whose SubjectPublicKeyInfo is
/// `spki` (its uncompressed point ends it).
pub fn p256_verifies(spki: &[u8], label: &[u8], signature: &[u8]) -> bool {
    spki.len() >= 65
        && ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &spki[spki.len() - 65..],
        )
        .verify(&tls13_input(label), signature)
        .is_ok()
}

/// Runs `cargo build ARGS` in the profile the tests were built with;
/// returns `target/<profile>`.
fn build(args: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf();
    let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    build.args(["build", "--quiet"]).args(args);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
    profile_dir
}

/// A running `p11agent daemon`, stopped (SIGTERM) and cleaned up on drop.
pub struct Daemon {
    child: Child,
    dir: TempDir,
    socket: PathBuf,
    env: Vec<(String, OsString)>,
    /// `$XDG_CONFIG_HOME` of the daemon.
    config_home: PathBuf,
}

impl Daemon {
    /// Starts a daemon that loads `module` with `env` (e.g. the SoftHSM
    /// environment's `SOFTHSM2_CONF`) and waits until it answers.
    pub fn start(module: &Path, env: Vec<(String, OsString)>) -> Daemon {
        Self::start_with_args(&["--module".as_ref(), module.as_os_str()], env)
    }

    /// Starts a daemon with arbitrary `daemon` arguments, listening in a
    /// fresh temporary directory.
    pub fn start_with_args(args: &[&std::ffi::OsStr], env: Vec<(String, OsString)>) -> Daemon {
        Self::start_at(None, args, env)
    }

    /// Starts a daemon listening on `socket`, or in a fresh temporary
    /// directory when `None`.
    pub fn start_at(
        socket: Option<PathBuf>,
        args: &[&std::ffi::OsStr],
        env: Vec<(String, OsString)>,
    ) -> Daemon {
        Self::start_configured(socket, &[], args, env)
    }

    /// Starts a daemon as [`Daemon::start_at`], after writing `files`
    /// (path relative to its configuration folder, which
    /// [`Daemon::config_dir`] names, and text): e.g. `config.toml`, read
    /// by default, or `digest.d/NAME.toml`. The configuration folder is
    /// a temporary one unless `env` sets `XDG_CONFIG_HOME` (as a test of
    /// `p11agent setup` does, to start the daemon on what it wrote).
    pub fn start_configured(
        socket: Option<PathBuf>,
        files: &[(&str, &str)],
        args: &[&std::ffi::OsStr],
        env: Vec<(String, OsString)>,
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_home = env
            .iter()
            .find(|(name, _)| name == "XDG_CONFIG_HOME")
            .map(|(_, value)| PathBuf::from(value))
            .unwrap_or_else(|| xdg_config_home(dir.path()));
        for (name, text) in files {
            let path = config_home.join("p11agent").join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("config folder");
            }
            std::fs::write(&path, text).expect("config file");
        }
        let socket = socket.unwrap_or_else(|| dir.path().join("run").join("agent.sock"));
        let log = File::create(dir.path().join("daemon.log")).expect("log file");
        let child = Command::new(p11agent_bin())
            .arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "debug")
            .env("XDG_CONFIG_HOME", &config_home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn p11agent daemon");
        let mut daemon = Daemon {
            child,
            dir,
            socket,
            env,
            config_home,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match Client::connect(&self.socket) {
                Ok(_) => return,
                Err(ClientError::NotRunning { .. }) if Instant::now() < deadline => {}
                Err(e) => panic!("daemon never answered: {e}\n{}", self.log()),
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited with {status}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's configuration folder, `$XDG_CONFIG_HOME/p11agent`.
    pub fn config_dir(&self) -> PathBuf {
        self.config_home.join("p11agent")
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to daemon")
    }

    /// The daemon's process id, for looking at it in `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the daemon with SIGKILL and reaps it, as a crash would end
    /// it: connections break without a goodbye and the socket file stays
    /// behind, with nobody listening.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the daemon with SIGTERM, as a service manager would, and
    /// returns how it exited and everything it logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().expect("reap the daemon");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.log())
    }

    /// Runs `p11agent ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(args, &self.socket, &self.env)
    }

    /// Runs `p11agent ARGS` against this daemon and parses its stdout as
    /// JSON, asserting success.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "p11agent {args:?} failed: {}",
            describe(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "p11agent {args:?} printed no JSON ({e}): {}",
                describe(&out)
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A daemon already reaped (see `kill`) has no pid any more: the
        // number may belong to another process by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM lets the daemon remove its socket; kill if it lingers.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `p11agent daemon ARGS` with `env`, expecting it to refuse to
/// start, and returns what it printed on stderr. Panics when it starts
/// (it is then stopped): a daemon that starts would otherwise run until
/// the test is killed.
pub fn daemon_refuses(args: &[&std::ffi::OsStr], env: Vec<(String, OsString)>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(p11agent_bin())
        .arg("daemon")
        .arg("--socket")
        .arg(dir.path().join("run").join("agent.sock"))
        .args(args)
        .envs(env)
        .env("XDG_CONFIG_HOME", xdg_config_home(dir.path()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn p11agent daemon");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline || dir.path().join("run").join("agent.sock").exists() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon started:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(!status.success(), "the daemon exited with success:\n{text}");
    text
}

/// The `XDG_CONFIG_HOME` of a daemon whose files are in `dir`.
fn xdg_config_home(dir: &Path) -> PathBuf {
    dir.join("config")
}

/// Writes `pin` to the file `pin` in `dir`, readable by its owner only
/// (the agent refuses a PIN file others can read), and returns its path.
pub fn pin_file(dir: &Path, pin: &str) -> PathBuf {
    let path = dir.join("pin");
    std::fs::write(&path, format!("{pin}\n")).expect("pin file");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    path
}

/// A digest policy drop-in allowing each of `programs` (real executable
/// paths) every identity.
pub fn digest_policy(programs: &[&str]) -> String {
    programs
        .iter()
        .map(|program| format!("[[allow_digest]]\nprogram = {program:?}\n\n"))
        .collect()
}

/// Runs `p11agent ARGS --socket SOCKET` with `env`.
pub fn run_cli(args: &[&str], socket: &Path, env: &[(String, OsString)]) -> Output {
    Command::new(p11agent_bin())
        .args(args)
        .arg("--socket")
        .arg(socket)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("P11AGENT_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run p11agent")
}

/// Exit status, stdout and stderr of a finished command, for messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether the `openssl` command is available (tests that need it skip
/// with a message when it is not).
pub fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A free TCP port on 127.0.0.1 (free when asked; callers retry when it
/// is taken before they bind it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `openssl s_server -www` on 127.0.0.1, killed on drop: a TLS
/// server nobody here wrote.
pub struct OpensslServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl OpensslServer {
    /// Starts `s_server -www` with the certificate and key in `dir`
    /// (`srv.pem`, `srv.key`) and `extra` arguments (e.g. `-CAfile`,
    /// `-Verify 1`), logging to a file in `dir`; retries on another port
    /// when the one picked was taken in the meantime.
    pub fn start<S: AsRef<std::ffi::OsStr>>(dir: &Path, extra: &[S]) -> OpensslServer {
        for attempt in 0..10 {
            let port = free_port();
            let log = dir.join(format!("s_server.{port}.{attempt}.log"));
            let out = File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(dir.join("srv.pem"))
                .arg("-key")
                .arg(dir.join("srv.key"))
                .args(extra)
                .arg("-www")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("run openssl s_server");
            let mut server = OpensslServer { child, port, log };
            if server.wait_accepting() {
                return server;
            }
        }
        panic!("openssl s_server did not start on any port");
    }

    /// Whether the server accepts connections (false when it exited,
    /// e.g. because the port was taken).
    fn wait_accepting(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
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

    /// `https://localhost:PORT/`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS 1.3 client CertificateVerify input (64 spaces, the context
/// string, a zero byte, a SHA-256 "transcript hash" of `label`): what the
/// agent signs under its default purpose binding, for tests that sign.
pub fn tls13_input(label: &[u8]) -> Vec<u8> {
    let mut message = vec![0x20; 64];
    message.extend_from_slice(b"TLS 1.3, client CertificateVerify");
    message.push(0);
    message.extend_from_slice(&p11agent_softhsm::sha256(label));
    message
}
