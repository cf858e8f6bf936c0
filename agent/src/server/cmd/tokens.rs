//! `tokens`: every token present, with object counts.

use p11agent_proto::Response;

use crate::daemon::State;

/// Lists the tokens.
pub async fn run(state: &State) -> Response {
    Response::Tokens {
        tokens: state.store.read().await.tokens(),
    }
}
