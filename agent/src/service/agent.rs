//! The service's handle and its private state, with the queries that
//! only read the store, and what every operation shares: the check of a
//! token's module before calling it, and naming a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_proto::{ErrorCode, Filter, Identity, ModuleError, Token, TokenStatus, TokenSummary};
use parking_lot::{Mutex, RwLock};

use super::audit::{self, Audit, Peer};
use super::digest_policy::DigestPolicy;
use super::error::ServiceError;
use super::events::{self, Subscription};
use super::health::Health;
use super::in_flight::{InFlight, Waiter};
use super::purpose::Purposes;
use crate::pin::{PinSource, Pinentry};
use crate::select::selector::Selector;
use crate::store::{ChainCert, Store};
use crate::token::Tokens;

/// An identity as [`Agent::show`] gives it.
#[derive(Debug)]
pub(crate) struct ShownIdentity {
    pub identity: Identity,
    /// The certificate's DER.
    pub certificate: Vec<u8>,
    /// The CA certificates above it, nearest first, DER.
    pub chain: Vec<Vec<u8>>,
}

/// What the service is made of, resolved from flags and configuration.
#[derive(Debug)]
pub(crate) struct AgentOptions {
    /// The modules to load.
    pub(crate) modules: Vec<PathBuf>,
    /// Which of them to load in helper processes.
    pub(crate) isolation: Isolation,
    /// Where PINs come from.
    pub(crate) pins: Arc<dyn PinSource>,
    /// CA certificates for chains, from the configured CA folder.
    pub(crate) ca_folder: Vec<Arc<ChainCert>>,
    /// Selection policy, memory and chooser.
    pub(crate) selector: Selector,
    /// How tokens are watched for insertion and removal.
    pub(crate) watch: WatchOptions,
    /// What each identity's key may sign.
    pub(crate) purposes: Purposes,
    /// Which programs may have digests signed, with which identities.
    pub(crate) digest_policy: DigestPolicy,
    /// The audit trail.
    pub(crate) audit: Audit,
    /// Who confirms signatures.
    pub(crate) confirm_with: Option<Pinentry>,
    /// Log out of a token after this long without a signature.
    pub(crate) login_idle_timeout: Option<Duration>,
    /// The protocol's name for each failure, which the audit trail
    /// records as a request's result. The transport defines it (the
    /// mapping to wire codes lives in the server); the composition root
    /// passes it in.
    pub(crate) error_code: fn(&ServiceError) -> ErrorCode,
}

#[cfg(test)]
impl AgentOptions {
    /// An agent with no module, no PIN source and default policy.
    pub(crate) fn for_tests() -> AgentOptions {
        use crate::select::decide::Policy;
        use crate::select::decisions::Decisions;
        AgentOptions {
            modules: Vec::new(),
            // The test binary cannot be a module helper.
            isolation: Isolation {
                default: false,
                per_module: std::collections::BTreeMap::new(),
            },
            pins: Arc::new(crate::pin::NoPin),
            ca_folder: Vec::new(),
            selector: Selector::new(Policy::default(), Decisions::in_memory(), None),
            watch: WatchOptions::default(),
            purposes: Purposes::default(),
            digest_policy: DigestPolicy::default(),
            audit: Audit::log_only(),
            confirm_with: None,
            login_idle_timeout: None,
            error_code: |_| ErrorCode::Internal,
        }
    }
}

/// Which modules run in helper processes (see `token::isolated`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Isolation {
    /// For modules not named in `per_module`.
    pub(crate) default: bool,
    /// By path, as configured.
    pub(crate) per_module: std::collections::BTreeMap<PathBuf, bool>,
}

impl Isolation {
    /// Whether the module at `path` runs in a helper process.
    pub(crate) fn of(&self, path: &std::path::Path) -> bool {
        self.per_module.get(path).copied().unwrap_or(self.default)
    }
}

