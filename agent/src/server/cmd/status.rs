//! `status`: the agent's version, modules and counts.

use p11agent_proto::{Response, Status, PROTOCOL_VERSION};

use super::shared::Context;

/// Describes the running agent.
pub(crate) fn run(context: &Context<'_>) -> Response {
    let status = context.agent.status();
    Response::Status(Status {
        agent: super::hello::agent_name(),
        protocol_version: PROTOCOL_VERSION,
        socket: context.socket.display().to_string(),
        modules: status.modules,
        isolated_modules: status.isolated_modules,
        module_errors: status.module_errors,
        tokens: status.tokens,
        identities: status.identities,
        uptime_seconds: status.uptime.as_secs(),
    })
}
