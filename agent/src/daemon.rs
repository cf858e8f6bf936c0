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
        extra_socket,
        agent,
        server,
    } = settings;
    // Before anything slow: a signal during the modules' loading must
    // not find the default action (death, a stale socket).
    let shutdown = shutdown_signal().map_err(DaemonError::Signals)?;
    // Under systemd's socket activation the socket is the unit's. Taken
    // before the module helpers start, so that they inherit neither it
    // nor LISTEN_FDS; accepted only once the store is complete (clients
    // queue on it meanwhile), so the first request sees every token.
    let passed = server::inherited()?;
    let agent = Agent::start(agent).await;
    let socket = match passed {
        Some(passed) => {
            tracing::info!(socket = %passed.path().display(), "listening on the socket systemd passed");
            passed
        }
        None => {
            let bound = server::bind(&socket)?;
            tracing::info!(socket = %bound.path().display(), "listening");
            bound
        }
    };
    let extra = match extra_socket {
        Some(path) => {
            let bound = server::bind(&path)?;
            tracing::info!(socket = %bound.path().display(), "listening for remote shells (restricted)");
            Some(bound)
        }
        None => None,
    };
    notify(sd_notify::NotifyState::Ready);
    let background = agent.spawn_background();
    server::serve(socket, extra, agent, server, shutdown).await;
    notify(sd_notify::NotifyState::Stopping);
    background.stop();
    tracing::info!("stopped");
    Ok(())
}

/// Tells systemd (a `Type=notify` service) how the agent is; nothing
/// without `NOTIFY_SOCKET`.
fn notify(state: sd_notify::NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(&[state]) {
        tracing::warn!(%error, "cannot notify systemd");
    }
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
