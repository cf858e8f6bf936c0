//! A fuzz driver that runs on stable Rust: mutated and random inputs
//! through the frame decoders and the request parser the agent uses on
//! every client byte, with a fixed seed, counting executions and
//! reporting any panic or broken invariant.
//!
//! ```sh
//! cargo run --release -p p11agent-proto --example fuzz -- --iterations 1000000 --seed 1
//! ```
//!
//! cargo-fuzz needs a nightly compiler, so this driver is not guided by
//! coverage. It makes up for that with structure: it mutates a corpus of
//! real requests (bit flips, interesting bytes, insertions, deletions,
//! splices, lying length prefixes, truncations, concatenated frames) and
//! generates request-shaped JSON of random content, besides plain random
//! bytes. Each input is read as a stream of frames by the blocking and
//! the async stream readers and by a reading-ahead decoder fed in
//! pieces, which must all agree; every frame must be within the
//! limits; every body either parses into a request that survives a
//! round trip or gets a `malformed` or `unknown_request` error. The exit
//! status is 1 when any input panicked or broke an invariant; each such
//! input is printed in hex.

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use p11agent_proto::frame::{self, tokio_io, FrameDecoder, FrameError, MAX_REQUEST_FRAME};
use p11agent_proto::{decode_request, ErrorCode, Request};

/// Real requests, and near misses a client might send, as JSON bodies.
const CORPUS: &[&str] = &[
    r#"{"op":"hello","version":1,"client":"fuzz 1.0"}"#,
    r#"{"op":"hello","version":4294967295}"#,
    r#"{"op":"status"}"#,
    r#"{"op":"tokens"}"#,
    r#"{"op":"list"}"#,
    r#"{"op":"list","filter":{"subject":"CN=Alice","has_key":true,"key_type":"ec","client_auth":false}}"#,
    r#"{"op":"list","filter":{"issuer_exact":"CN=Root\\, Inc.","fingerprint":"3f:2a:9c","token":"card","present":true}}"#,
    r#"{"op":"show","id":"3f2a9c1b7d0e4a55"}"#,
    r#"{"op":"sign","id":"3f2a9c1b","scheme":"ecdsa_secp256r1_sha256","message":"AAECAwQFBgc="}"#,
    r#"{"op":"sign","id":"3f2a9c1b","scheme":"rsa_pss_rsae_sha256","message":"ICAgICAgICAgICAgICAgIA=="}"#,
    r#"{"op":"sign_digest","id":"3f2a9c1b","mechanism":"ecdsa","hash":"sha256","digest":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#,
    r#"{"op":"sign_digest","id":"3f2a9c1b","mechanism":"rsa_pss","hash":"sha512","digest":"AAE="}"#,
    r#"{"op":"login","token":"card","pin":"123456"}"#,
    r#"{"op":"login"}"#,
    r#"{"op":"logout","token":"9980f9c5a1b2c3d4"}"#,
    r#"{"op":"select","origin":"https://intranet.example:443","ca_names":["MBQxEjAQBgNVBAMMCVRlc3QgUm9vdA=="],"schemes":["ed25519","rsa_pkcs1_sha256"],"chooser":"client","id":null}"#,
    r#"{"op":"choose","origin":"intranet.example:443","id":"3f2a9c1b7d0e4a55","remember":false}"#,
    r#"{"op":"choose","origin":"https://[::1]:8443","id":null}"#,
    r#"{"op":"decisions"}"#,
    r#"{"op":"forget","origin":"https://xn--bcher-kva.example"}"#,
    r#"{"op":"forget"}"#,
    r#"{"op":"watch"}"#,
    r#"{"op":"format_disk"}"#,
    r#"{"op":"show","id":"\u0000\ud83d\ude00\n"}"#,
    r#"{"op":"list","filter":{"colour":"red"}}"#,
    r#"[{"op":"status"}]"#,
    r#"{"op":1e400}"#,
    r#""op""#,
];

/// Bytes that tend to matter to a JSON parser or a length prefix.
const INTERESTING_BYTES: &[u8] = b"\x00\x01\x7f\x80\xff{}[]\":,\\ 0-.eEtnu";

