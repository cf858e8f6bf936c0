//! Group `sign`: signatures per second and their latency, direct
//! (cryptoki on SoftHSM in the worker: the floor), through the agent,
//! through the agent's PKCS#11 module, and through p11-kit remoting, on
//! the same token and keys; with the CPU time each costs.

use p11agent_client::proto::{Request, Response, Scheme, PROTOCOL_VERSION};
use p11agent_client::Client;
use p11agent_softhsm::P11KitServer;
use sha2::Digest as _;

use crate::bed::Bed;
use crate::error::BenchError;
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
/// module rows with their ratios) to `report`.
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
    for &clients in &plan.sign_clients {
        let timing = plan.timing(clients);
        let round_trip = Job::Sign {
            signer: Signer::RoundTrip {
                socket: bed.daemon.socket().to_path_buf(),
            },
            // Not used: `hello` signs nothing.
            scheme: Scheme::EcdsaSecp256r1Sha256,
            timing,
            server_pid: daemon,
        };
        let stats = job::interleave(&[(round_trip, Vec::new())], timing, plan.rounds)?;
        for stats in &stats {
            report.push(Measurement {
                backend: Some("agent"),
                clients: Some(clients),
                ..Measurement::load("sign", ROUND_TRIP, stats)
            });
        }
    }
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
            let rows: Vec<Measurement> = contenders
                .iter()
                .zip(&stats)
                .map(|((backend, _), stats)| Measurement {
                    key: Some(kind.name()),
                    backend: Some(backend),
                    clients: Some(clients),
                    ..Measurement::load("sign", scheme.as_str(), stats)
                })
                .collect();
            report.push_compared(rows, &report::SIGN);
        }
    }
    Ok(())
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
