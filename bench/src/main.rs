//! `p11agent-bench`: p11agent measured side by side with its peers, on
//! the same machine, token and keys, in one run.
//!
//! ```sh
//! cargo run --release -p p11agent-bench -- [--duration SECS] [--warmup SECS] [--json FILE] [--smoke] [--identities N]
//! ```
//!
//! Four groups of measurements (docs/BENCHMARKS.md explains each):
//!
//! - `sign`: signatures per second and their latency for RSA-2048 (PSS
//!   and PKCS#1 v1.5, SHA-256) and ECDSA P-256 with 1, 2 and 8 clients:
//!   cryptoki on SoftHSM in-process (the signature alone), the agent
//!   through its socket, cryptoki on the agent's PKCS#11 module
//!   (`libp11agent_pkcs11.so`, what Chromium, curl and ssh load), and
//!   p11-kit remoting (`p11-kit server` and `p11-kit-client.so`), with
//!   the CPU time per signature of the serving process and the client,
//!   the ratios agent/direct, agent/p11-kit, module/agent and
//!   module/p11-kit, and the agent's own latency over the floor (a bare
//!   round trip of a signature's sizes between two processes);
//! - `tls`: mutual-TLS 1.3 handshakes per second over loopback, the
//!   client key behind the agent, on the token through cryptoki
//!   in-process, or in software;
//! - `store`: a token with 1,000 certificates: time until the daemon
//!   lists them all, `list` and `select` latency, the daemon's memory;
//! - `card`: the same token behind a module with a smartcard's latencies
//!   (`bench/slowcard`): time from the card's insertion, or a program's
//!   start, to the first signature, and signatures per second through
//!   the agent, directly (logged in once, and as each program pays) and
//!   through p11-kit.
//!
//! Absolute numbers depend on the machine and its load; the ratios,
//! taken minutes apart in one run, are what to compare across commits.

mod bed;
mod card;
mod cpu;
mod error;
mod fixture;
mod floor;
mod harness;
mod job;
mod p11;
mod report;
mod signing;
mod store;
mod tls;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::BenchError;
use crate::harness::Timing;
use crate::report::Report;

/// Benchmark p11agent against direct PKCS#11 and p11-kit remoting.
///
/// Provisions SoftHSM tokens in a temporary directory, builds and starts
/// the p11agent daemon and builds its PKCS#11 module (in this program's
/// build profile: use `cargo run --release`), and prints Markdown tables;
/// progress goes to stderr. A full run takes about 10 minutes with the defaults.
///
/// To measure another daemon or module (one built from an older commit,
/// for a before/after comparison) instead of building them, name them in
/// P11AGENT_BENCH_AGENT=/path/to/p11agent and
/// P11AGENT_BENCH_MODULE=/path/to/libp11agent_pkcs11.so.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Seconds measured per row, in all its rounds together [default: 5;
    /// 0.2 with --smoke]
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds of load before each round's measurement [default: 0.5;
    /// 0.1 with --smoke]
    #[arg(long, value_name = "SECS")]
    warmup: Option<f64>,
    /// Rounds per comparison: the backends compared in a row take turns,
    /// a slice of --duration each, so that they share the machine's
    /// background load [default: 5; 1 with --smoke]
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Write one JSON object per measurement (JSON Lines) to FILE; `-`
    /// for stdout, and the tables then go to stderr
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// A quick run that only shows everything works: short rows, fewer
    /// of them, 100 identities instead of 1,000, the card's latencies
    /// scaled by 0.05
    #[arg(long)]
    smoke: bool,
    /// Measure only these groups (repeat or separate with commas)
    /// [default: all]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "GROUP")]
    only: Vec<Group>,
    /// Client counts of the signing, handshake and card rows [default:
    /// 1,2,8 for signing, 1,2 for handshakes and the card; 1 with --smoke]
    #[arg(long, value_delimiter = ',', value_name = "N")]
    clients: Vec<usize>,
    /// Identities on the store group's token [default: 1000; 100 with
    /// --smoke]
    #[arg(long, value_name = "N")]
    identities: Option<usize>,
    #[command(subcommand)]
    command: Option<Internal>,
}

