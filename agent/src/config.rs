//! The daemon's settings: its flags, its configuration file, and the
//! environment, merged once into [`Settings`] (as ripgrep resolves its
//! low-level arguments into high-level ones), which the daemon wires
//! into the service and the server. A flag wins over the file; the file
//! over the default.
//!
//! The configuration file is TOML, by default `$XDG_CONFIG_HOME/p11agent/config.toml` (or
//! `~/.config/p11agent/config.toml`), read when present:
//!
//! ```toml
//! # PKCS#11 modules to load. When any are given, here or with --module,
//! # they replace the modules registered with p11-kit.
//! modules = ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"]
//! # Load each module in a helper process of its own (default true), so
//! # that a module that crashes costs its own requests in flight and its
//! # logins, never the agent; --isolate overrides it. Per module below.
//! isolate = true
//! isolate_module = { "/usr/lib/softhsm/libsofthsm2.so" = false }
//! # Where to listen; --socket overrides it.
//! socket = "/run/user/1000/p11agent/agent.sock"
//! # Where PINs come from: a file holding the user PIN (automation), or a
//! # pinentry program (a person); --pin-file / --pinentry override them.
//! pin_file = "/home/me/.config/p11agent/pin"
//! pinentry = "/usr/bin/pinentry-curses"
//!
//! # Intermediate and root CA certificates (PEM or DER files) used to
//! # build each identity's chain, with the CA certificates on the tokens;
//! # --ca-dir overrides it.
//! ca_dir = "/etc/p11agent/ca"
//! # Who asks a person to pick a certificate when policy says one must
//! # and the TLS application cannot ask itself: a program speaking the
//! # chooser contract (see `p11agent chooser --help`), or "tty" for the
//! # shipped terminal chooser. Without one, the agent declines.
//! chooser = "tty"
//! # Remember choices across restarts in this file (mode 0600); without
//! # it they last for the daemon's lifetime.
//! decisions_file = "/home/me/.local/state/p11agent/decisions.json"
//!
//! # Auto-select rules, in the format of Chromium's
//! # AutoSelectCertificateForUrls policy, in order; the first rule whose
//! # pattern matches the origin and whose filter matches a candidate wins.
//! # Entries are tables or JSON strings, as Chromium stores them.
//! auto_select = [
//!   { pattern = "https://[*.]corp.example", filter = { ISSUER = { CN = "Corp CA" } } },
//!   '{"pattern": "https://vpn.example:8443", "filter": {"SUBJECT": {"O": "Example"}}}',
//! ]
//! # When a rule matches several certificates, ask instead of taking the
//! # first (as Edge's ForceCertificatePromptsOnMultipleMatches).
//! force_prompt_on_multiple_matches = true
//! # Origins (Chromium URL patterns) to which the only candidate may be
//! # sent without a rule. Default: none; a client certificate identifies
//! # you to every site that gets it, so nothing is sent silently.
//! send_when_single_candidate = ["https://[*.]intranet.example"]
//!
//! # How often each module is asked which tokens are present (ms;
//! # default 500), and how long one PKCS#11 poll or scan may take before
//! # the module is marked unavailable (ms; default 5000).
//! poll_interval_ms = 500
//! module_deadline_ms = 5000
//! # Keep listing the identities of removed tokens (as absent), so that a
//! # request for one says which token to insert (default true).
//! remember_absent_tokens = true
//!
//! # What keys may sign: "tls" (only TLS CertificateVerify inputs; the
//! # default) or "any"; per identity (id or unique id prefix) below.
//! purpose = "tls"
//! # Users besides the agent's own allowed to connect (uids).
//! allowed_uids = [1001]
//! # Append one JSON line per signature, selection, login, logout and
//! # refusal here (created 0600); --audit-log overrides it.
//! audit_log = "/home/me/.local/state/p11agent/audit.log"
//! # A restricted socket for remote shells (forwarded with `ssh -R`);
//! # --extra-socket overrides it.
//! extra_socket = "/run/user/1000/p11agent/extra.sock"
//!
//! # Log out of a token after this long without a signature (seconds).
//! login_idle_timeout_secs = 600
//!
//! [identities."3f2a9c1b7d0e4a55"]
//! purpose = "any"        # e.g. a key also used for document signing
//! confirm = true         # ask (pinentry CONFIRM) before each signature
//!
//! # Programs that may have digests signed (sign_digest, what a PKCS#11
//! # module such as p11agent's own asks for). None by default. `program`
//! # is the executable as /proc/PID/exe shows it (a symbolic link to it
//! # is resolved when the file is read); `identities` (ids or id
//! # prefixes of at least 8 hex digits) limits it, all when left out.
//! [[allow_digest]]
//! program = "/usr/lib/chromium/chromium"
//! [[allow_digest]]
//! program = "/usr/bin/pdfsigner"
//! identities = ["3f2a9c1b7d0e4a55"]
//! ```
//!
//! Besides the file, every `*.toml` file in the folder `digest.d/` beside
//! it (by default `$XDG_CONFIG_HOME/p11agent/digest.d/`, where
//! `p11agent setup` writes) may hold `[[allow_digest]]` tables, and only
//! those. Both are read once, at start; a file that is not valid stops
//! the daemon, naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use p11agent_proto::frame::{FRAME_TIMEOUT, IDLE_TIMEOUT};
use serde::Deserialize;

