//! `p11agent setup TARGET`: makes another program use the agent's PKCS#11
//! module (`libp11agent_pkcs11.so`), and allows that program's signatures
//! over digests in the agent's digest policy.
//!
//! Setup writes only under `$HOME` and `$XDG_CONFIG_HOME`, and only files
//! that are its own: each starts with a marker line, and a file at one of
//! its paths without that line is left alone, with a warning. NSS
//! databases are changed only through `modutil`, and only for the module
//! named `p11agent`. Running setup twice changes nothing the second time.

use std::ffi::OsString;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::error::{CliError, SetupError};
use super::format::print_json;

/// The module's file name, as cargo builds the `p11agent-pkcs11` crate.
const MODULE_FILE: &str = "libp11agent_pkcs11.so";
/// The name the module is registered under in NSS databases.
const NSS_NAME: &str = "p11agent";
/// The first line of every file setup writes: how it knows a file is its
/// own to rewrite or delete.
const MARKER: &str = "# Written by `p11agent setup";

/// Arguments of `p11agent setup`.
#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// The program to configure.
    #[arg(value_enum)]
    target: Target,
    /// Show exactly what would be written and run, and change nothing.
    #[arg(long)]
    print: bool,
    /// Undo the setup of TARGET: delete the files setup wrote for it and
    /// unregister the module from the NSS databases.
    #[arg(long)]
    remove: bool,
    /// The agent's PKCS#11 module [default: libp11agent_pkcs11.so beside
    /// the p11agent binary].
    #[arg(long, value_name = "PATH", conflicts_with = "remove")]
    module: Option<PathBuf>,
    /// Print what was done (or, with --print, what would be) as JSON.
    #[arg(long)]
    json: bool,
}

/// The programs setup knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// The shared NSS database ~/.pki/nssdb (Chromium and other NSS programs).
    Nss,
    /// Chromium: the shared NSS database, and Chromium's digest policy.
    Chromium,
    /// Firefox: every profile's NSS database, and Firefox's digest policy.
    Firefox,
    /// p11-kit's per-user module list (gnutls, p11-kit-proxy.so).
    #[value(name = "p11-kit")]
    P11Kit,
    /// OpenSSL 3 with pkcs11-provider (openssl, curl).
    Openssl,
    /// Java's SunPKCS11 provider (java, keytool).
    Java,
    /// OpenSSH's PKCS11Provider (ssh, ssh-agent).
    Ssh,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Nss => "nss",
            Target::Chromium => "chromium",
            Target::Firefox => "firefox",
            Target::P11Kit => "p11-kit",
            Target::Openssl => "openssl",
            Target::Java => "java",
            Target::Ssh => "ssh",
        }
    }

    /// The programs whose signatures over digests the target allows: the
    /// processes that load the module and so connect to the agent.
    fn programs(self) -> &'static [Program] {
        match self {
            Target::Nss => &[],
            Target::Chromium => &[CHROMIUM],
            Target::Firefox => &[FIREFOX],
            Target::P11Kit => &[GNUTLS_CLI],
            Target::Openssl => &[OPENSSL, CURL],
            Target::Java => &[JAVA],
            Target::Ssh => &[SSH, SSH_PKCS11_HELPER],
        }
    }
}

/// A program as the agent's digest policy names it: the executable that
/// /proc/PID/exe shows, which is never a launcher script.
struct Program {
    name: &'static str,
    /// Names looked up on PATH.
    commands: &'static [&'static str],
    /// Where distributions install the executable itself, for when PATH
    /// has only a launcher script (Debian's /usr/bin/chromium) or nothing
    /// (ssh-pkcs11-helper).
    elsewhere: &'static [&'static str],
}

const CHROMIUM: Program = Program {
    name: "Chromium",
    commands: &["chromium", "chromium-browser"],
    elsewhere: &[
        "/usr/lib/chromium/chromium",
        "/usr/lib/chromium-browser/chromium-browser",
        "/usr/lib64/chromium-browser/chromium-browser",
    ],
};
const FIREFOX: Program = Program {
    name: "Firefox",
    commands: &["firefox-esr", "firefox"],
    elsewhere: &[
        "/usr/lib/firefox-esr/firefox-esr",
        "/usr/lib/firefox/firefox",
        "/usr/lib64/firefox/firefox",
    ],
};
const GNUTLS_CLI: Program = Program {
    name: "gnutls-cli",
    commands: &["gnutls-cli"],
    elsewhere: &[],
};
const OPENSSL: Program = Program {
    name: "openssl",
    commands: &["openssl"],
    elsewhere: &[],
};
const CURL: Program = Program {
    name: "curl",
    commands: &["curl"],
    elsewhere: &[],
};
const JAVA: Program = Program {
    name: "java",
    commands: &["java"],
    elsewhere: &[],
};
/// OpenSSH 9.2 (Debian 12) loads a PKCS11Provider in the ssh process
/// itself (`ssh -I`), and ssh-agent loads one (`ssh-add -s`) in its
/// ssh-pkcs11-helper: both connect to the agent.
const SSH: Program = Program {
    name: "ssh",
    commands: &["ssh"],
    elsewhere: &[],
};
const SSH_PKCS11_HELPER: Program = Program {
    name: "ssh-pkcs11-helper",
    commands: &[],
    elsewhere: &[
        "/usr/lib/openssh/ssh-pkcs11-helper",
        "/usr/libexec/openssh/ssh-pkcs11-helper",
        "/usr/libexec/ssh-pkcs11-helper",
    ],
};

