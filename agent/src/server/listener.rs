//! Accepting connections under a cap, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::connection::{self, Shared};
use super::limits::{IdleConnections, LiveConnections, Timeouts};
use super::peer;
use super::socket::BoundSocket;
use crate::service::Agent;

/// Most connections open at once: 256.
///
/// Each costs a file descriptor, a thread and at most one request buffer
/// ([`MAX_REQUEST_FRAME`](p11agent_proto::MAX_REQUEST_FRAME)), so the
/// cap bounds what clients can make the agent hold (256 × 64 KiB of
/// request buffers at most) and keeps it well inside the usual limit of
/// 1,024 open files. One person's tools need a handful. When every slot
/// is taken, a newcomer takes the slot of the connection that has waited
/// longest for a request (see `IdleConnections`); when none waits, the
/// newcomer waits, and those behind it stay in the kernel's accept
/// queue, costing the agent nothing.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// How long to pause after a failed `accept` (out of file descriptors,
/// say) before trying again: such failures persist until something
/// closes, and retrying at once would spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How the server runs, resolved from flags and configuration.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// How long a client may take over a frame, and stay idle.
    pub(crate) timeouts: Timeouts,
    /// Other users allowed to connect.
    pub(crate) allowed_uids: Vec<u32>,
}

/// Serves `agent` to clients on `socket` until `shutdown` completes, then
/// waits for the connections in progress to finish their current request.
pub(crate) async fn serve(
    socket: BoundSocket,
    extra: Option<BoundSocket>,
    agent: Agent,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let ServerOptions {
        timeouts,
        allowed_uids,
    } = options;
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let idle = Arc::new(IdleConnections::default());
    let shared = Shared {
        agent: agent.clone(),
        socket: Arc::from(socket.path()),
        timeouts,
        idle: idle.clone(),
        live: Arc::new(LiveConnections::default()),
        stop: tokio::sync::broadcast::channel::<()>(1).0,
        runtime: tokio::runtime::Handle::current(),
    };
    tokio::pin!(shutdown);

    loop {
        let extra_accept = async {
            match &extra {
                Some(extra) => extra.listener.accept().await,
                None => std::future::pending().await,
            }
        };
        let (accepted, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = socket.listener.accept() => (accepted, false),
            accepted = extra_accept => (accepted, true),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, remote, "accept failed");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_RETRY_PAUSE) => {}
                }
                continue;
            }
        };
        let peer = match peer::credentials(&stream) {
            Ok(peer) => crate::service::Peer { remote, ..peer },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; refusing");
                continue;
            }
        };
        if !peer::allowed(&peer, &allowed_uids) {
            tracing::warn!(uid = peer.uid, "refused a connection from another user");
            agent.refused_connection(&peer, format!("uid {} is not allowed", peer.uid));
            continue;
        }
        // Room is made only for a peer that may stay: a refused one never
        // waits for, or takes, another's slot.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = make_room(&permits, &idle) => match permit {
                Some(p) => p,
                None => break,
            },
        };
        match stream.into_std() {
            Ok(stream) => connection::spawn(stream, peer, shared.clone(), permit),
            Err(e) => tracing::warn!(error = %e, "cannot take over a connection; closing it"),
        }
    }

    // Every connection finishes the request it is answering, then closes;
    // each holds its slot until then.
    shared.live.stop();
    let _ = shared.stop.send(());
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// A connection slot: a free one, else the slot of the connection that
/// has waited longest for a request, else the first slot to come free or
/// to have its connection start waiting. `None` only if the semaphore
/// was closed, which nothing does.
async fn make_room(
    permits: &Arc<Semaphore>,
    idle: &IdleConnections,
) -> Option<OwnedSemaphorePermit> {
    loop {
        match permits.clone().try_acquire_owned() {
            Ok(permit) => return Some(permit),
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {}
        }
        if idle.reclaim_longest() {
            tracing::debug!("all connection slots taken; closed the longest idle connection");
            // That connection closes at once and returns its slot; taking
            // another instead would close two for one newcomer.
            return permits.clone().acquire_owned().await.ok();
        }
        tokio::select! {
            permit = permits.clone().acquire_owned() => return permit.ok(),
            () = idle.entered() => {}
        }
    }
}
