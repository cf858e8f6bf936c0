//! Logging in and out of tokens: on request, and after idle time (as
//! `ssh-add -t`). A logout is audited and announced in one place,
//! whoever asked for it.

use std::time::Duration;

use p11agent_proto::{Event, EventKind, Token};
use secrecy::SecretString;

use super::agent::{Agent, Caller};
use super::audit::{Action, Peer, Record};
use super::error::ServiceError;
use crate::token::SignError;

impl Agent {
    /// Logs in to the named token (or the only one) with `pin`, or with
    /// the agent's PIN source when `pin` is `None`; then scans the token
    /// again, since its private keys may only be visible now.
    ///
    /// Blocks: the PIN source may ask a person.
    pub(crate) fn login(
        &self,
        caller: &Caller<'_>,
        token: Option<&str>,
        pin: Option<SecretString>,
    ) -> Result<Token, ServiceError> {
        let token = self.resolve_token(token)?;
        let result = self.on_token(caller, &token, |tokens| tokens.login(&token, pin));
        let inner = &self.inner;
        match &result {
            Ok(()) => {
                inner
                    .audit
                    .record(Record::new(Action::Login, caller.peer, "ok").token(&token.label));
                inner
                    .events
                    .emit(Event::now(EventKind::Login).token(token.clone()));
            }
            Err(e) => inner.audit.record(
                Record::new(Action::Login, caller.peer, (inner.error_code)(e).as_str())
                    .token(&token.label)
                    .detail(e.to_string()),
            ),
        }
        result?;
        self.rescan(caller, &token);
        Ok(token)
    }

    /// Scans `token` again after a login: private keys are usually
    /// `CKA_PRIVATE`, so a token without public-key objects showed its
    /// certificates without keys until now.
    fn rescan(&self, caller: &Caller<'_>, token: &Token) {
        let scanned = self.on_token(caller, token, |tokens| {
            tokens.rescan(token).map_err(|e| SignError::TokenAbsent {
                token: token.label.clone(),
                detail: e.to_string(),
            })
        });
        match scanned {
            Ok(found) if found.token.serial == token.serial => {
                self.store_scan(found);
                tracing::debug!(token = %token.label, "rescanned after login");
            }
            Ok(_) => tracing::info!(token = %token.label, "another token is in the slot now"),
            Err(_) => tracing::info!(token = %token.label, "rescan after login failed"),
        }
    }

    /// Logs out of the named token, or of every present token whose
    /// module answers when `token` is `None` (a hung module must not hold
    /// up logging out of the others). Returns the tokens that were logged
    /// in. A failure on one token ends the logouts, but those already
    /// done are audited and announced all the same.
    pub(crate) fn logout(
        &self,
        caller: &Caller<'_>,
        token: Option<&str>,
    ) -> Result<Vec<Token>, ServiceError> {
        let targets = match token {
            Some(_) => vec![self.resolve_token(token)?],
            None => self
                .inner
                .store
                .read()
                .present_tokens(None)
                .into_iter()
                .filter(|t| self.module_problem(t).is_none())
                .collect(),
        };
        let mut logged_out = Vec::new();
        for token in targets {
            match self.inner.tokens.logout(&token) {
                Ok(true) => {
                    self.logged_out(caller.peer, &token, None);
                    logged_out.push(token);
                }
                Ok(false) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(logged_out)
    }

    /// Logs out of the tokens that have not signed for the idle timeout;
    /// called periodically by the idle-logout task.
    pub(super) fn log_out_idle(&self, idle: Duration) {
        let expired: Vec<Token> = {
            let mut last_use = self.inner.last_use.lock();
            let expired: Vec<Token> = last_use
                .iter()
                .filter(|(_, used)| used.elapsed() >= idle)
                .map(|(token, _)| token.clone())
                .collect();
            for token in &expired {
                last_use.remove(token);
            }
            expired
        };
        let me = Peer::agent();
        for token in expired {
            if matches!(self.inner.tokens.logout(&token), Ok(true)) {
                tracing::info!(token = %token.label, idle_secs = idle.as_secs(), "logged out after idle time");
                self.logged_out(&me, &token, Some(format!("idle for {} s", idle.as_secs())));
            }
        }
    }

    /// Audits and announces a logout.
    fn logged_out(&self, peer: &Peer, token: &Token, why: Option<String>) {
        let mut record = Record::new(Action::Logout, peer, "ok").token(&token.label);
        let mut event = Event::now(EventKind::Logout).token(token.clone());
        if let Some(why) = why {
            record = record.detail(why.clone());
            event = event.detail(why);
        }
        self.inner.audit.record(record);
        self.inner.events.emit(event);
    }
}
