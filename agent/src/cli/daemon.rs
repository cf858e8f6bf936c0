use std::io::IsTerminal as _;
use std::path::PathBuf;

use super::CliError;
use crate::config::Config;
use crate::daemon::{self, Options};

/// Arguments of `p11agent daemon`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// A PKCS#11 module to load; repeat for several. Replaces the
    /// modules registered with p11-kit.
    #[arg(long = "module", value_name = "PATH")]
    modules: Vec<PathBuf>,
    /// Configuration file [default: $XDG_CONFIG_HOME/p11agent/config.toml, when present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read the user PIN from FILE when a login is needed (automation;
    /// keep the file mode 0600). Wins over --pinentry.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Ask for PINs with this pinentry program (pinentry-curses,
    /// pinentry-tty, pinentry-gnome3, ... as gpg-agent uses them).
    #[arg(long, value_name = "PROGRAM")]
    pinentry: Option<PathBuf>,
}

pub fn run(socket: Option<PathBuf>, args: DaemonArgs) -> Result<(), CliError> {
    let config = Config::load(args.config.as_deref())?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(log_filter())
        .init();
    let mut modules = config.modules;
    modules.extend(args.modules);
    let options = Options {
        socket: socket
            .or(config.socket)
            .unwrap_or_else(p11agent_proto::paths::default_socket),
        modules,
        pins: crate::pin::source(
            args.pin_file.or(config.pin_file),
            args.pinentry.or(config.pinentry),
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(daemon::run(options))?;
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