use crate::pin::Pinentry;
use crate::select::chooser::Chooser;
use crate::select::decide::Policy;
use crate::select::decisions::{Decisions, DecisionsError};
use crate::select::policy::{AutoSelectRules, SingleCandidatePatterns};
use crate::select::selector::Selector;
use crate::server::{ServerOptions, Timeouts};
use crate::service::{
    AgentOptions, Audit, AuditError, BadDigestRule, DigestPolicy, DigestRule, Isolation, Purpose,
    Purposes, WatchOptions,
};
use crate::store::chain::read_ca_folder;
use crate::store::ChainCert;
use crate::token::{own_module, OwnModule};

/// Overrides [`FRAME_TIMEOUT`], in milliseconds. For tests, which would
/// otherwise wait 10 s for each slow client to be cut off; described in
/// `p11agent daemon --help`.
const FRAME_TIMEOUT_ENV: &str = "P11AGENT_FRAME_TIMEOUT_MS";

/// Overrides [`IDLE_TIMEOUT`], in milliseconds, for the same reason.
const IDLE_TIMEOUT_ENV: &str = "P11AGENT_IDLE_TIMEOUT_MS";

/// The flags of `p11agent daemon`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct DaemonFlags {
    /// A PKCS#11 module to load; repeat for several. Replaces the
    /// modules registered with p11-kit. p11agent's own module
    /// (libp11agent_pkcs11.so) is refused: it forwards to this agent.
    #[arg(long = "module", value_name = "PATH")]
    modules: Vec<PathBuf>,

    /// Load every module in a helper process of its own (true, the
    /// default) or in the agent (false). A module that crashes in a
    /// helper costs its requests in flight and its logins; the helper
    /// restarts. In the agent, it takes the agent down, but a signature
    /// costs about 15 µs less CPU. Overrides `isolate` and
    /// `[isolate_module]` in the config file.
    #[arg(long, value_name = "BOOL")]
    isolate: Option<bool>,
    /// Configuration file [default: $XDG_CONFIG_HOME/p11agent/config.toml, when present].
    /// The digest policy files are read from digest.d/ beside it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Read the user PIN from FILE when a login is needed (automation;
    /// keep the file mode 0600). Wins over --pinentry.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Ask for PINs with this pinentry program (pinentry-curses,
    /// pinentry-tty, pinentry-gnome3, ... as gpg-agent uses them).
    #[arg(long, value_name = "PROGRAM")]
    pinentry: Option<PathBuf>,
    /// A folder of CA certificates (PEM or DER files) used with those on
    /// the tokens to build each identity's chain.
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Who asks a person to pick a certificate when policy says one must
    /// and the TLS application cannot ask itself: a program speaking the
    /// chooser contract (`p11agent chooser --help`), or `tty` for the
    /// shipped terminal chooser. Without one the agent sends nothing.
    #[arg(long, value_name = "PROGRAM|tty")]
    chooser: Option<PathBuf>,
    /// Remember choices across restarts in FILE (mode 0600); without it
    /// they last until the daemon exits.
    #[arg(long, value_name = "FILE")]
    decisions_file: Option<PathBuf>,
    /// Ask each module every MS milliseconds which tokens are present
    /// (insertions and removals show within about that time)
    /// [default: 500].
    #[arg(long, value_name = "MS")]
    poll_interval: Option<u64>,
    /// Mark a module unavailable when one PKCS#11 poll or scan takes
    /// longer than MS milliseconds [default: 5000].
    #[arg(long, value_name = "MS")]
    module_deadline: Option<u64>,
    /// Append an audit record (one JSON line) for every signature,
    /// selection, login, logout and refusal to FILE (created 0600).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,

    /// Also listen on PATH, a restricted socket meant to be forwarded to
    /// a remote shell (`ssh -R /run/user/UID/p11agent/agent.sock:PATH
    /// host`, as gpg-agent's extra socket): there only hello, status,
    /// tokens, list, show, select and sign are served (signatures under
    /// the same purpose binding and confirmation), every request is
    /// audited as remote, and logins, logouts, remembered choices and
    /// events are refused.
    #[arg(long, value_name = "PATH")]
    extra_socket: Option<PathBuf>,
}

