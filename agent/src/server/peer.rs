//! Who is on the other end of a connection.

use tokio::net::UnixStream;

/// Whether the peer runs as our own user. Root is not let in either: an
/// agent serves one user's keys, and root can read its memory anyway if
/// it wants them, so nothing is gained by answering it.
pub fn is_same_user(stream: &UnixStream) -> Result<bool, std::io::Error> {
    let cred = stream.peer_cred()?;
    Ok(cred.uid() == nix::unistd::getuid().as_raw())
}
