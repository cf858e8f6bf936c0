//! The `p11agent` command line: argument definitions, and one module per
//! subcommand. Output formatting lives in `format`.

mod chooser;
mod daemon;
mod decisions;
mod format;
mod get;
mod list;
mod login;
mod probe;
mod select;
mod show;
mod sign;
mod status;
mod tokens;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use p11agent_client::{Client, ClientError};

pub use chooser::TtyChooserError;
pub use list::ListArgs;

/// A PKCS#11 smartcard signing agent.
///
/// The daemon finds the certificates and keys on your PKCS#11 tokens
/// (smartcards, USB keys, HSMs) and answers local clients over a Unix
/// socket; the other commands ask it what it found.
#[derive(Debug, Parser)]
#[command(name = "p11agent", version, propagate_version = true)]
pub struct Args {
    /// The agent's socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock].
    #[arg(long, global = true, env = "P11AGENT_SOCK", value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the agent in the foreground, logging to stderr.
    ///
    /// Loads the PKCS#11 modules given with --module (or in the config
    /// file); with none given, the modules registered with p11-kit. Log
    /// detail follows RUST_LOG (default: info). Stop it with Ctrl-C or
    /// SIGTERM.
    ///
    /// For tests, P11AGENT_FRAME_TIMEOUT_MS and P11AGENT_IDLE_TIMEOUT_MS
    /// (milliseconds) replace how long a client may take over one frame
    /// (10 s) and how long a connection may wait without a request
    /// (5 minutes); see "Limits" in the protocol README.
    Daemon(crate::config::DaemonFlags),
    /// Show whether the agent runs, its modules and counts.
    Status(JsonArg),
    /// List the tokens the agent sees.
    Tokens(JsonArg),
    /// List identities (certificates, with their keys when present).
    List(ListArgs),
    /// Show one identity in full.
    Show(show::ShowArgs),
    /// Sign a message with an identity's key, as TLS does in
    /// CertificateVerify.
    ///
    /// Reads the message (not a digest) from --in or stdin and writes the
    /// raw signature (DER for ECDSA) to --out or stdout.
    Sign(sign::SignArgs),
    /// Fetch an HTTPS URL with the agent's client certificate, like a
    /// minimal curl.
    ///
    /// Prints the body to stdout (with --include also the status line and
    /// headers); an HTTP error status is reported on stderr and, as with
    /// curl, does not fail the command.
    Get(get::GetArgs),
    /// Log in to a token ahead of the first signature.
    ///
    /// Without --pin-stdin the agent asks through its own PIN source
    /// (its --pinentry program or --pin-file); a PIN pad needs no PIN.
    Login(login::LoginArgs),
    /// Log out of a token, or of all tokens: the next signature needs the
    /// PIN again.
    Logout(login::LogoutArgs),
    /// Show which client certificate the agent would send to a server.
    ///
    /// Give the server's origin and, as its CertificateRequest would,
    /// the CAs it accepts (--ca) and its signature schemes (--scheme).
    /// Nobody is asked and nothing is remembered: a decision of "prompt"
    /// means a person would be asked. `p11agent probe` finds a real
    /// server's CA list and schemes.
    Select(select::SelectArgs),
    /// Explain, certificate by certificate, why each is or is not offered
    /// to a server: the same decision as `select`, as a report.
    Explain(select::SelectArgs),
    /// List the client-certificate choices remembered per origin.
    Decisions(JsonArg),
    /// Forget remembered choices, for one origin or all (a browser's
    /// "clear SSL state"): the next connection decides afresh.
    Forget(decisions::ForgetArgs),
    /// Ask a TLS server what it wants of a client certificate, and show
    /// which of your identities would be offered to it and why not the
    /// others.
    ///
    /// Shows the CA names and signature schemes of the server's
    /// CertificateRequest (what `openssl s_client` prints as "Acceptable
    /// client certificate CA names"). No certificate is sent, and the
    /// server's certificate is not verified: this is a diagnostic.
    Probe(probe::ProbeArgs),
    /// Ask a person at the terminal which client certificate to send: the
    /// agent's default certificate chooser (`daemon --chooser tty`).
    ///
    /// Reads one request from stdin: {"version": 1, "origin":
    /// "https://host:port", "candidates": [IDENTITY, ...]}, identities as
    /// `list --json` prints them. Shows the candidates on the terminal and
    /// reads the answer there. Then writes {"choice": "ID"} to send that
    /// certificate, or {"choice": null} to send none, with "remember":
    /// false when the person does not want the answer remembered for the
    /// origin, to stdout, and exits 0. Cancelling (q, an empty line, end of
    /// input) or having no terminal exits 1 with nothing on stdout; the
    /// agent then sends no certificate and remembers nothing.
    Chooser(chooser::ChooserArgs),
    /// Print what happens in the agent, one line per event, as it happens
    ///
    /// Runs until the agent stops (then exits 0) or until interrupted.
    /// The events:
    ///
    ///   token_inserted, token_removed     a token (card, USB key) came or went
    ///   identity_added, identity_removed  a certificate entered or left the store
    ///   login, logout                     the agent logged in to or out of a token
    ///   module_unavailable                a PKCS#11 module failed or stopped answering
    ///   module_available                  such a module works again
    ///   lagged                            this watch read too slowly and missed
    ///                                     the number of events shown
    ///
    /// Each line starts with the time of the event; token and identity
    /// events name the token and the identity. With --json each line is
    /// one JSON object with `event` and `time`, and `token`, `id`,
    /// `subject` and `detail` where they apply (described in the
    /// protocol's README); later versions may add events. Every line is
    /// flushed as it is written, so a pipe sees it at once.
    #[command(verbatim_doc_comment)]
    Watch(watch::WatchArgs),
}

