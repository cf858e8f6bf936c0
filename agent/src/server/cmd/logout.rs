//! `logout`: log out of one token or all of them.

use p11agent_proto::{ErrorCode, Event, EventKind, Response, TokenStatus};

use super::resolve_token;
use crate::audit::{Action, Peer, Record};
use crate::daemon::State;

/// Logs out of the named token, or of every token when `token` is `None`.
pub async fn run(state: &State, peer: &Peer, token: Option<&str>) -> Response {
    let targets = match token {
        Some(_) => match resolve_token(state, token).await {
            Ok(token) => vec![token],
            Err(response) => return response,
        },
        // Every present token whose module answers: a hung module must
        // not hold up logging out of the others.
        None => state
            .store
            .read()
            .await
            .tokens()
            .into_iter()
            .filter(|t| t.status == TokenStatus::Present)
            .map(|t| t.token)
            .filter(|t| state.health.problem(&t.module).is_none())
            .collect(),
    };
    let tokens = state.tokens.clone();
    // A failure on one token ends the loop but not the logouts already
    // done: watchers still hear of those.
    let result = tokio::task::spawn_blocking(move || {
        let mut logged_out = Vec::new();
        for token in targets {
            match tokens.logout(&token) {
                Ok(true) => logged_out.push(token),
                Ok(false) => {}
                Err(e) => return (logged_out, Some(e)),
            }
        }
        (logged_out, None)
    })
    .await;
    let (logged_out, failure) = match result {
        Ok(done) => done,
        Err(e) => {
            return Response::error(ErrorCode::Internal, format!("logout task failed: {e}"));
        }
    };
    for token in &logged_out {
        state
            .audit
            .record(Record::new(Action::Logout, peer, "ok").token(&token.label));
        state
            .events
            .emit(Event::now(EventKind::Logout).token(token.clone()));
    }
    match failure {
        None => Response::LoggedOut { tokens: logged_out },
        Some(e) => Response::error(super::sign_error_code(&e), e.to_string()),
    }
}