/// How the watchers poll.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchOptions {
    /// Time between polls of a module.
    pub(crate) interval: Duration,
    /// How long one poll (or one token scan) may take before the module
    /// is marked unavailable.
    pub(crate) deadline: Duration,
    /// Keep the identities of removed tokens listed, as absent.
    pub(crate) remember_absent: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
            remember_absent: true,
        }
    }
}

/// Who asks: for the audit trail, confirmation prompts, and answering
/// the caller when its token call hangs.
pub(crate) struct Caller<'a> {
    /// The client process.
    pub(crate) peer: &'a Peer,
    /// How to answer it while a token call it waits for hangs; `None`
    /// when it cannot be answered from outside (it then waits).
    pub(crate) waiter: Option<Arc<dyn Waiter>>,
}

/// The agent service; clones share one agent.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) store: RwLock<Store>,
    pub(super) tokens: Arc<Tokens>,
    /// The modules loaded, by path.
    pub(super) modules: Vec<String>,
    /// The modules that could not be loaded or scanned at start.
    pub(super) module_errors: Vec<ModuleError>,
    pub(super) started: Instant,
    pub(super) selector: Selector,
    pub(super) health: Health,
    pub(super) in_flight: InFlight,
    pub(super) purposes: Purposes,
    pub(super) digest_policy: DigestPolicy,
    pub(super) audit: Audit,
    pub(super) events: events::Events,
    pub(super) confirm_with: Option<Pinentry>,
    /// When each token last signed, for the idle logout.
    pub(super) last_use: Mutex<HashMap<Token, Instant>>,
    pub(super) watch: WatchOptions,
    pub(super) login_idle_timeout: Option<Duration>,
    pub(super) error_code: fn(&ServiceError) -> ErrorCode,
}

/// The agent's own state, for `status`.
#[derive(Debug)]
pub(crate) struct AgentStatus {
    /// The modules loaded, by path.
    pub(crate) modules: Vec<String>,
    /// Those of them loaded in a helper process.
    pub(crate) isolated_modules: Vec<String>,
    /// Modules that failed to load, then those unavailable now.
    pub(crate) module_errors: Vec<ModuleError>,
    /// Tokens stored, present or not.
    pub(crate) tokens: usize,
    /// Identities stored.
    pub(crate) identities: usize,
    /// Time since start.
    pub(crate) uptime: Duration,
}

impl Agent {
    /// The running agent's state.
    pub(crate) fn status(&self) -> AgentStatus {
        let inner = &self.inner;
        let store = inner.store.read();
        let unavailable = inner.modules.iter().filter_map(|module| {
            inner.health.problem(module).map(|problem| ModuleError {
                module: module.clone(),
                error: format!("unavailable: {problem}"),
            })
        });
        let tokens = &inner.tokens;
        AgentStatus {
            modules: inner.modules.clone(),
            isolated_modules: (0..tokens.module_count())
                .filter(|&index| tokens.is_isolated(index))
                .filter_map(|index| tokens.module_name(index).map(str::to_owned))
                .collect(),
            module_errors: inner
                .module_errors
                .iter()
                .cloned()
                .chain(unavailable)
                .collect(),
            tokens: store.token_count(),
            identities: store.len(),
            uptime: inner.started.elapsed(),
        }
    }

    /// Every token stored; a present token whose module does not answer
    /// is `unavailable`.
    pub(crate) fn tokens(&self) -> Vec<TokenSummary> {
        let mut tokens = self.inner.store.read().tokens();
        for t in &mut tokens {
            if t.status == TokenStatus::Present && self.module_problem(&t.token).is_some() {
                t.status = TokenStatus::Unavailable;
            }
        }
        tokens
    }

    /// The identities matching `filter`, with their verdicts as of now.
    pub(crate) fn list(&self, filter: &Filter) -> Vec<Identity> {
        let now = time::OffsetDateTime::now_utc();
        self.inner.store.read().query(filter, now)
    }

