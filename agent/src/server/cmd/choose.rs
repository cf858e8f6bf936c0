//! `choose`: a person's answer to a prompt, reported by the application
//! that asked.

use p11agent_proto::{ErrorCode, Response};

use super::{lookup_error, parse_origin};
use crate::daemon::State;
use crate::select::decisions::Choice;

/// Records that `id` (or no certificate) was chosen for `origin`.
pub async fn run(state: &State, origin: &str, id: Option<&str>, remember: bool) -> Response {
    let origin = match parse_origin(origin) {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    let choice = match id {
        Some(id) => {
            let now = time::OffsetDateTime::now_utc();
            match state.store.read().await.get(id, now) {
                Ok((identity, _)) => Choice::Identity(identity.id),
                Err(e) => return lookup_error(e),
            }
        }
        None => Choice::SendNone,
    };
    if !remember {
        return Response::Chosen { remembered: None };
    }
    match state.selector.remember(&origin, choice).await {
        Ok(remembered) => Response::Chosen { remembered },
        Err(e) => Response::error(ErrorCode::DecisionsFailed, e.to_string()),
    }
}
