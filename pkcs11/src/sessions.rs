//! Sessions, the operations under way in each, and the login state a
//! program sees (which changes nothing: the agent logs in to the token
//! with its own PIN source).

use std::collections::{BTreeSet, HashMap, VecDeque};

use cryptoki_sys::*;

use crate::digest::Hasher;
use crate::rv::Error;
use crate::sign::SignOp;

/// One session of a program.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) slot: CK_SLOT_ID,
    read_write: bool,
    /// The handles a `C_FindObjects` has still to give.
    pub(crate) find: Option<VecDeque<CK_OBJECT_HANDLE>>,
    pub(crate) sign: Option<SignOp>,
    pub(crate) digest: Option<Hasher>,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: HashMap<CK_SESSION_HANDLE, Session>,
    last: CK_SESSION_HANDLE,
    /// Slots a program logged in to (PKCS#11 login state is per token
    /// for the whole application).
    logged_in: BTreeSet<CK_SLOT_ID>,
}

impl Sessions {
    /// Opens a session on `slot` (which must hold a token); handles are
    /// never reused while the module is loaded.
    pub(crate) fn open(
        &mut self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
    ) -> Result<CK_SESSION_HANDLE, Error> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        self.last += 1;
        self.open.insert(
            self.last,
            Session {
                slot,
                read_write: flags & CKF_RW_SESSION != 0,
                find: None,
                sign: None,
                digest: None,
            },
        );
        Ok(self.last)
    }

    pub(crate) fn close(&mut self, handle: CK_SESSION_HANDLE) -> Result<(), Error> {
        let session = self
            .open
            .remove(&handle)
            .ok_or(Error::SessionHandleInvalid)?;
        if !self.open.values().any(|s| s.slot == session.slot) {
            // The last session closed logs the program out.
            self.logged_in.remove(&session.slot);
        }
        Ok(())
    }

    pub(crate) fn close_slot(&mut self, slot: CK_SLOT_ID) {
        self.open.retain(|_, session| session.slot != slot);
        self.logged_in.remove(&slot);
    }

    pub(crate) fn get(&mut self, handle: CK_SESSION_HANDLE) -> Result<&mut Session, Error> {
        self.open
            .get_mut(&handle)
            .ok_or(Error::SessionHandleInvalid)
    }

    /// `C_Login`: any PIN, or none, for the user; it goes nowhere.
    pub(crate) fn login(
        &mut self,
        handle: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
    ) -> Result<(), Error> {
        let slot = self.get(handle)?.slot;
        match user {
            CKU_USER | CKU_CONTEXT_SPECIFIC => {
                self.logged_in.insert(slot);
                Ok(())
            }
            // There is no security officer to be.
            _ => Err(Error::UserTypeInvalid),
        }
    }

    pub(crate) fn logout(&mut self, handle: CK_SESSION_HANDLE) -> Result<(), Error> {
        let slot = self.get(handle)?.slot;
        self.logged_in.remove(&slot);
        Ok(())
    }

    pub(crate) fn info(&mut self, handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, Error> {
        let (slot, read_write) = {
            let session = self.get(handle)?;
            (session.slot, session.read_write)
        };
        let user = self.logged_in.contains(&slot);
        let state = match (read_write, user) {
            (false, false) => CKS_RO_PUBLIC_SESSION,
            (false, true) => CKS_RO_USER_FUNCTIONS,
            (true, false) => CKS_RW_PUBLIC_SESSION,
            (true, true) => CKS_RW_USER_FUNCTIONS,
        };
        let mut flags = CKF_SERIAL_SESSION;
        if read_write {
            flags |= CKF_RW_SESSION;
        }
        Ok(CK_SESSION_INFO {
            slotID: slot,
            state,
            flags,
            ulDeviceError: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_log_in_and_close() {
        let mut sessions = Sessions::default();
        let a = sessions.open(1, CKF_SERIAL_SESSION).expect("open");
        let b = sessions
            .open(1, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            .expect("open");
        assert_ne!(a, b);
        assert_eq!(sessions.info(a).expect("info").state, CKS_RO_PUBLIC_SESSION);
        sessions.login(a, CKU_USER).expect("any PIN");
        assert_eq!(sessions.info(b).expect("info").state, CKS_RW_USER_FUNCTIONS);
        assert!(matches!(
            sessions.login(a, CKU_SO),
            Err(Error::UserTypeInvalid)
        ));
        sessions.close(a).expect("close");
        assert!(matches!(sessions.get(a), Err(Error::SessionHandleInvalid)));
        sessions.close_slot(1);
        assert!(matches!(sessions.info(b), Err(Error::SessionHandleInvalid)));
        let c = sessions.open(1, CKF_SERIAL_SESSION).expect("open");
        assert!(c > b, "handles are not reused");
        assert_eq!(sessions.info(c).expect("info").state, CKS_RO_PUBLIC_SESSION);
        assert!(matches!(
            sessions.open(1, 0),
            Err(Error::SessionParallelNotSupported)
        ));
    }
}
