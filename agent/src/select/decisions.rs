//! The certificate choices a person made, remembered per origin.
//!
//! An origin is the canonical `scheme://host:port` string; callers
//! normalise it before asking, so that `https://Example.org` and
//! `https://example.org:443` share one decision. A decision either names
//! an identity (by its full SHA-256 id) or says that no certificate is to
//! be sent, which is remembered just the same, so that a person who
//! declined is not asked again.
//!
//! Decisions live for the daemon's lifetime ([`Decisions::in_memory`]) or
//! in a JSON file ([`Decisions::persistent`]):
//!
//! ```json
//! {
//!   "version": 1,
//!   "decisions": [
//!     {"origin": "https://example.org:443",
//!      "choice": {"identity": "<sha-256 hex>"},
//!      "decided_at": "2025-01-31T10:00:00Z"},
//!     {"origin": "https://tracker.example:443",
//!      "choice": "send_none",
//!      "decided_at": "2025-01-31T10:05:00Z"}
//!   ]
//! }
//! ```
//!
//! The file says which certificate a person uses where, so it is private:
//! it is written with mode 0600, in a directory created with mode 0700,
//! and replaced atomically (a temporary file in the same directory,
//! synced, then renamed) so that a crash never leaves half a file. A file
//! that cannot be read is an error, never silently replaced: it holds
//! choices the person made, including refusals.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The version of the file format this code reads and writes.
const FORMAT_VERSION: u32 = 1;
/// The decisions file's mode.
const FILE_MODE: u32 = 0o600;
/// The mode of a directory created for the file.
const DIR_MODE: u32 = 0o700;
/// Permission bits for group and others, none of which the file may have.
const GROUP_OTHER_BITS: u32 = 0o077;
/// How many temporary file names are tried before giving up.
const TEMP_ATTEMPTS: u64 = 100;

/// Tells apart the temporary files of concurrent writes in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What to send to an origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Send the identity with this id (lower-case hex SHA-256 of the
    /// certificate, as in [`p11agent_proto::Identity::id`]).
    Identity(String),
    /// Send no certificate.
    SendNone,
}

/// One remembered choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Decision {
    /// The origin, `scheme://host:port`.
    pub origin: String,
    /// What to send there.
    pub choice: Choice,
    /// When the choice was made; RFC 3339 in the file.
    #[serde(with = "rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// Why decisions could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum DecisionsError {
    /// The path names no file (e.g. `/` or ends in `..`).
    #[error("{} cannot be a decisions file: it names no file", path.display())]
    InvalidPath {
        /// The path given.
        path: PathBuf,
    },
    /// The directory for the file could not be created.
    #[error("cannot create directory {} for the decisions file: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file exists but could not be opened or read.
    #[error("cannot read decisions file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Something other than a regular file is in the file's place.
    #[error("decisions file {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file was readable by others and could not be made private.
    #[error("cannot narrow the permissions of decisions file {} to 0600: {source}", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("decisions file {} is corrupt (fix or remove it): {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        source: serde_json::Error,
    },
    /// The file names an origin twice, so which choice holds is unclear.
    #[error("decisions file {} is corrupt (fix or remove it): origin {origin} appears twice", path.display())]
    DuplicateOrigin {
        /// The file.
        path: PathBuf,
        /// The repeated origin.
        origin: String,
    },
    /// The file was written by an agent using another format.
    #[error("decisions file {} has format version {found}; this agent reads version {FORMAT_VERSION}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
    /// The decisions could not be encoded (a date out of RFC 3339's range).
    #[error("cannot encode decisions: {0}")]
    Encode(serde_json::Error),
    /// Writing, syncing or renaming into place failed; the file on disk
    /// and the decisions in memory are unchanged.
    #[error("cannot write decisions file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The remembered choices, by origin.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    by_origin: BTreeMap<String, Decision>,
    /// Where every change is saved; `None` for in-memory decisions.
    file: Option<PathBuf>,
}

