//! Real browsers for the end-to-end tests: headless Chromium and Firefox
//! ESR, each with an NSS database of its own that loads the agent's
//! PKCS#11 module, and nginx as a TLS server that verifies clients.
//!
//! Every process started here runs in a process group of its own, and
//! its guard kills that group on drop: a browser leaves helpers (zygote,
//! renderer, network service, content processes) that would otherwise
//! outlive a failed test.
//!
//! How each browser is driven, and why:
//!
//! - **Chromium** runs once per page load, `--headless --dump-dom URL`:
//!   a start costs about 1.5 s here, so this is as cheap as driving one
//!   instance over the DevTools protocol (which would need a websocket
//!   client), and every load starts with a fresh profile, so no client
//!   certificate choice or TLS session is carried from one load to the
//!   next.
//! - Headless Chromium shows no certificate picker: it sends a client
//!   certificate only when an `AutoSelectCertificateForUrls` rule
//!   matches, and otherwise waits for ever. The rules are written as the
//!   content setting that policy feeds (`auto_select_certificate` in the
//!   profile's `Default/Preferences`), which Chromium honours from the
//!   user's profile as well (checked with Chromium 156: without the
//!   entry a load hangs, with it the certificate is sent). So no managed
//!   policy file (`/etc/chromium/policies/managed`, the only place Linux
//!   builds read policy from) is written, and no private mount namespace
//!   (`unshare -m` to bind a temporary folder over it, which works here
//!   as root but needs root or user namespaces) is needed: the tests run
//!   alike as root and as any other user.
//! - **Firefox** starts once and is driven over Marionette (a
//!   length-prefixed JSON protocol over TCP, `--marionette`), which gives
//!   the page source after each navigation; `security.default_personal_cert`
//!   = "Select Automatically" sends the certificate without asking. When
//!   its client signature fails (TLS 1.2, the agent refusing) Firefox
//!   shows no error page: the navigation hangs until its page-load
//!   timeout, so a failure costs that long.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{describe, free_port};

/// The Chromium binary itself (`/usr/bin/chromium` is a launcher script):
/// the executable the agent sees as the peer, for its digest policy.
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// The Firefox ESR binary itself (`/usr/bin/firefox-esr` is a link to a
/// launcher).
pub const FIREFOX: &str = "/usr/lib/firefox-esr/firefox-esr";

const CERTUTIL: &str = "certutil";
const MODUTIL: &str = "modutil";

/// The module's name in the NSS databases.
const MODULE_NAME: &str = "p11agent";

/// Whether `program --version` runs (tests that need a program skip with
/// a message when it does not).
fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether Chromium and the NSS tools are installed.
pub fn have_chromium() -> bool {
    Path::new(CHROMIUM).exists() && have_nss_tools()
}

/// Whether Firefox ESR and the NSS tools are installed.
pub fn have_firefox() -> bool {
    Path::new(FIREFOX).exists() && have_nss_tools()
}

/// Whether nginx is installed.
pub fn have_nginx() -> bool {
    runs("nginx", "-v")
}

fn have_nss_tools() -> bool {
    // Neither tool has a --version that succeeds: that they run at all
    // is what is asked.
    [CERTUTIL, MODUTIL]
        .iter()
        .all(|tool| Command::new(tool).stdin(Stdio::null()).output().is_ok())
}

/// The path the kernel shows as the executable of a process running
/// `program` (`/proc/PID/exe`), which is what a digest policy lists.
pub fn real_executable(program: &str) -> String {
    std::fs::canonicalize(program)
        .unwrap_or_else(|e| panic!("{program}: {e}"))
        .display()
        .to_string()
}

/// Runs an NSS tool, asserting success.
fn nss_tool(program: &str, args: &[&std::ffi::OsStr], socket: &Path) {
    let out = Command::new(program)
        .args(args)
        // modutil loads the module to list its slots: let it reach the
        // test's agent, not whatever the default socket is.
        .env("P11AGENT_SOCK", socket)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        describe(&out)
    );
}

/// Creates an NSS database (`sql:`) in `dir` that trusts `server_ca_pem`
/// to issue TLS server certificates and loads `module` (the agent's
/// PKCS#11 module), which finds the agent at `socket`.
pub fn create_nss_db(dir: &Path, module: &Path, socket: &Path, server_ca_pem: &str) {
    std::fs::create_dir_all(dir).expect("NSS directory");
    let db = sql_db(dir);
    nss_tool(
        CERTUTIL,
        &[
            "-N".as_ref(),
            "--empty-password".as_ref(),
            "-d".as_ref(),
            &db,
        ],
        socket,
    );
    trust_server_ca(dir, socket, server_ca_pem);
    nss_tool(
        MODUTIL,
        &[
            "-add".as_ref(),
            MODULE_NAME.as_ref(),
            "-libfile".as_ref(),
            module.as_os_str(),
            "-dbdir".as_ref(),
            &db,
            // -force: modutil would otherwise ask for confirmation.
            "-force".as_ref(),
        ],
        socket,
    );
}

