//! `logout`: log out of one token or all of them.

use p11agent_proto::{ErrorCode, Response, TokenStatus};

use super::resolve_token;
use crate::daemon::State;

/// Logs out of the named token, or of every token when `token` is `None`.
pub async fn run(state: &State, token: Option<&str>) -> Response {
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
    let result = tokio::task::spawn_blocking(move || {
        let mut logged_out = Vec::new();
        for token in targets {
            if tokens.logout(&token)? {
                logged_out.push(token);
            }
        }
        Ok::<_, crate::token::SignError>(logged_out)
    })
    .await;
    match result {
        Ok(Ok(tokens)) => Response::LoggedOut { tokens },
        Ok(Err(e)) => Response::error(e.code(), e.to_string()),
        Err(e) => Response::error(ErrorCode::Internal, format!("logout task failed: {e}")),
    }
}
