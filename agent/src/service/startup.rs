//! Starting the service: loading the modules and filling the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_proto::ModuleError;
use parking_lot::{Mutex, RwLock};

use super::agent::{Agent, AgentOptions, Inner, Isolation};
use super::{events, health, in_flight};
use crate::store::Store;
use crate::token::{Loaded, Tokens};

impl Agent {
    /// Loads the modules, scans their tokens into the store, and returns
    /// the service ready to answer: a request that reaches it sees the
    /// complete store.
    pub(crate) async fn start(mut options: AgentOptions) -> Agent {
        let paths = std::mem::take(&mut options.modules);
        let started = Instant::now();
        let (mut store, loaded, module_errors) =
            load_all(paths, &options.isolation, options.watch.deadline).await;
        store.set_ca_folder(std::mem::take(&mut options.ca_folder));
        crate::memory::release_free();
        let modules: Vec<String> = loaded
            .iter()
            .map(|m| m.path().display().to_string())
            .collect();
        tracing::info!(
            tokens = store.token_count(),
            identities = store.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store ready"
        );
        Agent {
            inner: Arc::new(Inner {
                store: RwLock::new(store),
                tokens: Arc::new(Tokens::new(loaded, options.pins)),
                health: health::Health::new(modules.iter().cloned()),
                modules,
                module_errors,
                started,
                selector: options.selector,
                in_flight: in_flight::InFlight::default(),
                purposes: options.purposes,
                digest_policy: options.digest_policy,
                audit: options.audit,
                events: events::Events::new(),
                confirm_with: options.confirm_with,
                last_use: Mutex::new(HashMap::new()),
                watch: options.watch,
                login_idle_timeout: options.login_idle_timeout,
                error_code: options.error_code,
            }),
        }
    }
}

/// Loads and scans every module, each on its own blocking thread so that
/// a slow module does not hold up the others.
///
/// A module that has not answered within `deadline` is reported and left
/// out, so one hung module cannot keep the agent from starting.
async fn load_all(
    paths: Vec<PathBuf>,
    isolation: &Isolation,
    deadline: Duration,
) -> (Store, Vec<Loaded>, Vec<ModuleError>) {
    let scans: Vec<_> = paths
        .into_iter()
        .map(|path| {
            let task_path = path.clone();
            let isolate = isolation.of(&path);
            let task =
                tokio::task::spawn_blocking(move || Loaded::load_and_scan(&task_path, isolate));
            (path, task)
        })
        .collect();
    let mut store = Store::new();
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let until = tokio::time::Instant::now() + deadline;
    for (path, scan) in scans {
        let module = path.display().to_string();
        let result = match tokio::time::timeout_at(until, scan).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                tracing::error!(module, error = %e, "module scan panicked");
                continue;
            }
            Err(_) => {
                let error = format!(
                    "no answer within {} ms while loading; left out",
                    deadline.as_millis()
                );
                tracing::warn!(module, %error, "module unusable");
                errors.push(ModuleError { module, error });
                continue;
            }
        };
        match result {
            Ok((loaded_module, tokens)) => {
                let isolated = matches!(loaded_module, Loaded::Isolated(_));
                tracing::info!(module, tokens = tokens.len(), isolated, "module loaded");
                for found in tokens {
                    store.insert_token(found);
                }
                loaded.push(loaded_module);
            }
            Err(e) => {
                // With its causes: "cannot load ...: libloading error
                // (...: cannot open shared object file: No such file or
                // directory)", "... C_Initialize ...: CKR_...".
                let error = crate::token::isolated::wire::with_causes(&e);
                tracing::warn!(module, %error, "module unusable");
                errors.push(ModuleError { module, error });
            }
        }
    }
    (store, loaded, errors)
}
