//! A `p11-kit server` in front of a [`SoftHsm`] environment: the SoftHSM
//! tokens, served over a Unix socket to any process that loads
//! `p11-kit-client.so`. Pausing the server makes that module hang, which
//! is how tests give an agent a PKCS#11 module that stops answering.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::env::SoftHsm;
use crate::error::{Error, Result};
use crate::util::file_from_env;

/// Environment variable naming the `p11-kit` program, when it is not
/// `p11-kit` on the `PATH`.
pub const P11KIT_ENV: &str = "P11AGENT_P11KIT";

/// Environment variable naming `p11-kit-client.so`, when it is not in one
/// of the usual places.
pub const P11KIT_CLIENT_ENV: &str = "P11AGENT_P11KIT_CLIENT";

/// The variable `p11-kit-client.so` reads the server's address from.
pub const SERVER_ADDRESS_ENV: &str = "P11_KIT_SERVER_ADDRESS";

/// How long [`P11KitServer::start`] waits for the server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `p11-kit server` serving every token of a [`SoftHsm`]
/// environment on a Unix socket in the environment's directory. Killed,
/// with every connection it serves, and its socket removed on drop.
///
/// Clients load [`client_module`](P11KitServer::client_module) with
/// [`client_env`](P11KitServer::client_env) in their environment:
///
/// ```no_run
/// use p11agent_softhsm::{P11KitServer, SoftHsm};
/// let hsm = SoftHsm::new()?;
/// hsm.create_token("remote", "1234", "12345678")?;
/// let server = P11KitServer::start(&hsm)?;
/// let status = std::process::Command::new("pkcs11-tool")
///     .arg("--module").arg(server.client_module())
///     .arg("--list-slots")
///     .envs(server.client_env())
///     .status();
/// server.pause()?;  // from here on, calls through the client module hang
/// server.resume()?; // and now they complete
/// # Ok::<(), p11agent_softhsm::Error>(())
/// ```
///
/// The server and its per-connection `p11-kit-remote` processes form a
/// process group of their own, so [`pause`](P11KitServer::pause) and
/// [`resume`](P11KitServer::resume) reach every one of them (below: why
/// that matters). A test process killed outright (SIGKILL) leaves the
/// server running; one that panics stops it, since drop runs.
///
/// # How p11-kit (0.24) behaves, measured
///
/// - `p11-kit server -f` execs `p11-kit-server` (same pid) and, for every
///   connection, forks a `p11-kit-remote` child that loads the provider
///   module and serves that connection alone. A client module connects
///   once, in `C_Initialize`, and keeps that connection.
/// - Stopping only the listener therefore hangs nothing that is already
///   initialised: an initialised client keeps answering through its
///   `p11-kit-remote`. [`P11KitServer::pause`] stops the whole process
///   group (listener and every `p11-kit-remote`).
/// - While paused, `C_Initialize` blocks: the connect succeeds (the
///   kernel queues it), the handshake byte is written, and the read of
///   the answer waits. An initialised client blocks in its next call
///   (`C_GetSlotList`, `C_GetTokenInfo`, ...). Nothing times out; every
///   blocked call completes normally once the server is resumed.
///   `C_Finalize` does not block (it does not wait for the server).
/// - With no server at all (socket missing or refused), `C_Initialize`
///   succeeds and the module shows no slots. After the server dies under
///   an initialised client, every call fails with `CKR_DEVICE_ERROR`, even
///   once a new server listens on the same socket, until the client calls
///   `C_Finalize` and `C_Initialize` again.
#[derive(Debug)]
pub struct P11KitServer {
    child: Child,
    socket: PathBuf,
    client_module: PathBuf,
    log: PathBuf,
    paused: AtomicBool,
    /// Whether the server was reaped before drop (it exited on its own).
    exited: bool,
    /// Keeps the environment's directory, which holds the socket and the
    /// tokens, alive as long as the server.
    _hsm: SoftHsm,
}

impl P11KitServer {
    /// Starts `p11-kit server -f --provider <SoftHSM module> -n <socket>
    /// "pkcs11:"` with the environment of `hsm`, and waits until it
    /// accepts connections.
    ///
    /// Fails with [`Error::P11KitNotFound`] when the `p11-kit` program or
    /// `p11-kit-client.so` is not installed (Debian: the `p11-kit` and
    /// `p11-kit-modules` packages), and with [`Error::P11KitServer`] when
    /// the server exits or does not listen within 10 s.
    pub fn start(hsm: &SoftHsm) -> Result<P11KitServer> {
        P11KitServer::start_with(hsm, hsm.module_path(), &[])
    }

