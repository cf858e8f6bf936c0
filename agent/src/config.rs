//! The daemon's configuration file.
//!
//! TOML, by default `$XDG_CONFIG_HOME/p11agent/config.toml` (or
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

use serde::Deserialize;

use crate::purpose::Purpose;
use crate::select::policy::{AutoSelectRules, SingleCandidatePatterns};

/// The settings a configuration file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
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
pub struct IdentitySettings {
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
}

impl Config {
    /// Reads `explicit` when given (it must exist), else the default
    /// file when it exists, else the empty configuration.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
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

fn default_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("p11agent").join("config.toml"))
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
}