/// Everything the daemon runs with, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The socket to listen on.
    pub(crate) socket: PathBuf,
    /// The restricted socket for remote shells, if any.
    pub(crate) extra_socket: Option<PathBuf>,
    /// What the service is made of.
    pub(crate) agent: AgentOptions,
    /// How the server runs.
    pub(crate) server: ServerOptions,
}

/// The settings a configuration file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// PKCS#11 modules to load.
    #[serde(default)]
    pub modules: Vec<PathBuf>,
    /// Load modules in helper processes, unless `isolate_module` says
    /// otherwise for one.
    pub isolate: Option<bool>,
    /// Whether to load a module (by path, as given) in a helper process.
    #[serde(default)]
    pub isolate_module: BTreeMap<PathBuf, bool>,
    /// The socket path.
    pub socket: Option<PathBuf>,
    /// A file holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// A pinentry program to ask a person for PINs.
    pub pinentry: Option<PathBuf>,
    /// A folder of CA certificates for chains.
    pub ca_dir: Option<PathBuf>,
    /// The chooser program, or `tty` for the shipped one.
    pub chooser: Option<PathBuf>,
    /// Where remembered choices persist.
    pub decisions_file: Option<PathBuf>,
    /// Auto-select rules.
    #[serde(default)]
    pub auto_select: AutoSelectRules,
    /// Prompt when a rule matches several certificates.
    #[serde(default)]
    pub force_prompt_on_multiple_matches: bool,
    /// Origins that may get their only candidate without a rule.
    #[serde(default)]
    pub send_when_single_candidate: SingleCandidatePatterns,
    /// Milliseconds between polls of a module for token changes.
    pub poll_interval_ms: Option<u64>,
    /// Milliseconds one poll or scan of a module may take.
    pub module_deadline_ms: Option<u64>,
    /// Keep the identities of removed tokens listed, as absent.
    pub remember_absent_tokens: Option<bool>,
    /// What keys may sign, unless an identity says otherwise.
    #[serde(default)]
    pub purpose: Purpose,
    /// Other users allowed to connect.
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// The audit log file.
    pub audit_log: Option<PathBuf>,
    /// The restricted socket for remote shells.
    pub extra_socket: Option<PathBuf>,
    /// Log out of a token after this many seconds without a signature
    /// (as `ssh-add -t`); none: logins last until logout or removal.
    pub login_idle_timeout_secs: Option<u64>,
    /// Settings per identity, by id or unique id prefix.
    #[serde(default)]
    pub identities: BTreeMap<String, IdentitySettings>,
    /// Programs that may have digests signed (`sign_digest`).
    #[serde(default)]
    pub allow_digest: Vec<AllowDigest>,
}

/// One `[[allow_digest]]` table: a program that may have digests signed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowDigest {
    /// The program's executable, as `/proc/PID/exe` shows it.
    pub program: PathBuf,
    /// The identities it may use (ids or id prefixes); every identity
    /// when absent.
    pub identities: Option<Vec<String>>,
}

/// A file of the digest policy's drop-in folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestDropIn {
    #[serde(default)]
    allow_digest: Vec<AllowDigest>,
}

/// The folder of digest policy files, beside the configuration file.
pub(crate) const DIGEST_DROP_IN_DIR: &str = "digest.d";

