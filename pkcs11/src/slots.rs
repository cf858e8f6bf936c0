//! One slot per token of the agent, with an id that stays the token's
//! while the module is loaded, and what `C_GetSlotInfo`,
//! `C_GetTokenInfo` and `C_GetMechanismList` say of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cryptoki_sys::*;
use p11agent_client::proto::Token;

use crate::mechanisms;
use crate::objects::IdentityObjects;
use crate::rv::Error;

/// What tells tokens apart: the same label on two modules, or two
/// tokens of one module, are different slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    module: String,
    serial: String,
    label: String,
}

impl From<&Token> for TokenKey {
    fn from(token: &Token) -> Self {
        TokenKey {
            module: token.module.clone(),
            serial: token.serial.clone(),
            label: token.label.clone(),
        }
    }
}

/// A slot and the token in it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) token: Token,
    pub(crate) present: bool,
    pub(crate) identities: Vec<Arc<IdentityObjects>>,
}

impl Slot {
    /// The mechanisms the token's keys offer, and the digests.
    pub(crate) fn mechanisms(&self) -> Vec<CK_MECHANISM_TYPE> {
        let mut all: BTreeSet<CK_MECHANISM_TYPE> = mechanisms::DIGESTS.into_iter().collect();
        for identity in &self.identities {
            all.extend(mechanisms::for_key(&identity.key));
        }
        all.into_iter().collect()
    }

    pub(crate) fn mechanism_info(&self, mechanism: CK_MECHANISM_TYPE) -> Option<CK_MECHANISM_INFO> {
        mechanisms::info(mechanism, self.identities.iter().map(|i| &*i.key))
    }

    /// Identity ids, to tell whether the token's contents changed.
    fn ids(&self) -> Vec<&str> {
        self.identities.iter().map(|i| i.key.id.as_str()).collect()
    }

    pub(crate) fn info(&self) -> CK_SLOT_INFO {
        let mut flags = CKF_REMOVABLE_DEVICE;
        if self.present {
            flags |= CKF_TOKEN_PRESENT;
        }
        CK_SLOT_INFO {
            slotDescription: padded(&format!("p11agent: {}", self.token.label)),
            manufacturerID: padded("p11agent"),
            flags,
            hardwareVersion: version(),
            firmwareVersion: version(),
        }
    }

    pub(crate) fn token_info(&self) -> CK_TOKEN_INFO {
        CK_TOKEN_INFO {
            label: padded(&self.token.label),
            manufacturerID: padded(&self.token.manufacturer),
            model: padded(&self.token.model),
            serialNumber: padded(&self.token.serial),
            // No CKF_LOGIN_REQUIRED: the agent logs in with its own PIN
            // source, a program has nothing to do.
            flags: CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxPinLen: 255,
            ulMinPinLen: 0,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: version(),
            firmwareVersion: version(),
            utcTime: [b' '; 16],
        }
    }
}

fn version() -> CK_VERSION {
    CK_VERSION { major: 0, minor: 1 }
}

/// `text` blank-padded (or cut, at a character boundary) to `N` bytes,
/// as PKCS#11's fixed-size strings are.
pub(crate) fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// Every slot the module has shown, by id.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    ids: HashMap<TokenKey, CK_SLOT_ID>,
    slots: BTreeMap<CK_SLOT_ID, Slot>,
}

impl Slots {
    /// Replaces the contents of every slot: `tokens` are the agent's,
    /// each with its presence and identities; tokens it no longer names
    /// keep their slot, without a token. Returns the slots whose token
    /// came, went or changed.
    pub(crate) fn update(&mut self, tokens: Vec<Slot>) -> BTreeSet<CK_SLOT_ID> {
        let mut changed = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for slot in tokens {
            let id = self.id_for(&slot.token);
            seen.insert(id);
            let differs = self
                .slots
                .get(&id)
                .is_none_or(|old| old.present != slot.present || old.ids() != slot.ids());
            if differs {
                changed.insert(id);
            }
            self.slots.insert(id, slot);
        }
        for (id, slot) in &mut self.slots {
            if !seen.contains(id) && (slot.present || !slot.identities.is_empty()) {
                slot.present = false;
                slot.identities.clear();
                changed.insert(*id);
            }
        }
        changed
    }

    fn id_for(&mut self, token: &Token) -> CK_SLOT_ID {
        let next = self.ids.len() as CK_SLOT_ID + 1;
        *self.ids.entry(TokenKey::from(token)).or_insert(next)
    }

    /// The slot ids, in order; only those with a token when
    /// `token_present`.
    pub(crate) fn list(&self, token_present: bool) -> Vec<CK_SLOT_ID> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.present || !token_present)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn get(&self, id: CK_SLOT_ID) -> Result<&Slot, Error> {
        self.slots.get(&id).ok_or(Error::SlotIdInvalid)
    }

    /// The slot, when it holds a token.
    pub(crate) fn with_token(&self, id: CK_SLOT_ID) -> Result<&Slot, Error> {
        let slot = self.get(id)?;
        if slot.present {
            Ok(slot)
        } else {
            Err(Error::TokenNotPresent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(label: &str, module: &str) -> Token {
        Token {
            label: label.into(),
            serial: "1".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 0,
            module: module.into(),
        }
    }

    fn slot(label: &str, present: bool) -> Slot {
        Slot {
            token: token(label, "/a.so"),
            present,
            identities: Vec::new(),
        }
    }

    #[test]
    fn slot_ids_stay_with_their_token() {
        let mut slots = Slots::default();
        let changed = slots.update(vec![slot("a", true), slot("b", true)]);
        assert_eq!(changed.len(), 2);
        assert_eq!(slots.list(true), [1, 2]);
        // "a" removed: its slot stays, without a token.
        let changed = slots.update(vec![slot("a", false), slot("b", true)]);
        assert_eq!(changed.into_iter().collect::<Vec<_>>(), [1]);
        assert_eq!(slots.list(true), [2]);
        assert_eq!(slots.list(false), [1, 2]);
        assert!(matches!(slots.with_token(1), Err(Error::TokenNotPresent)));
        assert!(matches!(slots.get(9), Err(Error::SlotIdInvalid)));
        // A new token gets a new id; "a" back gets its old one.
        slots.update(vec![slot("c", true), slot("a", true)]);
        assert_eq!(slots.list(true), [1, 3]);
        // Nothing listed (the agent went away): no token anywhere.
        let changed = slots.update(Vec::new());
        assert_eq!(changed.len(), 2);
        assert!(slots.list(true).is_empty());
    }

    #[test]
    fn the_same_label_on_another_module_is_another_slot() {
        let mut slots = Slots::default();
        let mut other = slot("a", true);
        other.token = token("a", "/b.so");
        slots.update(vec![slot("a", true), other]);
        assert_eq!(slots.list(true).len(), 2);
    }

    #[test]
    fn strings_are_blank_padded_and_cut_at_characters() {
        assert_eq!(&padded::<8>("ab"), b"ab      ");
        assert_eq!(&padded::<4>("abcdef"), b"abcd");
        // "é" is two bytes: cutting in its middle would leave bad UTF-8.
        assert_eq!(&padded::<4>("abcé"), b"abc ");
    }
}
