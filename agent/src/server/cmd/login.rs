//! `login`: log in to a token ahead of the first signature.

use p11agent_proto::{Event, EventKind, Pin, Response, Token};
use secrecy::SecretString;

use std::sync::Arc;

use super::{on_token, resolve_token};
use crate::audit::{Action, Peer, Record};
use crate::daemon::State;
use crate::server::rescue::Reply;
use crate::token::SignError;

/// Logs in to the named token (or the only one) with `pin`, or with the
/// agent's PIN source when `pin` is `None`.
pub async fn run(
    state: &State,
    peer: &Peer,
    reply: &Arc<Reply>,
    token: Option<&str>,
    pin: Option<Pin>,
) -> Response {
    let token = match resolve_token(state, token).await {
        Ok(token) => token,
        Err(response) => return response,
    };
    let pin = pin.map(|pin| SecretString::from(pin.expose()));
    match on_token(state, reply, &token, || state.tokens.login(&token, pin)) {
        Ok(()) => {
            state
                .audit
                .record(Record::new(Action::Login, peer, "ok").token(&token.label));
            state
                .events
                .emit(Event::now(EventKind::Login).token(token.clone()));
            rescan(state, reply, &token).await;
            Response::LoggedIn { token }
        }
        Err(response) => {
            if let Response::Error { code, message } = &*response {
                state.audit.record(
                    Record::new(Action::Login, peer, code.as_str())
                        .token(&token.label)
                        .detail(message.clone()),
                );
            }
            *response
        }
    }
}

/// Scans the token again now that it is logged in: private keys are
/// usually `CKA_PRIVATE`, so a token without public-key objects showed
/// its certificates without keys until now.
async fn rescan(state: &State, reply: &Arc<Reply>, token: &Token) {
    let scanned = on_token(state, reply, token, || {
        state
            .tokens
            .rescan(token)
            .map_err(|e| SignError::TokenAbsent {
                token: token.label.clone(),
                detail: e.to_string(),
            })
    });
    match scanned {
        Ok(found) if found.token.serial == token.serial => {
            let mut store = state.store.write().await;
            store.insert_token(found);
            tracing::debug!(token = %token.label, "rescanned after login");
        }
        Ok(_) => tracing::info!(token = %token.label, "another token is in the slot now"),
        Err(_) => tracing::info!(token = %token.label, "rescan after login failed"),
    }
}
