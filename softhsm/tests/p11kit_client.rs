//! `p11-kit-client.so` loaded in this process, initialised while the
//! server runs: a paused server makes its next call block, and resuming
//! completes that call. This is the hung module an agent meets.
//!
//! The test binary holds this one test only: the client module reads
//! `P11_KIT_SERVER_ADDRESS` from the process environment, and setting it
//! is safe only while no other test thread may read the environment.

use std::sync::mpsc;
use std::time::Duration;

use p11agent_softhsm::cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use p11agent_softhsm::{Error, P11KitServer, SoftHsm};

#[test]
fn an_initialised_client_blocks_while_the_server_is_paused() {
    let hsm = SoftHsm::new().expect("softhsm");
    hsm.create_token("in-process", "1234", "12345678")
        .expect("token");
    let server = match P11KitServer::start(&hsm) {
        Ok(server) => server,
        Err(e @ Error::P11KitNotFound(_)) => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("p11-kit server: {e}"),
    };
    for (key, value) in server.client_env() {
        std::env::set_var(key, value);
    }
    let ctx = Pkcs11::new(server.client_module()).expect("load p11-kit-client.so");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let labels = |ctx: &Pkcs11| -> Vec<String> {
        ctx.get_slots_with_token()
            .expect("C_GetSlotList")
            .into_iter()
            .map(|slot| {
                ctx.get_token_info(slot)
                    .expect("C_GetTokenInfo")
                    .label()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    };
    assert!(labels(&ctx).iter().any(|l| l == "in-process"));

    server.pause().expect("pause");
    let (tx, rx) = mpsc::channel();
    let blocked = ctx.clone();
    let call = std::thread::spawn(move || {
        let _ = tx.send(blocked.get_slots_with_token().map(|slots| slots.len()));
    });
    assert!(
        matches!(
            rx.recv_timeout(Duration::from_secs(2)),
            Err(mpsc::RecvTimeoutError::Timeout)
        ),
        "C_GetSlotList answered while the server was paused"
    );

    server.resume().expect("resume");
    let answered = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("C_GetSlotList completes after resume");
    assert!(answered.expect("C_GetSlotList") >= 1);
    call.join().expect("calling thread");
    assert!(labels(&ctx).iter().any(|l| l == "in-process"));
}