/// Where setup reads and writes, from the environment, read once.
struct Places {
    home: PathBuf,
    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    config_home: PathBuf,
    /// `p11agent/` in `config_home`, beside the default config file.
    p11agent_dir: PathBuf,
    path: Option<OsString>,
    root: bool,
}

impl Places {
    fn from_env() -> Result<Places, SetupError> {
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .ok_or(SetupError::NoHome)?;
        let config_home = crate::config::config_home().ok_or(SetupError::NoHome)?;
        let p11agent_dir = crate::config::p11agent_config_dir().ok_or(SetupError::NoHome)?;
        Ok(Places {
            home,
            config_home,
            p11agent_dir,
            path: std::env::var_os("PATH"),
            root: nix::unistd::geteuid().is_root(),
        })
    }

    fn digest_policy(&self, target: Target) -> PathBuf {
        self.p11agent_dir
            .join(crate::config::DIGEST_DROP_IN_DIR)
            .join(format!("{}.toml", target.name()))
    }

    fn nss_db(&self) -> PathBuf {
        self.home.join(".pki").join("nssdb")
    }

    /// p11-kit reads `~/.config/pkcs11/modules` whatever
    /// `$XDG_CONFIG_HOME` says (p11-kit 0.24 and 0.25).
    fn p11kit_module(&self) -> PathBuf {
        self.home
            .join(".config")
            .join("pkcs11")
            .join("modules")
            .join("p11agent.module")
    }

    /// Where Firefox keeps its profiles: `~/.mozilla/firefox`, and, for
    /// installs that began with Firefox 147 or later, the XDG directory.
    fn firefox_roots(&self) -> [PathBuf; 2] {
        [
            self.home.join(".mozilla").join("firefox"),
            self.config_home.join("mozilla").join("firefox"),
        ]
    }

    /// The first executable named `name` on PATH.
    fn which(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }

    /// The executables of `program` that exist here, canonical, each once.
    fn find(&self, program: &Program) -> Vec<PathBuf> {
        let on_path: Vec<PathBuf> = program
            .commands
            .iter()
            .filter_map(|command| self.which(command))
            .filter_map(|found| found.canonicalize().ok())
            .filter(|found| is_elf(found))
            .collect();
        let found = if on_path.is_empty() {
            program
                .elsewhere
                .iter()
                .filter_map(|path| Path::new(path).canonicalize().ok())
                .filter(|found| is_executable(found) && is_elf(found))
                .collect()
        } else {
            on_path
        };
        let mut unique = Vec::new();
        for path in found {
            if !unique.contains(&path) {
                unique.push(path);
            }
        }
        unique
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether `path` is an ELF executable: a script's process shows its
/// interpreter as /proc/PID/exe, so a script is never what a policy names.
fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// What setup did, or with --print would do, to one file or database.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Change {
    /// A file of setup's own.
    File {
        path: PathBuf,
        status: Status,
        /// What the file holds (or would hold) afterwards.
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<String>,
    },
    /// The module's registration in an NSS database.
    NssModule {
        /// As NSS names it: `sql:DIR`.
        database: String,
        name: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        library: Option<PathBuf>,
        status: Status,
        /// The commands run (or to run), each as its arguments.
        commands: Vec<Vec<String>>,
    },
}

/// What happened to one file or registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Created,
    /// A file of setup's own whose content was different.
    Updated,
    Unchanged,
    /// A file at setup's path that is not setup's own: left as it is.
    Kept,
    Removed,
    /// Nothing there to remove.
    Absent,
    Registered,
    /// Registered before with another library.
    Replaced,
    Unregistered,
}

impl Status {
    fn changes(self) -> bool {
        !matches!(self, Status::Unchanged | Status::Kept | Status::Absent)
    }

    /// How the text output names it, done or (with --print) to be done.
    fn label(self, print: bool) -> &'static str {
        match (self, print) {
            (Status::Created, false) => "created",
            (Status::Created, true) => "would create",
            (Status::Updated, false) => "updated",
            (Status::Updated, true) => "would update",
            (Status::Unchanged, _) => "unchanged",
            (Status::Kept, _) => "left alone",
            (Status::Removed, false) => "removed",
            (Status::Removed, true) => "would remove",
            (Status::Absent, _) => "absent",
            (Status::Registered, false) => "registered",
            (Status::Registered, true) => "would register",
            (Status::Replaced, false) => "replaced",
            (Status::Replaced, true) => "would replace",
            (Status::Unregistered, false) => "unregistered",
            (Status::Unregistered, true) => "would unregister",
        }
    }
}

