//! `sign`: a TLS signature with an identity's key, made on its token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{Response, Scheme};

use super::shared::{self, Context};

/// Signs `message` (base64) with the identity `id` under `scheme`.
pub(crate) fn run(context: &Context<'_>, id: &str, scheme: Scheme, message: &str) -> Response {
    let message = match shared::base64("message", message) {
        Ok(message) => message,
        Err(response) => return *response,
    };
    shared::answer(
        context.agent.sign(&context.caller(), id, scheme, &message),
        |signature| Response::Signature {
            signature: STANDARD.encode(signature),
        },
    )
}
