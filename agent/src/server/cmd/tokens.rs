//! `tokens`: every token present, with object counts.

use p11agent_proto::Response;

use super::shared::Context;

/// Lists the tokens; a present token whose module does not answer is
/// `unavailable`.
pub(crate) fn run(context: &Context<'_>) -> Response {
    Response::Tokens {
        tokens: context.agent.tokens(),
    }
}
