//! The extra socket for remote shells (`daemon --extra-socket`, meant
//! for `ssh -R`): signing works on it; what changes the agent's state is
//! refused with `remote_refused`; every request on it is audited as
//! remote. The main socket is not restricted.

use p11agent_client::proto::{ErrorCode, Pin, Request, Response, Scheme};
use p11agent_client::{Client, ClientError};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm};
use p11agent_tests::{p256_verifies, pin_file, tls13_input, Daemon};

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

fn refused(answer: Result<Response, ClientError>) -> String {
    match answer {
        Ok(Response::Error {
            code: ErrorCode::RemoteRefused,
            message,
        }) => message,
        other => panic!("expected remote_refused, got {other:?}"),
    }
}

#[test]
fn the_extra_socket_signs_refuses_state_changes_and_audits_as_remote() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Remote Root").expect("pki");
    let identity = hsm
        .create_token("remote", PIN, SO_PIN)
        .expect("token")
        .add_identity(&pki, &LeafSpec::new("remote user").key(KeyAlg::EcP256))
        .expect("identity");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = dir.path().join("extra").join("agent.sock");
    let audit = dir.path().join("audit.log");
    let pins = pin_file(dir.path(), PIN);
    let daemon = Daemon::start_with_args(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pins.as_os_str(),
            "--extra-socket".as_ref(),
            extra.as_os_str(),
            "--audit-log".as_ref(),
            audit.as_os_str(),
        ],
        hsm.env(),
    );
    let id = identity.fingerprint_hex();

    let mut remote = Client::connect(&extra).expect("connect to the extra socket");
    let listed = remote.list(&Default::default()).expect("list");
    assert!(listed.iter().any(|i| i.id == id));
    let signature = remote
        .sign(&id, Scheme::EcdsaSecp256r1Sha256, &tls13_input(b"remote"))
        .expect("sign on the extra socket");
    assert!(p256_verifies(
        &identity.public_key_spki,
        b"remote",
        &signature
    ));
    // Purpose binding holds there as everywhere.
    match remote.sign(&id, Scheme::EcdsaSecp256r1Sha256, b"a document") {
        Err(ClientError::Agent { code, .. }) => assert_eq!(code, ErrorCode::PurposeRefused),
        other => panic!("a document was signed: {other:?}"),
    }

    for request in [
        Request::Login {
            token: None,
            pin: Some(Pin::new(PIN.to_owned())),
        },
        Request::Logout { token: None },
        Request::Forget { origin: None },
        Request::Decisions,
        Request::Watch,
    ] {
        let message = refused(remote.call(&request));
        assert!(message.contains("extra socket"), "{message}");
    }
    assert!(
        matches!(remote.call(&Request::Decisions), Ok(Response::Error { .. })),
        "the connection stays usable"
    );

    // The agent's own socket is not restricted.
    let mut local = daemon.client();
    assert!(matches!(
        local.call(&Request::Decisions),
        Ok(Response::Decisions { .. })
    ));

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line"))
        .collect();
    let remote_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["peer"]["remote"] == true)
        .collect();
    assert!(
        remote_lines
            .iter()
            .any(|l| l["action"] == "sign" && l["result"] == "ok"),
        "{lines:#?}"
    );
    for op in [
        "list",
        "sign",
        "login",
        "logout",
        "forget",
        "decisions",
        "watch",
    ] {
        assert!(
            remote_lines
                .iter()
                .any(|l| l["action"] == "remote_request" && l["detail"] == op),
            "no remote audit line for {op}: {lines:#?}"
        );
    }
    assert!(
        remote_lines
            .iter()
            .any(|l| l["detail"] == "login" && l["result"] == "remote_refused"),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["peer"]["remote"] != true && l["detail"] == "decisions"),
        "a local request was audited as a remote one"
    );
}
