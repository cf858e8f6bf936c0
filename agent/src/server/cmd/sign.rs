//! `sign`: a TLS signature with an identity's key, made on its token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p11agent_proto::{ErrorCode, Response, Scheme};

use std::sync::Arc;

use super::{insert_token, lookup_error, on_token};
use crate::audit::{Action, Peer, Record};
use crate::daemon::State;
use crate::server::rescue::Reply;

/// Signs `message` (base64) with the identity `id` under `scheme`, after
/// checking the identity's purpose allows it, and audits the outcome.
pub async fn run(
    state: &State,
    peer: &Peer,
    reply: &Arc<Reply>,
    id: &str,
    scheme: Scheme,
    message: &str,
) -> Response {
    let message = match STANDARD.decode(message) {
        Ok(message) => message,
        Err(e) => {
            return Response::error(ErrorCode::Malformed, format!("message is not base64: {e}"))
        }
    };
    let (response, identity) = sign(state, peer, reply, id, scheme, &message).await;
    let result = match &response {
        Response::Error { code, .. } => code.as_str(),
        _ => "ok",
    };
    let mut record = Record::new(Action::Sign, peer, result)
        .scheme(scheme.as_str())
        .message(&message);
    record = match &identity {
        Some((full_id, subject)) => record.identity(full_id, Some(subject)),
        None => record.identity(id, None),
    };
    if let Response::Error { message, .. } = &response {
        tracing::info!(identity = id, %scheme, result, %message, "signature refused");
        record = record.detail(message.clone());
    }
    state.audit.record(record);
    response
}

/// The signature, or why not; with the identity's full id and subject
/// when it was found.
async fn sign(
    state: &State,
    peer: &Peer,
    reply: &Arc<Reply>,
    id: &str,
    scheme: Scheme,
    message: &[u8],
) -> (Response, Option<(String, String)>) {
    let now = time::OffsetDateTime::now_utc();
    let (key, identity) = {
        let store = state.store.read().await;
        let identity = match store.get(id, now) {
            Ok((identity, _)) => (identity.id, identity.subject),
            Err(e) => return (lookup_error(e), None),
        };
        match store.key_location(id, now) {
            Ok(Some(key)) => (key, identity),
            Ok(None) => {
                let response = Response::error(
                    ErrorCode::NoPrivateKey,
                    format!("identity {id} has no private key on its token"),
                );
                return (response, Some(identity));
            }
            Err(e) => return (lookup_error(e), Some(identity)),
        }
    };
    if let Err(refusal) = state.purposes.of(&key.id).allows(message) {
        let response = Response::error(ErrorCode::PurposeRefused, refusal.to_string());
        return (response, Some(identity));
    }
    if !key.present {
        return (insert_token(&key.token), Some(identity));
    }
    if state.purposes.needs_confirmation(&key.id) {
        if let Err(response) = confirm(state, peer, &identity.1, scheme, message.len()).await {
            return (response, Some(identity));
        }
    }
    // Signing may wait for a PIN prompt or a slow card: never on the reactor.
    let response = match on_token(state, reply, &key.token, || {
        state.tokens.sign(&key, scheme, message)
    }) {
        Ok(signature) => {
            state
                .last_use
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.token.clone(), std::time::Instant::now());
            Response::Signature {
                signature: STANDARD.encode(signature),
            }
        }
        Err(response) => *response,
    };
    (response, Some(identity))
}

/// Asks the person to allow this signature (pinentry `CONFIRM`), for an
/// identity configured with `confirm = true`.
async fn confirm(
    state: &State,
    peer: &Peer,
    subject: &str,
    scheme: Scheme,
    len: usize,
) -> Result<(), Response> {
    let Some(pinentry) = state.confirm_with.clone() else {
        return Err(Response::error(
            ErrorCode::Cancelled,
            "this identity needs each signature confirmed, and no pinentry program is \
             configured to ask (--pinentry)",
        ));
    };
    let who = peer
        .exe
        .clone()
        .unwrap_or_else(|| format!("process {}", peer.pid.unwrap_or_default()));
    let text = format!(
        "{who} (uid {}) asks to sign with\n{subject}\n({scheme}, {len} bytes).\n\nAllow it?",
        peer.uid
    );
    match tokio::task::spawn_blocking(move || pinentry.confirm(&text)).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(Response::error(
            ErrorCode::Cancelled,
            "the signature was denied at the confirmation prompt",
        )),
        Ok(Err(e)) => Err(Response::error(
            ErrorCode::Cancelled,
            format!("the signature could not be confirmed: {e}"),
        )),
        Err(e) => Err(Response::error(
            ErrorCode::Internal,
            format!("confirmation task failed: {e}"),
        )),
    }
}
