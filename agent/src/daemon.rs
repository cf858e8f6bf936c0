//! The running agent: its shared state and how it starts and stops.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_proto::{Event, EventKind, ModuleError, Token};
use tokio::sync::{broadcast, RwLock};

use crate::audit::Audit;
use crate::events::Events;
use crate::hotplug::{self, Change, Health, WatchOptions};
use crate::pin::{PinSource, Pinentry};
use crate::purpose::Purposes;
use crate::select::selector::Selector;
use crate::server::{self, SocketError};
use crate::store::{ChainCert, Store};
use crate::token::{self, Module, Tokens};

/// What every connection shares.
#[derive(Debug)]
pub struct State {
    /// The identity store.
    pub store: RwLock<Store>,
    /// The loaded modules, their sessions and logins.
    pub tokens: Arc<Tokens>,
    /// The modules loaded, by path.
    pub modules: Vec<String>,
    /// The modules that could not be loaded or scanned.
    pub module_errors: Vec<ModuleError>,
    /// The socket path.
    pub socket: PathBuf,
    /// When the agent started.
    pub started: Instant,
    /// Client-certificate selection: policy, remembered choices, chooser.
    pub selector: Selector,
    /// Whether each module answers.
    pub health: Health,
    /// The token operations in progress, to answer their clients when
    /// their module stops answering.
    pub rescue: crate::server::rescue::Rescue,
    /// What each identity's key may sign.
    pub purposes: Purposes,
    /// Other users allowed to connect.
    pub allowed_uids: Vec<u32>,
    /// The audit trail.
    pub audit: Audit,
    /// Where what happens is announced to `watch` clients.
    pub events: Events,
    /// The pinentry that asks the person to allow a signature, for
    /// identities that need confirmation.
    pub confirm_with: Option<Pinentry>,
    /// When each token last signed, for the idle logout.
    pub last_use: std::sync::Mutex<HashMap<Token, Instant>>,
}

/// How to run the daemon.
#[derive(Debug)]
pub struct Options {
    /// The socket to listen on.
    pub socket: PathBuf,
    /// The modules to load; empty means the ones registered with p11-kit.
    pub modules: Vec<PathBuf>,
    /// Where PINs come from.
    pub pins: Arc<dyn PinSource>,
    /// CA certificates for chains, from the configured CA folder.
    pub ca_folder: Vec<Arc<ChainCert>>,
    /// Selection policy, memory and chooser.
    pub selector: Selector,
    /// How tokens are watched for insertion and removal.
    pub watch: WatchOptions,
    /// What each identity's key may sign.
    pub purposes: Purposes,
    /// Other users allowed to connect.
    pub allowed_uids: Vec<u32>,
    /// The audit trail.
    pub audit: Audit,
    /// Who confirms signatures.
    pub confirm_with: Option<Pinentry>,
    /// Log out of a token after this long without a signature.
    pub login_idle_timeout: Option<Duration>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// `p11agent x.y.z`, as the agent introduces itself.
pub fn agent_name() -> String {
    format!("p11agent {}", env!("CARGO_PKG_VERSION"))
}

/// Loads the modules, fills the store, then serves the socket until
/// SIGINT or SIGTERM.
///
/// The socket appears only once every token has been scanned, so a
/// client that can connect sees the complete store.
pub async fn run(mut options: Options) -> Result<(), DaemonError> {
    let modules = if options.modules.is_empty() {
        let found = token::default_modules();
        tracing::info!(
            count = found.len(),
            "using the modules registered with p11-kit"
        );
        found
    } else {
        options.modules.clone()
    };

    let started = Instant::now();
    let (mut store, loaded, module_errors) = load_all(modules, options.watch.deadline).await;
    store.set_ca_folder(std::mem::take(&mut options.ca_folder));
    let paths = loaded
        .iter()
        .map(|m| m.path().display().to_string())
        .collect();
    let tokens = Arc::new(Tokens::new(loaded, options.pins.clone()));
    tracing::info!(
        tokens = store.token_count(),
        identities = store.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store ready"
    );

    let socket = server::bind(&options.socket)?;
    tracing::info!(socket = %socket.path().display(), "listening");
    let (stop_watchers, _) = broadcast::channel(1);
    let health = Health::new(
        (0..tokens.module_count()).filter_map(|i| tokens.module_name(i).map(str::to_owned)),
    );
    let state = Arc::new(State {
        store: RwLock::new(store),
        tokens,
        modules: paths,
        module_errors,
        socket: options.socket.clone(),
        started,
        selector: options.selector,
        health,
        rescue: Default::default(),
        events: Events::new(),
        purposes: options.purposes,
        allowed_uids: options.allowed_uids,
        audit: options.audit,
        confirm_with: options.confirm_with,
        last_use: std::sync::Mutex::new(HashMap::new()),
    });
    if let Some(idle) = options.login_idle_timeout {
        tokio::spawn(idle_logout(state.clone(), idle, stop_watchers.subscribe()));
    }
    for index in 0..state.tokens.module_count() {
        tokio::spawn(hotplug::watch_module(
            state.clone(),
            index,
            options.watch,
            announce,
            stop_watchers.subscribe(),
        ));
    }
    let shutdown = shutdown_signal().map_err(DaemonError::Signals)?;
    server::serve(socket, state, shutdown).await;
    let _ = stop_watchers.send(());
    tracing::info!("stopped");
    Ok(())
}

/// Loads and scans every module, each on its own blocking thread so that
/// a slow module does not hold up the others.
///
/// A module that has not answered within `deadline` is reported and left
/// out, so one hung module cannot keep the agent from starting.
async fn load_all(
    paths: Vec<PathBuf>,
    deadline: Duration,
) -> (Store, Vec<Module>, Vec<ModuleError>) {
    let scans = paths.into_iter().map(|path| {
        let task_path = path.clone();
        let task = tokio::task::spawn_blocking(move || {
            let result =
                Module::load(&task_path).and_then(|module| module.scan().map(|t| (module, t)));
            (task_path, result)
        });
        (path, task)
    });
    let mut store = Store::new();
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let scans: Vec<_> = scans.collect();
    let until = tokio::time::Instant::now() + deadline;
    for (path, scan) in scans {
        let (path, result) = match tokio::time::timeout_at(until, scan).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::error!(module = %path.display(), error = %e, "module scan panicked");
                continue;
            }
            Err(_) => {
                let error = format!(
                    "no answer within {} ms while loading; left out",
                    deadline.as_millis()
                );
                tracing::warn!(module = %path.display(), %error, "module unusable");
                errors.push(ModuleError {
                    module: path.display().to_string(),
                    error,
                });
                continue;
            }
        };
        let module = path.display().to_string();
        match result {
            Ok((loaded_module, tokens)) => {
                tracing::info!(module, tokens = tokens.len(), "module loaded");
                for found in tokens {
                    store.insert_token(found);
                }
                loaded.push(loaded_module);
            }
            Err(e) => {
                tracing::warn!(module, error = %e, "module unusable");
                errors.push(ModuleError {
                    module,
                    error: e.to_string(),
                });
            }
        }
    }
    (store, loaded, errors)
}

fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

/// Announces a change the watchers saw to `watch` clients.
fn announce(state: &State, change: Change) {
    let event = match change {
        Change::TokenInserted(token) => Event::now(EventKind::TokenInserted).token(token),
        Change::TokenRemoved(token) => Event::now(EventKind::TokenRemoved).token(token),
        Change::IdentityAdded { token, id, subject } => Event::now(EventKind::IdentityAdded)
            .token(token)
            .identity(id, subject),
        Change::IdentityRemoved { token, id, subject } => Event::now(EventKind::IdentityRemoved)
            .token(token)
            .identity(id, subject),
        Change::ModuleUnavailable { module, detail } => {
            Event::now(EventKind::ModuleUnavailable).detail(format!("{module}: {detail}"))
        }
        Change::ModuleAvailable { module } => Event::now(EventKind::ModuleAvailable).detail(module),
    };
    state.events.emit(event);
}

/// Logs out of tokens that have not signed for `idle` (as `ssh-add -t`):
/// a card left in a reader does not stay unlocked forever.
async fn idle_logout(state: Arc<State>, idle: Duration, mut stop: broadcast::Receiver<()>) {
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.recv() => return,
        }
        let expired: Vec<Token> = {
            let mut last_use = state
                .last_use
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        for token in expired {
            let tokens = state.tokens.clone();
            let target = token.clone();
            let logged_out = tokio::task::spawn_blocking(move || tokens.logout(&target)).await;
            if matches!(logged_out, Ok(Ok(true))) {
                tracing::info!(token = %token.label, idle_secs = idle.as_secs(), "logged out after idle time");
                let me = crate::audit::Peer {
                    uid: nix::unistd::getuid().as_raw(),
                    pid: i32::try_from(std::process::id()).ok(),
                    exe: None,
                };
                state.audit.record(
                    crate::audit::Record::new(crate::audit::Action::Logout, &me, "ok")
                        .token(&token.label)
                        .detail(format!("idle for {} s", idle.as_secs())),
                );
                state.events.emit(
                    Event::now(EventKind::Logout)
                        .token(token)
                        .detail(format!("idle for {} s", idle.as_secs())),
                );
            }
        }
    }
}