/// Length prefixes worth lying with.
const INTERESTING_LENGTHS: &[u32] = &[
    0,
    1,
    2,
    3,
    4,
    MAX_REQUEST_FRAME - 1,
    MAX_REQUEST_FRAME,
    MAX_REQUEST_FRAME + 1,
    i32::MAX as u32,
    u32::MAX,
];

/// xorshift64*: small, fast, and the same sequence for the same seed
/// everywhere, which is all a reproducible fuzz run needs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (which must not be 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Changes `data` in one of the ways a broken or hostile client would.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    match rng.below(8) {
        0 if !data.is_empty() => {
            let at = rng.below(data.len());
            data[at] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let at = rng.below(data.len());
            data[at] = *rng.pick(INTERESTING_BYTES);
        }
        2 => {
            let at = rng.below(data.len() + 1);
            let len = 1 + rng.below(8);
            let insert = if rng.below(2) == 0 {
                rng.bytes(len)
            } else {
                (0..len).map(|_| *rng.pick(INTERESTING_BYTES)).collect()
            };
            data.splice(at..at, insert);
        }
        3 if !data.is_empty() => {
            let at = rng.below(data.len());
            let len = 1 + rng.below((data.len() - at).min(16));
            data.drain(at..at + len);
        }
        4 if !data.is_empty() => {
            // Repeat a stretch: deep nesting, doubled members.
            let at = rng.below(data.len());
            let len = 1 + rng.below((data.len() - at).min(32));
            let stretch = data[at..at + len].to_vec();
            for _ in 0..1 + rng.below(64) {
                data.splice(at..at, stretch.iter().copied());
            }
        }
        5 => {
            // Splice in part of another request.
            let other = rng.pick(CORPUS).as_bytes();
            let from = rng.below(other.len());
            let at = rng.below(data.len() + 1);
            data.splice(at..at, other[from..].iter().copied());
        }
        6 if !data.is_empty() => data.truncate(rng.below(data.len())),
        _ => {
            let at = rng.below(data.len() + 1);
            data.insert(at, rng.byte());
        }
    }
}

/// Random JSON text of some depth: what the parser sees when a client
/// gets the values, not the syntax, wrong.
fn random_json(rng: &mut Rng, depth: usize, out: &mut String) {
    let choice = if depth == 0 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match choice {
        0 => out.push_str(rng.word(&["null", "true", "false"])),
        1 => out.push_str(&(rng.next() as i64 >> rng.below(64)).to_string()),
        2 => out.push_str(rng.word(&["0.5", "-1e308", "1e400", "-0", "18446744073709551616"])),
        3 | 4 => {
            let words = [
                "",
                "ed25519",
                "https://a.example",
                "3f2a9c1b",
                "card",
                "agent",
                "client",
                "\\u0000",
                "\\ud800",
                "AAEC",
                "ééé",
                "\\\"",
            ];
            out.push('"');
            out.push_str(rng.word(&words));
            out.push('"');
        }
        5 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                random_json(rng, depth - 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(rng.word(MEMBERS));
                out.push_str("\":");
                random_json(rng, depth - 1, out);
            }
            out.push('}');
        }
    }
}

/// Member names of requests and filters, and a stranger.
const MEMBERS: &[&str] = &[
    "op",
    "version",
    "client",
    "filter",
    "id",
    "scheme",
    "message",
    "token",
    "pin",
    "origin",
    "ca_names",
    "schemes",
    "chooser",
    "remember",
    "subject",
    "issuer_exact",
    "has_key",
    "present",
    "key_type",
    "colour",
];

/// A request-shaped object: a real op, members of real names, values of
/// any kind.
fn request_like(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::from("{\"op\":\"");
    out.push_str(rng.word(Request::OPS));
    out.push('"');
    for _ in 0..rng.below(5) {
        out.push_str(",\"");
        out.push_str(rng.word(MEMBERS));
        out.push_str("\":");
        random_json(rng, 3, &mut out);
    }
    out.push('}');
    out.into_bytes()
}

