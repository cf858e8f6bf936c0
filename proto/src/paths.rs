//! Where the agent's socket lives by default.

use std::path::PathBuf;

/// Environment variable through which clients find the socket.
pub const SOCKET_ENV: &str = "P11AGENT_SOCK";

/// The default socket: `$XDG_RUNTIME_DIR/p11agent/agent.sock`, or, where
/// no runtime directory is set (a root shell, a container),
/// `/tmp/p11agent-<uid>/agent.sock`. The agent refuses a socket directory
/// that another user owns or others can enter, so the `/tmp` fallback
/// cannot be squatted.
pub fn default_socket() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("p11agent"),
        _ => PathBuf::from(format!("/tmp/p11agent-{}", current_uid())),
    };
    dir.join("agent.sock")
}

/// The socket a client should use: `$P11AGENT_SOCK` when set, else
/// [`default_socket`].
pub fn client_socket() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => default_socket(),
    }
}

/// The real user id of this process, read from `/proc/self` so that this
/// crate needs no libc bindings.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}
