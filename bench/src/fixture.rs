//! What the measurements run against: the `p11agent` binary and the
//! agent's PKCS#11 module, daemons started from the binary, and a PIN
//! file.
//!
//! The binary and the module are built from this workspace, unless
//! [`AGENT_ENV`] (`P11AGENT_BENCH_AGENT`) or [`MODULE_ENV`]
//! (`P11AGENT_BENCH_MODULE`) name files to measure instead: a daemon and
//! a module built from an older commit, to compare the same benchmark
//! before and after a change.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use p11agent_client::{Client, ClientError};

use crate::error::BenchError;

/// The environment variable naming a `p11agent` binary to measure
/// instead of building one.
pub(crate) const AGENT_ENV: &str = "P11AGENT_BENCH_AGENT";

/// The environment variable naming a `libp11agent_pkcs11.so` to measure
/// instead of building one.
pub(crate) const MODULE_ENV: &str = "P11AGENT_BENCH_MODULE";

/// Builds the `p11agent` binary with cargo, in the profile this benchmark
/// was built with (release under `cargo run --release`), and returns its
/// path as cargo reports it; or the file [`AGENT_ENV`] names.
///
/// Building rather than looking for a file next to our own: a stale
/// daemon from an earlier commit would make the numbers lie. One is
/// measured only when asked for by name.
pub(crate) fn agent_binary() -> Result<PathBuf, BenchError> {
    if let Some(path) = overridden(AGENT_ENV)? {
        return Ok(path);
    }
    eprintln!("building the p11agent daemon");
    build("p11agent", &["--bin", "p11agent"], "p11agent")
}

/// Builds the agent's PKCS#11 module, `libp11agent_pkcs11.so`, as
/// [`agent_binary`] builds the daemon (same profile, same reason), and
/// returns its path; or the file [`MODULE_ENV`] names.
pub(crate) fn agent_module() -> Result<PathBuf, BenchError> {
    if let Some(path) = overridden(MODULE_ENV)? {
        return Ok(path);
    }
    eprintln!("building the agent's PKCS#11 module");
    build("p11agent-pkcs11", &["--lib"], "p11agent_pkcs11")
}

/// Builds the slow card module, `libp11agent_bench_slowcard.so` (see
/// `bench/slowcard`), as [`agent_module`] builds the agent's, and returns
/// its path.
pub(crate) fn slowcard_module() -> Result<PathBuf, BenchError> {
    build(
        "p11agent-bench-slowcard",
        &["--lib"],
        "p11agent_bench_slowcard",
    )
}

/// The file the environment variable `var` names, if it is set, as a
/// canonical path; says so on stderr, since the run then measures
/// something this commit did not build, and the message should name
/// exactly which file.
fn overridden(var: &str) -> Result<Option<PathBuf>, BenchError> {
    let Some(named) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = std::fs::canonicalize(&named)
        .map_err(|e| BenchError::Setup(format!("{var}={}: {e}", Path::new(&named).display())))?;
    if !path.is_file() {
        return Err(BenchError::Setup(format!(
            "{var}: {} is not a file",
            path.display()
        )));
    }
    eprintln!("{var}: measuring {} instead of building it", path.display());
    Ok(Some(path))
}

/// `cargo build -p package targets` in this benchmark's profile; the
/// file cargo reports for the target `name`: the executable, or the
/// shared library of a cdylib.
fn build(package: &str, targets: &[&str], name: &str) -> Result<PathBuf, BenchError> {
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| OsString::from("cargo"));
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet", "--message-format=json", "-p", package])
        // Set by `cargo run` of this benchmark, and seen by build scripts
        // (ring's reruns when it changes): inherited, it rebuilt the
        // daemon on every run, 1.5–2 minutes each.
        .env_remove("CARGO_MANIFEST_DIR")
        .args(targets);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let out = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BenchError::io("running", &cargo, e))?;
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "cargo build -p {package} failed ({})",
            out.status
        )));
    }
    let artifact = |msg: &serde_json::Value| -> Option<PathBuf> {
        if let Some(executable) = msg["executable"].as_str() {
            return Some(PathBuf::from(executable));
        }
        msg["filenames"]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_str)
            .find(|file| file.ends_with(".so"))
            .map(PathBuf::from)
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == name)
        .find_map(|msg| artifact(&msg))
        .ok_or_else(|| BenchError::Setup(format!("cargo built no {name} for {package}")))
}