impl Decisions {
    /// Decisions kept for this process's lifetime only.
    pub(crate) fn in_memory() -> Self {
        Self::default()
    }

    /// Decisions kept in the file at `path`: loaded now if it exists, and
    /// rewritten on every change.
    ///
    /// Creates the file's directory (mode 0700) when missing. An existing
    /// file readable by group or others is narrowed to 0600, with a
    /// warning; an unreadable or corrupt one is an error naming it.
    pub(crate) fn persistent(path: impl Into<PathBuf>) -> Result<Self, DecisionsError> {
        let path = path.into();
        if path.file_name().is_none() {
            return Err(DecisionsError::InvalidPath { path });
        }
        let dir = parent_dir(&path);
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| DecisionsError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let by_origin = load(&path)?;
        Ok(Self {
            by_origin,
            file: Some(path),
        })
    }

    /// Whether choices are saved to a file.
    pub(crate) fn is_persistent(&self) -> bool {
        self.file.is_some()
    }

    /// The choice remembered for `origin`.
    pub(crate) fn get(&self, origin: &str) -> Option<&Decision> {
        self.by_origin.get(origin)
    }

    /// Remembers `choice` for `origin`, replacing an earlier decision, and
    /// saves when persistent. On error nothing changes.
    pub(crate) fn remember(&mut self, origin: &str, choice: Choice) -> Result<(), DecisionsError> {
        let now = OffsetDateTime::now_utc();
        // Whole seconds: finer precision says nothing useful and makes the
        // file harder to read.
        let decided_at = now.replace_nanosecond(0).unwrap_or(now);
        let decision = Decision {
            origin: origin.to_owned(),
            choice,
            decided_at,
        };
        let previous = self.by_origin.insert(origin.to_owned(), decision);
        self.save().inspect_err(|_| match previous {
            Some(previous) => {
                self.by_origin.insert(origin.to_owned(), previous);
            }
            None => {
                self.by_origin.remove(origin);
            }
        })
    }

    /// Forgets the decision for `origin`; `Ok(false)` when there was none.
    /// On error nothing changes.
    pub(crate) fn forget(&mut self, origin: &str) -> Result<bool, DecisionsError> {
        let Some(previous) = self.by_origin.remove(origin) else {
            return Ok(false);
        };
        self.save().map(|()| true).inspect_err(|_| {
            self.by_origin.insert(origin.to_owned(), previous);
        })
    }

    /// Forgets every decision, returning how many there were. On error
    /// nothing changes.
    pub(crate) fn forget_all(&mut self) -> Result<usize, DecisionsError> {
        if self.by_origin.is_empty() {
            return Ok(0);
        }
        let previous = std::mem::take(&mut self.by_origin);
        let count = previous.len();
        self.save().map(|()| count).inspect_err(|_| {
            self.by_origin = previous;
        })
    }

    /// Every decision, sorted by origin.
    pub(crate) fn list(&self) -> Vec<&Decision> {
        self.by_origin.values().collect()
    }

    /// Writes the decisions to the file, when persistent.
    fn save(&self) -> Result<(), DecisionsError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let contents = FileContents {
            version: FORMAT_VERSION,
            decisions: self.by_origin.values().cloned().collect(),
        };
        let mut json = serde_json::to_vec_pretty(&contents).map_err(DecisionsError::Encode)?;
        json.push(b'\n');
        write_atomically(path, &json).map_err(|source| DecisionsError::Write {
            path: path.clone(),
            source,
        })
    }
}

/// The file's content.
#[derive(Serialize, Deserialize)]
struct FileContents {
    version: u32,
    decisions: Vec<Decision>,
}