/// The outcome of one `p11agent setup`, as --json prints it.
#[derive(Debug, Serialize)]
struct Report {
    target: &'static str,
    remove: bool,
    /// True with --print: nothing was changed.
    print: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<PathBuf>,
    changes: Vec<Change>,
    /// The executables the digest policy names.
    programs: Vec<PathBuf>,
    /// Programs of the target not found here, left out of the policy.
    not_installed: Vec<&'static str>,
    /// What to do next.
    notes: Vec<String>,
    /// What may not work as expected.
    warnings: Vec<String>,
}

/// `p11agent setup`.
pub(super) fn run(args: SetupArgs) -> Result<(), CliError> {
    let places = Places::from_env()?;
    let module = if args.remove {
        None
    } else {
        Some(module_path(args.module)?)
    };
    let mut setup = Setup {
        places: &places,
        target: args.target,
        print: args.print,
        report: Report {
            target: args.target.name(),
            remove: args.remove,
            print: args.print,
            module: module.clone(),
            changes: Vec::new(),
            programs: Vec::new(),
            not_installed: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        },
    };
    match module {
        Some(module) => setup.install(&module)?,
        None => setup.uninstall()?,
    }
    let report = setup.report;
    if args.json {
        print_json(&report)
    } else {
        print_text(&report)
    }
}

/// The module to configure: as given, or beside the running binary, where
/// `cargo build --release` puts both. Canonical, since the files written
/// must name it from anywhere.
fn module_path(given: Option<PathBuf>) -> Result<PathBuf, SetupError> {
    let (path, default) = match given {
        Some(path) => (path, false),
        None => {
            let exe = std::env::current_exe().map_err(SetupError::CurrentExe)?;
            let dir = exe.parent().unwrap_or(Path::new("/"));
            (dir.join(MODULE_FILE), true)
        }
    };
    match path.canonicalize() {
        Ok(canonical) if canonical.is_file() => {
            utf8(&canonical)?;
            Ok(canonical)
        }
        _ => Err(SetupError::ModuleMissing { path, default }),
    }
}

/// Text files name paths as UTF-8.
fn utf8(path: &Path) -> Result<&str, SetupError> {
    path.to_str()
        .ok_or_else(|| SetupError::NotUtf8(path.to_path_buf()))
}

/// One run of setup: the target's steps, each recorded in the report.
struct Setup<'a> {
    places: &'a Places,
    target: Target,
    print: bool,
    report: Report,
}

