//! `forget`: clear remembered choices, like a browser's "clear SSL state".

use p11agent_proto::Response;

use super::Context;

/// Forgets the choice for `origin`, or every choice.
pub(crate) fn run(context: &Context<'_>, origin: Option<&str>) -> Response {
    let origin = match origin.map(super::parse_origin).transpose() {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    super::answer(context.agent.forget(origin.as_ref()), |origins| {
        Response::Forgotten { origins }
    })
}
