//! One run of setup: the files it writes or removes, the notes and
//! warnings it reports, and the digest policy of the target's programs.

use std::path::Path;

use super::files::*;
use super::programs::*;
use super::report::*;
use super::{utf8, Target, MARKER};
use crate::cli::error::SetupError;

/// One run of setup: the target's steps, each recorded in the report.
pub(super) struct Setup<'a> {
    pub(super) places: &'a Places,
    pub(super) target: Target,
    pub(super) print: bool,
    pub(super) report: Report,
}

impl Setup<'_> {
    pub(super) fn install(&mut self, module: &Path) -> Result<(), SetupError> {
        match self.target {
            Target::Nss => self.install_nss(module)?,
            Target::Chromium => self.install_chromium(module)?,
            Target::Firefox => self.install_firefox(module)?,
            Target::P11Kit => self.install_p11kit(module)?,
            Target::Openssl => self.install_openssl(module)?,
            Target::Java => self.install_java(module)?,
            Target::Ssh => self.install_ssh(module)?,
        }
        self.digest_policy()
    }

    pub(super) fn uninstall(&mut self) -> Result<(), SetupError> {
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

    pub(super) fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    pub(super) fn warn(&mut self, warning: String) {
        self.report.warnings.push(warning);
    }

    /// Writes the digest policy for the target's programs found here;
    /// those not found are reported, and with none found no file is
    /// written.
    pub(super) fn digest_policy(&mut self) -> Result<(), SetupError> {
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
    pub(super) fn write(&mut self, path: &Path, content: String) -> Result<(), SetupError> {
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
    pub(super) fn remove(&mut self, path: &Path) -> Result<(), SetupError> {
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
}
