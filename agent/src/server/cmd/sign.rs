//! `sign`: a TLS signature with an identity's key, made on its token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{ErrorCode, Response, Scheme};

use super::{insert_token, lookup_error, on_token};
use crate::daemon::State;

/// Signs `message` (base64) with the identity `id` under `scheme`.
pub async fn run(state: &State, id: &str, scheme: Scheme, message: &str) -> Response {
    let message = match STANDARD.decode(message) {
        Ok(message) => message,
        Err(e) => {
            return Response::error(ErrorCode::Malformed, format!("message is not base64: {e}"))
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let key = match state.store.read().await.key_location(id, now) {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Response::error(
                ErrorCode::NoPrivateKey,
                format!("identity {id} has no private key on its token"),
            )
        }
        Err(e) => return lookup_error(e),
    };
    if !key.present {
        return insert_token(&key.token);
    }
    let tokens = state.tokens.clone();
    let token = key.token.clone();
    // Signing may wait for a PIN prompt or a slow card: never on the reactor.
    match on_token(state, &token, move || tokens.sign(&key, scheme, &message)).await {
        Ok(signature) => Response::Signature {
            signature: STANDARD.encode(signature),
        },
        Err(response) => {
            if let Response::Error { code, message } = &response {
                tracing::info!(identity = id, %scheme, %code, %message, "signature refused");
            }
            response
        }
    }
}