/// Settings for one identity.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentitySettings {
    /// What its key may sign.
    pub purpose: Option<Purpose>,
    /// Ask the person (through the pinentry program) to allow each
    /// signature, as `ssh-add -c`.
    #[serde(default)]
    pub confirm: bool,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The PIN file is missing or not private.
    #[error(transparent)]
    PinFile(#[from] crate::pin::PinFileError),
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its location.
        source: Box<toml::de::Error>,
    },
    /// The CA folder could not be read.
    #[error("cannot read the CA folder {}: {source}", path.display())]
    CaFolder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The decisions file is unusable.
    #[error(transparent)]
    Decisions(#[from] DecisionsError),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A module to load is p11agent's own, which forwards to this agent.
    #[error(
        "{} is p11agent's own PKCS#11 module ({how}), which forwards to this agent; \
         give the module of your token, e.g. /usr/lib/{}-linux-gnu/opensc-pkcs11.so for \
         smartcards through OpenSC, or none to use the modules registered with p11-kit",
        path.display(),
        std::env::consts::ARCH
    )]
    OwnModule {
        /// The module.
        path: PathBuf,
        /// How it was recognised.
        how: OwnModule,
    },
    /// The digest policy's drop-in folder could not be read.
    #[error("cannot read the digest policy folder {}: {source}", path.display())]
    DigestFolder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the drop-in folder is not a digest policy file.
    #[error(
        "invalid digest policy file {}: {source}; it may hold only [[allow_digest]] tables \
         with `program` and `identities`",
        path.display()
    )]
    DigestFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its location.
        source: Box<toml::de::Error>,
    },
    /// An `[[allow_digest]]` table is unusable.
    #[error("invalid [[allow_digest]] in {}: {source}", path.display())]
    DigestRule {
        /// The file it is in.
        path: PathBuf,
        /// What is wrong.
        source: BadDigestRule,
    },
}

impl Config {
    /// Reads `explicit` when given (it must exist), else the default
    /// file when it exists, else the empty configuration.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => match default_path() {
                Some(path) if path.exists() => path,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path,
            source: Box::new(source),
        })
    }
}

impl Settings {
    /// Merges `flags`, the configuration `file` and the environment.
    /// `socket` is the global `--socket` flag (or `P11AGENT_SOCK`).
    ///
    /// Reads the CA folder and opens the decisions file and the audit
    /// log, so that a daemon that starts has usable settings; logs what
    /// it skipped or overrode, so call it once logging is set up.
    pub(crate) fn resolve(
        socket: Option<PathBuf>,
        flags: DaemonFlags,
        file: Config,
    ) -> Result<Settings, ConfigError> {
        let mut modules = file.modules;
        modules.extend(flags.modules);
        let modules = modules_to_load(modules)?;
        let ca_folder = match flags.ca_dir.or(file.ca_dir) {
            Some(dir) => ca_folder(&dir)?,
            None => Vec::new(),
        };
        let selector = selector(
            flags.decisions_file.or(file.decisions_file),
            flags.chooser.or(file.chooser),
            Policy {
                rules: file.auto_select,
                force_prompt_on_multiple_matches: file.force_prompt_on_multiple_matches,
                send_when_single_candidate: file.send_when_single_candidate,
            },
        )?;
        let audit = match flags.audit_log.or(file.audit_log) {
            Some(path) => Audit::to_file(&path)?,
            None => Audit::log_only(),
        };
        let purposes = purposes(file.purpose, &file.identities);
        let config_file = flags.config.clone().or_else(default_path);
        let digest_policy = digest_policy(config_file.as_deref(), file.allow_digest)?;
        let pinentry = flags.pinentry.or(file.pinentry);
        let defaults = WatchOptions::default();
        let watch = WatchOptions {
            interval: flags
                .poll_interval
                .or(file.poll_interval_ms)
                .map_or(defaults.interval, Duration::from_millis),
            deadline: flags
                .module_deadline
                .or(file.module_deadline_ms)
                .map_or(defaults.deadline, Duration::from_millis),
            remember_absent: file
                .remember_absent_tokens
                .unwrap_or(defaults.remember_absent),
        };
        Ok(Settings {
            extra_socket: flags.extra_socket.or(file.extra_socket),
            socket: socket
                .or(file.socket)
                .unwrap_or_else(p11agent_proto::paths::default_socket),
            agent: AgentOptions {
                modules,
                isolation: Isolation {
                    default: flags.isolate.or(file.isolate).unwrap_or(true),
                    per_module: if flags.isolate.is_some() {
                        BTreeMap::new()
                    } else {
                        file.isolate_module
                    },
                },
                pins: crate::pin::source(flags.pin_file.or(file.pin_file), pinentry.clone())?,
                ca_folder,
                selector,
                watch,
                purposes,
                digest_policy,
                audit,
                confirm_with: pinentry.map(Pinentry::new),
                login_idle_timeout: file.login_idle_timeout_secs.map(Duration::from_secs),
                error_code: crate::server::error_code,
            },
            server: ServerOptions {
                timeouts: timeouts(|name| std::env::var(name).ok()),
                allowed_uids: file.allowed_uids,
            },
        })
    }
}