impl Setup<'_> {
    fn install(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        let module_text = utf8(module)?;
        match self.target {
            Target::Nss => {
                self.nss_register(&places.nss_db(), module)?;
                self.note(format!(
                    "programs using the NSS database in {} (Chromium, Google Chrome) load the \
                     module when they start: restart them; `p11agent setup chromium` also \
                     writes Chromium's digest policy",
                    places.nss_db().display()
                ));
            }
            Target::Chromium => {
                self.nss_register(&places.nss_db(), module)?;
                self.note("restart Chromium: it reads the NSS database when it starts".into());
            }
            Target::Firefox => {
                let profiles = self.firefox_profiles()?;
                if profiles.is_empty() {
                    return Err(SetupError::NoFirefoxProfile {
                        searched: places.firefox_roots().to_vec(),
                    });
                }
                for profile in profiles {
                    self.nss_register(&profile, module)?;
                    if firefox_running(&profile) {
                        self.warn(format!(
                            "Firefox is running with the profile {}: restart it to load the module",
                            profile.display()
                        ));
                    }
                }
                self.note(
                    "Firefox loads the module when it starts; it is listed as p11agent under \
                     Settings > Privacy & Security > Security Devices"
                        .into(),
                );
            }
            Target::P11Kit => {
                let file = places.p11kit_module();
                self.write(&file, p11kit_module(self.target, module_text))?;
                self.note(
                    "programs that load p11-kit's modules (gnutls-cli, p11tool, users of \
                     p11-kit-proxy.so) see the agent's identities from their next start; \
                     `p11-kit list-modules` lists it as p11agent"
                        .into(),
                );
                if places.config_home != places.home.join(".config") {
                    self.note(format!(
                        "p11-kit reads ~/.config/pkcs11 whatever XDG_CONFIG_HOME says, so the \
                         file is in {}",
                        places.home.join(".config").display()
                    ));
                }
                if places.root {
                    self.warn(format!(
                        "you are root, and p11-kit skips per-user module files in programs \
                         running as root: those do not load this module. Run the programs as \
                         your user, or, for every user and root, copy {} to \
                         /etc/pkcs11/modules/ (setup writes only under your home)",
                        file.display()
                    ));
                }
            }
            Target::Openssl => {
                let file = places.p11agent_dir.join("openssl-pkcs11.cnf");
                self.write(&file, openssl_cnf(self.target, module_text))?;
                let file = utf8(&file)?;
                if let Some(warning) = self.missing_pkcs11_provider() {
                    self.warn(warning);
                }
                self.note(format!(
                    "to use it: export OPENSSL_CONF={}; then `openssl storeutl -certs pkcs11:` \
                     lists the agent's certificates, and openssl and curl take pkcs11: URIs \
                     (`p11agent show ID` prints them) as keys",
                    shell_quote(file)
                ));
            }
            Target::Java => {
                let cfg = places.p11agent_dir.join("sunpkcs11.cfg");
                self.write(&cfg, sunpkcs11_cfg(self.target, module_text))?;
                let cfg_text = utf8(&cfg)?;
                let java = places.find(&JAVA);
                let security = places.p11agent_dir.join("java.security");
                match java.first().and_then(|java| sunpkcs11_slot(java)) {
                    Some(slot) => {
                        self.write(&security, java_security(self.target, slot, cfg_text))?;
                        self.note(format!(
                            "for Java programs: java -Djava.security.properties={} \
                             -Djavax.net.ssl.keyStore=NONE -Djavax.net.ssl.keyStoreType=PKCS11 ...",
                            shell_quote(utf8(&security)?)
                        ));
                    }
                    None => self.note(format!(
                        "{} is not written: it names the SunPKCS11 provider by its number in \
                         the JDK's java.security, and no JDK was found; install one and run \
                         setup again",
                        security.display()
                    )),
                }
                self.note(format!(
                    "keytool -list -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 \
                     -providerArg {}",
                    shell_quote(cfg_text)
                ));
            }
            Target::Ssh => {
                let quoted = shell_quote(module_text);
                self.note(format!("ssh -I {quoted} user@host"));
                self.note(format!(
                    "or, in ~/.ssh/config (setup does not edit it):\n    Host host.example\n        \
                     PKCS11Provider {quoted}"
                ));
                self.note(format!(
                    "for ssh-agent: `ssh-add -s {quoted}`; ssh-agent accepts providers only \
                     under /usr/lib*/ and /usr/local/lib*/ unless started with `ssh-agent -P \
                     {quoted}`"
                ));
            }
        }
        self.digest_policy()
    }

    fn uninstall(&mut self) -> Result<(), SetupError> {
        let places = self.places;
        match self.target {
            Target::Nss | Target::Chromium => self.nss_unregister(&places.nss_db())?,
            Target::Firefox => {
                for profile in self.firefox_profiles()? {
                    self.nss_unregister(&profile)?;
                }
            }
            Target::P11Kit => self.remove(&places.p11kit_module())?,
            Target::Openssl => self.remove(&places.p11agent_dir.join("openssl-pkcs11.cnf"))?,
            Target::Java => {
                self.remove(&places.p11agent_dir.join("sunpkcs11.cfg"))?;
                self.remove(&places.p11agent_dir.join("java.security"))?;
            }
            Target::Ssh => {}
        }
        if self.target != Target::Nss {
            self.remove(&places.digest_policy(self.target))?;
        }
        Ok(())
    }

    fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    fn warn(&mut self, warning: String) {
        self.report.warnings.push(warning);
    }

    /// Writes the digest policy for the target's programs found here;
    /// those not found are reported, and with none found no file is
    /// written.
    fn digest_policy(&mut self) -> Result<(), SetupError> {
        if self.target == Target::Nss {
            return Ok(());
        }
        for program in self.target.programs() {
            let found = self.places.find(program);
            if found.is_empty() {
                self.report.not_installed.push(program.name);
            }
            self.report.programs.extend(found);
        }
        let file = self.places.digest_policy(self.target);
        if !self.report.not_installed.is_empty() {
            let missing = self.report.not_installed.join(", ");
            self.warn(format!(
                "not installed here: {missing}; the digest policy leaves it out (install it and \
                 run setup again)"
            ));
        }
        if self.report.programs.is_empty() {
            self.note(format!(
                "no digest policy written ({}): none of its programs is installed",
                file.display()
            ));
            return Ok(());
        }
        let programs = self
            .report
            .programs
            .iter()
            .map(|p| utf8(p))
            .collect::<Result<Vec<_>, _>>()?;
        let content = digest_policy(self.target, &programs);
        self.write(&file, content)?;
        self.note(format!(
            "a `p11agent daemon` started from now on applies the digest policy in {}; restart \
             a running one",
            file.parent().unwrap_or(&file).display()
        ));
        Ok(())
    }

    /// Writes one of setup's files, unless it already says `content` or
    /// is not setup's own.
    fn write(&mut self, path: &Path, content: String) -> Result<(), SetupError> {
        let status = match read_existing(path)? {
            None => Status::Created,
            Some(existing) if existing == content => Status::Unchanged,
            Some(existing) if existing.starts_with(MARKER) => Status::Updated,
            Some(_) => {
                self.warn(format!(
                    "{} was not written by p11agent setup (its first line says so), so it is \
                     left as it is; move it away and run setup again to have setup's version, \
                     which --print shows",
                    path.display()
                ));
                Status::Kept
            }
        };
        if status.changes() && !self.print {
            write_file(path, &content)?;
        }
        self.report.changes.push(Change::File {
            path: path.to_path_buf(),
            status,
            content: Some(content),
        });
        Ok(())
    }

    /// Deletes one of setup's files.
    fn remove(&mut self, path: &Path) -> Result<(), SetupError> {
        let status = match read_existing(path)? {
            None => Status::Absent,
            Some(existing) if existing.starts_with(MARKER) => Status::Removed,
            Some(_) => {
                self.warn(format!(
                    "{} was not written by p11agent setup, so it is left as it is",
                    path.display()
                ));
                Status::Kept
            }
        };
        if status == Status::Removed && !self.print {
            std::fs::remove_file(path).map_err(|source| SetupError::File {
                action: "remove",
                path: path.to_path_buf(),
                source,
            })?;
        }
        self.report.changes.push(Change::File {
            path: path.to_path_buf(),
            status,
            content: None,
        });
        Ok(())
    }

    /// Registers `module` in the NSS database in `dir` under
    /// [`NSS_NAME`], creating the database when there is none; a
    /// registration with another library is replaced.
    fn nss_register(&mut self, dir: &Path, module: &Path) -> Result<(), SetupError> {
        let db = nss_db_arg(dir);
        let add: Vec<OsString> = vec![
            "modutil".into(),
            "-dbdir".into(),
            db.clone(),
            "-add".into(),
            NSS_NAME.into(),
            "-libfile".into(),
            module.into(),
            "-force".into(),
        ];
        let (status, commands) = if nss_db_exists(dir) {
            match self.nss_registered(dir)? {
                Some(library) if same_file(&library, module) => (Status::Unchanged, vec![]),
                Some(_) => (Status::Replaced, vec![nss_delete(&db), add]),
                None => (Status::Registered, vec![add]),
            }
        } else {
            // certutil makes the database Chromium would make: no password.
            let create = ["certutil", "-N", "--empty-password", "-d"]
                .into_iter()
                .map(OsString::from)
                .chain([db.clone()])
                .collect();
            (Status::Registered, vec![create, add])
        };
        // With --print too: what would be run must be there to run.
        for command in &commands {
            let tool = command.first().map(|t| t.to_string_lossy().into_owned());
            if let Some(tool) = tool.filter(|tool| self.places.which(tool).is_none()) {
                return Err(SetupError::ToolMissing { tool });
            }
        }
        if !self.print && !commands.is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| SetupError::File {
                action: "create",
                path: dir.to_path_buf(),
                source,
            })?;
            restrict_to_owner(dir)?;
            for command in &commands {
                run_tool(self.places, command)?;
            }
        }
        self.report.changes.push(Change::NssModule {
            database: db.to_string_lossy().into_owned(),
            name: NSS_NAME,
            library: Some(module.to_path_buf()),
            status,
            commands: display_commands(&commands),
        });
        Ok(())
    }

    fn nss_unregister(&mut self, dir: &Path) -> Result<(), SetupError> {
        let db = nss_db_arg(dir);
        let (status, commands, library) = if nss_db_exists(dir) {
            match self.nss_registered(dir)? {
                Some(library) => (Status::Unregistered, vec![nss_delete(&db)], Some(library)),
                None => (Status::Absent, vec![], None),
            }
        } else {
            (Status::Absent, vec![], None)
        };
        if !self.print {
            for command in &commands {
                run_tool(self.places, command)?;
            }
        }
        self.report.changes.push(Change::NssModule {
            database: db.to_string_lossy().into_owned(),
            name: NSS_NAME,
            library,
            status,
            commands: display_commands(&commands),
        });
        Ok(())
    }

    /// The library registered as [`NSS_NAME`] in the database in `dir`.
    fn nss_registered(&self, dir: &Path) -> Result<Option<PathBuf>, SetupError> {
        let list: Vec<OsString> = vec![
            "modutil".into(),
            "-dbdir".into(),
            nss_db_arg(dir),
            "-list".into(),
        ];
        let listing = run_tool(self.places, &list)?;
        Ok(registered_library(&listing, NSS_NAME).map(PathBuf::from))
    }

    /// Every Firefox profile directory listed in a profiles.ini: none
    /// before Firefox first ran.
    fn firefox_profiles(&self) -> Result<Vec<PathBuf>, SetupError> {
        let roots = self.places.firefox_roots();
        let mut profiles = Vec::new();
        for root in &roots {
            let ini = root.join("profiles.ini");
            let Some(text) = read_existing(&ini)? else {
                continue;
            };
            for path in profile_paths(&text) {
                let dir = if path.is_absolute() {
                    path
                } else {
                    root.join(path)
                };
                if dir.is_dir() && !profiles.contains(&dir) {
                    profiles.push(dir);
                }
            }
        }
        Ok(profiles)
    }

    /// A warning when OpenSSL's pkcs11-provider is not where OpenSSL
    /// looks for it.
    fn missing_pkcs11_provider(&self) -> Option<String> {
        let openssl = self.places.which("openssl")?;
        let output = Command::new(openssl)
            .args(["version", "-m"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let dir = text.split('"').nth(1)?;
        let provider = Path::new(dir).join("pkcs11.so");
        (!provider.exists()).then(|| {
            format!(
                "OpenSSL's pkcs11-provider is not installed ({} is missing): on Debian 12, \
                 `apt-get install -t bookworm-backports pkcs11-provider`",
                provider.display()
            )
        })
    }
}

/// NSS's name for the SQLite database in `dir`.
fn nss_db_arg(dir: &Path) -> OsString {
    let mut arg = OsString::from("sql:");
    arg.push(dir);
    arg
}

fn nss_db_exists(dir: &Path) -> bool {
    dir.join("cert9.db").is_file()
}

fn nss_delete(db: &OsString) -> Vec<OsString> {
    ["modutil", "-dbdir"]
        .into_iter()
        .map(OsString::from)
        .chain([db.clone()])
        .chain(["-delete", NSS_NAME, "-force"].map(OsString::from))
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether Firefox holds `profile`: its lock is a symlink to
/// `ADDRESS:+PID` while it runs.
fn firefox_running(profile: &Path) -> bool {
    let Ok(target) = std::fs::read_link(profile.join("lock")) else {
        return false;
    };
    target
        .to_str()
        .and_then(|t| t.rsplit_once('+'))
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// The library registered as `name` in a `modutil -list` listing, whose
/// modules read `  N. NAME` followed by `\tlibrary name: PATH`.
fn registered_library(listing: &str, name: &str) -> Option<String> {
    let mut current: Option<&str> = None;
    for line in listing.lines() {
        let line = line.trim();
        if let Some((number, module)) = line.split_once(". ") {
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                current = Some(module.trim());
                continue;
            }
        }
        if let Some(library) = line.strip_prefix("library name:") {
            if current == Some(name) {
                return Some(library.trim().to_owned());
            }
        }
    }
    None
}

/// The `Path=` of every `[ProfileN]` section of a profiles.ini, relative
/// unless `IsRelative=0`.
fn profile_paths(ini: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut in_profile = false;
    let mut path: Option<&str> = None;
    let mut relative = true;
    let mut flush = |path: &mut Option<&str>, relative: &mut bool| {
        if let Some(p) = path.take() {
            let p = PathBuf::from(p);
            if *relative || p.is_absolute() {
                paths.push(p);
            }
        }
        *relative = true;
    };
    for line in ini.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut path, &mut relative);
            in_profile = line.starts_with("[Profile");
        } else if in_profile {
            match line.split_once('=') {
                Some(("Path", value)) => path = Some(value.trim()),
                Some(("IsRelative", value)) => relative = value.trim() != "0",
                _ => {}
            }
        }
    }
    flush(&mut path, &mut relative);
    paths
}