/// Subcommands the benchmark runs itself.
#[derive(Debug, Subcommand)]
enum Internal {
    /// Measures one job read from stdin and prints the result (a child
    /// process of the benchmark; see job.rs)
    #[command(hide = true)]
    Worker,
    /// Answers round trips of fixed sizes on a Unix socket: the floor of
    /// the signing rows (see floor.rs)
    #[command(hide = true)]
    Echo {
        /// Where to listen
        #[arg(long)]
        socket: PathBuf,
        /// Bytes of a request
        #[arg(long)]
        request_size: usize,
        /// Bytes of a reply
        #[arg(long)]
        reply_size: usize,
    },
}

/// A group of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Group {
    /// Signatures: direct, agent, the agent's PKCS#11 module, p11-kit
    /// remoting.
    Sign,
    /// Mutual-TLS handshakes: agent, in-process cryptoki, software key.
    Tls,
    /// 1,000 identities: start-up, `list`, `select`, memory.
    Store,
    /// A smartcard's latencies: first signature, signatures per second.
    Card,
}

/// What one run measures, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A smoke run: fewer rows.
    pub smoke: bool,
    /// The groups measured.
    pub groups: Vec<Group>,
    /// Warm-up per row, seconds.
    pub warmup_secs: f64,
    /// Window per row, seconds, all rounds together.
    pub duration_secs: f64,
    /// Rounds per comparison.
    pub rounds: usize,
    /// Client counts of the signing rows.
    pub sign_clients: Vec<usize>,
    /// Client counts of the handshake rows.
    pub tls_clients: Vec<usize>,
    /// Client counts of the card rows.
    pub card_clients: Vec<usize>,
    /// Identities on the store group's token.
    pub identities: usize,
}

impl Plan {
    fn new(cli: &Cli) -> Result<Plan, BenchError> {
        let (duration, warmup, rounds) = if cli.smoke {
            (0.2, 0.1, 1)
        } else {
            (5.0, 0.5, 5)
        };
        let plan = Plan {
            smoke: cli.smoke,
            groups: if cli.only.is_empty() {
                vec![Group::Store, Group::Sign, Group::Tls, Group::Card]
            } else {
                cli.only.clone()
            },
            warmup_secs: cli.warmup.unwrap_or(warmup),
            duration_secs: cli.duration.unwrap_or(duration),
            rounds: cli.rounds.unwrap_or(rounds),
            sign_clients: match (&cli.clients[..], cli.smoke) {
                ([], true) => vec![1],
                ([], false) => vec![1, 2, 8],
                (given, _) => given.to_vec(),
            },
            tls_clients: match (&cli.clients[..], cli.smoke) {
                ([], true) => vec![1],
                ([], false) => vec![1, 2],
                (given, _) => given.to_vec(),
            },
            // A card signs one at a time: more clients only queue.
            card_clients: match (&cli.clients[..], cli.smoke) {
                ([], true) => vec![1],
                ([], false) => vec![1, 2],
                (given, _) => given.to_vec(),
            },
            identities: cli.identities.unwrap_or(if cli.smoke { 100 } else { 1000 }),
        };
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        if !(valid(plan.warmup_secs) && valid(plan.duration_secs) && plan.duration_secs > 0.0) {
            return Err(BenchError::Setup(
                "--duration must be a positive number of seconds, --warmup zero or more".into(),
            ));
        }
        if plan.sign_clients.contains(&0) {
            return Err(BenchError::Setup("--clients must be at least 1".into()));
        }
        // One identity from another CA, and at least one from the bulk CA.
        if plan.identities < 2 {
            return Err(BenchError::Setup("--identities must be at least 2".into()));
        }
        if plan.rounds == 0 {
            return Err(BenchError::Setup("--rounds must be at least 1".into()));
        }
        Ok(plan)
    }

