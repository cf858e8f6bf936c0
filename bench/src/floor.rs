//! The floor of the `sign` group: a blocking round trip over a Unix
//! socket between two processes, of the sizes of a P-256 `sign` request
//! and its `signature` response in the agent's protocol, with nothing
//! done on either side but reading and writing them.
//!
//! No server in another process answers a request of that size faster
//! than this on the same machine, so it is what a signing agent cannot
//! get below: the agent's latency minus the signature (the direct row)
//! minus this round trip is what the agent itself adds (`own_us`), and
//! the echo server's CPU time per round trip is the least a serving
//! process spends.
//!
//! The echo server is this program again (`p11agent-bench echo`), a
//! thread per connection; the worker's clients use std's blocking
//! `UnixStream`, as the agent's blocking client does.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use p11agent_client::proto::frame::{self, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_client::proto::{Request, Response, Scheme};
use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::harness::{self, RunStats, Timing};
use crate::signing::certificate_verify_message;

/// The name of the floor's rows.
pub(crate) const NAME: &str = "p256_size_echo";

/// The longest DER encoding of a P-256 ECDSA signature: `r` and `s` of
/// 32 bytes, each with a leading zero, in a SEQUENCE.
const P256_DER_SIGNATURE: usize = 2 + 2 * (2 + 33);

/// What the echo server prints on stdout once it listens.
const LISTENING: &str = "listening";

/// The bytes of one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sizes {
    /// Sent by the client: a whole request frame.
    pub request: usize,
    /// Answered by the server: a whole response frame.
    pub reply: usize,
}

/// The frames of a P-256 `sign` by identity `id` (its 64 hex digits)
/// over the message every signing row signs, and of its answer, as the
/// agent's client and the agent encode them.
pub(crate) fn p256_sign_sizes(id: &str) -> Result<Sizes, BenchError> {
    let base64 = base64::engine::general_purpose::STANDARD;
    let request = Request::Sign {
        id: id.to_owned(),
        scheme: Scheme::EcdsaSecp256r1Sha256,
        message: base64.encode(certificate_verify_message()),
    };
    let response = Response::Signature {
        signature: base64.encode([0u8; P256_DER_SIGNATURE]),
    };
    Ok(Sizes {
        request: frame::encode(&request, MAX_REQUEST_FRAME)?.len(),
        reply: frame::encode(&response, MAX_RESPONSE_FRAME)?.len(),
    })
}

/// A running echo server, killed on drop.
pub(crate) struct EchoServer {
    child: Child,
}

impl EchoServer {
    /// Starts `p11agent-bench echo` on `socket` and waits until it
    /// listens.
    pub(crate) fn start(socket: &Path, sizes: Sizes) -> Result<EchoServer, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::io("locating", "the benchmark executable", e))?;
        let child = Command::new(&exe)
            .arg("echo")
            .arg("--socket")
            .arg(socket)
            .arg("--request-size")
            .arg(sizes.request.to_string())
            .arg("--reply-size")
            .arg(sizes.reply.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::io("starting", &exe, e))?;
        // Owned before anything can fail, so that drop stops it.
        let mut server = EchoServer { child };
        let stdout = server
            .child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup("the echo server has no stdout".into()))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| BenchError::io("reading from", "the echo server", e))?;
        if line.trim_end() != LISTENING {
            return Err(BenchError::Setup(format!(
                "the echo server did not start on {}",
                socket.display()
            )));
        }
        Ok(server)
    }

    /// Its process id, whose CPU time the floor's rows report.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        // Nothing to clean up: its socket is in the bed's directory.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The echo server's side (`p11agent-bench echo`): listens on `socket`,
/// says so on stdout, and answers every `sizes.request` bytes a
/// connection sends with `sizes.reply` bytes, a thread per connection,
/// until it is killed.
pub(crate) fn serve(socket: &Path, sizes: Sizes) -> Result<(), BenchError> {
    let listener =
        UnixListener::bind(socket).map_err(|e| BenchError::io("listening on", socket, e))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{LISTENING}")
        .and_then(|()| stdout.flush())
        .map_err(|e| BenchError::io("writing", "stdout", e))?;
    for stream in listener.incoming() {
        let stream = stream.map_err(|e| BenchError::io("accepting on", socket, e))?;
        std::thread::spawn(move || echo(stream, sizes));
    }
    Ok(())
}

/// One connection, until the client closes it.
fn echo(mut stream: UnixStream, sizes: Sizes) {
    let mut request = vec![0u8; sizes.request];
    let reply = vec![b'x'; sizes.reply];
    while stream.read_exact(&mut request).is_ok() && stream.write_all(&reply).is_ok() {}
}

/// The worker's side: `timing.clients` threads, each on a connection of
/// its own, writing a request and reading the whole reply in a loop.
pub(crate) fn run(
    socket: &Path,
    sizes: Sizes,
    timing: &Timing,
    server_pid: Option<u32>,
) -> Result<RunStats, BenchError> {
    harness::run_metered(timing, server_pid, |_| {
        let mut stream =
            UnixStream::connect(socket).map_err(|e| BenchError::io("connecting to", socket, e))?;
        let request = vec![b'x'; sizes.request];
        let mut reply = vec![0u8; sizes.reply];
        Ok(move || {
            stream
                .write_all(&request)
                .and_then(|()| stream.read_exact(&mut reply))
                .map_err(|e| format!("echo: {e}"))
        })
    })
}

/// Where the echo server listens: next to the agent's socket, in the
/// bed's directory (short enough for a socket path).
pub(crate) fn socket_beside(agent_socket: &Path) -> PathBuf {
    agent_socket.with_file_name("floor.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sizes_are_those_of_a_p256_sign_and_its_answer() {
        let id = "ab".repeat(32);
        let sizes = p256_sign_sizes(&id).expect("sizes");
        // 4-byte prefix, the JSON object around the id, scheme and the
        // base64 of the 130-byte message (176 characters).
        let message_b64 = 4 * 130usize.div_ceil(3);
        assert_eq!(message_b64, 176);
        let request_json = format!(
            r#"{{"op":"sign","id":"{id}","scheme":"ecdsa_secp256r1_sha256","message":"{}"}}"#,
            "A".repeat(message_b64)
        );
        assert_eq!(sizes.request, 4 + request_json.len());
        let reply_json = format!(r#"{{"type":"signature","signature":"{}"}}"#, "A".repeat(96));
        assert_eq!(sizes.reply, 4 + reply_json.len());
    }

    #[test]
    fn the_echo_answers_each_request_with_a_reply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("echo.sock");
        let sizes = Sizes {
            request: 300,
            reply: 100,
        };
        let listener = UnixListener::bind(&socket).expect("bind");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            echo(stream, sizes);
        });
        let mut client = UnixStream::connect(&socket).expect("connect");
        for _ in 0..3 {
            client.write_all(&[1; 300]).expect("request");
            let mut reply = [0; 100];
            client.read_exact(&mut reply).expect("reply");
            assert_eq!(reply, [b'x'; 100]);
        }
        drop(client);
        server.join().expect("the echo ends when the client closes");
    }
}
