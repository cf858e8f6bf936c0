//! Closed-loop load: N client threads, each doing one operation after
//! another for a warm-up and then a fixed measured window; optionally
//! the CPU time spent in that window, by this process and by the one
//! serving it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cpu;
use crate::error::BenchError;

/// How long, and with how many clients, one row is measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Timing {
    /// Concurrent client threads.
    pub clients: usize,
    /// Seconds of load before the measured window (logins, caches,
    /// connection set-up, CPU frequency).
    pub warmup_secs: f64,
    /// Seconds in the measured window.
    pub duration_secs: f64,
}

/// What one run (or several, merged) measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RunStats {
    /// Operations that completed successfully inside the window.
    pub ops: u64,
    /// The window's length in seconds (summed over merged runs).
    pub window_secs: f64,
    /// The latencies of those operations.
    pub latency: Histogram,
    /// Operations that failed, warm-up included.
    pub errors: u64,
    /// The first failure's message, when any failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The TLS signature scheme the client key chose, for handshake rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// CPU time of the clients' process over the window, ns, when
    /// metered ([`run_metered`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpu_ns: Option<u64>,
    /// CPU time of the serving process and its children over the window,
    /// ns, when there is one and it was metered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_ns: Option<u64>,
}

impl RunStats {
    /// Operations per second over the window.
    pub(crate) fn ops_per_sec(&self) -> f64 {
        if self.window_secs > 0.0 {
            self.ops as f64 / self.window_secs
        } else {
            0.0
        }
    }

    /// Median latency, µs.
    pub(crate) fn p50_us(&self) -> f64 {
        self.latency.percentile(50.0) / 1000.0
    }

    /// 99th-percentile latency, µs.
    pub(crate) fn p99_us(&self) -> f64 {
        self.latency.percentile(99.0) / 1000.0
    }

    /// The clients' process's CPU time per operation, µs, when metered.
    pub(crate) fn client_cpu_us_per_op(&self) -> Option<f64> {
        self.per_op_us(self.client_cpu_ns)
    }

    /// The serving processes' CPU time per operation, µs, when metered.
    pub(crate) fn server_cpu_us_per_op(&self) -> Option<f64> {
        self.per_op_us(self.server_cpu_ns)
    }

    fn per_op_us(&self, ns: Option<u64>) -> Option<f64> {
        (self.ops > 0).then_some(ns? as f64 / self.ops as f64 / 1000.0)
    }

    /// Adds another run of the same row: the rounds of an interleaved
    /// measurement.
    pub(crate) fn merge(&mut self, other: RunStats) {
        self.ops += other.ops;
        self.window_secs += other.window_secs;
        self.latency.merge(&other.latency);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.scheme.is_none() {
            self.scheme = other.scheme;
        }
        // CPU time and operations are summed alike; a time missing from
        // one run would divide a part of the CPU by all the operations.
        let sum = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        self.client_cpu_ns = sum(self.client_cpu_ns, other.client_cpu_ns);
        self.server_cpu_ns = sum(self.server_cpu_ns, other.server_cpu_ns);
    }
}

/// Latencies in logarithmic buckets 1 % wide: percentiles within ±0.5 %,
/// whatever the number of operations, and runs merge by adding counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Histogram {
    /// Operations per bucket; bucket `b` holds latencies from
    /// `BASE^b` to `BASE^(b+1)` nanoseconds.
    buckets: BTreeMap<u32, u64>,
}

/// The ratio between consecutive bucket bounds.
const BASE: f64 = 1.01;

impl Histogram {
    /// Counts one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let ns = latency.as_nanos().max(1) as f64;
        // Non-negative and below 2^32 for any latency under centuries.
        let bucket = (ns.ln() / BASE.ln()) as u32;
        *self.buckets.entry(bucket).or_default() += 1;
    }

    /// How many latencies were counted.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// Adds `other`'s counts.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (bucket, n) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += n;
        }
    }

    /// The nearest-rank percentile `p`, in nanoseconds (the geometric
    /// middle of its bucket); 0 when empty.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return BASE.powf(f64::from(*bucket) + 0.5);
            }
        }
        0.0
    }
}

