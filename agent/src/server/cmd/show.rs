//! `show`: one identity and its certificate.

use base64::Engine as _;
use p11agent_proto::Response;

use crate::daemon::State;

/// Looks an identity up by id or unique prefix.
pub async fn run(state: &State, id: &str) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let store = state.store.read().await;
    match store.get(id, now) {
        Ok((identity, der)) => Response::Identity {
            identity: Box::new(identity),
            certificate: base64::engine::general_purpose::STANDARD.encode(der),
        },
        Err(e) => super::lookup_error(e),
    }
}
