//! What each request does, one file per command.

pub mod hello;
pub mod list;
pub mod show;
pub mod status;
pub mod tokens;

use p11agent_proto::{Request, Response};

use crate::daemon::State;

/// Runs a request that follows the handshake.
pub async fn dispatch(state: &State, request: Request) -> Response {
    match request {
        Request::Hello { .. } => hello::run(),
        Request::Status => status::run(state).await,
        Request::Tokens => tokens::run(state).await,
        Request::List { filter } => list::run(state, &filter).await,
        Request::Show { id } => show::run(state, &id).await,
    }
}
