//! NSS databases: the shared one (`~/.pki/nssdb`, Chromium's) and
//! Firefox's per profile, changed only through `modutil`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::files::*;
use super::report::{display_commands, Change, Status};
use super::session::Setup;
use super::NSS_NAME;
use crate::cli::error::SetupError;

impl Setup<'_> {
    /// Registers the module in the shared NSS database.
    pub(super) fn install_nss(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        self.nss_register(&places.nss_db(), module)?;
        self.note(format!(
            "programs using the NSS database in {} (Chromium, Google Chrome) load the \
                 module when they start: restart them; `p11agent setup chromium` also \
                 writes Chromium's digest policy",
            places.nss_db().display()
        ));
        Ok(())
    }

    /// Registers the module in the NSS database Chromium reads.
    pub(super) fn install_chromium(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        self.nss_register(&places.nss_db(), module)?;
        self.note("restart Chromium: it reads the NSS database when it starts".into());
        Ok(())
    }

    /// Registers the module in every Firefox profile's NSS database.
    pub(super) fn install_firefox(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
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
        Ok(())
    }

    /// Registers `module` in the NSS database in `dir` under
    /// [`NSS_NAME`], creating the database when there is none; a
    /// registration with another library is replaced.
    pub(super) fn nss_register(&mut self, dir: &Path, module: &Path) -> Result<(), SetupError> {
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

    pub(super) fn nss_unregister(&mut self, dir: &Path) -> Result<(), SetupError> {
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
    pub(super) fn nss_registered(&self, dir: &Path) -> Result<Option<PathBuf>, SetupError> {
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
    pub(super) fn firefox_profiles(&self) -> Result<Vec<PathBuf>, SetupError> {
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
}

/// NSS's name for the SQLite database in `dir`.
pub(super) fn nss_db_arg(dir: &Path) -> OsString {
    let mut arg = OsString::from("sql:");
    arg.push(dir);
    arg
}

pub(super) fn nss_db_exists(dir: &Path) -> bool {
    dir.join("cert9.db").is_file()
}

pub(super) fn nss_delete(db: &OsString) -> Vec<OsString> {
    ["modutil", "-dbdir"]
        .into_iter()
        .map(OsString::from)
        .chain([db.clone()])
        .chain(["-delete", NSS_NAME, "-force"].map(OsString::from))
        .collect()
}

pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether Firefox holds `profile`: its lock is a symlink to
/// `ADDRESS:+PID` while it runs.
pub(super) fn firefox_running(profile: &Path) -> bool {
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
pub(super) fn registered_library(listing: &str, name: &str) -> Option<String> {
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
pub(super) fn profile_paths(ini: &str) -> Vec<PathBuf> {
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
