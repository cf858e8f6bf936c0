//! Hostile and broken input against a live daemon: every bad frame gets
//! an error or a closed connection, and the daemon and its other
//! connections carry on.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use p11agent_proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{ErrorCode, Filter, Request, Response, PROTOCOL_VERSION};
use p11agent_softhsm::{LeafSpec, Pki, SoftHsm};
use p11agent_tests::Daemon;

fn daemon_with_one_identity() -> (SoftHsm, Daemon) {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Protocol Test Root").expect("pki");
    let token = hsm
        .create_token("proto", "1234", "12345678")
        .expect("token");
    token
        .add_identity(&pki, &LeafSpec::new("Protocol User"))
        .expect("identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    (hsm, daemon)
}

fn connect(daemon: &Daemon) -> UnixStream {
    let s = UnixStream::connect(daemon.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

fn send_raw(s: &mut UnixStream, bytes: &[u8]) {
    s.write_all(bytes).expect("write");
}

fn frame_of(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn read_response(s: &mut UnixStream) -> Option<Response> {
    match frame::read::<_, Response>(s, MAX_RESPONSE_FRAME) {
        Ok(r) => Some(r),
        Err(frame::FrameError::Closed) => None,
        Err(e) => panic!("unexpected read error: {e}"),
    }
}

fn error_code(r: Option<Response>) -> Option<ErrorCode> {
    match r {
        Some(Response::Error { code, .. }) => Some(code),
        Some(other) => panic!("expected an error, got {other:?}"),
        None => None,
    }
}

fn hello(s: &mut UnixStream) {
    frame::write(
        s,
        &Request::Hello {
            version: PROTOCOL_VERSION,
            client: None,
        },
        MAX_REQUEST_FRAME,
    )
    .expect("hello");
    assert!(matches!(read_response(s), Some(Response::Hello { .. })));
}

/// After the connection answered an error and (maybe) stayed open,
/// whether it still serves a real request.
fn still_serves(s: &mut UnixStream) -> bool {
    if frame::write(s, &Request::Tokens, MAX_REQUEST_FRAME).is_err() {
        return false;
    }
    matches!(read_response(s), Some(Response::Tokens { .. }))
}

/// Whether the daemon closed the connection: end of stream or a reset,
/// but not a read timeout (a daemon still waiting is not a close).
fn closed(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn assert_healthy(daemon: &mut Daemon) {
    assert!(daemon.is_running(), "daemon died:\n{}", daemon.log());
    let identities = daemon.client().list(&Filter::default()).expect("list");
    assert_eq!(identities.len(), 1, "normal request after hostile input");
    assert!(identities[0].subject.contains("Protocol User"));
}

#[test]
fn bad_frames_get_errors_or_close_and_harm_nothing() {
    let (_hsm, mut daemon) = daemon_with_one_identity();
    // A well-behaved client holds a connection open across all of this.
    let mut bystander = daemon.client();

    // Garbage that is not JSON: an error, and the connection still works.
    let mut s = connect(&daemon);
    hello(&mut s);
    send_raw(&mut s, &frame_of(b"\x00\xffnot json at all{{{"));
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::Malformed)
    );
    assert!(still_serves(&mut s));

    // JSON that is not a request.
    send_raw(&mut s, &frame_of(br#"[1,2,3]"#));
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::Malformed)
    );
    // A known op with members it does not have.
    send_raw(
        &mut s,
        &frame_of(br#"{"op":"list","filter":{"colour":"red"}}"#),
    );
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::Malformed)
    );
    // An op nobody knows.
    send_raw(&mut s, &frame_of(br#"{"op":"format_disk"}"#));
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::UnknownRequest)
    );
    // An empty frame.
    send_raw(&mut s, &0u32.to_be_bytes());
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::Malformed)
    );
    assert!(still_serves(&mut s));
    assert_healthy(&mut daemon);

    // Oversized: the announced length exceeds the limit; error then close.
    let mut s = connect(&daemon);
    hello(&mut s);
    send_raw(&mut s, &(MAX_REQUEST_FRAME + 1).to_be_bytes());
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::FrameTooLarge)
    );
    assert!(closed(&mut s));
    // A 4 GiB announcement must not make the daemon allocate it.
    let mut s = connect(&daemon);
    send_raw(&mut s, &u32::MAX.to_be_bytes());
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::FrameTooLarge)
    );
    assert_healthy(&mut daemon);

    // Truncated: a frame that promises more than it sends, then EOF.
    let mut s = connect(&daemon);
    hello(&mut s);
    send_raw(&mut s, &100u32.to_be_bytes());
    send_raw(&mut s, br#"{"op":"li"#);
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(read_response(&mut s), None, "truncated frame gets a close");
    // Half a length prefix, then EOF.
    let mut s = connect(&daemon);
    send_raw(&mut s, &[0, 0]);
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(read_response(&mut s), None);
    assert_healthy(&mut daemon);

    // Requests before the handshake, and a version nobody speaks.
    let mut s = connect(&daemon);
    frame::write(&mut s, &Request::Status, MAX_REQUEST_FRAME).expect("write");
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::HandshakeRequired)
    );
    frame::write(
        &mut s,
        &Request::Hello {
            version: 99,
            client: None,
        },
        MAX_REQUEST_FRAME,
    )
    .expect("write");
    assert_eq!(
        error_code(read_response(&mut s)),
        Some(ErrorCode::UnsupportedVersion)
    );
    assert!(closed(&mut s));

    // Many connections that hang up at once, some mid-frame.
    for i in 0..200u32 {
        let mut s = connect(&daemon);
        if i % 2 == 0 {
            send_raw(&mut s, &[0, 0, 1]);
        }
    }

    assert_healthy(&mut daemon);
    let status = bystander
        .status()
        .expect("bystander connection still served");
    assert_eq!(status.identities, 1);
}
