//! `sign`: a TLS signature with an identity's key, made on its token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{ErrorCode, Response, Scheme};

use super::lookup_error;
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
    let tokens = state.tokens.clone();
    // Signing may wait for a PIN prompt or a slow card: never on the reactor.
    match tokio::task::spawn_blocking(move || tokens.sign(&key, scheme, &message)).await {
        Ok(Ok(signature)) => Response::Signature {
            signature: STANDARD.encode(signature),
        },
        Ok(Err(e)) => {
            tracing::info!(identity = id, %scheme, error = %e, "signature refused");
            Response::error(e.code(), e.to_string())
        }
        Err(e) => Response::error(ErrorCode::Internal, format!("signing task failed: {e}")),
    }
}
