//! The programs setup names in digest policies, found as the executables
//! the agent sees, and the places setup reads and writes.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::cli::error::SetupError;

/// A program as the agent's digest policy names it: the executable that
/// /proc/PID/exe shows, which is never a launcher script.
pub(super) struct Program {
    pub(super) name: &'static str,
    /// Names looked up on PATH.
    commands: &'static [&'static str],
    /// Where distributions install the executable itself, for when PATH
    /// has only a launcher script (Debian's /usr/bin/chromium) or nothing
    /// (ssh-pkcs11-helper).
    elsewhere: &'static [&'static str],
}

pub(super) const CHROMIUM: Program = Program {
    name: "Chromium",
    commands: &["chromium", "chromium-browser"],
    elsewhere: &[
        "/usr/lib/chromium/chromium",
        "/usr/lib/chromium-browser/chromium-browser",
        "/usr/lib64/chromium-browser/chromium-browser",
    ],
};
pub(super) const FIREFOX: Program = Program {
    name: "Firefox",
    commands: &["firefox-esr", "firefox"],
    elsewhere: &[
        "/usr/lib/firefox-esr/firefox-esr",
        "/usr/lib/firefox/firefox",
        "/usr/lib64/firefox/firefox",
    ],
};
pub(super) const GNUTLS_CLI: Program = Program {
    name: "gnutls-cli",
    commands: &["gnutls-cli"],
    elsewhere: &[],
};
pub(super) const OPENSSL: Program = Program {
    name: "openssl",
    commands: &["openssl"],
    elsewhere: &[],
};
pub(super) const CURL: Program = Program {
    name: "curl",
    commands: &["curl"],
    elsewhere: &[],
};
pub(super) const JAVA: Program = Program {
    name: "java",
    commands: &["java"],
    elsewhere: &[],
};
/// OpenSSH 9.2 (Debian 12) loads a PKCS11Provider in the ssh process
/// itself (`ssh -I`), and ssh-agent loads one (`ssh-add -s`) in its
/// ssh-pkcs11-helper: both connect to the agent.
pub(super) const SSH: Program = Program {
    name: "ssh",
    commands: &["ssh"],
    elsewhere: &[],
};
pub(super) const SSH_PKCS11_HELPER: Program = Program {
    name: "ssh-pkcs11-helper",
    commands: &[],
    elsewhere: &[
        "/usr/lib/openssh/ssh-pkcs11-helper",
        "/usr/libexec/openssh/ssh-pkcs11-helper",
        "/usr/libexec/ssh-pkcs11-helper",
    ],
};

/// Where setup reads and writes, from the environment, read once. Each
/// target's file derives its own paths from these.
pub(super) struct Places {
    pub(super) home: PathBuf,
    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    pub(super) config_home: PathBuf,
    /// `p11agent/` in `config_home`, beside the default config file.
    pub(super) p11agent_dir: PathBuf,
    path: Option<OsString>,
    pub(super) root: bool,
}

impl Places {
    pub(super) fn from_env() -> Result<Places, SetupError> {
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

    /// The first executable named `name` on PATH.
    pub(super) fn which(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }

    /// The executables of `program` that exist here, canonical, each once.
    pub(super) fn find(&self, program: &Program) -> Vec<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