/// One input: a stream of bytes as a client might send it.
fn generate(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        // A corpus body, mutated, correctly framed: reaches the parser.
        0..=3 => {
            let mut body = rng.pick(CORPUS).as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                mutate(rng, &mut body);
            }
            framed(&body)
        }
        // Request-shaped JSON of random content, correctly framed.
        4 | 5 => framed(&request_like(rng)),
        // Several frames, then the whole stream mutated: prefixes break.
        6 | 7 => {
            let mut stream = Vec::new();
            for _ in 0..1 + rng.below(4) {
                stream.extend(framed(rng.pick(CORPUS).as_bytes()));
            }
            for _ in 0..rng.below(4) {
                mutate(rng, &mut stream);
            }
            stream
        }
        // A lying length prefix before a real body.
        8 => {
            let mut stream = rng.pick(INTERESTING_LENGTHS).to_be_bytes().to_vec();
            stream.extend_from_slice(rng.pick(CORPUS).as_bytes());
            stream
        }
        // Noise.
        _ => {
            let len = rng.below(300);
            rng.bytes(len)
        }
    }
}

/// How decoding one stream went: the frame bodies, then what stopped it.
type Decoded = (Vec<Vec<u8>>, String);

/// Takes frames from `next` until it fails.
fn decode_with(mut next: impl FnMut() -> Result<Vec<u8>, FrameError>) -> Decoded {
    let mut bodies = Vec::new();
    loop {
        match next() {
            Ok(body) => bodies.push(body),
            Err(e) => return (bodies, e.to_string()),
        }
    }
}

fn decode_blocking(input: &[u8]) -> Decoded {
    let mut rest = input;
    decode_with(|| frame::read_body(&mut rest, MAX_REQUEST_FRAME))
}

fn decode_async(runtime: &tokio::runtime::Runtime, input: &[u8]) -> Decoded {
    let mut rest = input;
    decode_with(|| runtime.block_on(tokio_io::read_body(&mut rest, MAX_REQUEST_FRAME)))
}

/// A stream that hands out at most `step` bytes a read, as a socket may.
struct Trickle<'a> {
    rest: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// The way a client (and the agent) reads: one decoder for the stream,
/// reading ahead, the bytes arriving in pieces. The piece size comes
/// from the input, not the generator, so that a seed gives the same
/// inputs as before this decoder was fuzzed.
fn decode_buffered(input: &[u8]) -> Decoded {
    let mut stream = Trickle {
        rest: input,
        step: 1 + input.len() % 13,
    };
    let mut decoder = FrameDecoder::new(MAX_REQUEST_FRAME);
    decode_with(|| Ok(decoder.read_frame(&mut stream, false)?.to_vec()))
}

/// What the run saw, for the report.
#[derive(Default)]
struct Tally {
    executions: u64,
    frames: u64,
    bytes: u64,
    requests: BTreeMap<&'static str, u64>,
    refused: BTreeMap<String, u64>,
    stream_ends: BTreeMap<&'static str, u64>,
}

/// Runs one input through both decoders and the parser; an invariant it
/// breaks is an `Err` with the reason.
fn execute(
    runtime: &tokio::runtime::Runtime,
    input: &[u8],
    tally: &mut Tally,
) -> Result<(), String> {
    let blocking = decode_blocking(input);
    let asynchronous = decode_async(runtime, input);
    if blocking != asynchronous {
        return Err(format!(
            "decoders disagree: blocking {blocking:?}, async {asynchronous:?}"
        ));
    }
    let buffered = decode_buffered(input);
    if blocking != buffered {
        return Err(format!(
            "decoders disagree: blocking {blocking:?}, buffered {buffered:?}"
        ));
    }
    let (bodies, end) = blocking;
    let end = stream_end(&end);
    *tally.stream_ends.entry(end).or_default() += 1;
    for body in &bodies {
        tally.frames += 1;
        if body.is_empty() || body.len() > MAX_REQUEST_FRAME as usize {
            return Err(format!("frame of {} bytes handed out", body.len()));
        }
        match decode_request(body) {
            Ok(request) => {
                *tally.requests.entry(request.op()).or_default() += 1;
                let again = frame::encode(&request, MAX_REQUEST_FRAME)
                    .map_err(|e| format!("cannot encode {request:?}: {e}"))?;
                let back: Request = frame::read(&mut &again[..], MAX_REQUEST_FRAME)
                    .map_err(|e| format!("cannot decode re-encoded {request:?}: {e}"))?;
                if back != request {
                    return Err(format!("round trip changed {request:?} into {back:?}"));
                }
            }
            Err(e) if matches!(e.code, ErrorCode::Malformed | ErrorCode::UnknownRequest) => {
                *tally.refused.entry(e.code.to_string()).or_default() += 1;
            }
            Err(e) => return Err(format!("unexpected error code {}: {}", e.code, e.message)),
        }
    }
    Ok(())
}

