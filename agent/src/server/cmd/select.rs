//! `select`: the client certificate for a TLS server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{ChooserMode, ErrorCode, Response, Scheme};

use super::{lookup_error, parse_origin};
use crate::audit::{Action, Peer, Record};
use crate::daemon::State;
use crate::select::candidates::ServerRequest;
use crate::select::selector::Query;

/// A `select` request's members.
pub struct Asked<'a> {
    /// The server's origin, as the client wrote it.
    pub origin: &'a str,
    /// Its CertificateRequest's CA names, base64 DER.
    pub ca_names: &'a [String],
    /// Its signature schemes, when known.
    pub schemes: Option<Vec<Scheme>>,
    /// Who asks a person.
    pub chooser: ChooserMode,
    /// The identity the client fixed.
    pub id: Option<&'a str>,
    /// Whether to list the excluded identities.
    pub explain: bool,
}

/// Decides what to send to the server the request describes.
pub async fn run(state: &State, peer: &Peer, asked: Asked<'_>) -> Response {
    let Asked {
        origin,
        ca_names,
        schemes,
        chooser,
        id,
        explain,
    } = asked;
    let origin = match parse_origin(origin) {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    let mut names = Vec::with_capacity(ca_names.len());
    for (i, name) in ca_names.iter().enumerate() {
        match STANDARD.decode(name) {
            Ok(der) => names.push(der),
            Err(e) => {
                return Response::error(
                    ErrorCode::Malformed,
                    format!("ca_names[{i}] is not base64: {e}"),
                )
            }
        }
    }
    let fixed = match id {
        Some(id) => {
            let now = time::OffsetDateTime::now_utc();
            match state.store.read().await.get(id, now) {
                Ok((identity, _)) => Some(identity.id),
                Err(e) => return lookup_error(e),
            }
        }
        None => None,
    };
    let query = Query {
        origin,
        server: ServerRequest {
            ca_names: names,
            schemes,
        },
        chooser,
        fixed,
        explain,
    };
    let selection = state.selector.select(&state.store, query).await;
    let mut record = Record::new(Action::Select, peer, selection.decision.as_str())
        .origin(&selection.origin)
        .detail(selection.basis.as_str());
    if let Some(identity) = &selection.identity {
        record = record.identity(&identity.id, Some(&identity.subject));
    }
    state.audit.record(record);
    tracing::info!(
        origin = %selection.origin,
        decision = selection.decision.as_str(),
        basis = selection.basis.as_str(),
        identity = selection.identity.as_ref().map(|i| i.id.as_str()),
        candidates = selection.candidates.len(),
        "selection"
    );
    Response::Selection(Box::new(selection))
}