/// The `--json` switch shared by listings.
#[derive(Debug, clap::Args)]
pub struct JsonArg {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the agent failed.
    #[error("{0}{hint}", hint = next_step(.0))]
    Client(#[from] ClientError),
    /// The daemon failed.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A named input or output file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TLS set-up failed (agent, CA file, configuration).
    #[error(transparent)]
    Tls(#[from] p11agent_client::tls::TlsError),
    /// An HTTPS request failed.
    #[error("{0}")]
    Get(String),
    /// The arguments make no sense together.
    #[error("{0}")]
    Usage(String),
    /// The terminal certificate chooser gave no answer.
    #[error("certificate chooser: {0}")]
    Chooser(#[from] TtyChooserError),
}

impl CliError {
    /// The process exit code: 3 when the agent is not running, so that
    /// scripts can tell it from other failures; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(ClientError::NotRunning { .. }) => 3,
            _ => 1,
        }
    }
}

/// What a user of this command can do about `error`, to follow the
/// library's account of it.
fn next_step(error: &ClientError) -> &'static str {
    match error {
        ClientError::NotRunning { .. } => {
            "; start it with `p11agent daemon` or point P11AGENT_SOCK or --socket at a running \
             agent's socket"
        }
        _ => "",
    }
}

/// Runs a parsed command line.
pub fn run(args: Args) -> Result<(), CliError> {
    let socket = args.socket;
    match args.command {
        Command::Daemon(daemon_args) => daemon::run(socket, daemon_args),
        Command::Status(a) => status::run(&mut connect(socket)?, a.json),
        Command::Tokens(a) => tokens::run(&mut connect(socket)?, a.json),
        Command::List(a) => list::run(&mut connect(socket)?, a),
        Command::Show(a) => show::run(&mut connect(socket)?, a),
        Command::Sign(a) => sign::run(&mut connect(socket)?, a),
        Command::Get(a) => get::run(socket, a),
        Command::Login(a) => login::login(&mut connect(socket)?, a),
        Command::Logout(a) => login::logout(&mut connect(socket)?, a),
        Command::Select(a) => select::select(&mut connect(socket)?, a),
        Command::Explain(a) => select::explain(&mut connect(socket)?, a),
        Command::Decisions(a) => decisions::decisions(&mut connect(socket)?, a),
        Command::Forget(a) => decisions::forget(&mut connect(socket)?, a),
        Command::Probe(a) => probe::run(socket, a),
        Command::Chooser(a) => chooser::run(a),
        Command::Watch(a) => watch::run(connect(socket)?, a),
    }
}

fn connect(socket: Option<PathBuf>) -> Result<Client, ClientError> {
    match socket {
        Some(path) => Client::connect(path),
        None => Client::connect_default(),
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library says what happened; the command adds what its user
    /// can do, so that its message is the one it always printed.
    #[test]
    fn a_missing_agent_is_reported_with_the_way_to_start_one() {
        let error = CliError::from(ClientError::NotRunning {
            path: PathBuf::from("/run/user/1000/p11agent/agent.sock"),
        });
        assert_eq!(
            error.to_string(),
            "the agent is not running (no socket at /run/user/1000/p11agent/agent.sock); \
             start it with `p11agent daemon` or point P11AGENT_SOCK or --socket at a running \
             agent's socket"
        );
        assert_eq!(error.exit_code(), 3);
        let refused = CliError::from(ClientError::Protocol("garbled".into()));
        assert_eq!(refused.to_string(), "protocol error: garbled");
    }
}