    /// One identity, by id or unique prefix, with its certificate and
    /// the CA certificates above it.
    pub(crate) fn show(&self, id: &str) -> Result<ShownIdentity, ServiceError> {
        let now = time::OffsetDateTime::now_utc();
        let store = self.inner.store.read();
        let shown = store.get(id, now)?;
        Ok(ShownIdentity {
            identity: shown.identity,
            certificate: shown.der.to_vec(),
            chain: shown.chain.into_iter().map(<[u8]>::to_vec).collect(),
        })
    }

    /// A new watcher of the agent's events, from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        self.inner.events.subscribe()
    }

    /// Announces `event` as if the agent had seen it happen.
    #[cfg(test)]
    pub(crate) fn emit(&self, event: p11agent_proto::Event) {
        self.inner.events.emit(event);
    }

    /// Records a connection refused before any request.
    pub(crate) fn refused_connection(&self, peer: &Peer, detail: String) {
        self.inner
            .audit
            .record(audit::Record::new(audit::Action::Connect, peer, "refused").detail(detail));
    }

    /// Records a request that came on the extra socket (a remote
    /// shell's): the operation and its outcome (`ok` or the error code).
    pub(crate) fn remote_request(&self, peer: &Peer, op: &str, result: &str) {
        self.inner.audit.record(
            audit::Record::new(audit::Action::RemoteRequest, peer, result).detail(op.to_owned()),
        );
    }

    /// Why `token`'s module is unavailable, or `None` when it answers.
    pub(super) fn module_problem(&self, token: &Token) -> Option<String> {
        self.inner.health.problem(&token.module)
    }

    /// Runs a blocking `operation` on `token` for `caller`.
    ///
    /// Refuses at once when the token's module is unavailable. While the
    /// operation runs, the caller is registered as waiting on the module,
    /// so that when the module is declared unavailable meanwhile, the
    /// caller is answered at once (see `in_flight.rs`): a call into a hung
    /// module cannot be cancelled, but its caller need not wait for it.
    pub(super) fn on_token<T>(
        &self,
        caller: &Caller<'_>,
        token: &Token,
        operation: impl FnOnce(&Tokens) -> Result<T, crate::token::SignError>,
    ) -> Result<T, ServiceError> {
        if let Some(problem) = self.module_problem(token) {
            return Err(ServiceError::ModuleUnavailable {
                token: Box::new(token.clone()),
                problem,
            });
        }
        let registered = caller
            .waiter
            .clone()
            .map(|waiter| self.inner.in_flight.enter(token, waiter));
        let result = operation(&self.inner.tokens);
        drop(registered);
        if let Err(crate::token::SignError::ModuleCrashed { detail, .. }) = &result {
            // The module's helper died: its other requests in flight die
            // with it, and the watcher's next poll starts it again.
            if let Some(index) = self.inner.modules.iter().position(|m| *m == token.module) {
                self.module_unavailable(index, format!("it crashed: {detail}"));
            }
            return Err(ServiceError::ModuleUnavailable {
                token: Box::new(token.clone()),
                problem: format!("it crashed: {detail}; it is being restarted"),
            });
        }
        Ok(result?)
    }

    /// The token a request named by label or serial, or the only present
    /// token when it named none.
    pub(super) fn resolve_token(&self, name: Option<&str>) -> Result<Token, ServiceError> {
        let mut tokens: Vec<Token> = self
            .inner
            .store
            .read()
            .present_tokens(None)
            .into_iter()
            .filter(|t| name.is_none_or(|n| t.label == n || t.serial == n))
            .collect();
        match (tokens.len(), name) {
            (1, _) => Ok(tokens.remove(0)),
            (0, Some(name)) => Err(ServiceError::NoSuchToken(name.to_owned())),
            (0, None) => Err(ServiceError::NoToken),
            (count, _) => Err(ServiceError::SeveralTokens(count)),
        }
    }
}