    /// As [`start`](P11KitServer::start), with `provider` as the module
    /// the server loads in place of SoftHSM (a module in front of it,
    /// such as the benchmark's slow card) and `env` added to the
    /// environment's.
    pub fn start_with(
        hsm: &SoftHsm,
        provider: &Path,
        env: &[(String, OsString)],
    ) -> Result<P11KitServer> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let program = p11kit_program()?;
        let client_module = p11kit_client_module()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("p11-kit-server.{}.{n}", std::process::id());
        let socket = hsm.dir().join(format!("{name}.sock"));
        // sun_path holds 108 bytes with the terminating NUL; p11-kit
        // would refuse a longer path with a bare assertion message.
        if socket.as_os_str().len() >= 108 {
            return Err(Error::InvalidArgument(format!(
                "socket path {} is too long for a Unix socket; use a shorter environment directory",
                socket.display()
            )));
        }
        let log = hsm.dir().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| Error::io("creating", &log, e))?;
        let err = out.try_clone().map_err(|e| Error::io("opening", &log, e))?;
        let child = Command::new(&program)
            .arg("server")
            .arg("--foreground")
            .arg("--provider")
            .arg(provider)
            .arg("--name")
            .arg(&socket)
            .arg("pkcs11:")
            .envs(hsm.env())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A group of its own: the per-connection children join it, and
            // pause/resume/stop signal the group.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("starting p11-kit server", &program, e))?;
        let mut server = P11KitServer {
            child,
            socket,
            client_module,
            log,
            paused: AtomicBool::new(false),
            exited: false,
            _hsm: hsm.clone(),
        };
        server.wait_listening()?;
        Ok(server)
    }

    /// Waits until a connection to the socket succeeds: the socket file
    /// appears at `bind`, a moment before `listen`, and a client arriving
    /// in between would see no server (and no slots).
    fn wait_listening(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = true;
                return Err(Error::P11KitServer(format!(
                    "exited with {status} before listening: {}",
                    self.log_text()
                )));
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::P11KitServer(format!(
                    "not listening on {} after {START_TIMEOUT:?}: {}",
                    self.socket.display(),
                    self.log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server logged, for error messages.
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default()
    }

    /// `p11-kit-client.so`, the module that talks to this server.
    pub fn client_module(&self) -> &Path {
        &self.client_module
    }

    /// The environment a process loading
    /// [`client_module`](P11KitServer::client_module) needs:
    /// `P11_KIT_SERVER_ADDRESS=unix:path=<socket>`. Pass it to
    /// `Command::envs`; the module reads it in `C_Initialize`.
    pub fn client_env(&self) -> Vec<(String, OsString)> {
        let mut address = OsString::from("unix:path=");
        address.push(&self.socket);
        vec![(SERVER_ADDRESS_ENV.to_owned(), address)]
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops (SIGSTOP) the server and every `p11-kit-remote` serving a
    /// connection: from now on `C_Initialize` and every call of an
    /// initialised client block, without a timeout, until
    /// [`resume`](P11KitServer::resume).
    pub fn pause(&self) -> Result<()> {
        self.signal_group(Signal::SIGSTOP)?;
        self.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Continues (SIGCONT) what [`pause`](P11KitServer::pause) stopped;
    /// blocked calls then complete.
    pub fn resume(&self) -> Result<()> {
        self.signal_group(Signal::SIGCONT)?;
        self.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the server is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    fn signal_group(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.child.id())
            .map_err(|_| Error::P11KitServer(format!("pid {} out of range", self.child.id())))?;
        killpg(Pid::from_raw(pid), signal).map_err(|errno| {
            Error::P11KitServer(format!(
                "cannot send {signal} to process group {pid}: {errno}"
            ))
        })
    }
}

impl Drop for P11KitServer {
    fn drop(&mut self) {
        // SIGKILL to the group, not SIGTERM: the server blocks SIGTERM
        // outside its select, so it may still fork a p11-kit-remote for a
        // connection it has just accepted, and a child forked after the
        // group signal escapes it and keeps serving (measured: 18 of 150
        // connections made just before a pause stayed open after SIGCONT
        // and SIGTERM to the group; none after SIGKILL). A server killed
        // outright forks nothing more, and a stopped process dies of
        // SIGKILL without being continued.
        // Only while the leader is unreaped: its pid, the group's id,
        // cannot have been reused then.
        if !self.exited {
            let _ = self.signal_group(Signal::SIGKILL);
        }
        let _ = self.child.wait();
        // The server had no chance to remove its socket.
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The `p11-kit` program: `$P11AGENT_P11KIT`, else `p11-kit` on the
/// `PATH`.
fn p11kit_program() -> Result<PathBuf> {
    if let Some(path) = file_from_env(P11KIT_ENV, Error::P11KitNotFound)? {
        return Ok(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("p11-kit"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::P11KitNotFound("no p11-kit program on the PATH".to_owned()))
}

/// Directories that hold PKCS#11 modules on common distributions.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/local/lib/pkcs11",
];

/// Finds `p11-kit-client.so`: `$P11AGENT_P11KIT_CLIENT` when set (it must
/// exist), else p11-kit's module directory as `pkg-config` reports it,
/// else the usual directories, including every `/usr/lib/<triple>/pkcs11`.
pub fn p11kit_client_module() -> Result<PathBuf> {
    const FILE: &str = "p11-kit-client.so";
    if let Some(path) = file_from_env(P11KIT_CLIENT_ENV, Error::P11KitNotFound)? {
        return Ok(path);
    }
    // pkg-config knows where this system's p11-kit put its modules, when
    // the development files are installed; the fixed list covers the rest.
    let from_pkg_config = Command::new("pkg-config")
        .args(["--variable=p11_module_path", "p11-kit-1"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("pkcs11"));
    from_pkg_config
        .into_iter()
        .chain(MODULE_DIRS.iter().map(PathBuf::from))
        .chain(multiarch)
        .map(|dir| dir.join(FILE))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::P11KitNotFound(format!(
                "no {FILE} in p11-kit's module directory or in {}",
                MODULE_DIRS.join(", ")
            ))
        })
}
