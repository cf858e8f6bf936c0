//! `status`: the agent's version, modules and counts.

use p11agent_proto::{ModuleError, Response, Status, PROTOCOL_VERSION};

use crate::daemon::State;

/// Describes the running agent.
pub async fn run(state: &State) -> Response {
    let store = state.store.read().await;
    Response::Status(Status {
        agent: crate::daemon::agent_name(),
        protocol_version: PROTOCOL_VERSION,
        socket: state.socket.display().to_string(),
        modules: state.modules.clone(),
        module_errors: state
            .module_errors
            .iter()
            .cloned()
            .chain(state.modules.iter().filter_map(|module| {
                state.health.problem(module).map(|problem| ModuleError {
                    module: module.clone(),
                    error: format!("unavailable: {problem}"),
                })
            }))
            .collect(),
        tokens: store.token_count(),
        identities: store.len(),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}