/// Just the version, read first so that a file in a newer format is
/// reported as such rather than as corrupt.
#[derive(Deserialize)]
struct FileVersion {
    version: u32,
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Reads the decisions at `path`; none when the file does not exist.
fn load(path: &Path) -> Result<BTreeMap<String, Decision>, DecisionsError> {
    let read_error = |source| DecisionsError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Non-blocking so that a FIFO in the file's place is reported instead
    // of hanging the daemon's start; regular files ignore the flag.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_error(e)),
    };
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(DecisionsError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.permissions().mode();
    if mode & GROUP_OTHER_BITS != 0 {
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(|source| DecisionsError::Permissions {
                path: path.to_path_buf(),
                source,
            })?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{:04o}", mode & 0o7777),
            "the decisions file was open to other users; narrowed it to 0600"
        );
    }
    let mut json = Vec::new();
    file.read_to_end(&mut json).map_err(read_error)?;
    // An empty file (made by `touch`, or a write cut short before its
    // first byte) holds no decisions: nothing is lost by starting empty,
    // and the next choice remembered writes a whole file.
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }

    let corrupt = |source| DecisionsError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let FileVersion { version } = serde_json::from_slice(&json).map_err(corrupt)?;
    if version != FORMAT_VERSION {
        return Err(DecisionsError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let contents: FileContents = serde_json::from_slice(&json).map_err(corrupt)?;
    let mut by_origin = BTreeMap::new();
    for decision in contents.decisions {
        let origin = decision.origin.clone();
        if by_origin.insert(origin.clone(), decision).is_some() {
            return Err(DecisionsError::DuplicateOrigin {
                path: path.to_path_buf(),
                origin,
            });
        }
    }
    Ok(by_origin)
}

/// Replaces the file at `path` with `contents`, mode 0600, so that
/// readers and a crash see either the old or the new file, whole.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let (temp_path, mut temp) = create_temp(dir, path)?;
    let result = temp
        .write_all(contents)
        .and_then(|()| temp.sync_all())
        .and_then(|()| fs::rename(&temp_path, path))
        // The rename is durable only once the directory is synced.
        .and_then(|()| File::open(dir)?.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// Creates a new, empty temporary file with mode 0600 next to `path`.
fn create_temp(dir: &Path, path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..TEMP_ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp_path)
        {
            Ok(file) => {
                // The mode given to open is reduced by the umask; set it
                // exactly, so an odd umask cannot leave the owner unable
                // to read back the file.
                if let Err(e) = file.set_permissions(fs::Permissions::from_mode(FILE_MODE)) {
                    let _ = fs::remove_file(&temp_path);
                    return Err(e);
                }
                return Ok((temp_path, file));
            }
            // A leftover of a crashed run that had the same pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no temporary file name was free")))
}

/// RFC 3339 (de)serialisation of [`OffsetDateTime`].
mod rfc3339 {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(
        value: &OffsetDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value.format(&Rfc3339).map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "https://alice.example:443";
    const BOB: &str = "https://bob.example:8443";
    const CAROL: &str = "http://carol.example:80";

    fn id(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }

    /// The names in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn in_memory_remember_get_replace() {
        let mut d = Decisions::in_memory();
        assert!(d.get(ALICE).is_none());
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect("remember");
        let got = d.get(ALICE).expect("decision");
        assert_eq!(got.origin, ALICE);
        assert_eq!(got.choice, Choice::Identity(id(1)));
        let age = OffsetDateTime::now_utc() - got.decided_at;
        assert!(
            age.whole_seconds() >= 0 && age.whole_seconds() < 60,
            "{age}"
        );
        assert_eq!(got.decided_at.nanosecond(), 0);

        d.remember(ALICE, Choice::SendNone).expect("replace");
        assert_eq!(d.get(ALICE).expect("decision").choice, Choice::SendNone);
        assert_eq!(d.list().len(), 1);
        assert!(d.get(BOB).is_none());
    }

    #[test]
    fn list_is_sorted_by_origin() {
        let mut d = Decisions::in_memory();
        d.remember(CAROL, Choice::SendNone).expect("remember");
        d.remember(BOB, Choice::Identity(id(2))).expect("remember");
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect("remember");
        let origins: Vec<&str> = d.list().iter().map(|d| d.origin.as_str()).collect();
        assert_eq!(origins, [CAROL, ALICE, BOB]);
    }

    #[test]
    fn forget_and_forget_all_in_memory() {
        let mut d = Decisions::in_memory();
        assert!(!d.forget(ALICE).expect("forget"));
        assert_eq!(d.forget_all().expect("forget_all"), 0);
        d.remember(ALICE, Choice::SendNone).expect("remember");
        d.remember(BOB, Choice::Identity(id(2))).expect("remember");
        d.remember(CAROL, Choice::Identity(id(3)))
            .expect("remember");
        assert!(d.forget(BOB).expect("forget"));
        assert!(!d.forget(BOB).expect("forget again"));
        assert!(d.get(BOB).is_none());
        assert_eq!(d.forget_all().expect("forget_all"), 2);
        assert!(d.list().is_empty());
    }

    #[test]
    fn persistent_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        assert!(d.list().is_empty());
        assert!(!path.exists(), "nothing is written before a change");
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect("remember");
        d.remember(BOB, Choice::SendNone).expect("remember");
        let before: Vec<Decision> = d.list().into_iter().cloned().collect();
        drop(d);

        let d = Decisions::persistent(&path).expect("reopen");
        let after: Vec<Decision> = d.list().into_iter().cloned().collect();
        assert_eq!(before, after);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn file_format_is_versioned_json_with_rfc3339_dates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect("remember");
        d.remember(BOB, Choice::SendNone).expect("remember");
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        assert_eq!(json["version"], 1);
        let list = json["decisions"].as_array().expect("array");
        assert_eq!(list[0]["origin"], ALICE);
        assert_eq!(list[0]["choice"], serde_json::json!({ "identity": id(1) }));
        assert_eq!(list[1]["choice"], "send_none");
        let date = list[1]["decided_at"].as_str().expect("date string");
        assert!(date.ends_with('Z'), "{date}");
        OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    }

    #[test]
    fn forget_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        d.remember(ALICE, Choice::SendNone).expect("remember");
        d.remember(BOB, Choice::Identity(id(2))).expect("remember");
        d.remember(CAROL, Choice::Identity(id(3)))
            .expect("remember");
        assert!(d.forget(ALICE).expect("forget"));
        let reopened = Decisions::persistent(&path).expect("reopen");
        assert!(reopened.get(ALICE).is_none());
        assert_eq!(reopened.list().len(), 2);

        assert_eq!(d.forget_all().expect("forget_all"), 2);
        let reopened = Decisions::persistent(&path).expect("reopen");
        assert!(reopened.list().is_empty());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn creates_missing_directory_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a").join("b");
        let path = nested.join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        d.remember(ALICE, Choice::SendNone).expect("remember");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn existing_directory_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        Decisions::persistent(dir.path().join("decisions.json")).expect("open");
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn bare_file_name_is_relative_to_current_directory() {
        assert_eq!(parent_dir(Path::new("decisions.json")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/x/d.json")), Path::new("/x"));
    }

    #[test]
    fn path_without_file_name_is_refused() {
        assert!(matches!(
            Decisions::persistent("/"),
            Err(DecisionsError::InvalidPath { .. })
        ));
    }

    #[test]
    fn readable_file_is_narrowed_to_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect("remember");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

        let d = Decisions::persistent(&path).expect("reopen");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(d.get(ALICE).expect("kept").choice, Choice::Identity(id(1)));
    }

    #[test]
    fn an_empty_file_holds_no_decisions_and_takes_the_next_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        for content in [&b""[..], b" \n"] {
            let path = dir.path().join("decisions.json");
            fs::write(&path, content).expect("write");
            let mut d = Decisions::persistent(&path).expect("an empty file opens");
            assert!(d.list().is_empty());
            d.remember(ALICE, Choice::Identity(id(1)))
                .expect("remember");
            let reopened = Decisions::persistent(&path).expect("reopen");
            assert_eq!(
                reopened.get(ALICE).expect("kept").choice,
                Choice::Identity(id(1))
            );
            fs::remove_file(&path).expect("remove");
        }
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it_and_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        fs::write(&path, b"{\"version\": 1, \"decisions\": [ {\"orig").expect("write");
        let err = Decisions::persistent(&path).expect_err("corrupt");
        assert!(matches!(err, DecisionsError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(
            fs::read(&path).expect("read"),
            b"{\"version\": 1, \"decisions\": [ {\"orig"
        );
    }

    #[test]
    fn wrong_shape_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        for text in [
            "[]",
            r#"{"version": 1}"#,
            r#"{"version": 1, "decisions": [{"origin": "o", "choice": "maybe", "decided_at": "2025-01-01T00:00:00Z"}]}"#,
            r#"{"version": 1, "decisions": [{"origin": "o", "choice": "send_none", "decided_at": "yesterday"}]}"#,
        ] {
            fs::write(&path, text).expect("write");
            assert!(
                matches!(
                    Decisions::persistent(&path),
                    Err(DecisionsError::Corrupt { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn duplicate_origin_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let one = r#"{"origin": "https://a:443", "choice": "send_none", "decided_at": "2025-01-01T00:00:00Z"}"#;
        fs::write(
            &path,
            format!(r#"{{"version": 1, "decisions": [{one}, {one}]}}"#),
        )
        .expect("write");
        match Decisions::persistent(&path) {
            Err(DecisionsError::DuplicateOrigin { origin, .. }) => {
                assert_eq!(origin, "https://a:443");
            }
            other => panic!("expected DuplicateOrigin, got {other:?}"),
        }
    }

    #[test]
    fn newer_format_is_reported_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        fs::write(&path, r#"{"version": 2, "decisions": {"new": "shape"}}"#).expect("write");
        assert!(matches!(
            Decisions::persistent(&path),
            Err(DecisionsError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn directory_in_place_of_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        fs::create_dir(&path).expect("mkdir");
        assert!(matches!(
            Decisions::persistent(&path),
            Err(DecisionsError::NotAFile { .. })
        ));
    }

    #[test]
    fn fifo_in_place_of_file_does_not_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        assert!(matches!(
            Decisions::persistent(&path),
            Err(DecisionsError::NotAFile { .. })
        ));
    }

    #[test]
    fn writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        for n in 0..5 {
            d.remember(&format!("https://h{n}:443"), Choice::Identity(id(n)))
                .expect("remember");
        }
        d.forget("https://h0:443").expect("forget");
        assert_eq!(entries(dir.path()), ["decisions.json"]);
    }

    #[test]
    fn failed_write_changes_nothing_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("decisions.json");
        let mut d = Decisions::persistent(&path).expect("open");
        d.remember(ALICE, Choice::SendNone).expect("remember");
        // A non-empty directory in the file's place: the rename fails,
        // even for root.
        fs::remove_file(&path).expect("rm");
        fs::create_dir(&path).expect("mkdir");
        fs::write(path.join("keep"), b"x").expect("write");

        let err = d
            .remember(BOB, Choice::Identity(id(2)))
            .expect_err("write fails");
        assert!(matches!(err, DecisionsError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("decisions.json"), "{err}");
        assert!(d.get(BOB).is_none());

        d.forget(ALICE).expect_err("write fails");
        assert!(d.get(ALICE).is_some());
        d.remember(ALICE, Choice::Identity(id(1)))
            .expect_err("write fails");
        assert_eq!(d.get(ALICE).expect("kept").choice, Choice::SendNone);
        d.forget_all().expect_err("write fails");
        assert_eq!(d.list().len(), 1);

        assert_eq!(entries(dir.path()), ["decisions.json"]);
    }
}
