//! `login`: log in to a token ahead of the first signature.

use p11agent_proto::{Event, EventKind, Pin, Response};
use secrecy::SecretString;

use super::{on_token, resolve_token};
use crate::daemon::State;

/// Logs in to the named token (or the only one) with `pin`, or with the
/// agent's PIN source when `pin` is `None`.
pub async fn run(state: &State, token: Option<&str>, pin: Option<Pin>) -> Response {
    let token = match resolve_token(state, token).await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let pin = pin.map(|pin| SecretString::from(pin.expose()));
    let tokens = state.tokens.clone();
    let target = token.clone();
    match on_token(state, &token, move || tokens.login(&target, pin)).await {
        Ok(()) => {
            state
                .events
                .emit(Event::now(EventKind::Login).token(token.clone()));
            Response::LoggedIn { token }
        }
        Err(response) => response,
    }
}
