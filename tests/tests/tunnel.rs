//! `p11agent tunnel`: curl speaking plain HTTP to a local port reaches
//! `openssl s_server` and nginx, which require a client certificate,
//! through the agent's mutual TLS; a server that refuses the certificate is reported
//! on the tunnel's stderr and the local connection closed.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use p11agent_client::proto::{Pin, Request, Response};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, SoftHsm};
use p11agent_tests::browser::Nginx;
use p11agent_tests::{describe, free_port, p11agent_bin, Daemon, OpensslServer};

const PIN: &str = "1234";
const SO_PIN: &str = "12345678";

/// A running `p11agent tunnel`, its stderr in a file; killed on drop.
struct Tunnel {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Tunnel {
    fn start(daemon: &Daemon, dir: &Path, server_port: u16, extra: &[&str]) -> Tunnel {
        let port = free_port();
        let log = dir.join(format!("tunnel.{port}.log"));
        let child = Command::new(p11agent_bin())
            .arg("tunnel")
            .arg("--socket")
            .arg(daemon.socket())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg(format!("localhost:{server_port}"))
            .args(extra)
            .env_remove("P11AGENT_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("run p11agent tunnel");
        let tunnel = Tunnel { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the tunnel never listened:\n{}",
                tunnel.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        tunnel
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn curl(&self) -> std::process::Output {
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30"])
            .arg(format!("http://127.0.0.1:{}/", self.port))
            .output()
            .expect("run curl")
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn curl_over_plain_http_reaches_a_server_that_requires_our_certificate() {
    let hsm = SoftHsm::new().expect("softhsm");
    let pki = Pki::new("Tunnel Root").expect("pki");
    let other = Pki::new("Some Other Root").expect("other pki");
    let token = hsm.create_token("tunnel", PIN, SO_PIN).expect("token");
    let identity = token
        .add_identity(&pki, &LeafSpec::new("Tunnel User").key(KeyAlg::EcP256))
        .expect("identity");
    let daemon = Daemon::start(hsm.module_path(), hsm.env());
    let answer = daemon
        .client()
        .call(&Request::Login {
            token: Some("tunnel".into()),
            pin: Some(Pin::new(PIN.to_owned())),
        })
        .expect("login");
    assert!(matches!(answer, Response::LoggedIn { .. }), "{answer:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let server_cert = pki.localhost_server().expect("server certificate");
    std::fs::write(dir.path().join("srv.pem"), &server_cert.chain_pem).expect("srv.pem");
    std::fs::write(dir.path().join("srv.key"), &server_cert.key_pem).expect("srv.key");
    std::fs::write(dir.path().join("root.pem"), pki.root_pem()).expect("root.pem");
    std::fs::write(dir.path().join("other.pem"), other.root_pem()).expect("other.pem");
    let ca = dir.path().join("root.pem");
    let ca = ca.to_str().expect("utf-8 path");
    let id = identity.fingerprint_hex();

    // A server that accepts certificates of our CA: the page it serves
    // names our certificate.
    let accepting = OpensslServer::start(
        dir.path(),
        &["-CAfile", ca, "-Verify", "1", "-verify_return_error"],
    );
    let tunnel = Tunnel::start(
        &daemon,
        dir.path(),
        accepting.port(),
        &["--ca-file", ca, "--id", &id],
    );
    for _ in 0..2 {
        let out = tunnel.curl();
        assert!(
            out.status.success(),
            "{}\n--- tunnel\n{}\n--- s_server\n{}",
            describe(&out),
            tunnel.log(),
            accepting.log()
        );
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.contains("CN=Tunnel User") || page.contains("CN = Tunnel User"),
            "s_server did not see our certificate:\n{page}"
        );
    }

    // nginx with ssl_verify_client on answers with the subject it
    // verified.
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir).expect("nginx dir");
    let nginx = Nginx::start(
        &nginx_dir,
        &server_cert.chain_pem,
        &server_cert.key_pem,
        &pki.root_pem(),
    );
    let tunnel_to_nginx = Tunnel::start(
        &daemon,
        dir.path(),
        nginx.port(),
        &["--ca-file", ca, "--id", &id],
    );
    let out = tunnel_to_nginx.curl();
    assert!(
        out.status.success(),
        "{}\n--- tunnel\n{}\n--- nginx\n{}",
        describe(&out),
        tunnel_to_nginx.log(),
        nginx.log()
    );
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains("CN=Tunnel User"),
        "nginx did not verify us: {page}"
    );

    // A server that only takes another CA's certificates refuses ours:
    // the local connection closes, and the tunnel says why.
    let other_ca = dir.path().join("other.pem");
    let refusing = OpensslServer::start(
        dir.path(),
        &[
            "-CAfile",
            other_ca.to_str().expect("utf-8 path"),
            "-Verify",
            "1",
            "-verify_return_error",
        ],
    );
    let tunnel = Tunnel::start(
        &daemon,
        dir.path(),
        refusing.port(),
        &["--ca-file", ca, "--id", &id],
    );
    let mut local = std::net::TcpStream::connect(("127.0.0.1", tunnel.port)).expect("connect");
    local
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    std::io::Write::write_all(&mut local, b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let mut got = Vec::new();
    let _ = local.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("Tunnel User"),
        "a refusing server answered"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tunnel.log().contains("refused the client certificate") {
        assert!(
            Instant::now() < deadline,
            "the tunnel did not say the certificate was refused:\n{}",
            tunnel.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
