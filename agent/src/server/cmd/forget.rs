//! `forget`: clear remembered choices, like a browser's "clear SSL state".

use p11agent_proto::Response;

use super::shared::{self, Context};

/// Forgets the choice for `origin`, or every choice.
pub(crate) fn run(context: &Context<'_>, origin: Option<&str>) -> Response {
    let origin = match origin.map(shared::parse_origin).transpose() {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    shared::answer(context.agent.forget(origin.as_ref()), |origins| {
        Response::Forgotten { origins }
    })
}
