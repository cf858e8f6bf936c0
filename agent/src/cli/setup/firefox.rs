//! Firefox: the module registered in the NSS database of every profile
//! that profiles.ini lists.

use std::path::{Path, PathBuf};

use super::files::read_existing;
use super::programs::Places;
use super::report::Setup;
use crate::cli::error::SetupError;

/// Where Firefox keeps its profiles: `~/.mozilla/firefox`, and, for
/// installs that began with Firefox 147 or later, the XDG directory.
fn firefox_roots(places: &Places) -> [PathBuf; 2] {
    [
        places.home.join(".mozilla").join("firefox"),
        places.config_home.join("mozilla").join("firefox"),
    ]
}

impl Setup<'_> {
    pub(super) fn install_firefox(&mut self, module: &Path) -> Result<(), SetupError> {
        let profiles = self.firefox_profiles()?;
        if profiles.is_empty() {
            return Err(SetupError::NoFirefoxProfile {
                searched: firefox_roots(self.places).to_vec(),
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
        Ok(())
    }

    pub(super) fn uninstall_firefox(&mut self) -> Result<(), SetupError> {
        for profile in self.firefox_profiles()? {
            self.nss_unregister(&profile)?;
        }
        Ok(())
    }

    /// Every Firefox profile directory listed in a profiles.ini: none
    /// before Firefox first ran.
    fn firefox_profiles(&self) -> Result<Vec<PathBuf>, SetupError> {
        let roots = firefox_roots(self.places);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
