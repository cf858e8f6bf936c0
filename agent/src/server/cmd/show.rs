//! `show`: one identity and its certificate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::Response;

use super::shared::{self, Context};

/// Looks an identity up by id or unique prefix.
pub(crate) fn run(context: &Context<'_>, id: &str) -> Response {
    shared::answer(context.agent.show(id), |shown| Response::Identity {
        identity: Box::new(shown.identity),
        certificate: STANDARD.encode(shown.certificate),
        chain: shown.chain.iter().map(|der| STANDARD.encode(der)).collect(),
    })
}
