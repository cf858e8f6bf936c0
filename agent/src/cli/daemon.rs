use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use crate::audit::Audit;
use crate::config::Config;
use crate::daemon::{self, Options};
use crate::hotplug::WatchOptions;
use crate::pin::Pinentry;
use crate::purpose::Purposes;
use crate::select::chooser::Chooser;
use crate::select::decide::Policy;
use crate::select::decisions::Decisions;
use crate::select::selector::Selector;
use crate::store::chain::read_ca_folder;

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
    /// A folder of CA certificates (PEM or DER files) used with those on
    /// the tokens to build each identity's chain.
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Who asks a person to pick a certificate when policy says one must
    /// and the TLS application cannot ask itself: a program speaking the
    /// chooser contract (`p11agent chooser --help`), or `tty` for the
    /// shipped terminal chooser. Without one the agent sends nothing.
    #[arg(long, value_name = "PROGRAM|tty")]
    chooser: Option<PathBuf>,
    /// Remember choices across restarts in FILE (mode 0600); without it
    /// they last until the daemon exits.
    #[arg(long, value_name = "FILE")]
    decisions_file: Option<PathBuf>,
    /// Ask each module every MS milliseconds which tokens are present
    /// (insertions and removals show within about that time)
    /// [default: 500].
    #[arg(long, value_name = "MS")]
    poll_interval: Option<u64>,
    /// Mark a module unavailable when one PKCS#11 poll or scan takes
    /// longer than MS milliseconds [default: 5000].
    #[arg(long, value_name = "MS")]
    module_deadline: Option<u64>,
    /// Append an audit record (one JSON line) for every signature,
    /// selection, login, logout and refusal to FILE (created 0600).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
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
    let ca_folder = match args.ca_dir.or(config.ca_dir) {
        Some(dir) => {
            let folder = read_ca_folder(&dir).map_err(|source| CliError::File {
                action: "read the CA folder",
                path: dir.clone(),
                source,
            })?;
            for (path, why) in &folder.skipped {
                tracing::warn!(file = %path.display(), why, "CA folder: skipped");
            }
            tracing::info!(
                dir = %dir.display(),
                certificates = folder.certificates.len(),
                "CA folder read"
            );
            folder.certificates
        }
        None => Vec::new(),
    };
    let decisions = match args.decisions_file.or(config.decisions_file) {
        Some(path) => Decisions::persistent(path).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Decisions::in_memory(),
    };
    let chooser = args.chooser.or(config.chooser).map(|program| {
        if program.as_os_str() == "tty" {
            // The shipped chooser is this very binary.
            let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("p11agent"));
            Chooser::new(me).with_args(["chooser"])
        } else {
            Chooser::new(program)
        }
    });
    let policy = Policy {
        rules: config.auto_select,
        force_prompt_on_multiple_matches: config.force_prompt_on_multiple_matches,
        send_when_single_candidate: config.send_when_single_candidate,
    };
    let audit = match args.audit_log.or(config.audit_log) {
        Some(path) => Audit::to_file(&path).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Audit::log_only(),
    };
    let purposes = Purposes::new(
        config.purpose,
        config
            .identities
            .iter()
            .filter_map(|(id, settings)| settings.purpose.map(|p| (id.clone(), p))),
    )
    .confirming(
        config
            .identities
            .iter()
            .filter(|(_, settings)| settings.confirm)
            .map(|(id, _)| id.clone()),
    );
    let confirm_with = args
        .pinentry
        .clone()
        .or_else(|| config.pinentry.clone())
        .map(Pinentry::new);
    let options = Options {
        socket: socket
            .or(config.socket)
            .unwrap_or_else(p11agent_proto::paths::default_socket),
        modules,
        pins: crate::pin::source(
            args.pin_file.or(config.pin_file),
            args.pinentry.or(config.pinentry),
        ),
        ca_folder,
        selector: Selector::new(policy, decisions, chooser),
        watch: {
            let defaults = WatchOptions::default();
            WatchOptions {
                interval: args
                    .poll_interval
                    .or(config.poll_interval_ms)
                    .map_or(defaults.interval, Duration::from_millis),
                deadline: args
                    .module_deadline
                    .or(config.module_deadline_ms)
                    .map_or(defaults.deadline, Duration::from_millis),
                remember_absent: config
                    .remember_absent_tokens
                    .unwrap_or(defaults.remember_absent),
            }
        },
        purposes,
        allowed_uids: config.allowed_uids,
        audit,
        confirm_with,
        login_idle_timeout: config.login_idle_timeout_secs.map(Duration::from_secs),
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