/// The modules to load: `configured`, or, when none are, the modules
/// registered with p11-kit. p11agent's own PKCS#11 module forwards to
/// this agent, which must never load it: named explicitly, it is a
/// mistake to stop at; registered with p11-kit (for the other programs
/// that use the registry), it is left out.
fn modules_to_load(configured: Vec<PathBuf>) -> Result<Vec<PathBuf>, ConfigError> {
    if configured.is_empty() {
        let modules = without_own_module(crate::token::default_modules());
        tracing::info!(
            count = modules.len(),
            "using the modules registered with p11-kit"
        );
        return Ok(modules);
    }
    if let Some((path, how)) = configured
        .iter()
        .find_map(|path| own_module(path).map(|how| (path, how)))
    {
        return Err(ConfigError::OwnModule {
            path: path.clone(),
            how,
        });
    }
    Ok(configured)
}

/// `registered` without p11agent's own module, with a line for each one
/// left out.
fn without_own_module(registered: Vec<PathBuf>) -> Vec<PathBuf> {
    registered
        .into_iter()
        .filter(|path| match own_module(path) {
            Some(how) => {
                tracing::info!(module = %path.display(), "not loading p11agent's own PKCS#11 module, registered with p11-kit ({how}): it forwards to this agent");
                false
            }
            None => true,
        })
        .collect()
}

/// Selection: `policy`, remembered choices (persisted in
/// `decisions_file` when given), and the chooser program (`tty` is this
/// binary's own terminal chooser).
fn selector(
    decisions_file: Option<PathBuf>,
    chooser: Option<PathBuf>,
    policy: Policy,
) -> Result<Selector, ConfigError> {
    let decisions = match decisions_file {
        Some(path) => Decisions::persistent(path)?,
        None => Decisions::in_memory(),
    };
    let chooser = chooser.map(|program| {
        if program.as_os_str() == "tty" {
            let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("p11agent"));
            Chooser::new(me).with_args(["chooser"])
        } else {
            Chooser::new(program)
        }
    });
    Ok(Selector::new(policy, decisions, chooser))
}

/// What each identity's key may sign, and which need each signature
/// confirmed.
fn purposes(default: Purpose, identities: &BTreeMap<String, IdentitySettings>) -> Purposes {
    Purposes::new(
        default,
        identities
            .iter()
            .filter_map(|(id, settings)| settings.purpose.map(|p| (id.clone(), p))),
    )
    .confirming(
        identities
            .iter()
            .filter(|(_, settings)| settings.confirm)
            .map(|(id, _)| id.clone()),
    )
}