/// Makes the NSS database in `dir` trust `server_ca_pem` to issue TLS
/// server certificates.
fn trust_server_ca(dir: &Path, socket: &Path, server_ca_pem: &str) {
    let db = sql_db(dir);
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, server_ca_pem).expect("server CA file");
    nss_tool(
        CERTUTIL,
        &[
            "-A".as_ref(),
            "-d".as_ref(),
            &db,
            "-n".as_ref(),
            "test server CA".as_ref(),
            // C: a CA trusted to issue server certificates; nothing else.
            "-t".as_ref(),
            "C,,".as_ref(),
            "-i".as_ref(),
            ca.as_os_str(),
        ],
        socket,
    );
}

fn sql_db(dir: &Path) -> std::ffi::OsString {
    let mut db = std::ffi::OsString::from("sql:");
    db.push(dir);
    db
}

/// A child process in a process group of its own, killed (the whole
/// group) and reaped on drop.
pub struct Group {
    child: Child,
}

impl Group {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> std::io::Result<Group> {
        command
            .process_group(0)
            .spawn()
            .map(|child| Group { child })
    }

    /// The leader's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited (and its status, reaped).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the leader to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        // The group outlives its leader when helpers linger, so it is
        // killed even when the leader has exited: Linux gives no new
        // process an id that is still a group's, so while any member
        // lives the signal reaches only the group.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An `AutoSelectCertificateForUrls` rule: for origins matching
/// `pattern`, send the certificate that `filter` matches (Chromium's
/// filter format, e.g. `{"ISSUER": {"CN": "..."}}`).
#[derive(Clone, Debug)]
pub struct AutoSelect {
    /// A content-settings pattern, e.g. `https://127.0.0.1:8443`.
    pub pattern: String,
    /// The filter object.
    pub filter: Value,
}

impl AutoSelect {
    /// Sends the certificate issued by a CA with common name `issuer_cn`
    /// to `https://127.0.0.1:port`.
    pub fn issuer_cn(port: u16, issuer_cn: &str) -> AutoSelect {
        AutoSelect {
            pattern: format!("https://127.0.0.1:{port}"),
            filter: json!({"ISSUER": {"CN": issuer_cn}}),
        }
    }
}

/// What one Chromium page load gave.
#[derive(Debug)]
pub struct PageLoad {
    /// The DOM Chromium printed: the page, or its error page.
    pub dom: String,
    /// Chromium's standard error.
    pub log: String,
    /// Whether it had to be killed (e.g. waiting for a certificate
    /// picker that headless Chromium never shows).
    pub timed_out: bool,
}

impl PageLoad {
    /// The network error headless Chromium reported for the page
    /// (`net::ERR_...`), if it failed to load.
    pub fn error(&self) -> Option<String> {
        self.log.lines().find_map(|line| {
            let (_, error) = line.split_once("Page load failed: ")?;
            Some(error.trim().to_owned())
        })
    }
}

/// Headless Chromium with its own HOME, whose NSS database
/// (`HOME/.pki/nssdb`, which Chromium reads on Linux) loads the agent's
/// module and trusts the test's server CA.
pub struct Chromium {
    home: PathBuf,
    /// The temporary HOME made for it, when it was not given one.
    _own_home: Option<TempDir>,
    socket: PathBuf,
    loads: usize,
}

impl Chromium {
    /// How long one page load may take (one takes about 1.5 s; without
    /// a matching auto-select rule it never ends).
    const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

    /// A Chromium whose module talks to the agent at `socket`.
    pub fn new(module: &Path, socket: &Path, server_ca_pem: &str) -> Chromium {
        let home = tempfile::tempdir().expect("tempdir");
        create_nss_db(
            &home.path().join(".pki").join("nssdb"),
            module,
            socket,
            server_ca_pem,
        );
        Chromium {
            home: home.path().to_path_buf(),
            _own_home: Some(home),
            socket: socket.to_path_buf(),
            loads: 0,
        }
    }

    /// A Chromium whose HOME is `home`, as `p11agent setup chromium` left
    /// it (the module in `home/.pki/nssdb`), after trusting the test's
    /// server CA there.
    pub fn in_home(home: &Path, socket: &Path, server_ca_pem: &str) -> Chromium {
        let db = home.join(".pki").join("nssdb");
        trust_server_ca(&db, socket, server_ca_pem);
        Chromium {
            home: home.to_path_buf(),
            _own_home: None,
            socket: socket.to_path_buf(),
            loads: 0,
        }
    }