/// The number of the SunPKCS11 entry in the JDK's java.security, where
/// it is listed unconfigured; one past the last entry when it is not.
fn sunpkcs11_slot(java: &Path) -> Option<u32> {
    let jdk = java.parent()?.parent()?;
    let text = std::fs::read_to_string(jdk.join("conf/security/java.security")).ok()?;
    let mut last = 0;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let Some(Ok(n)) = key
            .trim()
            .strip_prefix("security.provider.")
            .map(str::parse::<u32>)
        else {
            continue;
        };
        if value.split_whitespace().next() == Some("SunPKCS11") {
            return Some(n);
        }
        last = last.max(n);
    }
    Some(last + 1)
}

/// The first lines of every file setup writes.
fn header(target: Target) -> String {
    let t = target.name();
    format!(
        "{MARKER} {t}`; `p11agent setup --remove {t}` deletes it.\n\
         # Setup rewrites this file while this first line is here: delete the line\n\
         # to make the file yours, and setup leaves it alone.\n"
    )
}

fn digest_policy(target: Target, programs: &[&str]) -> String {
    let mut text = header(target);
    text.push_str(
        "# The agent signs digests (sign_digest, PKCS#11's raw mechanisms) for these\n\
         # executables, with every identity; `identities = [\"ID PREFIX\"]` narrows a\n\
         # table to some.\n",
    );
    for program in programs {
        text.push_str("\n[[allow_digest]]\nprogram = ");
        text.push_str(&toml::Value::String((*program).to_owned()).to_string());
        text.push('\n');
    }
    text
}

