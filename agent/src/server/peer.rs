//! Who is on the other end of a connection, and whether they may talk to
//! the agent.

use crate::service::Peer;

/// The peer of `stream`, from its credentials (`SO_PEERCRED`) and
/// `/proc/PID/exe`.
pub(crate) fn credentials(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid();
    Ok(Peer {
        uid: cred.uid(),
        pid,
        exe: pid.and_then(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .map(|p| p.display().to_string())
        }),
        remote: false,
    })
}

/// Whether `peer` may use the agent: it runs as our own user, or as one
/// of `allowed_uids` (configured). Root is not let in unless listed: an
/// agent serves one user's keys, and root can read its memory anyway if
/// it wants them, so nothing is gained by answering it.
pub(crate) fn allowed(peer: &Peer, allowed_uids: &[u32]) -> bool {
    peer.uid == nix::unistd::getuid().as_raw() || allowed_uids.contains(&peer.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_uid_and_listed_uids_only() {
        let me = nix::unistd::getuid().as_raw();
        let peer = |uid| Peer {
            uid,
            pid: None,
            exe: None,
            remote: false,
        };
        let stranger = me.wrapping_add(4242);
        assert!(allowed(&peer(me), &[]));
        assert!(!allowed(&peer(stranger), &[]));
        assert!(allowed(&peer(stranger), &[stranger]));
    }
}
