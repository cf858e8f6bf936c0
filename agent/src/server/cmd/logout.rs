//! `logout`: log out of one token or all of them.

use p11agent_proto::Response;

use super::shared::{self, Context};

/// Logs out of the named token, or of every token when `token` is `None`.
pub(crate) fn run(context: &Context<'_>, token: Option<&str>) -> Response {
    shared::answer(context.agent.logout(&context.caller(), token), |tokens| {
        Response::LoggedOut { tokens }
    })
}
