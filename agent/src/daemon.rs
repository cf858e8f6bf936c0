//! The composition root: the daemon's parts, wired together from its
//! settings, run until a signal stops them.

use tokio::signal::unix::{signal, SignalKind};

use crate::config::Settings;
use crate::server::{self, SocketError};
use crate::service::Agent;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Loads the modules and fills the store, then serves the socket until
/// SIGINT or SIGTERM (SIGHUP is ignored).
///
/// The socket appears only once every token has been scanned, so a
/// client that can connect sees the complete store.
pub(crate) async fn run(settings: Settings) -> Result<(), DaemonError> {
    let Settings {
        socket,
        agent,
        server,
    } = settings;
    // Before anything slow: a signal during the modules' loading must
    // not find the default action (death, a stale socket).
    let shutdown = shutdown_signal().map_err(DaemonError::Signals)?;
    let agent = Agent::start(agent).await;
    let socket = server::bind(&socket)?;
    tracing::info!(socket = %socket.path().display(), "listening");
    let background = agent.spawn_background();
    server::serve(socket, agent, server, shutdown).await;
    background.stop();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves at SIGTERM or SIGINT. SIGHUP, which a closed terminal sends
/// to the daemon started from it, is logged and otherwise ignored: the
/// agent keeps serving (a changed configuration takes a restart).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = hup.recv() => tracing::info!(
                    "SIGHUP: still serving (a changed configuration takes a restart; stop the agent with SIGTERM)"
                ),
            }
        }
    })
}
