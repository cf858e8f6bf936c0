//! What setup did or would do, as text or JSON.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::error::CliError;
use std::io;

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
    pub(super) fn label(self, print: bool) -> &'static str {
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
    pub(super) target: &'static str,
    pub(super) remove: bool,
    /// True with --print: nothing was changed.
    pub(super) print: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) module: Option<PathBuf>,
    pub(super) changes: Vec<Change>,
    /// The executables the digest policy names.
    pub(super) programs: Vec<PathBuf>,
    /// Programs of the target not found here, left out of the policy.
    pub(super) not_installed: Vec<&'static str>,
    /// What to do next.
    pub(super) notes: Vec<String>,
    /// What may not work as expected.
    pub(super) warnings: Vec<String>,
}

pub(super) fn display_commands(commands: &[Vec<OsString>]) -> Vec<Vec<String>> {
    commands
        .iter()
        .map(|c| c.iter().map(|a| a.to_string_lossy().into_owned()).collect())
        .collect()
}

pub(super) fn display_command(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|word| shell_quote(&word.to_string_lossy()))
        .collect();
    words.join(" ")
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

pub(super) fn print_text(report: &Report) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    let width = 16;
    for change in &report.changes {
        match change {
            Change::File {
                path,
                status,
                content,
            } => {
                let label = status.label(report.print);
                writeln!(out, "{label:width$} {}", path.display())?;
                if report.print && status.changes() {
                    for line in content.as_deref().unwrap_or_default().lines() {
                        writeln!(out, "{:width$} | {line}", "")?;
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
                let label = status.label(report.print);
                writeln!(out, "{label:width$} {name} in {database}")?;
                let verb = if report.print { "would run" } else { "ran" };
                for command in commands {
                    let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
                    writeln!(out, "{:width$} {verb}: {}", "", words.join(" "))?;
                }
            }
        }
    }
    for note in &report.notes {
        writeln!(out, "{note}")?;
    }
    if report.print {
        writeln!(out, "(--print: nothing was changed)")?;
    }
    drop(out);
    for warning in &report.warnings {
        eprintln!("p11agent: warning: {warning}");
    }
    Ok(())
}