/// The digest policy: the `[[allow_digest]]` tables of `config_file`
/// (`main`), then those of every `*.toml` file in the drop-in folder
/// beside it, in name order. Rule programs are canonicalised here, once,
/// so that a rule may name a symbolic link to the executable.
fn digest_policy(
    config_file: Option<&Path>,
    main: Vec<AllowDigest>,
) -> Result<DigestPolicy, ConfigError> {
    let drop_in_dir = config_file
        .and_then(Path::parent)
        .map(|dir| dir.join(DIGEST_DROP_IN_DIR));
    let main_source =
        config_file.map_or_else(|| PathBuf::from("the configuration"), Path::to_path_buf);
    let mut tables = vec![(main_source, main)];
    if let Some(dir) = &drop_in_dir {
        tables.extend(read_digest_drop_ins(dir)?);
    }
    let mut rules = Vec::new();
    for (source, allow) in tables {
        for AllowDigest {
            program,
            identities,
        } in allow
        {
            let program = if program.is_absolute() {
                std::fs::canonicalize(&program).unwrap_or_else(|err| {
                    tracing::warn!(file = %source.display(), program = %program.display(), error = %err, "digest policy: the program is not there; the rule names it as written");
                    program
                })
            } else {
                program
            };
            let shown = format!(
                "{} with {}",
                program.display(),
                identities
                    .as_ref()
                    .map_or_else(|| "every identity".to_owned(), |ids| ids.join(", "))
            );
            let rule = DigestRule::new(program, identities, source.clone()).map_err(|err| {
                ConfigError::DigestRule {
                    path: source.clone(),
                    source: err,
                }
            })?;
            tracing::info!(file = %source.display(), rule = %shown, "digest signatures allowed");
            rules.push(rule);
        }
    }
    Ok(DigestPolicy::new(rules, drop_in_dir))
}

/// The `[[allow_digest]]` tables of each `*.toml` file in `dir` (hidden
/// files left out), in name order; none when `dir` does not exist.
fn read_digest_drop_ins(dir: &Path) -> Result<Vec<(PathBuf, Vec<AllowDigest>)>, ConfigError> {
    let folder_error = |source| ConfigError::DigestFolder {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(folder_error(err)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(folder_error)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with('.') && name.ends_with(".toml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            match toml::from_str::<DigestDropIn>(&text) {
                Ok(drop_in) => Ok((path, drop_in.allow_digest)),
                Err(source) => Err(ConfigError::DigestFile {
                    path,
                    source: Box::new(source),
                }),
            }
        })
        .collect()
}

/// The CA certificates in `dir`, with what was skipped logged.
fn ca_folder(dir: &Path) -> Result<Vec<Arc<ChainCert>>, ConfigError> {
    let folder = read_ca_folder(dir).map_err(|source| ConfigError::CaFolder {
        path: dir.to_path_buf(),
        source,
    })?;
    for (path, why) in &folder.skipped {
        tracing::warn!(file = %path.display(), why, "CA folder: skipped");
    }
    tracing::info!(
        dir = %dir.display(),
        certificates = folder.certificates.len(),
        "CA folder read"
    );
    Ok(folder.certificates)
}

/// The protocol's timeouts, or those `lookup` finds in
/// [`FRAME_TIMEOUT_ENV`] and [`IDLE_TIMEOUT_ENV`]. A value that is not a
/// positive number of milliseconds is reported and ignored rather than
/// refused: it is a testing knob, and the default is always safe.
fn timeouts(lookup: impl Fn(&str) -> Option<String>) -> Timeouts {
    let setting = |name: &str, default: Duration| match lookup(name) {
        None => default,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => {
                tracing::info!(name, ms, "timeout set from the environment");
                Duration::from_millis(ms)
            }
            _ => {
                tracing::warn!(
                    name,
                    value = text,
                    "not a positive number of milliseconds; using the default"
                );
                default
            }
        },
    };
    Timeouts {
        frame: setting(FRAME_TIMEOUT_ENV, FRAME_TIMEOUT),
        idle: setting(IDLE_TIMEOUT_ENV, IDLE_TIMEOUT),
    }
}

/// The user's configuration directory: `$XDG_CONFIG_HOME`, or
/// `~/.config` when that is unset or empty. `p11agent setup` writes the
/// digest policy here, beside the default configuration file, so that a
/// daemon started without --config finds both.
pub(crate) fn config_home() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => Some(PathBuf::from(std::env::var_os("HOME")?).join(".config")),
    }
}

/// `p11agent/` in the user's configuration directory.
pub(crate) fn p11agent_config_dir() -> Option<PathBuf> {
    Some(config_home()?.join("p11agent"))
}

