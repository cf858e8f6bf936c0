//! What the module shows, from the agent's latest listing: slots with
//! their tokens, and the objects of each identity, built once per
//! identity and kept while it stays.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SLOT_ID};
use p11agent_client::proto::{Identity, KeyType, TokenStatus};

use crate::agent::Listing;
use crate::objects::{base_of, Handles, IdentityObjects};
use crate::slots::{Slot, Slots, TokenKey};

#[derive(Debug, Default)]
pub(crate) struct Cache {
    slots: Slots,
    handles: Handles,
    /// The objects shown, by base handle, with their slot.
    objects: HashMap<CK_OBJECT_HANDLE, (CK_SLOT_ID, Arc<IdentityObjects>)>,
    /// Whether Ed25519 identities are shown (see the README).
    ed25519: bool,
}

impl Cache {
    pub(crate) fn new(ed25519: bool) -> Self {
        Cache {
            ed25519,
            ..Cache::default()
        }
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Whether `identity` is shown: present, with a key the agent can
    /// sign with.
    fn shows(&self, identity: &Identity) -> bool {
        let signs = match identity.key_type {
            KeyType::Rsa | KeyType::Ec => true,
            KeyType::Ed25519 => self.ed25519,
            _ => false,
        };
        identity.present && identity.has_private_key && signs
    }

    /// Whether the listing must bring `identity`'s certificate: it is
    /// shown and not cached yet.
    pub(crate) fn needs_certificate(&self, identity: &Identity) -> bool {
        self.shows(identity) && self.find_identity(&identity.id).is_none()
    }

    fn find_identity(&self, id: &str) -> Option<&Arc<IdentityObjects>> {
        self.objects
            .values()
            .map(|(_, objects)| objects)
            .find(|objects| objects.key.id == id)
    }

    /// Shows `listing`; returns the slots whose token came, went or
    /// changed. An identity whose certificate does not parse is left
    /// out (the agent parsed it, so this does not happen).
    pub(crate) fn apply(&mut self, mut listing: Listing) -> BTreeSet<CK_SLOT_ID> {
        let mut by_token: HashMap<TokenKey, Vec<Arc<IdentityObjects>>> = HashMap::new();
        let shown: Vec<&Identity> = listing
            .identities
            .iter()
            .filter(|i| self.shows(i))
            .collect();
        for identity in shown {
            let objects = match self.find_identity(&identity.id) {
                Some(objects) => Arc::clone(objects),
                None => {
                    let Some(shown) = listing.certificates.remove(&identity.id) else {
                        continue;
                    };
                    let base = self.handles.base_for(&identity.id);
                    match IdentityObjects::build(identity, shown.certificate, &shown.chain, base) {
                        Ok(objects) => Arc::new(objects),
                        Err(_) => continue,
                    }
                }
            };
            by_token
                .entry(TokenKey::from(&identity.token))
                .or_default()
                .push(objects);
        }
        let slots: Vec<Slot> = listing
            .tokens
            .into_iter()
            .map(|summary| {
                let present = summary.status == TokenStatus::Present;
                let identities = match present {
                    true => by_token
                        .remove(&TokenKey::from(&summary.token))
                        .unwrap_or_default(),
                    false => Vec::new(),
                };
                Slot {
                    token: summary.token,
                    present,
                    identities,
                }
            })
            .collect();
        let changed = self.slots.update(slots);
        self.objects = self
            .slots
            .list(true)
            .into_iter()
            .filter_map(|id| Some((id, self.slots.get(id).ok()?)))
            .flat_map(|(id, slot)| {
                slot.identities
                    .iter()
                    .map(move |o| (o.base, (id, Arc::clone(o))))
            })
            .collect();
        changed
    }

    /// The identity whose object `handle` is, on `slot`.
    pub(crate) fn object(
        &self,
        slot: CK_SLOT_ID,
        handle: CK_OBJECT_HANDLE,
    ) -> Option<&Arc<IdentityObjects>> {
        match self.objects.get(&base_of(handle)) {
            Some((on, objects)) if *on == slot && objects.attributes(handle).is_some() => {
                Some(objects)
            }
            _ => None,
        }
    }
}
