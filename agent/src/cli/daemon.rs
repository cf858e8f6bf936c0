use std::io::IsTerminal as _;
use std::path::PathBuf;

use super::error::CliError;
use crate::config::{Config, DaemonFlags, Settings};

/// Runs the daemon in the foreground until SIGINT or SIGTERM.
pub(super) fn run(socket: Option<PathBuf>, flags: DaemonFlags) -> Result<(), CliError> {
    let file = Config::load(flags.config.as_deref())?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(log_filter())
        .init();
    let settings = Settings::resolve(socket, flags, file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(crate::daemon::run(settings))?;
    Ok(())
}

/// Runs a module helper (see `token::isolated`) until its agent closes
/// the control socket, logging to stderr as the daemon does.
pub(super) fn run_module_helper(module: &std::path::Path) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(log_filter())
        .init();
    let span = tracing::info_span!("module_helper", pid = std::process::id());
    let _entered = span.enter();
    crate::token::isolated::helper::run(module)?;
    Ok(())
}

/// RUST_LOG, or `info`. cryptoki logs every mechanism it has no name for
/// (vendor and legacy ones every module lists) as an ERROR while reading
/// a mechanism list, which would make each start look broken; the agent
/// ignores those mechanisms anyway, so those lines are dropped.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match "cryptoki::mechanism=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}
