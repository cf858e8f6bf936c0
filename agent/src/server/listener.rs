//! Accepting connections under a cap, until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::connection::Connection;
use super::peer;
use super::socket::BoundSocket;
use crate::audit::{Action, Peer, Record};
use crate::daemon::State;

/// Most connections served at once; further clients wait in the
/// kernel's accept queue until one closes.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves clients on `socket` until `shutdown` completes, then waits for
/// the connections in progress to finish their current request.
pub async fn serve(socket: BoundSocket, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let peer = match Peer::of(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; refusing");
                continue;
            }
        };
        if !peer::allowed(&peer, &state.allowed_uids) {
            tracing::warn!(uid = peer.uid, "refused a connection from another user");
            state.audit.record(
                Record::new(Action::Connect, &peer, "refused")
                    .detail(format!("uid {} is not allowed", peer.uid)),
            );
            continue;
        }
        while tasks.try_join_next().is_some() {}
        let state = state.clone();
        let stop = stop_tx.subscribe();
        tasks.spawn(async move {
            Connection::new(stream, state, peer).run(stop).await;
            drop(permit);
        });
    }

    let _ = stop_tx.send(());
    while tasks.join_next().await.is_some() {}
}
