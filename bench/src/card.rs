//! Group `card`: the bench token behind `libp11agent_bench_slowcard.so`
//! (`bench/slowcard`), which answers with a smartcard's latencies (a
//! YubiKey 5's PIV applet by default) and does one card operation at a
//! time, for every process using it.
//!
//! On SoftHSM a login, a search or a signature costs microseconds, and
//! what the agent saves by logging in once and keeping what it found
//! does not show. On a card they cost milliseconds, and the rows here
//! show who pays them how often:
//!
//! - *first signature*: for the agent, from the card's insertion (the
//!   daemon already running without it) until a signature through it
//!   succeeds: the agent notices the card (it polls, every 500 ms by
//!   default), scans it, logs in and signs. For a program loading the
//!   module itself (*direct*), or `p11-kit-client.so` in front of a
//!   `p11-kit server` serving the card, from loading the module to its
//!   first signature: initialisation, login, the key's search, the
//!   signature; what every program start pays again.
//! - *signatures per second*, 1 and 2 clients: the agent; cryptoki in
//!   the worker logged in once (*direct*, the floor); cryptoki making
//!   each signature as a new program makes its first (*per program*: a
//!   session, a login, a search, the signature, the session closed; the
//!   module stays initialised); p11-kit.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::slot::Slot;
use p11agent_client::proto::{Filter, Scheme};
use p11agent_softhsm::{KeyAlg, LeafSpec, P11KitServer, Pki, SoftHsm};
use serde::{Deserialize, Serialize};

use crate::bed::{BenchKey, PIN, SO_PIN, TOKEN};
use crate::error::BenchError;
use crate::fixture::{self, Daemon};
use crate::harness::{self, Histogram, RunStats, Timing};
use crate::job::{self, Job, KeyKind, Signer, TokenKey};
use crate::p11::{self, Hashing, LoggedIn};
use crate::report::{self, Measurement, Report};
use crate::signing::certificate_verify_message;
use crate::Plan;

// The slow card's environment, as `bench/slowcard` reads it.
const MODULE_ENV: &str = "P11AGENT_SLOWCARD_MODULE";
const PROFILE_ENV: &str = "P11AGENT_SLOWCARD_PROFILE";
const SCALE_ENV: &str = "P11AGENT_SLOWCARD_SCALE";
const LOCK_ENV: &str = "P11AGENT_SLOWCARD_LOCK";
const PRESENT_ENV: &str = "P11AGENT_SLOWCARD_PRESENT";
/// The per-call overrides, `P11AGENT_SLOWCARD_<NAME>_MS`: inherited from
/// the benchmark's environment by everything that loads the card.
const OVERRIDES: &[&str] = &["INIT", "LOGIN", "FIND", "ATTR", "SIGN_RSA", "SIGN_EC"];

/// How often a sign request is retried while the agent has not yet
/// found the inserted card: the resolution of the insertion rows.
const RETRY: Duration = Duration::from_millis(2);

/// How often the agent looks for new tokens (`poll_interval_ms`, its
/// default). The samples insert the card at times spread evenly over one
/// interval, so that their median waits for the agent's next look as
/// long as a user's insertion does on average (half the interval)
/// rather than as long as wherever one fixed moment falls.
const AGENT_POLL: Duration = Duration::from_millis(500);

/// The name of the agent's first-signature rows.
const FROM_INSERTION: &str = "insertion_to_first_signature";
/// The name of the direct and p11-kit first-signature rows.
const FROM_PROGRAM_START: &str = "program_start_to_first_signature";

/// What is signed with each key.
const CASES: [(KeyKind, Scheme); 2] = [
    (KeyKind::P256, Scheme::EcdsaSecp256r1Sha256),
    (KeyKind::Rsa2048, Scheme::RsaPssRsaeSha256),
];

/// The slow card in front of the SoftHSM token, and what a process
/// loading it needs.
struct SlowCard {
    /// `libp11agent_bench_slowcard.so`.
    module: PathBuf,
    hsm: SoftHsm,
    profile: String,
    scale: String,
    /// Locked around every card operation, by every process.
    lock: PathBuf,
}

impl SlowCard {
    /// The profile the benchmark's environment names (`piv` when none),
    /// at a twentieth of its length in a smoke run unless a scale is set.
    fn new(module: PathBuf, hsm: SoftHsm, dir: &Path, plan: &Plan) -> SlowCard {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let default_scale = if plan.smoke { "0.05" } else { "1" };
        SlowCard {
            module,
            hsm,
            profile: var(PROFILE_ENV).unwrap_or_else(|| "piv".to_owned()),
            scale: var(SCALE_ENV).unwrap_or_else(|| default_scale.to_owned()),
            lock: dir.join("card.lock"),
        }
    }

