//! Group `sign`: signatures per second and their latency, direct
//! (cryptoki on SoftHSM in the worker: the signature alone), through the
//! agent, through the agent's PKCS#11 module, and through p11-kit
//! remoting, on the same token and keys; with the CPU time each costs,
//! and the agent's own latency over a bare round trip between processes
//! (floor.rs).

use std::collections::BTreeMap;

use p11agent_client::proto::{Request, Response, Scheme, PROTOCOL_VERSION};
use p11agent_client::Client;
use p11agent_softhsm::P11KitServer;
use sha2::Digest as _;

use crate::bed::Bed;
use crate::error::BenchError;
use crate::floor::{self, EchoServer};
use crate::harness::{self, RunStats, Timing};
use crate::job::{self, Job, KeyKind, Signer};
use crate::p11::{self, Hashing, LoggedIn};
use crate::report::{self, Measurement, Report};
use crate::Plan;

/// What every signature is over: a TLS 1.3 client CertificateVerify
/// input (RFC 8446 section 4.4.3), 64 spaces, the context string, a zero
/// byte and a SHA-256 transcript hash. An agent that one day checks what
/// it signs (purpose binding) still signs this.
pub(crate) fn certificate_verify_message() -> Vec<u8> {
    let mut message = vec![b' '; 64];
    message.extend_from_slice(b"TLS 1.3, client CertificateVerify");
    message.push(0);
    message.extend_from_slice(&sha2::Sha256::digest(b"p11agent-bench transcript"));
    message
}

