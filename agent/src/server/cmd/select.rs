//! `select`: the client certificate for a TLS server.

use p11agent_proto::{ChooserMode, Response, Scheme};

use super::shared::{self, Context};
use crate::service::SelectRequest;

/// A `select` request's members.
pub(crate) struct Asked<'a> {
    /// The server's origin, as the client wrote it.
    pub(crate) origin: &'a str,
    /// Its CertificateRequest's CA names, base64 DER.
    pub(crate) ca_names: &'a [String],
    /// Its signature schemes, when known.
    pub(crate) schemes: Option<Vec<Scheme>>,
    /// Who asks a person.
    pub(crate) chooser: ChooserMode,
    /// The identity the client fixed.
    pub(crate) id: Option<String>,
    /// Whether to list the excluded identities.
    pub(crate) explain: bool,
}

/// Decides what to send to the server the request describes.
pub(crate) fn run(context: &Context<'_>, asked: Asked<'_>) -> Response {
    match decode(asked) {
        Ok(request) => shared::answer(context.agent.select(context.peer, request), |selection| {
            Response::Selection(Box::new(selection))
        }),
        Err(response) => *response,
    }
}

fn decode(asked: Asked<'_>) -> Result<SelectRequest, Box<Response>> {
    let origin = shared::parse_origin(asked.origin)?;
    let ca_names = asked
        .ca_names
        .iter()
        .enumerate()
        .map(|(i, name)| shared::base64(&format!("ca_names[{i}]"), name))
        .collect::<Result<_, _>>()?;
    Ok(SelectRequest {
        origin,
        ca_names,
        schemes: asked.schemes,
        chooser: asked.chooser,
        id: asked.id,
        explain: asked.explain,
    })
}
