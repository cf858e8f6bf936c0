//! A module that crashes takes down only itself: with module isolation
//! (the default), it runs in a helper process, and its `abort()` in
//! `C_Sign` costs its own request, not the agent or another module's
//! clients; the next signature on it works once the helper is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use p11agent_client::proto::{ErrorCode, Scheme};
use p11agent_client::{Client, ClientError};
use p11agent_softhsm::{KeyAlg, LeafSpec, P11KitServer, Pki, Provisioned, SoftHsm};
use p11agent_tests::{p256_verifies, pin_file, slowcard_env, slowcard_module, tls13_input, Daemon};

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

fn verifies(identity: &Provisioned, label: &[u8], signature: &[u8]) -> bool {
    p256_verifies(&identity.public_key_spki, label, signature)
}

fn sign(client: &mut Client, id: &str, label: &[u8]) -> Result<Vec<u8>, ClientError> {
    client.sign(id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(label))
}

#[test]
fn a_module_that_aborts_in_c_sign_costs_only_its_own_request() {
    // Two modules: SoftHSM, and a second SoftHSM behind p11-kit's RPC
    // seen through the slow-card wrapper (no delays), which calls
    // abort() in C_Sign while a file exists.
    let steady_hsm = SoftHsm::new().expect("softhsm");
    let crashy_hsm = SoftHsm::new().expect("second softhsm");
    let pki = Pki::new("Isolation Root").expect("pki");
    let steady = steady_hsm
        .create_token("steady", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("steady user").key(KeyAlg::EcP256))
        .expect("identity");
    let crashy = crashy_hsm
        .create_token("crashy", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("crashy user").key(KeyAlg::EcP256))
        .expect("identity");
    let server = P11KitServer::start(&crashy_hsm).expect("p11-kit server");
    let dir = tempfile::tempdir().expect("tempdir");
    let abort_file = dir.path().join("abort");
    let mut env = steady_hsm.env();
    env.extend(server.client_env());
    env.extend(slowcard_env(server.client_module()));
    env.push(("P11AGENT_SLOWCARD_ABORT".into(), abort_file.clone().into()));
    let pins = pin_file(dir.path(), PIN);
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            steady_hsm.module_path().as_os_str(),
            "--module".as_ref(),
            slowcard_module().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
            "--poll-interval".as_ref(),
            "100".as_ref(),
        ],
        env,
    );
    let (steady_id, crashy_id) = (steady.fingerprint_hex(), crashy.fingerprint_hex());
    let mut client = daemon.client();
    for (identity, id) in [(&steady, &steady_id), (&crashy, &crashy_id)] {
        let signature = sign(&mut client, id, b"before").expect("sign before the crash");
        assert!(verifies(identity, b"before", &signature));
    }

    // Another client signs on the steady module all along.
    let stop = Arc::new(AtomicBool::new(false));
    let steady_signer = {
        let socket = daemon.socket().to_path_buf();
        let stop = Arc::clone(&stop);
        let id = steady_id.clone();
        std::thread::spawn(move || {
            let mut client = Client::connect(&socket).expect("connect");
            let mut signed = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                signed.push(sign(&mut client, &id, b"all along"));
            }
            signed
        })
    };

    std::fs::write(&abort_file, "C_Sign").expect("abort file");
    match sign(&mut client, &crashy_id, b"crash") {
        Err(ClientError::Agent { code, message }) => {
            assert_eq!(code, ErrorCode::ModuleUnavailable, "{message}");
            assert!(message.contains("crashed"), "{message}");
        }
        other => panic!(
            "the crashing module's client got {other:?}\n{}",
            daemon.log()
        ),
    }
    std::fs::remove_file(&abort_file).expect("remove abort file");

    // The helper comes back (at the watcher's next poll) and signs.
    let deadline = Instant::now() + Duration::from_secs(15);
    let signature = loop {
        match sign(&mut client, &crashy_id, b"after") {
            Ok(signature) => break signature,
            Err(ClientError::Agent {
                code: ErrorCode::ModuleUnavailable,
                ..
            }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no signature after the restart: {e}\n{}", daemon.log()),
        }
    };
    assert!(verifies(&crashy, b"after", &signature));

    stop.store(true, Ordering::Relaxed);
    let signed = steady_signer.join().expect("steady signer");
    assert!(!signed.is_empty());
    for result in &signed {
        let signature = result
            .as_ref()
            .expect("the steady module's client saw an error");
        assert!(verifies(&steady, b"all along", signature));
    }
    let log = daemon.log();
    assert!(log.contains("SIGABRT"), "the crash is not logged:\n{log}");
    assert!(log.contains("module answers again"), "{log}");
}

#[test]
fn a_module_that_keeps_crashing_is_restarted_less_and_less_often() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Crash Loop Root").expect("pki");
    let identity = hsm
        .create_token("looping", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("looping user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let abort_file = dir.path().join("abort");
    let mut env = hsm.env();
    env.extend(slowcard_env(hsm.module_path()));
    env.push(("P11AGENT_SLOWCARD_ABORT".into(), abort_file.clone().into()));
    let pins = pin_file(dir.path(), PIN);
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            slowcard_module().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
            "--poll-interval".as_ref(),
            "100".as_ref(),
        ],
        env,
    );
    let id = identity.fingerprint_hex();
    let mut client = daemon.client();

    // Every poll crashes the helper for 4 s: 40 polls.
    std::fs::write(&abort_file, "C_GetSlotList").expect("abort file");
    std::thread::sleep(Duration::from_secs(4));
    std::fs::remove_file(&abort_file).expect("remove abort file");
    let crashes = daemon.log().matches("module helper ended").count();
    assert!(
        (2..=6).contains(&crashes),
        "{crashes} crashes in 4 s of polls every 100 ms, expected a few with backing off:\n{}",
        daemon.log()
    );

    // Once the module stops crashing, it serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let signature = loop {
        match sign(&mut client, &id, b"after the loop") {
            Ok(signature) => break signature,
            Err(ClientError::Agent {
                code: ErrorCode::ModuleUnavailable,
                ..
            }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!(
                "no signature after the crashes stopped: {e}\n{}",
                daemon.log()
            ),
        }
    };
    assert!(verifies(&identity, b"after the loop", &signature));
}