/// The worker's side: `timing.clients` threads signing with `signer`,
/// and the CPU time of this process and of `server_pid`'s.
pub(crate) fn run(
    signer: &Signer,
    scheme: Scheme,
    timing: &Timing,
    server_pid: Option<u32>,
) -> Result<RunStats, BenchError> {
    let message = certificate_verify_message();
    match signer {
        Signer::Cryptoki { key, hashing } => {
            if !p11::supported(scheme) {
                return Err(BenchError::Setup(format!("{scheme} is not benchmarked")));
            }
            let token = LoggedIn::open(&key.module, &key.token, &key.pin)?;
            harness::run_metered(timing, server_pid, |_| {
                let (session, handle) = token.session_with_key(&key.key_id)?;
                let message = &message;
                Ok(move || p11::sign(&session, handle, scheme, *hashing, message).map(drop))
            })
        }
        Signer::Agent { socket, id } => harness::run_metered(timing, server_pid, |_| {
            let mut agent = Client::connect(socket)?;
            let message = &message;
            Ok(move || {
                agent
                    .sign(id, scheme, message)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        }),
        Signer::RoundTrip { socket } => harness::run_metered(timing, server_pid, |_| {
            let mut agent = Client::connect(socket)?;
            let hello = Request::Hello {
                version: PROTOCOL_VERSION,
                client: None,
            };
            Ok(move || match agent.call(&hello) {
                Ok(Response::Hello { .. }) => Ok(()),
                Ok(other) => Err(format!("hello answered with {other:?}")),
                Err(e) => Err(e.to_string()),
            })
        }),
        Signer::Floor { socket, sizes } => floor::run(socket, *sizes, timing, server_pid),
    }
}

/// The name of the rows of `hello` round trips.
pub(crate) const ROUND_TRIP: &str = "hello_round_trip";

/// The schemes measured, by key.
fn cases(plan: &Plan) -> Vec<(KeyKind, Scheme)> {
    let mut cases = vec![(KeyKind::Rsa2048, Scheme::RsaPssRsaeSha256)];
    if !plan.smoke {
        cases.push((KeyKind::Rsa2048, Scheme::RsaPkcs1Sha256));
    }
    cases.push((KeyKind::P256, Scheme::EcdsaSecp256r1Sha256));
    cases
}

/// Measures every case, with every client count, on every backend
/// (interleaved: see [`job::interleave`]), and adds the rows (agent and
/// module rows with their ratios and own latency) to `report`.
pub(crate) fn measure(bed: &Bed, plan: &Plan, report: &mut Report) -> Result<(), BenchError> {
    let (softhsm, softhsm_env) = bed.softhsm();
    let daemon = Some(bed.daemon.pid());
    // cryptoki in the worker on modules in front of the agent or the
    // token: the agent's own (with hash-and-sign mechanisms, see
    // `Hashing`) and p11-kit-client.so, when they are there; and who
    // serves each.
    let modules: Vec<_> = [
        ("module", bed.agent_module(), Hashing::Module, daemon),
        (
            "p11kit",
            bed.p11kit_client(),
            Hashing::Worker,
            bed.p11kit.as_ref().map(P11KitServer::pid),
        ),
    ]
    .into_iter()
    .filter_map(|(backend, module, hashing, pid)| Some((backend, module?, hashing, pid)))
    .collect();
    let floors = measure_round_trips(bed, plan, report)?;
    for (kind, scheme) in cases(plan) {
        let key = bed.key(kind);
        for &clients in &plan.sign_clients {
            let timing = plan.timing(clients);
            let sign = |signer: Signer, server_pid: Option<u32>| Job::Sign {
                signer,
                scheme,
                timing,
                server_pid,
            };
            let mut contenders: Vec<(&'static str, job::Contender)> = vec![
                (
                    "direct",
                    (
                        sign(
                            Signer::Cryptoki {
                                key: key.token_key(&softhsm)?,
                                hashing: Hashing::Worker,
                            },
                            None,
                        ),
                        softhsm_env.clone(),
                    ),
                ),
                (
                    "agent",
                    (
                        sign(
                            Signer::Agent {
                                socket: bed.daemon.socket().to_path_buf(),
                                id: key.agent_id(),
                            },
                            daemon,
                        ),
                        Vec::new(),
                    ),
                ),
                (
                    "agent_inproc",
                    (
                        sign(
                            Signer::Agent {
                                socket: bed.daemon_inproc.socket().to_path_buf(),
                                id: key.agent_id(),
                            },
                            Some(bed.daemon_inproc.pid()),
                        ),
                        Vec::new(),
                    ),
                ),
            ];
            for (backend, (module, env), hashing, pid) in &modules {
                let signer = Signer::Cryptoki {
                    key: key.token_key(module)?,
                    hashing: *hashing,
                };
                contenders.push((backend, (sign(signer, *pid), env.clone())));
            }
            let jobs: Vec<job::Contender> = contenders.iter().map(|(_, c)| c.clone()).collect();
            let stats = job::interleave(&jobs, timing, plan.rounds)?;
            let mut rows: Vec<Measurement> = contenders
                .iter()
                .zip(&stats)
                .map(|((backend, _), stats)| Measurement {
                    key: Some(kind.name()),
                    backend: Some(backend),
                    clients: Some(clients),
                    ..Measurement::load("sign", scheme.as_str(), stats)
                })
                .collect();
            let direct = rows
                .iter()
                .find(|r| r.backend == Some("direct"))
                .and_then(|r| r.p50_us);
            let floor = floors.get(&clients).copied().flatten();
            for row in &mut rows {
                if matches!(row.backend, Some("agent" | "agent_inproc" | "module")) {
                    row.own_us = report::own_us(row.p50_us, &[direct, floor]);
                }
            }
            report.push_compared(rows, &report::SIGN);
        }
    }
    Ok(())
}

/// Measures, at every client count, the agent's `hello` round trip and
/// the floor (a bare round trip of a P-256 `sign`'s sizes to an echo
/// server), interleaved; adds their rows to `report` and returns the
/// floor's p50 by client count.
fn measure_round_trips(
    bed: &Bed,
    plan: &Plan,
    report: &mut Report,
) -> Result<BTreeMap<usize, Option<f64>>, BenchError> {
    let sizes = floor::p256_sign_sizes(&bed.p256.agent_id())?;
    let socket = floor::socket_beside(bed.daemon.socket());
    let echo = EchoServer::start(&socket, sizes)?;
    let mut floors = BTreeMap::new();
    for &clients in &plan.sign_clients {
        let timing = plan.timing(clients);
        let job = |signer, server_pid| Job::Sign {
            signer,
            // Not used: neither signs.
            scheme: Scheme::EcdsaSecp256r1Sha256,
            timing,
            server_pid,
        };
        let round_trip = Signer::RoundTrip {
            socket: bed.daemon.socket().to_path_buf(),
        };
        let bare = Signer::Floor {
            socket: socket.clone(),
            sizes,
        };
        let contenders = [
            (job(round_trip, Some(bed.daemon.pid())), Vec::new()),
            (job(bare, Some(echo.pid())), Vec::new()),
        ];
        let stats = job::interleave(&contenders, timing, plan.rounds)?;
        let [hello, bare] = &stats[..] else {
            return Err(BenchError::Setup(format!(
                "{} results for 2 round-trip jobs",
                stats.len()
            )));
        };
        let floor = Measurement {
            backend: Some("floor"),
            clients: Some(clients),
            ..Measurement::load("sign", floor::NAME, bare)
        };
        let hello = Measurement {
            backend: Some("agent"),
            clients: Some(clients),
            ..Measurement::load("sign", ROUND_TRIP, hello)
        };
        let hello = Measurement {
            own_us: report::own_us(hello.p50_us, &[floor.p50_us]),
            ..hello
        };
        floors.insert(clients, floor.p50_us);
        report.push(hello);
        report.push(floor);
    }
    Ok(floors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_a_tls13_client_certificate_verify_input() {
        let m = certificate_verify_message();
        assert_eq!(m.len(), 64 + 33 + 1 + 32);
        assert!(m[..64].iter().all(|b| *b == b' '));
        assert_eq!(&m[64..97], b"TLS 1.3, client CertificateVerify");
        assert_eq!(m[97], 0);
    }
}
