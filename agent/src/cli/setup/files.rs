//! Setup's own files: each starts with a marker line, which is how setup
//! knows that it may rewrite or delete the file; a file at setup's path
//! without it is left alone, with a warning.

use std::io;
use std::path::{Path, PathBuf};

use super::report::{Change, Setup, Status};
use super::target::Target;
use crate::cli::error::SetupError;

/// The first line of every file setup writes: how it knows a file is its
/// own to rewrite or delete.
const MARKER: &str = "# Written by `p11agent setup";

/// The first lines of every file setup writes.
pub(super) fn header(target: Target) -> String {
    let t = target.name();
    format!(
        "{MARKER} {t}`; `p11agent setup --remove {t}` deletes it.\n\
         # Setup rewrites this file while this first line is here: delete the line\n\
         # to make the file yours, and setup leaves it alone.\n"
    )
}

/// Text files name paths as UTF-8.
pub(super) fn utf8(path: &Path) -> Result<&str, SetupError> {
    path.to_str()
        .ok_or_else(|| SetupError::NotUtf8(path.to_path_buf()))
}

impl Setup<'_> {
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

/// A file's content, or None when there is no file.
pub(super) fn read_existing(path: &Path) -> Result<Option<String>, SetupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SetupError::File {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes through a temporary file and a rename, so that a program
/// reading the file never sees half of it.
fn write_file(path: &Path, content: &str) -> Result<(), SetupError> {
    let error = |action, source| SetupError::File {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| error("create the directory of", e))?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".p11agent-new");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, content).map_err(|e| error("write", e))?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        error("write", e)
    })
}
