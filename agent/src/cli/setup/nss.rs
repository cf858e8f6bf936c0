//! NSS databases, changed only through NSS's own tools: `modutil`
//! registers the module, `certutil` creates a database where there is
//! none. The targets nss and chromium use the shared database
//! `~/.pki/nssdb`; firefox registers in each profile's database.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::programs::Places;
use super::report::{shell_quote, Change, Setup, Status};
use crate::cli::error::SetupError;

/// The name the module is registered under in NSS databases.
const NSS_NAME: &str = "p11agent";

/// One command as its arguments, the tool first.
type Argv = Vec<OsString>;

/// The NSS database shared by Chromium and other NSS programs.
fn shared_db(places: &Places) -> PathBuf {
    places.home.join(".pki").join("nssdb")
}

impl Setup<'_> {
    pub(super) fn install_nss(&mut self, module: &Path) -> Result<(), SetupError> {
        let db = shared_db(self.places);
        self.nss_register(&db, module)?;
        self.note(format!(
            "programs using the NSS database in {} (Chromium, Google Chrome) load the \
             module when they start: restart them; `p11agent setup chromium` also \
             writes Chromium's digest policy",
            db.display()
        ));
        Ok(())
    }

    pub(super) fn install_chromium(&mut self, module: &Path) -> Result<(), SetupError> {
        self.nss_register(&shared_db(self.places), module)?;
        self.note("restart Chromium: it reads the NSS database when it starts".into());
        Ok(())
    }

    /// Unregisters the module from the shared database: the undoing of
    /// both nss and chromium.
    pub(super) fn uninstall_nss(&mut self) -> Result<(), SetupError> {
        self.nss_unregister(&shared_db(self.places))
    }

    /// Registers `module` in the NSS database in `dir` under
    /// [`NSS_NAME`], creating the database when there is none; a
    /// registration with another library is replaced.
    pub(super) fn nss_register(&mut self, dir: &Path, module: &Path) -> Result<(), SetupError> {
        let db = nss_db_arg(dir);
        let (status, commands) = self.registration(dir, &db, module)?;
        // With --print too: what would be run must be there to run.
        for command in &commands {
            let tool = command.first().map(|t| t.to_string_lossy().into_owned());
            if let Some(tool) = tool.filter(|tool| self.places.which(tool).is_none()) {
                return Err(SetupError::ToolMissing { tool });
            }
        }
        if !self.print && !commands.is_empty() {
            create_private_dir(dir)?;
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

    /// What registering `module` in the database in `dir`, named `db`,
    /// comes to, and the commands that do it: none when it is there.
    fn registration(
        &self,
        dir: &Path,
        db: &OsString,
        module: &Path,
    ) -> Result<(Status, Vec<Argv>), SetupError> {
        let add: Argv = vec![
            "modutil".into(),
            "-dbdir".into(),
            db.clone(),
            "-add".into(),
            NSS_NAME.into(),
            "-libfile".into(),
            module.into(),
            "-force".into(),
        ];
        if !nss_db_exists(dir) {
            // certutil makes the database Chromium would make: no password.
            let create = ["certutil", "-N", "--empty-password", "-d"]
                .into_iter()
                .map(OsString::from)
                .chain([db.clone()])
                .collect();
            return Ok((Status::Registered, vec![create, add]));
        }
        Ok(match self.nss_registered(dir)? {
            Some(library) if same_file(&library, module) => (Status::Unchanged, vec![]),
            Some(_) => (Status::Replaced, vec![nss_delete(db), add]),
            None => (Status::Registered, vec![add]),
        })
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
    fn nss_registered(&self, dir: &Path) -> Result<Option<PathBuf>, SetupError> {
        let list: Argv = vec![
            "modutil".into(),
            "-dbdir".into(),
            nss_db_arg(dir),
            "-list".into(),
        ];
        let listing = run_tool(self.places, &list)?;
        Ok(registered_library(&listing, NSS_NAME).map(PathBuf::from))
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

fn nss_delete(db: &OsString) -> Argv {
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

/// Creates the database's directory: owner only, since NSS databases
/// hold keys, as Chromium makes them.
fn create_private_dir(dir: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).map_err(|source| SetupError::File {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        SetupError::File {
            action: "set the permissions of",
            path: dir.to_path_buf(),
            source,
        }
    })
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

fn display_commands(commands: &[Argv]) -> Vec<Vec<String>> {
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
}
