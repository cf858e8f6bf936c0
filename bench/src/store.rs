//! Group `store`: a daemon with one token holding many identities (1,000
//! in a full run): how long until all are listed after the daemon
//! starts, how fast `list` and `select` answer, and how much memory the
//! daemon holds.

use std::path::Path;
use std::time::{Duration, Instant};

use p11agent_client::proto::{ChooserMode, Decision, Filter, Scheme};
use p11agent_client::{Client, SelectQuery};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm};

use crate::bed::{PIN, SO_PIN};
use crate::error::BenchError;
use crate::fixture::{self, Daemon};
use crate::harness;
use crate::report::{Measurement, Report};
use crate::Plan;

/// The daemon's default poll interval, which the idle row divides by.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// How often the daemon is asked whether it is ready; the resolution of
/// the start-up times.
const POLL: Duration = Duration::from_millis(5);

/// Names that issued none of the identities: most of a realistic
/// server's CA list.
const NOISE_CAS: usize = 99;

/// Provisions the token, starts a daemon on it and measures; adds the
/// rows to `report`. `dir` holds the daemon's socket, log and PIN file.
pub(crate) fn measure(
    agent_bin: &Path,
    dir: &Path,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), BenchError> {
    let n = plan.identities;
    let hsm = SoftHsm::new()?;
    let token = hsm.create_token("scale", PIN, SO_PIN)?;
    let bulk = Pki::new("p11agent bench scale root")?;
    let partner = Pki::new("p11agent bench partner root")?;
    eprintln!("store: provisioning {n} identities");
    token.add_many(&bulk, n - 1)?;
    token.add_identity(&partner, &LeafSpec::new("Partner User").key(KeyAlg::EcP256))?;
    let noise = (0..NOISE_CAS)
        .map(|i| Pki::new(&format!("p11agent bench noise CA {i:02}"))?.root_subject_der())
        .collect::<Result<Vec<_>, _>>()?;
    let pin_file = dir.join("pin");
    fixture::write_pin_file(&pin_file, PIN)?;

    let mut daemon = Daemon::spawn(
        agent_bin,
        dir,
        hsm.module_path(),
        &hsm.env(),
        &pin_file,
        &[],
    )?;
    let mut agent = daemon.connect(POLL, Duration::from_secs(120))?;
    let answers = daemon.started().elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = agent.list(&Filter::default())?.len();
        if listed >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "the daemon listed {listed} of {n} identities after 120 s"
            )));
        }
        std::thread::sleep(POLL);
    }
    let queryable = daemon.started().elapsed();
    let value = |name: &str, value: f64, unit: &'static str| Measurement {
        identities: Some(n),
        ..Measurement::value("store", name, value, unit)
    };
    report.push(value(
        "daemon_answers_after_start",
        answers.as_secs_f64() * 1e3,
        "ms",
    ));
    report.push(value(
        "all_identities_listed_after_start",
        queryable.as_secs_f64() * 1e3,
        "ms",
    ));

    let timing = plan.timing(1);
    let socket = daemon.socket().to_path_buf();
    let load = |name: &str, stats: &harness::RunStats| Measurement {
        identities: Some(n),
        clients: Some(1),
        ..Measurement::load("store", name, stats)
    };
    let list = harness::run(&timing, |_| {
        let mut agent = Client::connect(&socket)?;
        Ok(move || match agent.list(&Filter::default()) {
            Ok(all) if all.len() == n => Ok(()),
            Ok(all) => Err(format!("listed {} identities", all.len())),
            Err(e) => Err(e.to_string()),
        })
    })?;
    report.push(load("list", &list));

    // A server's CA list of 100 names: 99 that issued nothing here, and
    // one that issued a single identity or all the others. `select` is
    // asked as the TLS resolver asks during a handshake (no list of the
    // identities left out); `explain` as `p11agent explain` asks, with
    // that list.
    for (name, issuer, expected, explain) in [
        ("select_1_candidate", &partner, 1, false),
        ("explain_1_candidate", &partner, 1, true),
        ("select_all_candidates", &bulk, n - 1, false),
    ] {
        let mut query = SelectQuery::new("https://bench.example:443");
        query.ca_names = noise.clone();
        query.ca_names.push(issuer.root_subject_der()?);
        query.schemes = Some(vec![
            Scheme::EcdsaSecp256r1Sha256,
            Scheme::RsaPssRsaeSha256,
            Scheme::RsaPkcs1Sha256,
        ]);
        // The application asks its user: the agent answers at once.
        query.chooser = ChooserMode::Client;
        query.explain = explain;
        let excluded = if explain { n - expected } else { 0 };
        let check = |agent: &mut Client| -> Result<(), String> {
            let selection = agent.select(&query).map_err(|e| e.to_string())?;
            if selection.candidates.len() != expected
                || selection.decision == Decision::None
                || selection.excluded.len() != excluded
            {
                return Err(format!(
                    "{} candidates, {} excluded, decision {}",
                    selection.candidates.len(),
                    selection.excluded.len(),
                    selection.decision.as_str()
                ));
            }
            Ok(())
        };
        check(&mut agent).map_err(|e| BenchError::Setup(format!("{name}: {e}")))?;
        let stats = harness::run(&timing, |_| {
            let mut agent = Client::connect(&socket)?;
            Ok(move || check(&mut agent))
        })?;
        report.push(load(name, &stats));
    }

    let (rss, peak) = daemon.memory_kib()?;
    report.push(value("daemon_rss", rss as f64 / 1024.0, "MiB"));
    report.push(value("daemon_peak_rss", peak as f64 / 1024.0, "MiB"));

    // What watching the token costs while nothing happens: the daemon's
    // and its module helper's CPU per poll (the slot list, the token
    // information, the objects' fingerprint, SoftHSM's files listed),
    // every 500 ms by default, with no client.
    drop(agent);
    let idle = if plan.smoke {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let start = crate::cpu::tree_ns(daemon.pid())?;
    std::thread::sleep(idle);
    let end = crate::cpu::tree_ns(daemon.pid())?;
    let polls = idle.as_secs_f64() / WATCH_INTERVAL.as_secs_f64();
    let per_poll_us = crate::cpu::window_ns(&start, &end) as f64 / 1000.0 / polls;
    report.push(value("idle_cpu_per_poll", per_poll_us.round(), "µs"));
    Ok(())
}