fn p11kit_module(target: Target, module: &str) -> String {
    format!(
        "{}module: {module}\n\
         # The agent loads p11-kit's modules when it has none configured: never\n\
         # this one, which would ask the agent itself.\n\
         disable-in: p11agent\n",
        header(target)
    )
}

fn openssl_cnf(target: Target, module: &str) -> String {
    format!(
        "{}# OpenSSL 3 with pkcs11-provider over p11agent's PKCS#11 module:\n\
         # OPENSSL_CONF=<this file> openssl ... (the system's openssl.cnf is not read then).\n\
         openssl_conf = openssl_init\n\
         \n\
         [openssl_init]\n\
         providers = provider_sect\n\
         \n\
         [provider_sect]\n\
         default = default_sect\n\
         pkcs11 = pkcs11_sect\n\
         \n\
         [default_sect]\n\
         activate = 1\n\
         \n\
         # OpenSSL finds pkcs11.so in its MODULESDIR (`openssl version -m`).\n\
         [pkcs11_sect]\n\
         pkcs11-module-path = {module}\n\
         activate = 1\n",
        header(target)
    )
}

fn sunpkcs11_cfg(target: Target, module: &str) -> String {
    format!("{}name = p11agent\nlibrary = {module}\n", header(target))
}

fn java_security(target: Target, slot: u32, cfg: &str) -> String {
    format!(
        "{}# Security properties for java -Djava.security.properties=<this file>:\n\
         # the JDK's SunPKCS11 provider, configured with p11agent's module.\n\
         security.provider.{slot}=SunPKCS11 {}\n",
        header(target),
        cfg.replace('\\', "\\\\")
    )
}

