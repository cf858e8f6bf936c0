//! A PIN read from a file, for automation.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::request::{PinError, PinRequest, PinSource};
use super::secret;

/// Files larger than this are not PIN files.
const MAX_PIN_FILE: usize = 4096;

/// A PIN kept in a file. The file is read at every request, so a rotated
/// file is picked up without restarting the agent. One trailing `"\n"` or
/// `"\r\n"` is removed; the rest of the file, spaces included, is the PIN.
#[derive(Debug, Clone)]
pub(crate) struct PinFile {
    /// The file holding the PIN.
    pub path: PathBuf,
}

impl PinFile {
    /// A source reading the PIN from `path`.
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Checks, when the agent starts, what would otherwise be found at
    /// the first login: that the file is there, a regular file, and
    /// private. The PIN itself is not read until a login needs it (the
    /// file may be rotated meanwhile).
    pub(crate) fn check(&self) -> Result<(), PinFileError> {
        let path = &self.path;
        let refuse = |problem: String| PinFileError {
            path: path.clone(),
            problem,
        };
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(refuse(format!(
                    "does not exist; write the PIN to it on one line, then `chmod 600 {}`",
                    path.display()
                )))
            }
            Err(e) => return Err(refuse(format!("cannot be read: {e}"))),
        };
        if !meta.is_file() {
            return Err(refuse("is not a regular file".to_owned()));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            return Err(refuse(format!(
                "is readable by other users (mode {mode:04o}); `chmod 600 {}`",
                path.display()
            )));
        }
        Ok(())
    }
}

/// A PIN file the agent will not start with.
#[derive(Debug, thiserror::Error)]
#[error("PIN file {}: {problem}", path.display())]
pub struct PinFileError {
    path: PathBuf,
    problem: String,
}

impl PinSource for PinFile {
    fn pin(&self, _request: &PinRequest<'_>) -> Result<SecretString, PinError> {
        let path = &self.path;
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(PinError::Unavailable(format!(
                    "PIN file {} does not exist",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(PinError::Failed(format!(
                    "cannot open PIN file {}: {e}",
                    path.display()
                )));
            }
        };
        let meta = file.metadata().map_err(|e| {
            PinError::Failed(format!("cannot stat PIN file {}: {e}", path.display()))
        })?;
        if !meta.is_file() {
            return Err(PinError::Failed(format!(
                "PIN file {} is not a regular file",
                path.display()
            )));
        }
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "PIN file is readable by group or others; chmod 600 it"
            );
        }

        let mut contents = Zeroizing::new(Vec::with_capacity(
            usize::try_from(meta.len())
                .unwrap_or(MAX_PIN_FILE)
                .min(MAX_PIN_FILE)
                + 1,
        ));
        let mut chunk = Zeroizing::new([0u8; 512]);
        loop {
            let n = match file.read(&mut chunk[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(PinError::Failed(format!(
                        "cannot read PIN file {}: {e}",
                        path.display()
                    )));
                }
            };
            if contents.len() + n > MAX_PIN_FILE {
                return Err(PinError::Failed(format!(
                    "PIN file {} is larger than {MAX_PIN_FILE} bytes; is it really a PIN file?",
                    path.display()
                )));
            }
            secret::extend(&mut contents, &chunk[..n]);
        }

        let pin = strip_line_end(&contents);
        if pin.is_empty() {
            return Err(PinError::Unavailable(format!(
                "PIN file {} is empty",
                path.display()
            )));
        }
        secret::into_secret_string(pin)
            .ok_or_else(|| PinError::Failed(format!("PIN file {} is not UTF-8", path.display())))
    }
}

/// `bytes` without one trailing `"\n"` or `"\r\n"`.
fn strip_line_end(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::PinKind;
    use p11agent_proto::Token;
    use secrecy::ExposeSecret;
    use std::fs;

    fn token() -> Token {
        Token {
            label: "test token".into(),
            serial: "0123".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 1,
            module: "/lib/softhsm.so".into(),
        }
    }

    fn read(contents: &[u8], mode: u32) -> Result<SecretString, PinError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        fs::write(&path, contents).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let token = token();
        let request = PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        };
        PinFile::new(&path).pin(&request)
    }

    #[test]
    fn the_start_check_refuses_a_missing_or_shared_file_and_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        let missing = PinFile::new(&path)
            .check()
            .expect_err("missing")
            .to_string();
        assert!(
            missing.contains("does not exist") && missing.contains("chmod 600"),
            "{missing}"
        );
        fs::write(&path, "1234\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let shared = PinFile::new(&path).check().expect_err("shared").to_string();
        assert!(
            shared.contains("mode 0644") && shared.contains("chmod 600"),
            "{shared}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        PinFile::new(&path).check().expect("private file");
        let not_file = PinFile::new(dir.path()).check().expect_err("a directory");
        assert!(not_file.to_string().contains("not a regular file"));
    }

    #[test]
    fn strips_one_trailing_newline() {
        let pin = read(b"1234\n", 0o600).expect("pin");
        assert_eq!(pin.expose_secret(), "1234");
        let pin = read(b"1234\n\n", 0o600).expect("pin");
        assert_eq!(pin.expose_secret(), "1234\n");
    }

    #[test]
    fn strips_crlf() {
        let pin = read(b"12 34\r\n", 0o600).expect("pin");
        assert_eq!(pin.expose_secret(), "12 34");
    }

    #[test]
    fn keeps_pin_without_newline() {
        let pin = read(b" 1234 ", 0o600).expect("pin");
        assert_eq!(pin.expose_secret(), " 1234 ");
    }

    #[test]
    fn empty_file_is_unavailable() {
        assert!(matches!(read(b"", 0o600), Err(PinError::Unavailable(_))));
        assert!(matches!(read(b"\n", 0o600), Err(PinError::Unavailable(_))));
        assert!(matches!(
            read(b"\r\n", 0o600),
            Err(PinError::Unavailable(_))
        ));
    }

    #[test]
    fn missing_file_is_unavailable_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-pin");
        let token = token();
        let request = PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        };
        match PinFile::new(&path).pin(&request) {
            Err(PinError::Unavailable(msg)) => {
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn world_readable_file_warns_but_works() {
        let pin = read(b"1234\n", 0o644).expect("pin");
        assert_eq!(pin.expose_secret(), "1234");
    }

    #[test]
    fn rotated_file_is_reread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        let source = PinFile::new(&path);
        let token = token();
        let request = PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        };
        fs::write(&path, "1111\n").expect("write");
        assert_eq!(source.pin(&request).expect("pin").expose_secret(), "1111");
        fs::write(&path, "2222\n").expect("write");
        assert_eq!(source.pin(&request).expect("pin").expose_secret(), "2222");
    }

    #[test]
    fn oversized_and_non_utf8_files_fail() {
        assert!(matches!(
            read(&vec![b'1'; MAX_PIN_FILE + 1], 0o600),
            Err(PinError::Failed(_))
        ));
        assert!(matches!(
            read(b"\xff\xfe\n", 0o600),
            Err(PinError::Failed(_))
        ));
    }

    #[test]
    fn error_messages_do_not_contain_the_pin() {
        let err = read(b"\xff9876\n", 0o600).expect_err("not utf-8");
        assert!(!err.to_string().contains("9876"));
    }
}
