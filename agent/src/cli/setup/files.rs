//! The files setup writes: each starts with its marker line, and only
//! such files are rewritten or removed.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::programs::Places;
use super::report::display_command;
use super::{Target, MARKER};
use crate::cli::error::SetupError;

/// The first lines of every file setup writes.
pub(super) fn header(target: Target) -> String {
    let t = target.name();
    format!(
        "{MARKER} {t}`; `p11agent setup --remove {t}` deletes it.\n\
         # Setup rewrites this file while this first line is here: delete the line\n\
         # to make the file yours, and setup leaves it alone.\n"
    )
}

pub(super) fn digest_policy(target: Target, programs: &[&str]) -> String {
    let mut text = header(target);
    text.push_str(
        "# The agent signs digests (sign_digest, PKCS#11's raw mechanisms) for these\n\
         # executables, with every identity; `identities = [\"ID PREFIX\"]` narrows a\n\
         # table to some.\n",
    );
    for program in programs {
        text.push_str("\n[[allow_digest]]\nprogram = ");
        text.push_str(&toml::Value::String((*program).to_owned()).to_string());
        text.push('\n');
    }
    text
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
pub(super) fn write_file(path: &Path, content: &str) -> Result<(), SetupError> {
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

/// NSS databases hold keys: owner only, as Chromium makes them.
pub(super) fn restrict_to_owner(dir: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        SetupError::File {
            action: "set the permissions of",
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Runs an NSS tool, returning its standard output.
pub(super) fn run_tool(places: &Places, command: &[OsString]) -> Result<String, SetupError> {
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
