//! `decisions`: the choices remembered per origin.

use p11agent_proto::Response;

use super::shared::Context;

/// Lists the remembered choices.
pub(crate) fn run(context: &Context<'_>) -> Response {
    Response::Decisions {
        decisions: context.agent.decisions(),
    }
}
