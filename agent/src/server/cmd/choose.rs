//! `choose`: a person's answer to a prompt, reported by the application
//! that asked.

use p11agent_proto::Response;

use super::shared::{self, Context};

/// Records that `id` (or no certificate) was chosen for `origin`.
pub(crate) fn run(
    context: &Context<'_>,
    origin: &str,
    id: Option<&str>,
    remember: bool,
) -> Response {
    let origin = match shared::parse_origin(origin) {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    shared::answer(context.agent.choose(&origin, id, remember), |remembered| {
        Response::Chosen { remembered }
    })
}
