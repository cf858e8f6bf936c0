//! `sign_digest`: a signature over a digest the client made, with an
//! identity's key, when the digest policy admits the client's program.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{DigestMechanism, HashAlgorithm, Response};

use super::shared::{self, Context};

/// Signs `digest` (base64), made by `hash`, with the identity `id` under
/// `mechanism`.
pub(crate) fn run(
    context: &Context<'_>,
    id: &str,
    mechanism: DigestMechanism,
    hash: HashAlgorithm,
    digest: &str,
) -> Response {
    let digest = match shared::base64("digest", digest) {
        Ok(digest) => digest,
        Err(response) => return *response,
    };
    shared::answer(
        context
            .agent
            .sign_digest(&context.caller(), id, mechanism, hash, &digest),
        |signature| Response::Signature {
            signature: STANDARD.encode(signature),
        },
    )
}
