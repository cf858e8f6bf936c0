//! Load: 64 concurrent clients × 200 signatures over two tokens, every
//! one verified with the certificate's public key.

use std::time::Instant;

use p11agent_client::proto::Scheme;
use p11agent_client::Client;
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, SoftHsm};
use p11agent_tests::{tls13_input, Daemon};

const PIN: &str = "1234";
const CLIENTS: usize = 64;
const SIGNATURES: usize = 200;

/// Verifies an ECDSA P-256 signature (the uncompressed point ends the
/// SubjectPublicKeyInfo).
fn verifies(identity: &Provisioned, message: &[u8], signature: &[u8]) -> bool {
    let spki = &identity.public_key_spki;
    let point = &spki[spki.len() - 65..];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(message, signature)
        .is_ok()
}

#[test]
fn sixty_four_clients_two_hundred_signatures_each_over_two_tokens() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Load Root").expect("pki");
    let identities: Vec<Provisioned> = ["load-a", "load-b"]
        .into_iter()
        .map(|label| {
            hsm.create_token(label, PIN, "12345678")
                .expect("token")
                .add_identity(&pki, &LeafSpec::new(label).key(KeyAlg::EcP256))
                .expect("identity")
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = dir.path().join("pin");
    std::fs::write(&pin, format!("{PIN}\n")).expect("pin");
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
        ],
        hsm.env(),
    );

    let started = Instant::now();
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let (socket, identities) = (daemon.socket(), &identities);
                scope.spawn(move || {
                    let mut client = Client::connect(socket).expect("connect");
                    let mut verified = 0;
                    let mut failures = Vec::new();
                    for round in 0..SIGNATURES {
                        let identity = &identities[(n + round) % 2];
                        let message = tls13_input(format!("client {n} round {round}").as_bytes());
                        match client.sign(
                            &identity.fingerprint_hex(),
                            Scheme::EcdsaSecp256r1Sha256,
                            &message,
                        ) {
                            Ok(signature) if verifies(identity, &message, &signature) => {
                                verified += 1
                            }
                            Ok(_) => {
                                failures.push(format!("client {n} round {round}: bad signature"))
                            }
                            Err(e) => failures.push(format!("client {n} round {round}: {e}")),
                        }
                    }
                    (verified, failures)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let verified: usize = results.iter().map(|(v, _)| v).sum();
    let failures: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    eprintln!(
        "load: {CLIENTS} clients x {SIGNATURES} signatures = {verified} verified, {} errors, \
         in {:.1} s ({:.0} signatures/s)",
        failures.len(),
        elapsed.as_secs_f64(),
        verified as f64 / elapsed.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(verified, CLIENTS * SIGNATURES);
    assert!(daemon.client().status().is_ok());
}