/// A file's content, or None when there is no file.
fn read_existing(path: &Path) -> Result<Option<String>, SetupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SetupError::File {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes through a temporary file and a rename, so that a program
/// reading the file never sees half of it.
fn write_file(path: &Path, content: &str) -> Result<(), SetupError> {
    let error = |action, source| SetupError::File {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| error("create the directory of", e))?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".p11agent-new");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, content).map_err(|e| error("write", e))?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        error("write", e)
    })
}

/// NSS databases hold keys: owner only, as Chromium makes them.
fn restrict_to_owner(dir: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        SetupError::File {
            action: "set the permissions of",
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Runs an NSS tool, returning its standard output.
fn run_tool(places: &Places, command: &[OsString]) -> Result<String, SetupError> {
    let Some((tool, args)) = command.split_first() else {
        return Ok(String::new());
    };
    let tool = tool.to_string_lossy().into_owned();
    let missing = || SetupError::ToolMissing { tool: tool.clone() };
    let path = places.which(&tool).ok_or_else(missing)?;
    let output = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|_| missing())?;
    if !output.status.success() {
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        return Err(SetupError::ToolFailed {
            command: display_command(command),
            status: output.status.to_string(),
            detail,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn display_commands(commands: &[Vec<OsString>]) -> Vec<Vec<String>> {
    commands
        .iter()
        .map(|c| c.iter().map(|a| a.to_string_lossy().into_owned()).collect())
        .collect()
}

fn display_command(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|word| shell_quote(&word.to_string_lossy()))
        .collect();
    words.join(" ")
}

/// `word` as a shell reads it back.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn print_text(report: &Report) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    let width = 16;
    for change in &report.changes {
        match change {
            Change::File {
                path,
                status,
                content,
            } => {
                let label = status.label(report.print);
                writeln!(out, "{label:width$} {}", path.display())?;
                if report.print && status.changes() {
                    for line in content.as_deref().unwrap_or_default().lines() {
                        writeln!(out, "{:width$} | {line}", "")?;
                    }
                }
            }
            Change::NssModule {
                database,
                name,
                status,
                commands,
                ..
            } => {
                let label = status.label(report.print);
                writeln!(out, "{label:width$} {name} in {database}")?;
                let verb = if report.print { "would run" } else { "ran" };
                for command in commands {
                    let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
                    writeln!(out, "{:width$} {verb}: {}", "", words.join(" "))?;
                }
            }
        }
    }
    for note in &report.notes {
        writeln!(out, "{note}")?;
    }
    if report.print {
        writeln!(out, "(--print: nothing was changed)")?;
    }
    drop(out);
    for warning in &report.warnings {
        eprintln!("p11agent: warning: {warning}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_library_of_the_named_module_in_a_listing() {
        let listing = "\nListing of PKCS #11 Modules\n\
            -----------------------------------------------------------\n  \
            1. NSS Internal PKCS #11 Module\n\t   uri: pkcs11:library-manufacturer=Mozilla\n\t \
            slots: 2 slots attached\n\n  \
            2. p11agent-old\n\tlibrary name: /old.so\n\n  \
            3. p11agent\n\tlibrary name: /opt/p 11/libp11agent_pkcs11.so\n\t \
            slots: There are no slots attached to this module\n\tstatus: Not loaded\n";
        assert_eq!(
            registered_library(listing, "p11agent").as_deref(),
            Some("/opt/p 11/libp11agent_pkcs11.so")
        );
        assert_eq!(
            registered_library(listing, "p11agent-old").as_deref(),
            Some("/old.so")
        );
        assert_eq!(registered_library(listing, "other"), None);
        // The internal module has no library line: nothing leaks to the next.
        assert_eq!(
            registered_library(listing, "NSS Internal PKCS #11 Module"),
            None
        );
    }

    #[test]
    fn reads_profile_paths_from_profiles_ini() {
        let ini = "[Install4F96D1932A9F858E]\nDefault=abc.default-esr\nLocked=1\n\n\
            [Profile1]\nName=default\nIsRelative=1\nPath=abc.default\n\n\
            [Profile0]\nName=work\nIsRelative=0\nPath=/data/work-profile\n\n\
            [Profile2]\nName=odd\nIsRelative=0\nPath=not-absolute\n\n\
            [General]\nStartWithLastProfile=1\nVersion=2\n";
        assert_eq!(
            profile_paths(ini),
            vec![
                PathBuf::from("abc.default"),
                PathBuf::from("/data/work-profile")
            ]
        );
    }

    #[test]
    fn quotes_words_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("/usr/lib/x.so"), "/usr/lib/x.so");
        assert_eq!(shell_quote("sql:/home/a b"), "'sql:/home/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_digest_policy_names_each_program_in_a_table() {
        let text = digest_policy(
            Target::Ssh,
            &["/usr/bin/ssh", "/usr/lib/openssh/ssh-pkcs11-helper"],
        );
        assert!(text.starts_with(MARKER));
        let parsed: toml::Table = toml::from_str(&text).expect("TOML");
        let tables = parsed["allow_digest"].as_array().expect("array of tables");
        let programs: Vec<&str> = tables
            .iter()
            .map(|t| t["program"].as_str().expect("program"))
            .collect();
        assert_eq!(
            programs,
            ["/usr/bin/ssh", "/usr/lib/openssh/ssh-pkcs11-helper"]
        );
        assert!(tables
            .iter()
            .all(|t| t.as_table().is_some_and(|t| t.len() == 1)));
        // A path TOML must escape stays the same path.
        let odd = digest_policy(Target::Java, &[r#"/opt/"j"\bin/java"#]);
        let parsed: toml::Table = toml::from_str(&odd).expect("TOML");
        assert_eq!(
            parsed["allow_digest"][0]["program"].as_str(),
            Some(r#"/opt/"j"\bin/java"#)
        );
    }

    /// Writes an executable file starting with `head`.
    fn executable(path: &Path, head: &[u8]) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, head).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn names_the_executable_a_launcher_script_starts_and_follows_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let (bin, lib) = (root.join("bin"), root.join("lib"));
        let real: &'static str = Box::leak(
            lib.join("prog")
                .to_str()
                .expect("utf-8")
                .to_owned()
                .into_boxed_str(),
        );
        let program = Program {
            name: "prog",
            commands: &["prog", "prog-alias"],
            elsewhere: Box::leak(vec![real].into_boxed_slice()),
        };
        let places = Places {
            home: root.join("home"),
            config_home: root.join("home/.config"),
            p11agent_dir: root.join("home/.config/p11agent"),
            path: Some(OsString::from(format!("{}:relative/dir", bin.display()))),
            root: false,
        };
        // Not installed at all.
        assert!(places.find(&program).is_empty());

        // Only a launcher script on PATH: the executable it starts.
        executable(
            &bin.join("prog"),
            b"#!/bin/sh\nexec /elsewhere/prog \"$@\"\n",
        );
        assert!(places.find(&program).is_empty());
        executable(&lib.join("prog"), b"\x7fELF rest of the file");
        assert_eq!(places.find(&program), [lib.join("prog")]);

        // An executable on PATH, through a symlink, and once for two names.
        std::fs::remove_file(bin.join("prog")).expect("rm");
        executable(&lib.join("other"), b"\x7fELF another");
        std::os::unix::fs::symlink(lib.join("other"), bin.join("prog")).expect("symlink");
        std::os::unix::fs::symlink(lib.join("other"), bin.join("prog-alias")).expect("symlink");
        assert_eq!(places.find(&program), [lib.join("other")]);

        // A file that is not executable is not a program.
        let plain = root.join("plain");
        std::fs::write(&plain, b"\x7fELF").expect("write");
        assert!(!is_executable(&plain));
    }

    #[test]
    fn finds_sunpkcs11_in_the_jdks_provider_list() {
        let jdk = tempfile::tempdir().expect("tempdir");
        let security = jdk.path().join("conf/security");
        std::fs::create_dir_all(&security).expect("mkdir");
        let java = jdk.path().join("bin/java");
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\n#security.provider.13=SunPKCS11\n\
             security.provider.11=JdkSASL\nsecurity.provider.12=SunPKCS11\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(12));
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\nsecurity.provider.2=SunRsaSign\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(3));
        std::fs::remove_file(security.join("java.security")).expect("rm");
        assert_eq!(sunpkcs11_slot(&java), None);
    }
}
