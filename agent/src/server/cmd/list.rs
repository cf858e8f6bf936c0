//! `list`: the identities matching a filter.

use p11agent_proto::{Filter, Response};

use crate::daemon::State;

/// Lists identities.
pub async fn run(state: &State, filter: &Filter) -> Response {
    let now = time::OffsetDateTime::now_utc();
    Response::Identities {
        identities: state.store.read().await.query(filter, now),
    }
}
