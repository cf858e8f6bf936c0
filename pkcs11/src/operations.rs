//! The bodies of the digest and sign functions, in safe Rust. A
//! signature's round trip to the agent happens outside the module's
//! lock, so that threads sign at once.

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki_sys::*;
use p11agent_client::{Client, ClientError};

use crate::calls::{deliver, Out};
use crate::digest::Hasher;
use crate::key::Key;
use crate::mechanisms::{self, Params};
use crate::rv::Error;
use crate::sign::{self, AgentSign, SignOp};
use crate::state;

pub(crate) fn digest_init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<(), Error> {
    state::with(|s| {
        let session = s.sessions.get(session)?;
        if session.digest.is_some() {
            return Err(Error::OperationActive);
        }
        session.digest = Some(Hasher::for_mechanism(mechanism).ok_or(Error::MechanismInvalid)?);
        Ok(())
    })
}

pub(crate) fn digest_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<(), Error> {
    state::with(|s| {
        let hasher = s.sessions.get(session)?.digest.as_mut();
        hasher.ok_or(Error::OperationNotInitialized)?.update(data);
        Ok(())
    })
}

/// `C_Digest` (with `data`) and `C_DigestFinal` (without).
pub(crate) fn digest(
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    out: Out<'_, u8>,
) -> Result<usize, Error> {
    let room = out.as_ref().map(|out| out.len());
    let digest = state::with(|s| {
        let session = s.sessions.get(session)?;
        let len = session
            .digest
            .as_ref()
            .ok_or(Error::OperationNotInitialized)?
            .len();
        match room {
            // A length query: the operation goes on.
            None => return Ok(Err(len)),
            Some(room) if room < len => return Err(Error::BufferTooSmall(len)),
            Some(_) => {}
        }
        let mut hasher = session
            .digest
            .take()
            .ok_or(Error::OperationNotInitialized)?;
        hasher.update(data.unwrap_or_default());
        Ok(Ok(hasher.finish()))
    })?;
    match digest {
        Ok(digest) => deliver(&digest, out),
        Err(len) => Ok(len),
    }
}

pub(crate) fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    params: Params,
    key: CK_OBJECT_HANDLE,
) -> Result<(), Error> {
    state::with(|s| {
        let session = s.sessions.get(session)?;
        if session.sign.is_some() {
            return Err(Error::OperationActive);
        }
        let objects = s
            .cache
            .object(session.slot, key)
            .ok_or(Error::KeyHandleInvalid)?;
        if !objects.is_private_key(key) {
            return Err(Error::KeyHandleInvalid);
        }
        let plan = mechanisms::plan(mechanism, params, &objects.key)?;
        session.sign = Some(SignOp::new(Arc::clone(&objects.key), plan));
        Ok(())
    })
}

pub(crate) fn sign_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<(), Error> {
    state::with(|s| {
        let session = s.sessions.get(session)?;
        let op = session
            .sign
            .as_mut()
            .ok_or(Error::OperationNotInitialized)?;
        let fed = op.update(data);
        if fed.is_err() {
            // An error ends the operation.
            session.sign = None;
        }
        fed
    })
}

/// A signature to make, taken from its session under the lock.
struct Pending {
    key: Arc<Key>,
    request: AgentSign,
    client: Option<Client>,
    socket: PathBuf,
    generation: u64,
}

/// `C_Sign` (with `data`) and `C_SignFinal` (without). Without a buffer,
/// or with one too small, the length and the operation goes on; with
/// one, the agent signs once.
pub(crate) fn sign(
    session: CK_SESSION_HANDLE,
    data: Option<&[u8]>,
    out: Out<'_, u8>,
) -> Result<usize, Error> {
    let room = out.as_ref().map(|out| out.len());
    let pending = state::with(|s| {
        let session = s.sessions.get(session)?;
        let len = session
            .sign
            .as_ref()
            .ok_or(Error::OperationNotInitialized)?
            .signature_len();
        match room {
            None => return Ok(Err(len)),
            Some(room) if room < len => return Err(Error::BufferTooSmall(len)),
            Some(_) => {}
        }
        let mut op = session.sign.take().ok_or(Error::OperationNotInitialized)?;
        if let Some(data) = data {
            op.update(data)?;
        }
        let key = Arc::clone(&op.key);
        let request = op.finish()?;
        Ok(Ok(Pending {
            key,
            request,
            client: s.agent.take_client(),
            socket: s.agent.socket(),
            generation: s.generation,
        }))
    })?;
    match pending {
        Ok(pending) => deliver(&run(pending)?, out),
        Err(len) => Ok(len),
    }
}

/// Asks the agent, without the module's lock, and puts the connection
/// back unless a fork or a broken connection made it useless.
fn run(pending: Pending) -> Result<Vec<u8>, Error> {
    let mut client = match pending.client {
        Some(client) => client,
        None => Client::connect(&pending.socket)?,
    };
    let signed = pending.request.run(&mut client, &pending.key.id);
    if matches!(signed, Ok(_) | Err(ClientError::Agent { .. })) {
        // The module may have been finalised meanwhile: then the
        // connection just closes.
        let _ = state::with(|s| {
            if s.generation == pending.generation {
                s.agent.give_back(client);
            }
            Ok(())
        });
    }
    sign::to_pkcs11(&pending.key, signed?)
}