    /// The environment of a process loading the card; with `present`,
    /// the card is in the reader only while that file exists.
    fn env(&self, present: Option<&Path>) -> Vec<(String, OsString)> {
        let mut env = self.hsm.env();
        env.extend([
            (
                MODULE_ENV.to_owned(),
                self.hsm.module_path().as_os_str().to_owned(),
            ),
            (PROFILE_ENV.to_owned(), OsString::from(&self.profile)),
            (SCALE_ENV.to_owned(), OsString::from(&self.scale)),
            (LOCK_ENV.to_owned(), self.lock.as_os_str().to_owned()),
        ]);
        if let Some(file) = present {
            env.push((PRESENT_ENV.to_owned(), file.as_os_str().to_owned()));
        }
        env
    }

    /// The profile, its scale and any per-call values set, for the rows.
    fn describe(&self) -> String {
        let mut text = format!("{} x{}", self.profile, self.scale);
        for name in OVERRIDES {
            let key = format!("P11AGENT_SLOWCARD_{name}_MS");
            if let Ok(value) = std::env::var(&key) {
                let _ = write!(text, ", {key}={value}");
            }
        }
        text
    }
}

/// Provisions a token, puts the slow card in front of it and measures;
/// adds the rows to `report`. `dir` holds the daemons' sockets, logs and
/// PIN file, and the card's lock.
pub(crate) fn measure(
    agent_bin: &Path,
    dir: &Path,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), BenchError> {
    eprintln!("building the slow card module");
    let module = fixture::slowcard_module()?;
    let hsm = SoftHsm::new()?;
    let pki = Pki::new("p11agent bench card root")?;
    let token = hsm.create_token(TOKEN, PIN, SO_PIN)?;
    let (rsa, p256) = token.provision(|p| {
        let rsa = p.add_identity(&pki, &LeafSpec::new("Card RSA").key(KeyAlg::Rsa2048))?;
        let p256 = p.add_identity(&pki, &LeafSpec::new("Card P-256").key(KeyAlg::EcP256))?;
        Ok((rsa, p256))
    })?;
    let keys = [
        BenchKey { provisioned: p256 },
        BenchKey { provisioned: rsa },
    ];
    let card = SlowCard::new(module, hsm, dir, plan);
    eprintln!("card: latency profile {}", card.describe());
    let p11kit = match P11KitServer::start_with(&card.hsm, &card.module, &card.env(None)) {
        Ok(server) => Some(server),
        Err(e @ p11agent_softhsm::Error::P11KitNotFound(_)) => {
            eprintln!("card: p11-kit remoting is not measured: {e}");
            None
        }
        Err(e) => return Err(e.into()),
    };
    first_signatures(agent_bin, dir, &card, &keys, p11kit.as_ref(), plan, report)?;
    signatures(agent_bin, dir, &card, &keys, p11kit.as_ref(), plan, report)
}

/// The first-signature rows: the agent from the card's insertion, direct
/// and p11-kit from a program's start; one sample each in a smoke run,
/// five otherwise.
fn first_signatures(
    agent_bin: &Path,
    dir: &Path,
    card: &SlowCard,
    keys: &[BenchKey; 2],
    p11kit: Option<&P11KitServer>,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), BenchError> {
    let samples = if plan.smoke { 1 } else { 5 };
    for ((kind, scheme), key) in CASES.into_iter().zip(keys) {
        let row = |backend: &'static str, name: &str, latency: &Histogram| {
            let ms = |p: f64| latency.percentile(p) / 1e6;
            Measurement {
                key: Some(kind.name()),
                backend: Some(backend),
                p50_us: Some(tenths(ms(50.0) * 1e3)),
                p99_us: Some(tenths(ms(99.0) * 1e3)),
                card_profile: Some(card.describe()),
                ..Measurement::value("card", name, ms(50.0), "ms")
            }
        };
        let mut agent = Histogram::default();
        for i in 0..samples {
            let sample_dir = dir.join(format!("insert-{}-{i}", kind.name()));
            let wait = AGENT_POLL.mul_f64((2 * i + 1) as f64 / (2 * samples) as f64);
            agent.record(insertion_to_signature(
                agent_bin,
                &sample_dir,
                card,
                key,
                scheme,
                wait,
            )?);
        }
        report.push(row("agent", FROM_INSERTION, &agent));

        let mut programs = vec![("direct", key.token_key(&card.module)?, card.env(None))];
        if let Some(server) = p11kit {
            programs.push((
                "p11kit",
                key.token_key(server.client_module())?,
                server.client_env(),
            ));
        }
        for (backend, token_key, env) in programs {
            let job = Job::Card(CardJob {
                work: CardWork::FirstSignature,
                key: token_key,
                scheme,
                hashing: Hashing::Worker,
                timing: plan.timing(1),
            });
            let mut stats = RunStats::default();
            for _ in 0..samples {
                stats.merge(job::run_in_child(&job, &env)?);
            }
            report.push(row(backend, FROM_PROGRAM_START, &stats.latency));
        }
    }
    Ok(())
}

