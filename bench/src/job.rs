//! Every measured row runs in a child process of the benchmark: a
//! *worker*, started as `p11agent-bench worker`, that reads one [`Job`]
//! (JSON) on stdin and prints its [`RunStats`] (JSON) on stdout.
//!
//! Why a process per row: SoftHSM reads `SOFTHSM2_CONF`,
//! `p11-kit-client.so` reads `P11_KIT_SERVER_ADDRESS`, and the agent's
//! module `P11AGENT_SOCK`, once, in `C_Initialize`. Setting them in a process that already runs threads is
//! a data race with every `getenv`, and two modules initialised in one
//! process share its PKCS#11 login state. A fresh process gets exactly
//! its backend's environment before anything starts, loads exactly one
//! module, and every backend, the agent's client included, is measured
//! by the same harness under the same conditions.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use p11agent_client::proto::paths::SOCKET_ENV;
use p11agent_client::proto::Scheme;
use p11agent_softhsm::{CONF_ENV, SERVER_ADDRESS_ENV};
use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::harness::{RunStats, Timing};
use crate::p11::Hashing;

/// One measured row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub(crate) enum Job {
    /// Signatures over a TLS 1.3 CertificateVerify message.
    Sign {
        /// Who signs.
        signer: Signer,
        /// With which scheme.
        scheme: Scheme,
        /// Clients, warm-up and window.
        timing: Timing,
        /// The process that serves the signer (the daemon, `p11-kit
        /// server`, the echo server), whose CPU time the worker reads
        /// over the window; none for cryptoki on SoftHSM in the worker.
        server_pid: Option<u32>,
    },
    /// Mutual-TLS handshakes over loopback.
    Tls(crate::tls::TlsJob),
    /// Signatures on the slow card as a program pays for them.
    Card(crate::card::CardJob),
}

impl Job {
    /// The same job with another timing.
    fn with_timing(&self, timing: Timing) -> Job {
        let mut job = self.clone();
        match &mut job {
            Job::Sign { timing: t, .. } => *t = timing,
            Job::Tls(tls) => tls.timing = timing,
            Job::Card(card) => card.timing = timing,
        }
        job
    }

    /// A short description for messages.
    fn describe(&self) -> String {
        match self {
            Job::Sign {
                signer,
                scheme,
                timing,
                ..
            } => format!(
                "sign {scheme} via {} with {} clients",
                signer.describe(),
                timing.clients
            ),
            Job::Tls(job) => job.describe(),
            Job::Card(job) => job.describe(),
        }
    }
}

/// Where signatures come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub(crate) enum Signer {
    /// cryptoki in the worker, on a PKCS#11 module (SoftHSM itself,
    /// `p11-kit-client.so` in front of it, or the agent's own module).
    Cryptoki {
        /// The key.
        key: TokenKey,
        /// Who hashes the message, so which mechanism signs.
        hashing: Hashing,
    },
    /// The agent, through its socket with the blocking client library,
    /// one connection per client thread.
    Agent {
        /// The agent's socket.
        socket: PathBuf,
        /// The identity id.
        id: String,
    },
    /// Not a signature: the agent answering `hello` on the same kind of
    /// connection, the round trip every request pays. Subtracted from the
    /// agent's latency it leaves what the agent adds around the token.
    RoundTrip {
        /// The agent's socket.
        socket: PathBuf,
    },
    /// Not a signature: a blocking round trip of a P-256 `sign`
    /// request's and response's sizes to an echo server, the least any
    /// process on the other side of a Unix socket can cost (floor.rs).
    Floor {
        /// The echo server's socket.
        socket: PathBuf,
        /// Bytes sent, and bytes answered, per round trip.
        sizes: crate::floor::Sizes,
    },
}

impl Signer {
    fn describe(&self) -> String {
        match self {
            Signer::Cryptoki { key, .. } => format!("cryptoki on {}", key.module.display()),
            Signer::Agent { .. } => "the agent".to_owned(),
            Signer::RoundTrip { .. } => "the agent's round trip".to_owned(),
            Signer::Floor { .. } => "the echo server".to_owned(),
        }
    }
}

/// A private key on a token, as cryptoki finds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TokenKey {
    /// The PKCS#11 module to load.
    pub module: PathBuf,
    /// The token label.
    pub token: String,
    /// The user PIN.
    pub pin: String,
    /// The key's `CKA_ID`.
    pub key_id: Vec<u8>,
}