/// What one client thread saw.
#[derive(Default)]
struct ThreadTally {
    latency: Histogram,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `timing.clients` threads. Each first builds its client with
/// `setup(index)` (a session, a connection: not measured), then all start
/// together and call the client's operation in a loop. An operation
/// counts when it completes inside the window; its latency is from its
/// start to its completion.
///
/// A failing operation is counted as an error and the loop goes on: one
/// transient `CKR_GENERAL_ERROR` (SoftHSM processes racing on the token
/// files) should not void a row, but a row whose errors are reported
/// must be read with them in mind. A failing `setup` fails the run.
pub(crate) fn run<S, C>(timing: &Timing, setup: S) -> Result<RunStats, BenchError>
where
    S: Fn(usize) -> Result<C, BenchError> + Sync,
    C: FnMut() -> Result<(), String>,
{
    load(timing, None, setup)
}

/// As [`run`], and meters the CPU time spent in the window: this
/// process's ([`RunStats::client_cpu_ns`]) and, given its pid, the
/// serving process's with its children ([`RunStats::server_cpu_ns`]).
///
/// A thread of its own reads the clocks at the window's start and end,
/// the instants the clients count operations between; warm-up and
/// set-up are outside. Its reads of `/proc` (to find a server's
/// children) are left out of this process's time: the server is read
/// before this process at the start, after it at the end.
pub(crate) fn run_metered<S, C>(
    timing: &Timing,
    server: Option<u32>,
    setup: S,
) -> Result<RunStats, BenchError>
where
    S: Fn(usize) -> Result<C, BenchError> + Sync,
    C: FnMut() -> Result<(), String>,
{
    load(timing, Some(Meter { server }), setup)
}

/// What [`run_metered`] reads the CPU time of.
#[derive(Debug, Clone, Copy)]
struct Meter {
    /// The serving process, if any.
    server: Option<u32>,
}

/// CPU time over a window, ns: this process's, and the server's.
type CpuWindow = (u64, Option<u64>);

impl Meter {
    /// Waits for the window and reads the clocks at its ends.
    fn read(self, from: Instant, until: Instant) -> Result<CpuWindow, BenchError> {
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let server_start = self.server.map(cpu::tree_ns).transpose()?;
        let client_start = cpu::own_ns()?;
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        let client = cpu::own_ns()?.saturating_sub(client_start);
        let server_end = self.server.map(cpu::tree_ns).transpose()?;
        let server = server_start
            .zip(server_end)
            .map(|(start, end)| cpu::window_ns(&start, &end));
        Ok((client, server))
    }
}

/// [`run`] or [`run_metered`].
fn load<S, C>(timing: &Timing, meter: Option<Meter>, setup: S) -> Result<RunStats, BenchError>
where
    S: Fn(usize) -> Result<C, BenchError> + Sync,
    C: FnMut() -> Result<(), String>,
{
    let clients = timing.clients.max(1);
    let warmup = Duration::from_secs_f64(timing.warmup_secs.max(0.0));
    let window = Duration::from_secs_f64(timing.duration_secs.max(0.0));
    let barrier = Barrier::new(clients + usize::from(meter.is_some()));
    // One start for every thread, so that the meter's window is the
    // clients' window.
    let start = OnceLock::new();
    let window_of = |start: &OnceLock<Instant>| {
        let start = *start.get_or_init(Instant::now);
        (start + warmup, start + warmup + window)
    };
    let setup_failed = AtomicBool::new(false);
    let setup_error: Mutex<Option<BenchError>> = Mutex::new(None);
    let metered: OnceLock<Result<CpuWindow, BenchError>> = OnceLock::new();
    let tallies: Vec<ThreadTally> = std::thread::scope(|scope| {
        if let Some(meter) = meter {
            let (barrier, setup_failed, start, window_of, metered) =
                (&barrier, &setup_failed, &start, &window_of, &metered);
            scope.spawn(move || {
                barrier.wait();
                if !setup_failed.load(Ordering::SeqCst) {
                    let (from, until) = window_of(start);
                    let _ = metered.set(meter.read(from, until));
                }
            });
        }
        let handles: Vec<_> = (0..clients)
            .map(|index| {
                let (barrier, setup, setup_failed, setup_error, start, window_of) = (
                    &barrier,
                    &setup,
                    &setup_failed,
                    &setup_error,
                    &start,
                    &window_of,
                );
                scope.spawn(move || {
                    let client = match setup(index) {
                        Ok(client) => Some(client),
                        Err(e) => {
                            setup_failed.store(true, Ordering::SeqCst);
                            setup_error
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(e);
                            None
                        }
                    };
                    // Everybody waits here, failed or not, so that no
                    // thread is left behind at the barrier.
                    barrier.wait();
                    match client {
                        Some(op) if !setup_failed.load(Ordering::SeqCst) => {
                            let (from, until) = window_of(start);
                            drive(op, from, until)
                        }
                        _ => ThreadTally::default(),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            // A client thread that panicked is a bug in the benchmark.
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    if let Some(e) = setup_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e);
    }
    let mut stats = RunStats {
        window_secs: window.as_secs_f64(),
        ..RunStats::default()
    };
    for tally in tallies {
        stats.latency.merge(&tally.latency);
        stats.errors += tally.errors;
        if stats.first_error.is_none() {
            stats.first_error = tally.first_error;
        }
    }
    stats.ops = stats.latency.count();
    // The meter thread ends with the scope (a panic in it propagates).
    if let Some(cpu) = metered.into_inner() {
        let (client, server) = cpu?;
        stats.client_cpu_ns = Some(client);
        stats.server_cpu_ns = server;
    }
    Ok(stats)
}

/// One client's loop; operations that end between `from` and `until`
/// count.
fn drive<C>(mut op: C, from: Instant, until: Instant) -> ThreadTally
where
    C: FnMut() -> Result<(), String>,
{
    let mut tally = ThreadTally::default();
    loop {
        let began = Instant::now();
        let result = op();
        let done = Instant::now();
        if done >= until {
            return tally;
        }
        match result {
            Ok(()) if done >= from => tally.latency.record(done - began),
            Ok(()) => {}
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_half_a_percent_and_merge() {
        let mut low = Histogram::default();
        let mut high = Histogram::default();
        for us in 1..=50u64 {
            low.record(Duration::from_micros(us * 10));
            high.record(Duration::from_micros((us + 50) * 10));
        }
        let near = |got: f64, want_us: f64| (got / 1000.0 / want_us - 1.0).abs() < 0.006;
        assert!(
            near(low.percentile(50.0), 250.0),
            "{}",
            low.percentile(50.0)
        );
        low.merge(&high);
        assert_eq!(low.count(), 100);
        assert!(near(low.percentile(50.0), 500.0));
        assert!(near(low.percentile(99.0), 990.0));
        assert!(near(low.percentile(100.0), 1000.0));
        assert_eq!(Histogram::default().percentile(50.0), 0.0);
    }

    #[test]
    fn counts_only_the_window_and_reports_errors() {
        let timing = Timing {
            clients: 2,
            warmup_secs: 0.02,
            duration_secs: 0.05,
        };
        let stats = run(&timing, |index| {
            let mut n = 0u32;
            Ok(move || {
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
                if index == 1 && n == 1 {
                    Err("first call fails".to_owned())
                } else {
                    Ok(())
                }
            })
        })
        .expect("run");
        assert!(stats.ops > 10, "{stats:?}");
        assert!(stats.ops < 2 * 60, "{stats:?}");
        assert_eq!(stats.errors, 1);
        assert_eq!(stats.first_error.as_deref(), Some("first call fails"));
        assert!(stats.p50_us() >= 995.0 && stats.p99_us() >= stats.p50_us());
        let mut twice = stats.clone();
        twice.merge(stats.clone());
        assert_eq!(twice.ops, 2 * stats.ops);
        assert_eq!(twice.errors, 2);
        assert!((twice.ops_per_sec() - stats.ops_per_sec()).abs() < 1e-9);
    }

    #[test]
    fn metering_reads_cpu_over_the_window_only() {
        let timing = Timing {
            clients: 1,
            warmup_secs: 0.05,
            duration_secs: 0.1,
        };
        // Spins (CPU) during the warm-up and the window; the set-up
        // sleeps (no CPU) and must not count.
        let stats = run_metered(&timing, Some(std::process::id()), |_| {
            std::thread::sleep(Duration::from_millis(50));
            Ok(|| {
                let spin = Instant::now();
                while spin.elapsed() < Duration::from_micros(200) {}
                Ok(())
            })
        })
        .expect("run");
        let client = stats.client_cpu_ns.expect("client CPU");
        // About the window's 100 ms of spinning: not the warm-up's 50 ms
        // on top, and not much less (a loaded machine takes some).
        assert!(client < 140_000_000, "{stats:?}");
        assert!(client > 20_000_000, "{stats:?}");
        // The "server" is this process, read a little outside the
        // client's reads.
        assert!(
            stats.server_cpu_ns.expect("server CPU") >= client,
            "{stats:?}"
        );
        let per_op = stats.client_cpu_us_per_op().expect("per op");
        assert!(per_op > 100.0 && per_op < 400.0, "{stats:?}");

        let mut twice = stats.clone();
        twice.merge(stats.clone());
        assert_eq!(twice.client_cpu_ns, Some(2 * client));
        let unmetered = RunStats {
            client_cpu_ns: None,
            ..stats.clone()
        };
        twice.merge(unmetered);
        assert_eq!(twice.client_cpu_ns, None);
        assert_eq!(RunStats::default().client_cpu_us_per_op(), None);
        let plain = run(&timing, |_| Ok(|| Ok(()))).expect("unmetered run");
        assert_eq!((plain.client_cpu_ns, plain.server_cpu_ns), (None, None));
    }

    #[test]
    fn a_failed_setup_fails_the_run_without_hanging() {
        let timing = Timing {
            clients: 3,
            warmup_secs: 0.0,
            duration_secs: 0.01,
        };
        let result = run(&timing, |index| {
            if index == 2 {
                Err(BenchError::Setup("no session".into()))
            } else {
                Ok(|| Ok(()))
            }
        });
        assert!(matches!(result, Err(BenchError::Setup(_))));
    }
}