fn default_path() -> Option<PathBuf> {
    Some(p11agent_config_dir()?.join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "modules = [\"/a.so\", \"/b.so\"]\nsocket = \"/s\"\n")
            .expect("write");
        let config = Config::load(Some(&path)).expect("load");
        assert_eq!(
            config.modules,
            vec![PathBuf::from("/a.so"), PathBuf::from("/b.so")]
        );
        assert_eq!(config.socket, Some(PathBuf::from("/s")));

        std::fs::write(&path, "modulez = []\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("unknown key");
        assert!(err.to_string().contains("modulez"), "{err}");
    }

    #[test]
    fn environment_overrides_and_bad_values() {
        let none = timeouts(|_| None);
        assert_eq!(none, Timeouts::default());
        assert_eq!(none.frame, Duration::from_secs(10));
        assert_eq!(none.idle, Duration::from_secs(300));

        let set = timeouts(|name| {
            Some(
                if name == FRAME_TIMEOUT_ENV {
                    "250"
                } else {
                    " 1500 "
                }
                .to_owned(),
            )
        });
        assert_eq!(set.frame, Duration::from_millis(250));
        assert_eq!(set.idle, Duration::from_millis(1500));

        for bad in ["0", "-5", "ten", ""] {
            let t = timeouts(|_| Some(bad.to_owned()));
            assert_eq!(t, Timeouts::default(), "{bad:?} is ignored");
        }
    }
    fn peer(exe: &Path) -> crate::service::Peer {
        crate::service::Peer {
            uid: 1000,
            pid: Some(7),
            exe: Some(exe.display().to_string()),
            remote: false,
        }
    }

    const ID: &str = "3f2a9c1b7d0e4a55aa00bb11cc22dd33ee44ff5566778899aabbccddeeff0011";

    #[test]
    fn digest_rules_come_from_the_file_and_the_drop_ins_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[[allow_digest]]\nprogram = \"/usr/bin/main-signer\"\nidentities = [\"3F:2A:9C:1B\"]\n",
        )
        .expect("write");
        let drop_ins = dir.path().join(DIGEST_DROP_IN_DIR);
        std::fs::create_dir(&drop_ins).expect("mkdir");
        std::fs::write(
            drop_ins.join("chromium.toml"),
            "[[allow_digest]]\nprogram = \"/usr/lib/chromium/chromium\"\n",
        )
        .expect("write");
        std::fs::write(
            drop_ins.join("two.toml"),
            "[[allow_digest]]\nprogram = \"/opt/a\"\n[[allow_digest]]\nprogram = \"/opt/b\"\n",
        )
        .expect("write");
        std::fs::write(drop_ins.join("empty.toml"), "").expect("write");
        // Not policy files: left alone, however broken.
        std::fs::write(drop_ins.join("notes.txt"), "not toml [").expect("write");
        std::fs::write(drop_ins.join(".hidden.toml"), "not toml [").expect("write");
        std::fs::write(drop_ins.join("old.toml~"), "not toml [").expect("write");

        let file = Config::load(Some(&config)).expect("load");
        let policy = digest_policy(Some(&config), file.allow_digest).expect("policy");
        for program in [
            "/usr/bin/main-signer",
            "/usr/lib/chromium/chromium",
            "/opt/a",
            "/opt/b",
        ] {
            assert_eq!(
                policy.admits(&peer(Path::new(program)), ID, "CN=A"),
                Ok(()),
                "{program}"
            );
        }
        assert!(policy
            .admits(
                &peer(Path::new("/usr/bin/main-signer")),
                &"9".repeat(64),
                "CN=B"
            )
            .is_err());
        assert!(policy
            .admits(&peer(Path::new("/opt/c")), ID, "CN=A")
            .expect_err("not listed")
            .to_string()
            .contains(&format!("{}", drop_ins.join("c.toml").display())));

        // Without a drop-in folder, the file's rules alone.
        std::fs::remove_dir_all(&drop_ins).expect("rm");
        let file = Config::load(Some(&config)).expect("load");
        let policy = digest_policy(Some(&config), file.allow_digest).expect("policy");
        assert!(policy
            .admits(&peer(Path::new("/opt/a")), ID, "CN=A")
            .is_err());
        assert_eq!(
            policy.admits(&peer(Path::new("/usr/bin/main-signer")), ID, "CN=A"),
            Ok(())
        );
        // And nothing at all by default.
        let policy = digest_policy(None, Vec::new()).expect("policy");
        assert!(policy
            .admits(&peer(Path::new("/opt/a")), ID, "CN=A")
            .is_err());
    }

    #[test]
    fn a_bad_drop_in_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("p11agent.toml");
        let drop_ins = dir.path().join(DIGEST_DROP_IN_DIR);
        std::fs::create_dir(&drop_ins).expect("mkdir");
        let bad = drop_ins.join("bad.toml");
        for (text, says) in [
            (
                "[[allow_digest]]\nprogram = \"/a\"\nidentity = [\"3f2a9c1b\"]\n",
                "identity",
            ),
            ("modules = [\"/a.so\"]\n", "modules"),
            ("[[allow_digest]]\nprogram = \n", "bad.toml"),
            ("[[allow_digest]]\nidentities = [\"3f2a9c1b\"]\n", "program"),
        ] {
            std::fs::write(&bad, text).expect("write");
            let err = digest_policy(Some(&config), Vec::new()).expect_err("bad file");
            let message = err.to_string();
            assert!(matches!(err, ConfigError::DigestFile { .. }), "{message}");
            assert!(message.contains(&bad.display().to_string()), "{message}");
            assert!(message.contains(says), "{text:?}: {message}");
        }
        for (text, says) in [
            (
                "[[allow_digest]]\nprogram = \"chromium\"\n",
                "not an absolute path",
            ),
            (
                "[[allow_digest]]\nprogram = \"/a\"\nidentities = [\"3f2a\"]\n",
                "at least 8 hex digits",
            ),
        ] {
            std::fs::write(&bad, text).expect("write");
            let err = digest_policy(Some(&config), Vec::new()).expect_err("bad rule");
            let message = err.to_string();
            assert!(matches!(err, ConfigError::DigestRule { .. }), "{message}");
            assert!(message.contains(&bad.display().to_string()), "{message}");
            assert!(message.contains(says), "{message}");
        }
        // The same rule in the main file names the main file.
        let main = vec![AllowDigest {
            program: "relative/x".into(),
            identities: None,
        }];
        std::fs::remove_file(&bad).expect("rm");
        let err = digest_policy(Some(&config), main).expect_err("bad rule");
        assert!(
            err.to_string().contains(&config.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_rule_may_name_a_symbolic_link_to_the_program() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("lib").join("signer");
        std::fs::create_dir(dir.path().join("lib")).expect("mkdir");
        std::fs::write(&real, b"").expect("write");
        let link = dir.path().join("signer-link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let policy = digest_policy(
            None,
            vec![AllowDigest {
                program: link.clone(),
                identities: None,
            }],
        )
        .expect("policy");
        // /proc/PID/exe shows the executable's canonical path.
        let real = real.canonicalize().expect("canonical");
        assert_eq!(policy.admits(&peer(&real), ID, "CN=A"), Ok(()));
    }

    #[test]
    fn own_module_named_is_refused_and_registered_is_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let own = dir.path().join("libp11agent_pkcs11.so");
        let other = dir.path().join("opensc-pkcs11.so");
        for path in [&own, &other] {
            std::fs::write(path, b"").expect("write");
        }
        let err = modules_to_load(vec![other.clone(), own.clone()]).expect_err("refused");
        assert!(matches!(err, ConfigError::OwnModule { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&format!(
                "{} is p11agent's own PKCS#11 module (its file name starts with \
                 libp11agent_pkcs11), which forwards to this agent; give the module of your \
                 token, e.g. /usr/lib/",
                own.display()
            )),
            "{err}"
        );
        assert_eq!(
            modules_to_load(vec![other.clone()]).expect("modules"),
            vec![other.clone()]
        );
        assert_eq!(without_own_module(vec![own, other.clone()]), vec![other]);
    }

    #[test]
    fn the_documented_example_is_valid_configuration() {
        let text: String = include_str!("config.rs")
            .lines()
            .skip_while(|line| *line != "//! ```toml")
            .skip(1)
            .take_while(|line| *line != "//! ```")
            .map(|line| format!("{}\n", line.trim_start_matches("//!").trim_start()))
            .collect();
        // The package ships it as the example configuration.
        assert!(
            include_str!("../../dist/config.toml.example") == text,
            "dist/config.toml.example is not this module's example; copy it there"
        );
        let config: Config = toml::from_str(&text).expect("the example parses");
        assert_eq!(config.allow_digest.len(), 2);
        assert_eq!(
            config.allow_digest[1].identities,
            Some(vec!["3f2a9c1b7d0e4a55".to_owned()])
        );
    }
}