/// A key type the benchmark signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyKind {
    /// RSA, 2048 bits.
    Rsa2048,
    /// ECDSA on P-256.
    P256,
}

impl KeyKind {
    /// The name used in rows and tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa2048",
            KeyKind::P256 => "p256",
        }
    }

    /// The TLS schemes a key of this kind can make.
    pub(crate) fn schemes(self) -> &'static [Scheme] {
        match self {
            KeyKind::Rsa2048 => &[
                Scheme::RsaPssRsaeSha256,
                Scheme::RsaPssRsaeSha384,
                Scheme::RsaPssRsaeSha512,
                Scheme::RsaPkcs1Sha256,
                Scheme::RsaPkcs1Sha384,
                Scheme::RsaPkcs1Sha512,
            ],
            KeyKind::P256 => &[Scheme::EcdsaSecp256r1Sha256],
        }
    }
}

/// The environment a worker gets: none of the variables a module reads
/// at `C_Initialize`, except those in `env`.
fn worker_command(env: &[(String, OsString)]) -> Result<Command, BenchError> {
    let exe = std::env::current_exe()
        .map_err(|e| BenchError::io("locating", "the benchmark executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .env_remove(CONF_ENV)
        .env_remove(SERVER_ADDRESS_ENV)
        .env_remove(SOCKET_ENV)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Runs `job` in a worker process with `env` added to its environment,
/// and returns what it measured.
pub(crate) fn run_in_child(job: &Job, env: &[(String, OsString)]) -> Result<RunStats, BenchError> {
    let mut child = worker_command(env)?
        .spawn()
        .map_err(|e| BenchError::io("starting", "a worker", e))?;
    let input = serde_json::to_vec(job)?;
    if let Some(mut stdin) = child.stdin.take() {
        // Dropped at the end of the block: the worker sees end of input.
        stdin
            .write_all(&input)
            .map_err(|e| BenchError::io("writing to", "a worker", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| BenchError::io("waiting for", "a worker", e))?;
    if !out.status.success() {
        return Err(BenchError::Worker {
            job: job.describe(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A backend in an interleaved comparison: its job and the environment
/// its worker needs.
pub(crate) type Contender = (Job, Vec<(String, OsString)>);

/// Measures `contenders` against each other: `rounds` rounds, in each of
/// which every contender runs a slice of `timing.duration_secs / rounds`
/// (after its own warm-up) in a fresh worker, one after the other; the
/// slices of each contender are merged.
///
/// Why not one long run each: on a shared machine the background load
/// changes over minutes (somebody's build starts), and a ratio between
/// two rows measured minutes apart would measure that. Interleaved
/// slices see the same background, and the order rotates so that no
/// contender always follows the same other one.
pub(crate) fn interleave(
    contenders: &[Contender],
    timing: Timing,
    rounds: usize,
) -> Result<Vec<RunStats>, BenchError> {
    let rounds = rounds.max(1);
    let slice = Timing {
        duration_secs: timing.duration_secs / rounds as f64,
        ..timing
    };
    // The first round's stats rather than empty ones to merge into: an
    // empty one has no CPU time, which would void every other round's.
    let mut totals: Vec<Option<RunStats>> = vec![None; contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let i = (k + round) % contenders.len();
            let (job, env) = &contenders[i];
            let stats = run_in_child(&job.with_timing(slice), env)?;
            match &mut totals[i] {
                Some(total) => total.merge(stats),
                empty => *empty = Some(stats),
            }
        }
    }
    Ok(totals.into_iter().map(Option::unwrap_or_default).collect())
}

/// The worker's side: reads the job, measures, prints the result.
pub(crate) fn work() -> Result<(), BenchError> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| BenchError::io("reading", "the job from stdin", e))?;
    let job: Job = serde_json::from_slice(&input)?;
    let stats = match job {
        Job::Sign {
            signer,
            scheme,
            timing,
            server_pid,
        } => crate::signing::run(&signer, scheme, &timing, server_pid)?,
        Job::Tls(job) => crate::tls::run(&job)?,
        Job::Card(job) => crate::card::run(&job)?,
    };
    let out = serde_json::to_string(&stats)?;
    println!("{out}");
    Ok(())
}
