//! `tokens`: every token present, with object counts.

use p11agent_proto::{Response, TokenStatus};

use crate::daemon::State;

/// Lists the tokens; a present token whose module does not answer is
/// `unavailable`.
pub async fn run(state: &State) -> Response {
    let mut tokens = state.store.read().await.tokens();
    for t in &mut tokens {
        if t.status == TokenStatus::Present && state.health.problem(&t.token.module).is_some() {
            t.status = TokenStatus::Unavailable;
        }
    }
    Response::Tokens { tokens }
}