/// Starts a daemon with the card out of the reader, inserts it `wait`
/// after the daemon answers, and returns how long from the insertion
/// until a signature with `key` through the agent succeeds. `dir` (new)
/// holds the daemon's socket, log and PIN file.
fn insertion_to_signature(
    agent_bin: &Path,
    dir: &Path,
    card: &SlowCard,
    key: &BenchKey,
    scheme: Scheme,
    wait: Duration,
) -> Result<Duration, BenchError> {
    std::fs::create_dir(dir).map_err(|e| BenchError::io("creating", dir, e))?;
    let present = dir.join("card-present");
    let pin_file = dir.join("pin");
    fixture::write_pin_file(&pin_file, PIN)?;
    let mut daemon = Daemon::spawn(
        agent_bin,
        dir,
        &card.module,
        &card.env(Some(&present)),
        &pin_file,
        &[],
    )?;
    // It answers once it has loaded the module and found no card.
    let mut agent = daemon.connect(RETRY, Duration::from_secs(60))?;
    let message = certificate_verify_message();
    let id = key.agent_id();
    std::thread::sleep(wait);
    let inserted = Instant::now();
    std::fs::File::create(&present).map_err(|e| BenchError::io("creating", &present, e))?;
    let deadline = inserted + Duration::from_secs(60);
    loop {
        match agent.sign(&id, scheme, &message) {
            Ok(_) => return Ok(inserted.elapsed()),
            Err(e) if Instant::now() > deadline => {
                return Err(BenchError::Setup(format!(
                    "no signature 60 s after the card's insertion: {e}\n{}",
                    daemon.log_text()
                )))
            }
            Err(_) => std::thread::sleep(RETRY),
        }
    }
}

/// The signing rows: every backend on every key, with every client
/// count of the plan, interleaved (see [`job::interleave`]).
fn signatures(
    agent_bin: &Path,
    dir: &Path,
    card: &SlowCard,
    keys: &[BenchKey; 2],
    p11kit: Option<&P11KitServer>,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), BenchError> {
    let daemon_dir = dir.join("daemon");
    std::fs::create_dir(&daemon_dir).map_err(|e| BenchError::io("creating", &daemon_dir, e))?;
    let pin_file = daemon_dir.join("pin");
    fixture::write_pin_file(&pin_file, PIN)?;
    let mut daemon = Daemon::spawn(
        agent_bin,
        &daemon_dir,
        &card.module,
        &card.env(None),
        &pin_file,
        &[],
    )?;
    let mut agent = daemon.connect(Duration::from_millis(20), Duration::from_secs(60))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keys.iter().all(|key| {
        agent.list(&Filter::default()).is_ok_and(|listed| {
            listed
                .iter()
                .any(|i| i.id == key.agent_id() && i.has_private_key)
        })
    }) {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "the agent does not list the card's keys\n{}",
                daemon.log_text()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let on_card = card.env(None);
    for ((kind, scheme), key) in CASES.into_iter().zip(keys) {
        for &clients in &plan.card_clients {
            let timing = plan.timing(clients);
            // The card's rows are about its latency: no CPU metering.
            let sign = |signer: Signer| Job::Sign {
                signer,
                scheme,
                timing,
                server_pid: None,
            };
            let mut contenders: Vec<(&'static str, job::Contender)> = vec![
                (
                    "direct",
                    (
                        sign(Signer::Cryptoki {
                            key: key.token_key(&card.module)?,
                            hashing: Hashing::Worker,
                        }),
                        on_card.clone(),
                    ),
                ),
                (
                    "per_program",
                    (
                        Job::Card(CardJob {
                            work: CardWork::PerProgram,
                            key: key.token_key(&card.module)?,
                            scheme,
                            hashing: Hashing::Worker,
                            timing,
                        }),
                        on_card.clone(),
                    ),
                ),
                (
                    "agent",
                    (
                        sign(Signer::Agent {
                            socket: daemon.socket().to_path_buf(),
                            id: key.agent_id(),
                        }),
                        Vec::new(),
                    ),
                ),
            ];
            if let Some(server) = p11kit {
                let signer = Signer::Cryptoki {
                    key: key.token_key(server.client_module())?,
                    hashing: Hashing::Worker,
                };
                contenders.push(("p11kit", (sign(signer), server.client_env())));
            }
            let jobs: Vec<job::Contender> = contenders.iter().map(|(_, c)| c.clone()).collect();
            let stats = job::interleave(&jobs, timing, plan.rounds)?;
            let rows = contenders
                .iter()
                .zip(&stats)
                .map(|((backend, _), stats)| Measurement {
                    key: Some(kind.name()),
                    backend: Some(backend),
                    clients: Some(clients),
                    card_profile: Some(card.describe()),
                    ..Measurement::load("card", scheme.as_str(), stats)
                })
                .collect();
            report.push_compared(rows, &report::CARD);
        }
    }
    Ok(())
}

/// A measurement of the card in a worker: cryptoki on the slow card (or
/// `p11-kit-client.so` in front of it), signing as a program does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CardJob {
    /// What is timed.
    pub work: CardWork,
    /// The key, through which module.
    pub key: TokenKey,
    /// The signature scheme.
    pub scheme: Scheme,
    /// Who hashes.
    pub hashing: Hashing,
    /// Clients, warm-up and window ([`CardWork::PerProgram`]).
    pub timing: Timing,
}

