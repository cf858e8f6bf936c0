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
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
