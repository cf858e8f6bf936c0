//! What one run of setup did, or with --print would do: each target's
//! steps add to the [`Report`] of a [`Setup`], which is printed as text or
//! JSON once they are done.

use std::io::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

use super::programs::Places;
use super::target::Target;
use crate::cli::error::CliError;
use crate::cli::format::print_json;

/// One run of setup: the target's steps, each recorded in the report.
pub(super) struct Setup<'a> {
    pub(super) places: &'a Places,
    pub(super) target: Target,
    /// With --print: record every step, and change nothing.
    pub(super) print: bool,
    pub(super) report: Report,
}

impl<'a> Setup<'a> {
    /// A run that installs `module`, or with none removes the setup.
    pub(super) fn new(
        places: &'a Places,
        target: Target,
        print: bool,
        remove: bool,
        module: Option<PathBuf>,
    ) -> Setup<'a> {
        Setup {
            places,
            target,
            print,
            report: Report {
                target: target.name(),
                remove,
                print,
                module,
                changes: Vec::new(),
                programs: Vec::new(),
                not_installed: Vec::new(),
                notes: Vec::new(),
                warnings: Vec::new(),
            },
        }
    }

    pub(super) fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    pub(super) fn warn(&mut self, warning: String) {
        self.report.warnings.push(warning);
    }
}

/// What setup did, or with --print would do, to one file or database.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Change {
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
pub(super) enum Status {
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
    pub(super) fn changes(self) -> bool {
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
pub(super) struct Report {
    target: &'static str,
    remove: bool,
    /// True with --print: nothing was changed.
    print: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<PathBuf>,
    pub(super) changes: Vec<Change>,
    /// The executables the digest policy names.
    pub(super) programs: Vec<PathBuf>,
    /// Programs of the target not found here, left out of the policy.
    pub(super) not_installed: Vec<&'static str>,
    /// What to do next.
    notes: Vec<String>,
    /// What may not work as expected.
    warnings: Vec<String>,
}

/// The width of the text output's first column, the status.
const WIDTH: usize = 16;

impl Report {
    /// Prints the report as JSON, or as text: the changes and notes on
    /// standard output, the warnings on standard error.
    pub(super) fn print(&self, json: bool) -> Result<(), CliError> {
        if json {
            return print_json(self);
        }
        let mut out = io::stdout().lock();
        for change in &self.changes {
            self.print_change(&mut out, change)?;
        }
        for note in &self.notes {
            writeln!(out, "{note}")?;
        }
        if self.print {
            writeln!(out, "(--print: nothing was changed)")?;
        }
        drop(out);
        for warning in &self.warnings {
            eprintln!("p11agent: warning: {warning}");
        }
        Ok(())
    }

    /// One change as text; with --print, with the content to be written
    /// or the commands to be run.
    fn print_change(&self, out: &mut impl io::Write, change: &Change) -> Result<(), CliError> {
        match change {
            Change::File {
                path,
                status,
                content,
            } => {
                let label = status.label(self.print);
                writeln!(out, "{label:WIDTH$} {}", path.display())?;
                if self.print && status.changes() {
                    for line in content.as_deref().unwrap_or_default().lines() {
                        writeln!(out, "{:WIDTH$} | {line}", "")?;
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
                let label = status.label(self.print);
                writeln!(out, "{label:WIDTH$} {name} in {database}")?;
                let verb = if self.print { "would run" } else { "ran" };
                for command in commands {
                    let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
                    writeln!(out, "{:WIDTH$} {verb}: {}", "", words.join(" "))?;
                }
            }
        }
        Ok(())
    }
}

/// `word` as a shell reads it back.
pub(super) fn shell_quote(word: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_words_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("/usr/lib/x.so"), "/usr/lib/x.so");
        assert_eq!(shell_quote("sql:/home/a b"), "'sql:/home/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
