//! `login`: log in to a token ahead of the first signature.

use p11agent_proto::{Pin, Response};
use secrecy::SecretString;

use super::shared::{self, Context};

/// Logs in to the named token (or the only one) with `pin`, or with the
/// agent's PIN source when `pin` is `None`.
pub(crate) fn run(context: &Context<'_>, token: Option<&str>, pin: Option<Pin>) -> Response {
    let pin = pin.map(|pin| SecretString::from(pin.expose()));
    shared::answer(
        context.agent.login(&context.caller(), token, pin),
        |token| Response::LoggedIn { token },
    )
}