/// The kind of error that ended a stream, by its message (the errors
/// themselves cannot be compared across the two decoders).
fn stream_end(message: &str) -> &'static str {
    let kinds: [(FrameError, &'static str); 3] = [
        (FrameError::Closed, "closed"),
        (FrameError::Truncated, "truncated"),
        (FrameError::Empty, "empty"),
    ];
    kinds
        .into_iter()
        .find(|(e, _)| e.to_string() == message)
        .map_or(
            if message.contains("exceeds the maximum") {
                "too_large"
            } else {
                "other"
            },
            |(_, name)| name,
        )
}

/// `--iterations N` and `--seed S`.
fn arguments() -> Result<(u64, u64), String> {
    let mut iterations = 1_000_000;
    let mut seed = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--iterations" => &mut iterations,
            "--seed" => &mut seed,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; use --iterations N --seed S"
                ))
            }
        };
        *target = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{arg} needs a number"))?;
    }
    Ok((iterations, seed))
}

fn main() -> ExitCode {
    let (iterations, seed) = match arguments() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fuzz: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Panics are counted and reported with their input, not printed as
    // they happen.
    panic::set_hook(Box::new(|_| {}));

    let run = run(&runtime, iterations, seed);
    let tally = &run.tally;
    println!("fuzz: seed {seed}");
    println!(
        "fuzz: {} executions in {:.1} s ({:.0}/s), {} input bytes, {} frames decoded",
        tally.executions,
        run.elapsed.as_secs_f64(),
        tally.executions as f64 / run.elapsed.as_secs_f64().max(1e-9),
        tally.bytes,
        tally.frames,
    );
    println!("fuzz: streams ended by {:?}", tally.stream_ends);
    println!("fuzz: requests parsed {:?}", tally.requests);
    println!("fuzz: bodies refused {:?}", tally.refused);
    println!("fuzz: {} panics or broken invariants", run.failures);
    if run.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What a run did.
struct Run {
    tally: Tally,
    /// Inputs that panicked or broke an invariant.
    failures: u64,
    elapsed: Duration,
}

/// Runs `iterations` inputs from `seed`, printing the first failures
/// with their input.
fn run(runtime: &tokio::runtime::Runtime, iterations: u64, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut failures = 0u64;
    let started = Instant::now();
    for _ in 0..iterations {
        let input = generate(&mut rng);
        tally.executions += 1;
        tally.bytes += input.len() as u64;
        let outcome =
            panic::catch_unwind(AssertUnwindSafe(|| execute(runtime, &input, &mut tally)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(broken)) => broken,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("panic: {message}")
            }
        };
        failures += 1;
        if failures <= 20 {
            println!("FAILURE {failures}: {failure}\n  input: {}", hex(&input));
        }
    }
    Run {
        tally,
        failures,
        elapsed: started.elapsed(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short run in the test suite (`cargo test --all-targets`, as
/// `scripts/test` runs it), so that the driver keeps working and a
/// regression the first inputs find shows up there too.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_finds_nothing() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let run = run(&runtime, 20_000, 1);
        assert_eq!(run.failures, 0);
        assert_eq!(run.tally.executions, 20_000);
        assert!(run.tally.frames > 10_000, "inputs reach the parser");
        assert!(
            run.tally.requests.len() == Request::OPS.len(),
            "every op parsed at least once: {:?}",
            run.tally.requests
        );
    }
}
