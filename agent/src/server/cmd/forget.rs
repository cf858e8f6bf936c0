//! `forget`: clear remembered choices, like a browser's "clear SSL state".

use p11agent_proto::{ErrorCode, Response};

use super::parse_origin;
use crate::daemon::State;

/// Forgets the choice for `origin`, or every choice.
pub async fn run(state: &State, origin: Option<&str>) -> Response {
    let origin = match origin.map(parse_origin).transpose() {
        Ok(origin) => origin,
        Err(response) => return *response,
    };
    match state.selector.forget(origin.as_ref()).await {
        Ok(origins) => Response::Forgotten { origins },
        Err(e) => Response::error(ErrorCode::DecisionsFailed, e.to_string()),
    }
}