    /// Clients, warm-up and window for a row with `clients` clients.
    pub fn timing(&self, clients: usize) -> Timing {
        Timing {
            clients,
            warmup_secs: self.warmup_secs,
            duration_secs: self.duration_secs,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Some(Internal::Worker) => return Ok(job::work()?),
        Some(Internal::Echo {
            ref socket,
            request_size,
            reply_size,
        }) => {
            let sizes = floor::Sizes {
                request: request_size,
                reply: reply_size,
            };
            return Ok(floor::serve(socket, sizes)?);
        }
        None => {}
    }
    let plan = Plan::new(&cli)?;
    let load_before = load_average();
    let mut report = Report::default();
    let result = run(&plan, &mut report);
    // What was measured is worth printing even when a later row failed.
    output(&cli, &machine(&plan, &load_before), &report)?;
    Ok(result?)
}

/// Runs the groups.
fn run(plan: &Plan, report: &mut Report) -> Result<(), BenchError> {
    let agent = fixture::agent_binary()?;
    // In /tmp rather than a long TMPDIR: socket paths must stay below
    // 108 bytes.
    let dir = tempfile::Builder::new()
        .prefix("p11agent-bench.")
        .tempdir_in("/tmp")
        .map_err(|e| BenchError::io("creating a directory in", "/tmp", e))?;
    let subdir = |name: &str| -> Result<PathBuf, BenchError> {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).map_err(|e| BenchError::io("creating", &path, e))?;
        Ok(path)
    };
    // The store group first: its provisioning (seconds of SoftHSM work)
    // and its daemon are gone before any signature is timed.
    if plan.groups.contains(&Group::Store) {
        store::measure(&agent, &subdir("store")?, plan, report)?;
    }
    if plan
        .groups
        .iter()
        .any(|g| matches!(g, Group::Sign | Group::Tls))
    {
        let module = if plan.groups.contains(&Group::Sign) {
            Some(fixture::agent_module()?)
        } else {
            None
        };
        let bed = bed::Bed::start(&agent, module, &subdir("bed")?)?;
        if plan.groups.contains(&Group::Sign) {
            signing::measure(&bed, plan, report)?;
        }
        if plan.groups.contains(&Group::Tls) {
            tls::measure(&bed, plan, report)?;
        }
    }
    // Last: its own token and daemons, once the bed's are gone.
    if plan.groups.contains(&Group::Card) {
        card::measure(&agent, &subdir("card")?, plan, report)?;
    }
    Ok(())
}

/// Prints the tables, and writes the JSON Lines where `--json` says.
fn output(cli: &Cli, header: &str, report: &Report) -> Result<(), BenchError> {
    let tables = format!("{header}\n\n{}", report.tables());
    let json = report.json_lines()?;
    match cli.json.as_deref() {
        Some(path) if path == Path::new("-") => {
            eprint!("{tables}");
            print!("{json}");
        }
        Some(path) => {
            std::fs::write(path, json).map_err(|e| BenchError::io("writing", path, e))?;
            print!("{tables}");
        }
        None => print!("{tables}"),
    }
    std::io::stdout()
        .flush()
        .map_err(|e| BenchError::io("writing", "stdout", e))
}

/// The 1-minute load average: on a shared machine, how much else ran.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// A line about the machine and the run, for the tables' header.
fn machine(plan: &Plan, load_before: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let profile = if cfg!(debug_assertions) {
        "debug build: not representative"
    } else {
        "release build"
    };
    format!(
        "p11agent-bench: {cpus} CPUs ({model}), {profile}; {} s per row in {} round(s), \
         {} s warm-up per round; load average {load_before} before, {} after",
        plan.duration_secs,
        plan.rounds,
        plan.warmup_secs,
        load_average()
    )
}
