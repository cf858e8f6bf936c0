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
//!
//! # Log out of a token after this long without a signature (seconds).
//! login_idle_timeout_secs = 600
//!
//! [identities."3f2a9c1b7d0e4a55"]
//! purpose = "any"        # e.g. a key also used for document signing
//! confirm = true         # ask (pinentry CONFIRM) before each signature
//! ```

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
use crate::service::{AgentOptions, Audit, AuditError, Purpose, Purposes, WatchOptions};
use crate::store::chain::read_ca_folder;
use crate::store::ChainCert;

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
    /// modules registered with p11-kit.
    #[arg(long = "module", value_name = "PATH")]
    modules: Vec<PathBuf>,
    /// Configuration file [default: $XDG_CONFIG_HOME/p11agent/config.toml, when present].
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
}

/// Everything the daemon runs with, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The socket to listen on.
    pub(crate) socket: PathBuf,
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
    /// Log out of a token after this many seconds without a signature
    /// (as `ssh-add -t`); none: logins last until logout or removal.
    pub login_idle_timeout_secs: Option<u64>,
    /// Settings per identity, by id or unique id prefix.
    #[serde(default)]
    pub identities: BTreeMap<String, IdentitySettings>,
}

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
        if modules.is_empty() {
            modules = crate::token::default_modules();
            tracing::info!(
                count = modules.len(),
                "using the modules registered with p11-kit"
            );
        }
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
            socket: socket
                .or(file.socket)
                .unwrap_or_else(p11agent_proto::paths::default_socket),
            agent: AgentOptions {
                modules,
                pins: crate::pin::source(flags.pin_file.or(file.pin_file), pinentry.clone()),
                ca_folder,
                selector,
                watch,
                purposes,
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
}
