//! `decisions`: the choices remembered per origin.

use p11agent_proto::Response;

use crate::daemon::State;

/// Lists the remembered choices.
pub async fn run(state: &State) -> Response {
    let store = state.store.read().await;
    Response::Decisions {
        decisions: state.selector.remembered(&store),
    }
}
