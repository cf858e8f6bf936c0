//! Environments in one process do not see each other's tokens, whether they
//! provision in parallel or one after another, and a process given
//! `SoftHsm::env()` sees exactly its environment.

use std::process::Command;

use p11agent_softhsm::cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use p11agent_softhsm::cryptoki::object::{Attribute, ObjectClass};
use p11agent_softhsm::{provisioning_lock, LeafSpec, Pki, SoftHsm, CONF_ENV};

fn labels(hsm: &SoftHsm) -> Vec<String> {
    let mut labels: Vec<String> = hsm
        .tokens()
        .expect("tokens")
        .into_iter()
        .map(|t| t.label)
        .collect();
    labels.sort();
    labels
}

#[test]
fn parallel_environments_stay_isolated() {
    let pki = Pki::standard().expect("pki");
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let pki = &pki;
            move || {
                let hsm = SoftHsm::new().expect("environment");
                let mut expected = Vec::new();
                for t in 0..2 {
                    let label = format!("env{n}-token{t}");
                    let token = hsm.create_token(&label, "1234", "12345678").expect("token");
                    // Interleave small provisioning sessions with the other threads.
                    for i in 0..(3 + n) {
                        token
                            .add_identity(pki, &LeafSpec::new(format!("env{n} t{t} user{i}")))
                            .expect("identity");
                    }
                    expected.push((label, 3 + n));
                }
                let inventory = hsm.inventory().expect("inventory");
                let mut seen: Vec<(String, usize)> = inventory
                    .iter()
                    .map(|t| (t.token.label.clone(), t.certificates.len()))
                    .collect();
                seen.sort();
                assert_eq!(seen, expected, "environment {n} sees only its own tokens");
                for t in &inventory {
                    for c in &t.certificates {
                        assert!(c.subject.starts_with(&format!("CN=env{n} ")), "{c:?}");
                    }
                }
                hsm
            }
        })
        .collect();
    let envs: Vec<SoftHsm> = std::thread::scope(|s| {
        let handles: Vec<_> = threads.into_iter().map(|f| s.spawn(f)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    // And afterwards, one after another, still only their own.
    for (n, hsm) in envs.iter().enumerate() {
        assert_eq!(
            labels(hsm),
            [format!("env{n}-token0"), format!("env{n}-token1")]
        );
    }
}

#[test]
fn after_finalize_a_second_environment_sees_only_its_own_tokens() {
    let a = SoftHsm::new().expect("a");
    a.create_token("only-in-a", "1234", "12345678")
        .expect("token");
    assert_eq!(labels(&a), ["only-in-a"]);

    let b = SoftHsm::new().expect("b");
    assert!(labels(&b).is_empty(), "a fresh environment has no tokens");
    b.with_pkcs11(|ctx| {
        // Only SoftHSM's one free slot.
        let slots = ctx.get_all_slots().expect("slots");
        assert_eq!(slots.len(), 1);
        assert!(!ctx
            .get_token_info(slots[0])
            .expect("info")
            .token_initialized());
        Ok(())
    })
    .expect("session");
    b.create_token("only-in-b", "1234", "12345678")
        .expect("token");
    assert_eq!(labels(&b), ["only-in-b"]);
    assert_eq!(labels(&a), ["only-in-a"]);
    // The process environment is left as it was.
    let before = std::env::var_os(CONF_ENV);
    a.tokens().expect("tokens");
    assert_eq!(std::env::var_os(CONF_ENV), before);
}

/// Something in the test process (an agent under test, say) that loads the
/// real libsofthsm2.so and keeps it initialised is neither seen nor
/// disturbed by provisioning, which works on a private copy of the module.
#[test]
fn in_process_user_of_the_real_module_is_undisturbed() {
    let a = SoftHsm::new().expect("a");
    let pki = Pki::root_only("In-process Root").expect("pki");
    let token_a = a
        .create_token("agent-side", "1234", "12345678")
        .expect("token");
    token_a
        .add_identity(&pki, &LeafSpec::new("Agent side"))
        .expect("identity");

    // The "agent": the real module, initialised on environment A.
    let agent = Pkcs11::new(a.module_path()).expect("load real module");
    {
        let _lock = provisioning_lock();
        let before = std::env::var_os(CONF_ENV);
        std::env::set_var(CONF_ENV, a.conf_path());
        agent
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("initialise");
        match before {
            Some(v) => std::env::set_var(CONF_ENV, v),
            None => std::env::remove_var(CONF_ENV),
        }
    }
    let agent_slot = agent.get_slots_with_initialized_token().expect("slots")[0];
    let agent_session = agent.open_ro_session(agent_slot).expect("session");

    // Meanwhile: provisioning another environment, several sessions.
    let b = SoftHsm::new().expect("b");
    let token_b = b
        .create_token("fixture-side", "1234", "12345678")
        .expect("token");
    token_b.add_many(&pki, 5).expect("identities");
    assert_eq!(labels(&b), ["fixture-side"]);

    // The agent's module still sees A only, and its session still works.
    let agent_labels: Vec<String> = agent
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .map(|s| {
            agent
                .get_token_info(s)
                .expect("info")
                .label()
                .trim_end()
                .to_string()
        })
        .collect();
    assert_eq!(agent_labels, ["agent-side"]);
    let certs = agent_session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .expect("find");
    assert_eq!(certs.len(), 1);
    drop(agent_session);
    agent.finalize().expect("finalize");
}

#[test]
fn a_child_process_given_env_sees_exactly_the_environment() {
    let hsm = SoftHsm::new().expect("environment");
    let token = hsm
        .create_token("for-child", "1234", "12345678")
        .expect("token");
    let pki = Pki::standard().expect("pki");
    let id = token
        .add_identity(&pki, &LeafSpec::new("Child Visible"))
        .expect("identity");

    let output = match Command::new("pkcs11-tool")
        .arg("--module")
        .arg(hsm.module_path())
        .arg("--list-objects")
        .arg("--type")
        .arg("cert")
        .env_remove(CONF_ENV)
        .envs(hsm.env())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipping: pkcs11-tool not runnable ({e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Child Visible"), "{stdout}");
    assert!(stdout.contains(&id.cert_id_hex()), "{stdout}");

    let slots = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(hsm.module_path())
        .arg("--list-slots")
        .envs(hsm.env())
        .output()
        .expect("pkcs11-tool");
    let slots = String::from_utf8_lossy(&slots.stdout);
    assert_eq!(slots.matches("token label").count(), 1, "{slots}");
    assert!(slots.contains("for-child"), "{slots}");
    assert!(
        slots.contains(&format!("{:#x}", token.slot_id())),
        "slot id {:#x} in {slots}",
        token.slot_id()
    );
}
