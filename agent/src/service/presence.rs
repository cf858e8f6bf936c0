//! Tokens arriving and leaving, and modules failing and recovering, as
//! the watchers (`tasks.rs`) and logins report them: the store is updated
//! and the change announced here, and only here.

use std::collections::BTreeSet;

use p11agent_proto::{Event, EventKind, Token};

use super::agent::Agent;
use super::error::ServiceError;
use crate::token::FoundToken;

impl Agent {
    /// Stores what a scan found on one token, replacing what was stored
    /// for it, and announces the difference: a token that was not
    /// present is announced as inserted, then every identity now stored
    /// for it that was not stored (present) before as added, every one
    /// gone as removed. The one writer of scans into the store, for the
    /// watchers and for the rescan after a login alike.
    pub(crate) fn store_scan(&self, found: FoundToken) {
        let token = found.token.clone();
        let (inserted, added, removed) = {
            let mut store = self.inner.store.write();
            let before = store.present_identities_of(&token);
            let inserted = before.is_none();
            let before = before.unwrap_or_default();
            store.insert_token(found);
            let after = store.identities_of(&token);
            let before_ids: BTreeSet<&str> = before.iter().map(|(id, _)| id.as_str()).collect();
            let after_ids: BTreeSet<&str> = after.iter().map(|(id, _)| id.as_str()).collect();
            let added: Vec<(String, String)> = after
                .iter()
                .filter(|(id, _)| !before_ids.contains(id.as_str()))
                .cloned()
                .collect();
            let removed: Vec<(String, String)> = before
                .iter()
                .filter(|(id, _)| !after_ids.contains(id.as_str()))
                .cloned()
                .collect();
            (inserted, added, removed)
        };
        let events = &self.inner.events;
        if inserted {
            tracing::info!(token = %token.label, serial = %token.serial, identities = added.len(), "token inserted");
            events.emit(Event::now(EventKind::TokenInserted).token(token.clone()));
        }
        for (id, subject) in removed {
            events.emit(
                Event::now(EventKind::IdentityRemoved)
                    .token(token.clone())
                    .identity(id, subject),
            );
        }
        for (id, subject) in added {
            events.emit(
                Event::now(EventKind::IdentityAdded)
                    .token(token.clone())
                    .identity(id, subject),
            );
        }
        // The scan's records and the identities replaced are freed now.
        crate::memory::release_free();
    }

    /// Takes a removed token out of use: its identities stay listed as
    /// absent (unless the agent forgets absent tokens), and its removal
    /// is announced. Returns nothing to do more: the caller drops the
    /// token's sessions and login (`Tokens::forget`), which may call into
    /// its module and so runs under the watcher's deadline.
    pub(crate) fn token_removed(&self, token: &Token) {
        let (identities, forgotten) = {
            let mut store = self.inner.store.write();
            let identities = store.identities_of(token);
            let forgotten = !self.inner.watch.remember_absent;
            if forgotten {
                store.remove_token(token);
            } else {
                store.mark_absent(token);
            }
            (identities, forgotten)
        };
        tracing::info!(token = %token.label, serial = %token.serial, "token removed");
        let events = &self.inner.events;
        for (id, subject) in identities {
            events.emit(
                Event::now(EventKind::IdentityRemoved)
                    .token(token.clone())
                    .identity(id, subject),
            );
        }
        events.emit(Event::now(EventKind::TokenRemoved).token(token.clone()));
        if forgotten {
            crate::memory::release_free();
        }
    }

    /// The present tokens of module `name`, as stored.
    pub(crate) fn present_tokens(&self, name: &str) -> Vec<Token> {
        self.inner.store.read().present_tokens(Some(name))
    }

    /// Records that module `index` failed or stopped answering: its
    /// tokens show as unavailable, requests for them are refused at once,
    /// and the clients waiting for a call into it are answered now.
    pub(crate) fn module_unavailable(&self, index: usize, detail: String) {
        let inner = &self.inner;
        let Some(name) = inner.tokens.module_name(index) else {
            return;
        };
        if !inner.health.set(index, Some(detail.clone())) {
            return;
        }
        tracing::warn!(module = %name, %detail, "module unavailable");
        inner
            .in_flight
            .give_up_all(name, |token| ServiceError::ModuleUnavailable {
                token: Box::new(token.clone()),
                problem: detail.clone(),
            });
        inner
            .events
            .emit(Event::now(EventKind::ModuleUnavailable).detail(format!("{name}: {detail}")));
    }

    /// Records that module `index` answers (again).
    pub(crate) fn module_available(&self, index: usize) {
        let inner = &self.inner;
        let Some(name) = inner.tokens.module_name(index) else {
            return;
        };
        if inner.health.set(index, None) {
            tracing::info!(module = %name, "module answers again");
            inner
                .events
                .emit(Event::now(EventKind::ModuleAvailable).detail(name.to_owned()));
        }
    }
}
