//! The audit trail: one JSON line per signature, selection decision,
//! login, logout and refusal, with who asked.
//!
//! Each record carries the time, the peer (uid, pid and executable, from
//! `SO_PEERCRED` and `/proc`), the identity (id and subject), the origin
//! when one was given, the scheme (or a digest's mechanism and hash), and
//! the outcome. A message is recorded by its length and SHA-256 only, and
//! a PIN never: the audit log may be read by other tools, and it must not
//! become the leak it is there to detect. A client's digest is recorded
//! as it is, being a hash already: it is what ties a signature to the
//! document the program signed.
//!
//! Records go to the configured file (appended, created 0600), and to
//! the daemon's log under the `audit` target: logins, logouts and refused
//! connections at INFO, signatures and selections, which come by the
//! thousand on a busy host, at DEBUG only. A record nobody will read is
//! not even built: see [`Audit::wants`].

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Peer {
    /// The peer's user id.
    pub uid: u32,
    /// Its process id, when the kernel tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its executable (`/proc/PID/exe`), when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// It came through the extra socket, which a remote shell reaches
    /// over `ssh -R`: the process seen is the forwarding one, and the
    /// requester is elsewhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
}

impl Peer {
    /// The agent itself, for what it does on its own (a logout after
    /// idle time).
    pub(crate) fn agent() -> Peer {
        Peer {
            uid: nix::unistd::getuid().as_raw(),
            pid: i32::try_from(std::process::id()).ok(),
            exe: None,
            remote: false,
        }
    }
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// A signature of a message.
    Sign,
    /// A signature of a digest the client made.
    SignDigest,
    /// A client-certificate selection.
    Select,
    /// A login.
    Login,
    /// A logout.
    Logout,
    /// A connection refused before any request (another user).
    Connect,
    /// A request on the extra socket (a remote shell's), whatever it was;
    /// its `detail` is the operation.
    RemoteRequest,
}

impl Action {
    /// Whether the daemon's log shows records of this action by default
    /// (INFO), or only when asked for (DEBUG).
    fn logged_by_default(self) -> bool {
        !matches!(self, Action::Sign | Action::SignDigest | Action::Select)
    }
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    time: String,
    action: Action,
    peer: Peer,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mechanism: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_sha256: Option<String>,
    /// `ok`, an error code, or a selection's decision.
    result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Record {
    /// A record of `action` by `peer` with outcome `result`.
    pub(crate) fn new(action: Action, peer: &Peer, result: impl Into<String>) -> Record {
        Record {
            time: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            action,
            peer: peer.clone(),
            identity: None,
            subject: None,
            token: None,
            origin: None,
            scheme: None,
            mechanism: None,
            hash: None,
            digest: None,
            message_len: None,
            message_sha256: None,
            result: result.into(),
            detail: None,
        }
    }

    /// The identity concerned.
    pub(crate) fn identity(mut self, id: &str, subject: Option<&str>) -> Self {
        self.identity = Some(id.to_owned());
        self.subject = subject.map(str::to_owned);
        self
    }

    /// The token concerned (label).
    pub(crate) fn token(mut self, label: &str) -> Self {
        self.token = Some(label.to_owned());
        self
    }

    /// The origin a selection was for.
    pub(crate) fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// The scheme of a signature.
    pub(crate) fn scheme(mut self, scheme: &str) -> Self {
        self.scheme = Some(scheme.to_owned());
        self
    }

    /// The digest signed (hex), and how.
    pub(crate) fn digest(mut self, mechanism: &str, hash: &str, digest: &[u8]) -> Self {
        self.mechanism = Some(mechanism.to_owned());
        self.hash = Some(hash.to_owned());
        self.digest = Some(hex::encode(digest));
        self
    }

    /// The message signed: only its length and SHA-256 are kept.
    pub(crate) fn message(mut self, message: &[u8]) -> Self {
        self.message_len = Some(message.len());
        self.message_sha256 = Some(hex::encode(Sha256::digest(message)));
        self
    }

    /// Why, for a refusal.
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Where records go.
#[derive(Debug)]
pub(crate) struct Audit {
    file: Option<Mutex<File>>,
}

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {}: {source}", path.display())]
pub struct AuditError {
    path: PathBuf,
    source: std::io::Error,
}

impl Audit {
    /// Records to the daemon's log only.
    pub(crate) fn log_only() -> Audit {
        Audit { file: None }
    }

    /// Records appended to `path` (created 0600), and to the daemon's log.
    pub(crate) fn to_file(path: &Path) -> Result<Audit, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| AuditError {
                path: path.to_owned(),
                source,
            })?;
        Ok(Audit {
            file: Some(Mutex::new(file)),
        })
    }

    /// Whether a record of `action` would go anywhere: to the audit log,
    /// or to the daemon's log at its level. Callers on a request's path
    /// ask before building one (the time, a message's SHA-256, the
    /// strings: microseconds per signature).
    pub(crate) fn wants(&self, action: Action) -> bool {
        self.file.is_some()
            || if action.logged_by_default() {
                tracing::enabled!(target: "audit", tracing::Level::INFO)
            } else {
                tracing::enabled!(target: "audit", tracing::Level::DEBUG)
            }
    }

    /// Writes `record` as one line. A record that cannot be written is
    /// reported in the daemon's log; the request it describes is not
    /// failed for it.
    pub(crate) fn record(&self, record: Record) {
        if !self.wants(record.action) {
            return;
        }
        let line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "audit record not encoded");
                return;
            }
        };
        if record.action.logged_by_default() {
            tracing::info!(target: "audit", "{line}");
        } else {
            tracing::debug!(target: "audit", "{line}");
        }
        if let Some(file) = &self.file {
            let mut file = file.lock();
            if let Err(e) = writeln!(file, "{line}") {
                tracing::error!(error = %e, "audit record not written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an audit log, a signature's record is built only when the
    /// daemon's log shows DEBUG; a login's at INFO already.
    #[test]
    fn records_are_wanted_only_by_a_sink_that_shows_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Audit::to_file(&dir.path().join("audit.log")).expect("open");
        let log_only = Audit::log_only();
        let at = |level| {
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::sink)
                .finish()
        };
        tracing::subscriber::with_default(at(tracing::Level::INFO), || {
            assert!(file.wants(Action::Sign), "the audit log keeps every line");
            assert!(!log_only.wants(Action::Sign));
            assert!(!log_only.wants(Action::Select));
            assert!(log_only.wants(Action::Login));
        });
        tracing::subscriber::with_default(at(tracing::Level::DEBUG), || {
            assert!(log_only.wants(Action::Sign));
        });
    }

    #[test]
    fn records_are_json_lines_without_the_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let audit = Audit::to_file(&path).expect("open");
        let peer = Peer {
            uid: 1000,
            pid: Some(42),
            exe: Some("/usr/bin/curl".into()),
            remote: false,
        };
        audit.record(
            Record::new(Action::Sign, &peer, "ok")
                .identity("ab12", Some("CN=Alice"))
                .scheme("ed25519")
                .message(b"secret document"),
        );
        audit.record(Record::new(Action::Connect, &peer, "refused").detail("uid 1000"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("secret document"));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["action"], "sign");
        assert_eq!(lines[0]["peer"]["pid"], 42);
        assert_eq!(lines[0]["message_len"], 15);
        assert_eq!(
            lines[0]["message_sha256"],
            hex::encode(Sha256::digest(b"secret document"))
        );
        assert_eq!(lines[1]["result"], "refused");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
