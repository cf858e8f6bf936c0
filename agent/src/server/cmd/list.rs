//! `list`: the identities matching a filter.

use p11agent_proto::{Filter, Response};

use super::shared::Context;

/// Lists identities.
pub(crate) fn run(context: &Context<'_>, filter: &Filter) -> Response {
    Response::Identities {
        identities: context.agent.list(filter),
    }
}