    /// Loads `url` in a fresh profile whose auto-select rules are
    /// `rules`, and returns what Chromium printed.
    pub fn load(&mut self, url: &str, rules: &[AutoSelect]) -> PageLoad {
        self.loads += 1;
        let profile = self.home.as_path().join(format!("profile-{}", self.loads));
        write_chromium_preferences(&profile, rules);
        let out_path = self.home.as_path().join(format!("dom-{}.html", self.loads));
        let log_path = self
            .home
            .as_path()
            .join(format!("chromium-{}.log", self.loads));
        let mut command = Command::new(CHROMIUM);
        command
            .arg("--headless")
            // Root cannot use Chromium's sandbox, and containers often
            // lack the namespaces it needs; the pages are the test's own.
            .arg("--no-sandbox")
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(url)
            .env("HOME", self.home.as_path())
            .env("P11AGENT_SOCK", &self.socket)
            // No display, no session bus: say so rather than let
            // Chromium look for them.
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("DOM file"))
            .stderr(File::create(&log_path).expect("log file"));
        let mut group = Group::spawn(&mut command).expect("run chromium");
        let timed_out = group.wait_timeout(Self::LOAD_TIMEOUT).is_none();
        drop(group);
        PageLoad {
            dom: std::fs::read_to_string(&out_path).unwrap_or_default(),
            log: std::fs::read_to_string(&log_path).unwrap_or_default(),
            timed_out,
        }
    }
}

/// Writes `Default/Preferences` of a Chromium profile in `profile` with
/// `rules` as the `auto_select_certificate` content setting: the setting
/// the `AutoSelectCertificateForUrls` policy fills, here from the user's
/// own preferences.
pub fn write_chromium_preferences(profile: &Path, rules: &[AutoSelect]) {
    let mut exceptions = serde_json::Map::new();
    for rule in rules {
        // Content-setting patterns are "primary,secondary"; the
        // certificate setting only uses the primary one.
        let entry = exceptions
            .entry(format!("{},*", rule.pattern))
            .or_insert_with(|| json!({"setting": {"filters": []}}));
        entry["setting"]["filters"]
            .as_array_mut()
            .expect("filters")
            .push(rule.filter.clone());
    }
    let preferences = json!({
        "profile": {
            "content_settings": {
                "exceptions": {"auto_select_certificate": exceptions}
            }
        }
    });
    let default = profile.join("Default");
    std::fs::create_dir_all(&default).expect("profile directory");
    std::fs::write(
        default.join("Preferences"),
        serde_json::to_vec_pretty(&preferences).expect("JSON"),
    )
    .expect("Preferences");
}

/// Headless Firefox ESR, started once and driven over Marionette, with a
/// profile whose NSS database loads the agent's module and trusts the
/// test's server CA, and which sends a client certificate without asking.
pub struct Firefox {
    marionette: Marionette,
    group: Group,
    profile: TempDir,
}

