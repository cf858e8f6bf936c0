//! Creating the socket: a private directory (0700, ours), a socket file
//! (0600), and no clobbering of a live agent.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket path has no parent directory.
    #[error("socket path {0} has no parent directory")]
    NoParent(PathBuf),
    /// The socket directory could not be created or inspected.
    #[error("cannot prepare socket directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The socket directory belongs to someone else.
    #[error("socket directory {path} is owned by uid {owner}, not by us (uid {uid}); refusing to use it")]
    ForeignDirectory {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// The socket directory is writable by group or others.
    #[error(
        "socket directory {path} is writable by others (mode {mode:o}); refusing to use it: \
         remove it or make it 0700 (`chmod 700 {path}`)"
    )]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another agent already answers on the socket.
    #[error("another agent is already listening on {0}; stop it first or choose another --socket")]
    InUse(PathBuf),
    /// Binding or securing the socket failed.
    #[error("cannot bind {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A listening socket that removes its file when dropped, unless it was
/// handed over by systemd, whose socket unit owns the file.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    /// The listener.
    pub listener: UnixListener,
    path: PathBuf,
    ours: bool,
}

impl BoundSocket {
    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if self.ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The listening socket systemd passed (socket activation: `LISTEN_FDS`
/// and `LISTEN_PID` naming this process), if any. Connections on it go
/// through the same peer checks as on a socket the agent binds; the unit
/// (dist/systemd/p11agent.socket) makes it 0600 in a 0700 directory.
/// Must be called inside a tokio runtime.
pub(crate) fn inherited() -> Result<Option<BoundSocket>, SocketError> {
    let passed = |source| SocketError::Bind {
        path: PathBuf::from("the socket systemd passed (LISTEN_FDS)"),
        source,
    };
    let Some(listener) = listenfd::ListenFd::from_env()
        .take_unix_listener(0)
        .map_err(passed)?
    else {
        return Ok(None);
    };
    let path = listener
        .local_addr()
        .ok()
        .and_then(|addr| addr.as_pathname().map(Path::to_path_buf))
        .unwrap_or_default();
    listener.set_nonblocking(true).map_err(passed)?;
    let listener = UnixListener::from_std(listener).map_err(passed)?;
    Ok(Some(BoundSocket {
        listener,
        path,
        ours: false,
    }))
}

/// Binds the agent's socket at `path`.
///
/// The parent directory is created 0700 if missing; an existing one must
/// be ours and is narrowed to 0700, because the directory, not the socket
/// mode, is what keeps other users from connecting on every platform. A
/// stale socket file left by a crashed agent is replaced; a live one is
/// an error. Must be called inside a tokio runtime.
pub(crate) fn bind(path: &Path) -> Result<BoundSocket, SocketError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| SocketError::NoParent(path.to_path_buf()))?;
    prepare_dir(dir)?;

    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        fs::remove_file(path).map_err(|source| SocketError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let bind_err = |source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    let bound = BoundSocket {
        listener,
        path: path.to_path_buf(),
        ours: true,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(bound)
}

fn prepare_dir(dir: &Path) -> Result<(), SocketError> {
    let dir_err = |source| SocketError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    match fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(dir_err(e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(dir_err)?;
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid {
        return Err(SocketError::ForeignDirectory {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    if !meta.is_dir() {
        return Err(dir_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a directory",
        )));
    }
    // Writable by others: someone else may have put things there (a
    // socket of their own, a symlink) before us. Refuse rather than
    // narrow it: we cannot know what happened meanwhile.
    if meta.mode() & 0o022 != 0 {
        return Err(SocketError::OpenDirectory {
            path: dir.to_path_buf(),
            mode: meta.mode() & 0o777,
        });
    }
    // Readable by others only: narrowing it is safe.
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
    }
    Ok(())
}