/// Writes `pin` to a new file `path`, mode 0600 (the agent refuses PIN
/// files others can read).
pub(crate) fn write_pin_file(path: &Path, pin: &str) -> Result<(), BenchError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BenchError::io("creating", path, e))?;
    writeln!(file, "{pin}").map_err(|e| BenchError::io("writing", path, e))
}

/// A `p11agent daemon` process, stopped (SIGTERM, then SIGKILL) on drop.
pub(crate) struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    started: Instant,
}

impl Daemon {
    /// Starts `bin daemon` on `module` with `env` (the SoftHSM
    /// environment), a PIN file, `extra` flags, its socket and log in `dir`, and no
    /// configuration file (`XDG_CONFIG_HOME` points into `dir`). Returns
    /// at once; [`Daemon::connect`] waits for it to answer.
    pub(crate) fn spawn(
        bin: &Path,
        dir: &Path,
        module: &Path,
        env: &[(String, OsString)],
        pin_file: &Path,
        extra: &[&str],
    ) -> Result<Daemon, BenchError> {
        let socket = dir.join("run").join("agent.sock");
        let log = dir.join("daemon.log");
        let stderr = File::create(&log).map_err(|e| BenchError::io("creating", &log, e))?;
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .arg("--module")
            .arg(module)
            .arg("--pin-file")
            .arg(pin_file)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            // Pinned, so that a RUST_LOG=debug in the caller's shell does
            // not measure the logger.
            .env("RUST_LOG", "info")
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env_remove("P11AGENT_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::io("starting", bin, e))?;
        Ok(Daemon {
            child,
            socket,
            log,
            started,
        })
    }

    /// Its process id, whose CPU time the signing rows report.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The daemon's socket.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// A connection, once the daemon answers; polls every `every` for at
    /// most `timeout`, and fails at once if the daemon exited.
    pub(crate) fn connect(
        &mut self,
        every: Duration,
        timeout: Duration,
    ) -> Result<Client, BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            match Client::connect(&self.socket) {
                Ok(client) => return Ok(client),
                Err(ClientError::NotRunning { .. }) if Instant::now() < deadline => {}
                Err(e) => {
                    return Err(BenchError::Setup(format!(
                        "the daemon does not answer: {e}\n{}",
                        self.log_text()
                    )))
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Setup(format!(
                    "the daemon exited with {status}\n{}",
                    self.log_text()
                )));
            }
            std::thread::sleep(every);
        }
    }

    /// The resident set and its peak, in KiB (`/proc/PID/status`:
    /// `VmRSS`, `VmHWM`), of the daemon and its module helpers together:
    /// an isolated module's memory is the agent's cost too. The peak is
    /// the sum of each process's own, an upper bound.
    pub(crate) fn memory_kib(&self) -> Result<(u64, u64), BenchError> {
        let mut total = (0, 0);
        for pid in crate::cpu::tree_ns(self.child.id())?.into_keys() {
            let path = PathBuf::from(format!("/proc/{pid}/status"));
            let status =
                std::fs::read_to_string(&path).map_err(|e| BenchError::io("reading", &path, e))?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .and_then(|rest| {
                        rest.trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<u64>()
                            .ok()
                    })
                    .ok_or_else(|| BenchError::Setup(format!("no {name} in {}", path.display())))
            };
            total.0 += field("VmRSS:")?;
            total.1 += field("VmHWM:")?;
        }
        Ok(total)
    }

    /// What the daemon logged, for error messages.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM lets the daemon log out and remove its socket.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
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