/// What a [`CardJob`] times.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CardWork {
    /// Once, from loading the module to the first signature: what a
    /// program pays when it starts.
    FirstSignature,
    /// Signatures each made as a new program makes its first, in a
    /// closed loop: a session, a login, the key's search, the signature,
    /// the session closed (the last one's closing logs out). The module
    /// stays initialised: `C_Initialize` is not paid again.
    PerProgram,
}

impl CardJob {
    /// A short description for messages.
    pub(crate) fn describe(&self) -> String {
        let what = match self.work {
            CardWork::FirstSignature => "first signature",
            CardWork::PerProgram => "signatures per program",
        };
        format!(
            "{what} ({}) on {} with {} clients",
            self.scheme,
            self.key.module.display(),
            self.timing.clients
        )
    }
}

/// The worker's side of a [`CardJob`].
pub(crate) fn run(job: &CardJob) -> Result<RunStats, BenchError> {
    let message = certificate_verify_message();
    match job.work {
        CardWork::FirstSignature => {
            let started = Instant::now();
            let token = LoggedIn::open(&job.key.module, &job.key.token, &job.key.pin)?;
            let (session, handle) = token.session_with_key(&job.key.key_id)?;
            p11::sign(&session, handle, job.scheme, job.hashing, &message)
                .map_err(BenchError::Setup)?;
            let took = started.elapsed();
            let mut stats = RunStats {
                ops: 1,
                window_secs: took.as_secs_f64(),
                ..RunStats::default()
            };
            stats.latency.record(took);
            Ok(stats)
        }
        CardWork::PerProgram => {
            let (pkcs11, slot) = p11::open_token(&job.key.module, &job.key.token)?;
            let stats = harness::run(&job.timing, |_| {
                let (pkcs11, message) = (&pkcs11, &message);
                Ok(move || program_signature(pkcs11, slot, job, message))
            });
            let _ = pkcs11.finalize();
            stats
        }
    }
}

/// One signature as a program that has just loaded the module makes it.
fn program_signature(
    pkcs11: &Pkcs11,
    slot: Slot,
    job: &CardJob,
    message: &[u8],
) -> Result<(), String> {
    let session = pkcs11
        .open_ro_session(slot)
        .map_err(|e| format!("C_OpenSession: {e}"))?;
    p11::log_in(&session, &job.key.pin).map_err(|e| e.to_string())?;
    let key = p11::private_key(&session, &job.key.key_id).map_err(|e| e.to_string())?;
    p11::sign(&session, key, job.scheme, job.hashing, message).map(drop)
}

/// The first-signature rows as a Markdown table, under the card's
/// profile; empty without them.
pub(crate) fn first_signature_table(rows: &[Measurement]) -> String {
    let firsts: Vec<&Measurement> = rows
        .iter()
        .filter(|r| r.group == "card" && r.value.is_some())
        .collect();
    let Some(first) = firsts.first() else {
        return String::new();
    };
    let mut out = format!(
        "Slow card, profile {}: time to the first signature in ms (median and slowest of the samples)\n\n\
         | key | from | backend | median | slowest |\n|---|---|---|---:|---:|\n",
        first.card_profile.as_deref().unwrap_or("?")
    );
    let ms = |us: Option<f64>| us.map_or_else(|| "-".to_owned(), |us| format!("{:.1}", us / 1e3));
    for r in firsts {
        let from = match r.name.as_str() {
            FROM_INSERTION => "card insertion",
            FROM_PROGRAM_START => "program start",
            other => other,
        };
        let _ = writeln!(
            out,
            "| {} | {from} | {} | {} | {} |",
            r.key.unwrap_or("-"),
            r.backend.unwrap_or("-"),
            ms(r.p50_us),
            ms(r.p99_us)
        );
    }
    out.push('\n');
    out
}

/// `x` to one decimal, so the JSON is readable.
fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
