//! The `p11agent` command line: argument definitions, and one module per
//! subcommand. Output formatting lives in `format`, errors in `error`.

mod chooser;
mod connect;
mod daemon;
mod decisions;
mod error;
mod format;
mod get;
mod list;
mod login;
mod probe;
mod select;
mod setup;
mod show;
mod sign;
mod status;
mod tokens;
mod tunnel;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use connect::connect;
pub use error::CliError;
use format::JsonArg;

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
    /// SIGTERM; SIGHUP (a closed terminal) is ignored, and a changed
    /// configuration takes a restart.
    ///
    /// Digests (sign_digest, as PKCS#11 modules ask) are signed only for
    /// the programs the digest policy lists: [[allow_digest]] tables
    /// (`program`, the executable's path; optional `identities`) in the
    /// config file or in *.toml files in digest.d/ beside it, e.g. as
    /// `p11agent setup` writes them. None by default.
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
    List(list::ListArgs),
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
    /// Forward a local port to a TLS server over mutual TLS, with the
    /// agent's client certificate: any TCP client becomes an mTLS client.
    ///
    /// e.g. `p11agent tunnel --listen 127.0.0.1:8080 intranet.example:443`
    /// then `curl http://127.0.0.1:8080/`. The certificate is chosen as
    /// for `get` (the server's CA list, your auto-select rules), or pinned
    /// with --id; each connection's failure (the server refused the
    /// certificate, or its own is not trusted) is reported on stderr and
    /// closes that connection. Runs until interrupted.
    Tunnel(tunnel::TunnelArgs),
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
    /// Make another program use the agent's identities through its
    /// PKCS#11 module, libp11agent_pkcs11.so
    ///
    /// Writes only under $HOME and $XDG_CONFIG_HOME, never a file it did
    /// not write itself (each starts with a "# Written by `p11agent
    /// setup" line; remove that line and setup leaves the file alone);
    /// running it again changes nothing. --print shows what it would
    /// write and run; --remove undoes it. Besides the program's own
    /// configuration, each target but nss writes a digest policy,
    /// $XDG_CONFIG_HOME/p11agent/digest.d/TARGET.toml, allowing the
    /// program's executable (as /proc/PID/exe shows it) to have digests
    /// signed, as PKCS#11 callers do; programs not installed are left out.
    /// A `p11agent daemon` started afterwards applies it.
    ///
    /// nss       registers the module as "p11agent" in the shared NSS
    ///           database ~/.pki/nssdb (modutil), creating the database
    ///           when there is none; Chromium and Chrome read it.
    ///
    /// chromium  as nss, plus the digest policy for Chromium's executable
    ///           (/usr/lib/chromium/chromium on Debian, not the
    ///           /usr/bin/chromium script).
    ///
    /// firefox   registers the module in the NSS database of every
    ///           Firefox profile listed in ~/.mozilla/firefox/profiles.ini
    ///           or $XDG_CONFIG_HOME/mozilla/firefox/profiles.ini (Firefox
    ///           reads enterprise policies only from root-owned places),
    ///           plus the digest policy for Firefox's executable. Start
    ///           Firefox once first, so that it has a profile.
    ///
    /// p11-kit   writes ~/.config/pkcs11/modules/p11agent.module, so that
    ///           gnutls programs and users of p11-kit-proxy.so load the
    ///           module (not programs run as root: p11-kit ignores
    ///           per-user files for them), plus the policy for gnutls-cli.
    ///
    /// openssl   writes $XDG_CONFIG_HOME/p11agent/openssl-pkcs11.cnf, an
    ///           OpenSSL configuration loading pkcs11-provider over the
    ///           module, used with OPENSSL_CONF=<that file>, plus the
    ///           policy for openssl and curl.
    ///
    /// java      writes $XDG_CONFIG_HOME/p11agent/sunpkcs11.cfg (SunPKCS11's
    ///           configuration, for keytool -providerArg) and java.security
    ///           beside it (for java -Djava.security.properties=), plus the
    ///           policy for the java executable.
    ///
    /// ssh       changes no ssh file: prints the `ssh -I` line and the
    ///           ~/.ssh/config PKCS11Provider line to use, and writes the
    ///           policy for ssh and ssh-pkcs11-helper (ssh-agent's loader).
    #[command(verbatim_doc_comment)]
    Setup(setup::SetupArgs),
    /// Print a shell's completion script for p11agent.
    ///
    /// bash:  p11agent completions bash > ~/.local/share/bash-completion/completions/p11agent
    /// zsh:   p11agent completions zsh > "${fpath[1]}/_p11agent"
    /// fish:  p11agent completions fish > ~/.config/fish/completions/p11agent.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), as dist/man/p11agent.1 ships it.
    #[command(hide = true)]
    Man,
    /// Serve one PKCS#11 module for the agent that started this process,
    /// on the socket that is its standard input (`isolate = true`).
    #[command(hide = true)]
    ModuleHelper {
        /// The module.
        module: PathBuf,
    },
}

/// The man page, in roff, made from the command line's definitions.
fn man_page() -> Result<Vec<u8>, CliError> {
    let command = <Args as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    Ok(page)
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
        Command::Tunnel(a) => tunnel::run(socket, a),
        Command::Login(a) => login::login(&mut connect(socket)?, a),
        Command::Logout(a) => login::logout(&mut connect(socket)?, a),
        Command::Select(a) => select::select(&mut connect(socket)?, a),
        Command::Explain(a) => select::explain(&mut connect(socket)?, a),
        Command::Decisions(a) => decisions::decisions(&mut connect(socket)?, a),
        Command::Forget(a) => decisions::forget(&mut connect(socket)?, a),
        Command::Probe(a) => probe::run(socket, a),
        Command::Chooser(a) => chooser::run(a),
        Command::Watch(a) => watch::run(connect(socket)?, a),
        Command::Setup(a) => setup::run(a),
        Command::ModuleHelper { module } => daemon::run_module_helper(&module),
        Command::Completions { shell } => {
            let mut command = <Args as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "p11agent", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            std::io::Write::write_all(&mut std::io::stdout(), &man_page()?)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// The committed man page is the one the definitions make: a flag
    /// added or a help text changed fails here until it is regenerated.
    #[test]
    fn the_shipped_man_page_is_current() {
        let made = super::man_page().expect("render");
        let shipped = include_bytes!("../../../dist/man/p11agent.1");
        assert!(
            made == shipped,
            "dist/man/p11agent.1 is stale: run scripts/dist-files"
        );
    }

    /// The completion scripts the package ships are the ones the
    /// definitions make.
    #[test]
    fn the_shipped_completions_are_current() {
        use clap_complete::Shell;
        for (shell, shipped) in [
            (
                Shell::Bash,
                &include_bytes!("../../../dist/completions/p11agent.bash")[..],
            ),
            (
                Shell::Zsh,
                &include_bytes!("../../../dist/completions/_p11agent")[..],
            ),
            (
                Shell::Fish,
                &include_bytes!("../../../dist/completions/p11agent.fish")[..],
            ),
        ] {
            let mut command = <super::Args as clap::CommandFactory>::command();
            let mut made = Vec::new();
            clap_complete::generate(shell, &mut command, "p11agent", &mut made);
            assert!(
                made == shipped,
                "dist/completions for {shell} are stale: run scripts/dist-files"
            );
        }
    }

    #[test]
    fn completions_name_the_subcommands() {
        let mut command = <super::Args as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "p11agent",
            &mut script,
        );
        let script = String::from_utf8(script).expect("utf-8");
        for word in ["daemon", "list", "select", "--json"] {
            assert!(script.contains(word), "{word} missing");
        }
    }
}