impl Firefox {
    /// Starts Firefox with a new profile whose module talks to the agent
    /// at `socket`.
    pub fn start(module: &Path, socket: &Path, server_ca_pem: &str) -> Firefox {
        let profile = tempfile::tempdir().expect("tempdir");
        create_nss_db(profile.path(), module, socket, server_ca_pem);
        std::fs::write(profile.path().join("user.js"), FIREFOX_PREFS).expect("user.js");
        let home = profile.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let log = File::create(profile.path().join("firefox.log")).expect("log");
        let mut command = Command::new(FIREFOX);
        command
            .args(["--headless", "--marionette", "--no-remote", "--profile"])
            .arg(profile.path())
            .env("HOME", &home)
            .env("P11AGENT_SOCK", socket)
            .env("MOZ_HEADLESS", "1")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let mut group = Group::spawn(&mut command).expect("run firefox");
        // With marionette.port 0 Firefox listens on a port of its own
        // choosing and writes it into the profile: no race for a port.
        let port_file = profile.path().join("MarionetteActivePort");
        let deadline = Instant::now() + Duration::from_secs(90);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Some(status) = group.try_wait() {
                panic!(
                    "firefox exited with {status} before listening:\n{}",
                    firefox_log(profile.path())
                );
            }
            assert!(
                Instant::now() < deadline,
                "firefox never started Marionette:\n{}",
                firefox_log(profile.path())
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut marionette = Marionette::connect(port).unwrap_or_else(|e| {
            panic!(
                "Marionette on port {port}: {e}\n{}",
                firefox_log(profile.path())
            )
        });
        marionette
            .call("WebDriver:NewSession", json!({"capabilities": {}}))
            .unwrap_or_else(|e| panic!("new session: {e}"));
        marionette
            .call("WebDriver:SetTimeouts", json!({"pageLoad": 30_000}))
            .unwrap_or_else(|e| panic!("timeouts: {e}"));
        Firefox {
            marionette,
            group,
            profile,
        }
    }

    /// Navigates to `url` and returns the page source, or the error
    /// Marionette reported (an error page: `Reached error page: ...`).
    pub fn load(&mut self, url: &str) -> Result<String, String> {
        self.marionette
            .call("WebDriver:Navigate", json!({"url": url}))?;
        let source = self.marionette.call("WebDriver:GetPageSource", json!({}))?;
        Ok(source["value"].as_str().unwrap_or_default().to_owned())
    }

    /// What Firefox logged so far.
    pub fn log(&self) -> String {
        firefox_log(self.profile.path())
    }

    /// Firefox's process id.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }
}

fn firefox_log(profile: &Path) -> String {
    std::fs::read_to_string(profile.join("firefox.log")).unwrap_or_default()
}

/// The profile's preferences: send a certificate without asking, listen
/// for Marionette where the system chooses, and stay off the network.
const FIREFOX_PREFS: &str = r#"user_pref("security.default_personal_cert", "Select Automatically");
user_pref("marionette.port", 0);
user_pref("network.http.http3.enable", false);
user_pref("security.OCSP.enabled", 0);
user_pref("security.osclientcerts.autoload", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("app.normandy.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:1/");
"#;

/// A Marionette connection: frames are `LENGTH:JSON`, commands
/// `[0, id, name, params]`, answers `[1, id, error, result]`.
struct Marionette {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

impl Marionette {
    fn connect(port: u16) -> std::io::Result<Marionette> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut marionette = Marionette {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        };
        // The server speaks first: {"applicationType": "gecko", ...}.
        let hello = marionette.read()?;
        if hello["applicationType"] != "gecko" {
            return Err(std::io::Error::other(format!("not Marionette: {hello}")));
        }
        Ok(marionette)
    }

    fn read(&mut self) -> std::io::Result<Value> {
        let mut length = Vec::new();
        self.reader.read_until(b':', &mut length)?;
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|s| s.trim_end_matches(':').parse().ok())
            .ok_or_else(|| std::io::Error::other("bad Marionette frame length"))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        serde_json::from_slice(&body).map_err(std::io::Error::other)
    }

    /// Sends a command; returns its result, or its error as text.
    fn call(&mut self, name: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!([0, id, name, params]).to_string();
        self.writer
            .write_all(format!("{}:{body}", body.len()).as_bytes())
            .map_err(|e| format!("{name}: {e}"))?;
        loop {
            let answer = self.read().map_err(|e| format!("{name}: {e}"))?;
            if answer[0] != 1 || answer[1] != id {
                continue;
            }
            if !answer[2].is_null() {
                return Err(format!("{name}: {}", answer[2]));
            }
            return Ok(answer[3].clone());
        }
    }
}

/// nginx serving HTTPS on 127.0.0.1, requiring a client certificate
/// issued by a given CA and answering every request with the verified
/// client's subject (`$ssl_client_s_dn`); killed on drop.
pub struct Nginx {
    group: Group,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx with all its files in `dir`: the server's chain and
    /// key (PEM) and the CA clients must be issued by.
    pub fn start(dir: &Path, cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Nginx {
        std::fs::write(dir.join("nginx-cert.pem"), cert_pem).expect("cert");
        std::fs::write(dir.join("nginx-key.pem"), key_pem).expect("key");
        std::fs::write(dir.join("nginx-client-ca.pem"), client_ca_pem).expect("client CA");
        for attempt in 0..10 {
            let port = free_port();
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(dir, port)).expect("nginx.conf");
            let log = File::create(dir.join(format!("nginx-{attempt}.out"))).expect("log");
            let mut command = Command::new("nginx");
            command
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf)
                // -e: the log for messages before the configuration is
                // read, which would otherwise go to /var/log/nginx.
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-g")
                .arg(format!(
                    "daemon off; pid {};",
                    dir.join("nginx.pid").display()
                ))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            let mut group = Group::spawn(&mut command).expect("run nginx");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if group.try_wait().is_some() {
                    // Most likely the port was taken meanwhile: another.
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx {
                        group,
                        port,
                        dir: dir.to_path_buf(),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "nginx did not start:\n{}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its error log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }
}

fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    // As root nginx would run its workers as "nobody", who cannot read
    // the test's private directory; as anyone else "user" is ignored
    // with a warning, so it is only written for root.
    let user = if nix::unistd::geteuid().is_root() {
        "user root root;"
    } else {
        ""
    };
    format!(
        r#"{user}
worker_processes 1;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/nginx-cert.pem;
        ssl_certificate_key {d}/nginx-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate {d}/nginx-client-ca.pem;
        ssl_verify_client on;
        location / {{
            default_type text/plain;
            return 200 "verified client: $ssl_client_s_dn\n";
        }}
    }}
}}
"#
    )
}
