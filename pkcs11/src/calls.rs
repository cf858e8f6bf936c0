//! The bodies of the slot, token, session and object functions, in safe
//! Rust: the FFI layer converts pointers and calls these.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use cryptoki_sys::*;

use crate::attributes::Request;
use crate::rv::Error;
use crate::state;

/// A caller's output array; `None` when it passed NULL to ask for the
/// length.
pub(crate) type Out<'a, T> = Option<&'a mut [MaybeUninit<T>]>;

/// PKCS#11's output convention: with no buffer, the length; with one
/// that is large enough, the items copied; otherwise `BufferTooSmall`
/// with the length needed.
pub(crate) fn deliver<T: Copy>(items: &[T], out: Out<'_, T>) -> Result<usize, Error> {
    match out {
        None => Ok(items.len()),
        Some(out) if out.len() >= items.len() => {
            for (slot, item) in out.iter_mut().zip(items) {
                slot.write(*item);
            }
            Ok(items.len())
        }
        Some(_) => Err(Error::BufferTooSmall(items.len())),
    }
}

pub(crate) fn slot_list(token_present: bool, out: Out<'_, CK_SLOT_ID>) -> Result<usize, Error> {
    let slots = state::with(|s| Ok(s.cache.slots().list(token_present)))?;
    deliver(&slots, out)
}

pub(crate) fn slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO, Error> {
    state::with(|s| Ok(s.cache.slots().get(slot)?.info()))
}

pub(crate) fn token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, Error> {
    state::with(|s| Ok(s.cache.slots().with_token(slot)?.token_info()))
}

pub(crate) fn mechanism_list(
    slot: CK_SLOT_ID,
    out: Out<'_, CK_MECHANISM_TYPE>,
) -> Result<usize, Error> {
    let mechanisms = state::with(|s| Ok(s.cache.slots().with_token(slot)?.mechanisms()))?;
    deliver(&mechanisms, out)
}

pub(crate) fn mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<CK_MECHANISM_INFO, Error> {
    state::with(|s| {
        let slot = s.cache.slots().with_token(slot)?;
        slot.mechanism_info(mechanism)
            .ok_or(Error::MechanismInvalid)
    })
}

pub(crate) fn open_session(slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE, Error> {
    state::with(|s| {
        s.cache.slots().with_token(slot)?;
        s.sessions.open(slot, flags)
    })
}

pub(crate) fn close_session(session: CK_SESSION_HANDLE) -> Result<(), Error> {
    state::with(|s| s.sessions.close(session))
}

pub(crate) fn close_all_sessions(slot: CK_SLOT_ID) -> Result<(), Error> {
    state::with(|s| {
        s.cache.slots().get(slot)?;
        s.sessions.close_slot(slot);
        Ok(())
    })
}

pub(crate) fn session_info(session: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, Error> {
    state::with(|s| s.sessions.info(session))
}

pub(crate) fn login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE) -> Result<(), Error> {
    state::with(|s| s.sessions.login(session, user))
}

pub(crate) fn logout(session: CK_SESSION_HANDLE) -> Result<(), Error> {
    state::with(|s| s.sessions.logout(session))
}

pub(crate) fn attribute_values(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    requests: &mut [Request<'_>],
) -> Result<(), Error> {
    state::with(|s| {
        let slot = s.sessions.get(session)?.slot;
        let objects = s
            .cache
            .object(slot, object)
            .ok_or(Error::ObjectHandleInvalid)?;
        let attributes = objects
            .attributes(object)
            .ok_or(Error::ObjectHandleInvalid)?;
        attributes.read(requests)
    })
}

/// `C_FindObjectsInit`: the matches are found now, from memory: a
/// search never reaches the agent.
pub(crate) fn find_init(
    session: CK_SESSION_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<(), Error> {
    state::with(|s| {
        let session = s.sessions.get(session)?;
        if session.find.is_some() {
            return Err(Error::OperationActive);
        }
        let slot = s.cache.slots().with_token(session.slot)?;
        let found: VecDeque<CK_OBJECT_HANDLE> = slot
            .identities
            .iter()
            .flat_map(|objects| {
                objects.handles().into_iter().filter(|handle| {
                    objects
                        .attributes(*handle)
                        .is_some_and(|attributes| attributes.matches(template))
                })
            })
            .collect();
        session.find = Some(found);
        Ok(())
    })
}

pub(crate) fn find(
    session: CK_SESSION_HANDLE,
    out: &mut [MaybeUninit<CK_OBJECT_HANDLE>],
) -> Result<usize, Error> {
    state::with(|s| {
        let found = s
            .sessions
            .get(session)?
            .find
            .as_mut()
            .ok_or(Error::OperationNotInitialized)?;
        let n = out.len().min(found.len());
        for (slot, handle) in out.iter_mut().zip(found.drain(..n)) {
            slot.write(handle);
        }
        Ok(n)
    })
}

pub(crate) fn find_final(session: CK_SESSION_HANDLE) -> Result<(), Error> {
    state::with(|s| {
        let session = s.sessions.get(session)?;
        session
            .find
            .take()
            .map(drop)
            .ok_or(Error::OperationNotInitialized)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn deliver_follows_the_length_convention() {
        let items = [1u64, 2, 3];
        assert_eq!(deliver(&items, None).expect("length"), 3);
        let mut short = [MaybeUninit::new(0u64); 2];
        assert!(matches!(
            deliver(&items, Some(&mut short)),
            Err(Error::BufferTooSmall(3))
        ));
        let mut room = [MaybeUninit::new(0u64); 4];
        assert_eq!(deliver(&items, Some(&mut room)).expect("copied"), 3);
        // SAFETY: `room` was initialised, and `deliver` wrote three items.
        let got: Vec<u64> = room[..3]
            .iter()
            .map(|v| unsafe { v.assume_init() })
            .collect();
        assert_eq!(got, items);
    }
}
