//! Hostile clients against a live daemon: slow ones, a thousand at once,
//! lying length prefixes, frames cut short, random bytes, and requests
//! sent without reading the answers.
//!
//! Throughout, a normal client (the "bystander") keeps asking for
//! `status` and `list` and must be answered every time; afterwards the
//! daemon's resident memory and open files must come back to near where
//! they were. Every test prints its figures (`cargo test -p
//! p11agent-tests --test hostile -- --nocapture` shows them); they are
//! recorded in docs/SECURITY.md.

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p11agent_client::Client;
use p11agent_proto::frame::{self, FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use p11agent_proto::{Filter, Request, Response, PROTOCOL_VERSION};
use p11agent_softhsm::{LeafSpec, Pki, SoftHsm};
use p11agent_tests::Daemon;

/// The agent's `MAX_CONNECTIONS` (this crate does not link the agent).
const MAX_CONNECTIONS: usize = 256;

/// How far above its baseline the daemon's resident memory may stay once
/// the hostile clients are gone: generous, since the allocator keeps
/// some freed memory for reuse rather than returning it.
const RSS_SLACK_KIB: u64 = 16 * 1024;

/// The frame timeout the daemons here run with, instead of 10 s.
const FRAME_TIMEOUT_MS: u64 = 1000;

/// A daemon serving one SoftHSM token with one identity.
struct Agent {
    daemon: Daemon,
    _hsm: SoftHsm,
}

impl Agent {
    fn start(extra_env: &[(&str, &str)]) -> Agent {
        let hsm = SoftHsm::new().expect("softhsm");
        let pki = Pki::new("Hostile Test Root").expect("pki");
        let token = hsm
            .create_token("hostile", "1234", "12345678")
            .expect("token");
        token
            .add_identity(&pki, &LeafSpec::new("Hostile Test User"))
            .expect("identity");
        let mut env = hsm.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), OsString::from(v))),
        );
        let daemon = Daemon::start(hsm.module_path(), env);
        Agent { daemon, _hsm: hsm }
    }

    fn socket(&self) -> &Path {
        self.daemon.socket()
    }

    fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Serves enough ordinary clients to grow the daemon to its working
    /// size (runtime threads, allocator arenas), then measures it: the
    /// baseline is a warm agent, as one that has run for a while is.
    fn warm_baseline(&self) -> Usage {
        for _ in 0..200 {
            let mut client = self.daemon.client();
            client.status().expect("status");
            client.list(&Filter::default()).expect("list");
        }
        thread::sleep(Duration::from_millis(500));
        Usage::of(self.pid())
    }

    /// Waits (up to 20 s) for the daemon to come back within
    /// `RSS_SLACK_KIB` of `baseline` and to hold no more open files than
    /// it did then, and asserts that it has; returns what it uses then.
    fn assert_recovers(&mut self, baseline: Usage) -> Usage {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut now = Usage::of(self.pid());
        while (now.rss_kib > baseline.rss_kib + RSS_SLACK_KIB || now.fds > baseline.fds)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(250));
            now = Usage::of(self.pid());
        }
        assert!(
            self.daemon.is_running(),
            "daemon died:\n{}",
            self.daemon.log()
        );
        assert!(
            now.rss_kib <= baseline.rss_kib + RSS_SLACK_KIB,
            "RSS stayed at {} KiB, baseline {} KiB",
            now.rss_kib,
            baseline.rss_kib
        );
        assert!(
            now.fds <= baseline.fds,
            "{} open files, {} before",
            now.fds,
            baseline.fds
        );
        self.assert_serves();
        now
    }

    /// A fresh client is served `status` and `list`.
    fn assert_serves(&self) {
        let mut client = self.daemon.client();
        assert_eq!(client.status().expect("status").identities, 1);
        let listed = client.list(&Filter::default()).expect("list");
        assert!(listed[0].subject.contains("Hostile Test User"));
    }
}

/// What the daemon holds: resident memory and open files.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc/PID/fd")
            .count();
        Usage { rss_kib, fds }
    }
}

/// A normal client asking `status` and `list` every 20 ms on one
/// connection (reconnecting, as the library does, when the agent closed
/// it) until told to stop.
struct Bystander {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Served>,
}

/// What the bystander saw.
#[derive(Debug)]
struct Served {
    calls: u32,
    failures: Vec<String>,
    slowest: Duration,
}

impl Bystander {
    fn start(socket: &Path) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let socket: PathBuf = socket.to_owned();
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut served = Served {
                calls: 0,
                failures: Vec::new(),
                slowest: Duration::ZERO,
            };
            let mut client = Client::connect(&socket).expect("bystander connects");
            while !flag.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let answer = client.status().and_then(|status| {
                    client
                        .list(&Filter::default())
                        .map(|listed| (status, listed))
                });
                served.slowest = served.slowest.max(asked.elapsed());
                match answer {
                    Ok((status, listed)) if status.identities == 1 && listed.len() == 1 => {
                        served.calls += 2;
                    }
                    Ok(other) => served.failures.push(format!("wrong answer {other:?}")),
                    Err(e) => served.failures.push(e.to_string()),
                }
                thread::sleep(Duration::from_millis(20));
            }
            served
        });
        Bystander { stop, thread }
    }

    /// Stops the bystander and asserts it was served every time.
    fn assert_served(self) -> Served {
        self.stop.store(true, Ordering::Relaxed);
        let served = self.thread.join().expect("bystander thread");
        assert!(
            served.failures.is_empty(),
            "the normal client was failed: {:?}",
            served.failures
        );
        assert!(served.calls > 0, "the normal client was never answered");
        served
    }
}

fn connect(socket: &Path) -> UnixStream {
    let s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn hello(s: &mut UnixStream) {
    frame::write(
        s,
        &Request::Hello {
            version: PROTOCOL_VERSION,
            client: Some("hostile".into()),
        },
        MAX_REQUEST_FRAME,
    )
    .expect("hello");
    match frame::read::<_, Response>(s, MAX_RESPONSE_FRAME) {
        Ok(Response::Hello { .. }) => {}
        other => panic!("no hello answer: {other:?}"),
    }
}

/// When the daemon closed `s` (end of stream or reset), waiting at most
/// `limit`; `None` if it was still open then. Data is read and ignored.
fn closed_within(s: &mut UnixStream, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(Instant::now()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether the daemon has closed `s`, looking without waiting.
fn closed_now(mut s: &UnixStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    };
    s.set_nonblocking(false).expect("blocking");
    closed
}

fn raise_open_file_limit(want: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard).expect("setrlimit");
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn slow_loris_clients_are_cut_off_at_the_frame_deadline() {
    let timeout = FRAME_TIMEOUT_MS.to_string();
    let mut agent = Agent::start(&[("P11AGENT_FRAME_TIMEOUT_MS", &timeout)]);
    let baseline = agent.warm_baseline();
    let bystander = Bystander::start(agent.socket());

    // Sixty clients stop inside a frame: two bytes of a length prefix,
    // three, or a whole prefix and part of the body; some after a
    // handshake, some before.
    let mut lorises = Vec::new();
    for i in 0..60 {
        let mut s = connect(agent.socket());
        if i % 2 == 0 {
            hello(&mut s);
        }
        let partial: Vec<u8> = match i % 3 {
            0 => vec![0, 0],
            1 => vec![0, 0, 1],
            _ => {
                let mut v = 100u32.to_be_bytes().to_vec();
                v.extend_from_slice(br#"{"op":"li"#);
                v
            }
        };
        s.write_all(&partial).expect("partial frame");
        lorises.push((s, Instant::now()));
    }
    // One more sends a byte every 250 ms: busy, but its frame would take
    // 10 s, and the deadline is for the frame, not between bytes.
    let mut trickle = connect(agent.socket());
    hello(&mut trickle);
    let mut trickle_writer = trickle.try_clone().expect("clone");
    let trickle_started = Instant::now();
    let trickler = thread::spawn(move || {
        let frame = framed(br#"{"op":"list","filter":{"subject":"Hostile"}}"#);
        for byte in frame {
            if trickle_writer.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(250));
        }
    });
    // And a connection that says hello and then nothing is idle, not
    // slow: the frame deadline does not apply to it.
    let mut idle = connect(agent.socket());
    hello(&mut idle);

    let mut cut_after = Vec::new();
    for (s, started) in &mut lorises {
        let cut = closed_within(s, Duration::from_secs(10)).expect("slow client cut off");
        cut_after.push(cut.duration_since(*started));
    }
    let trickle_cut = closed_within(&mut trickle, Duration::from_secs(10))
        .expect("trickling client cut off")
        .duration_since(trickle_started);
    trickler.join().expect("trickler");
    let earliest = cut_after.iter().min().copied().unwrap_or_default();
    let latest = cut_after.iter().max().copied().unwrap_or_default();
    let deadline = Duration::from_millis(FRAME_TIMEOUT_MS);
    assert!(
        earliest >= deadline - Duration::from_millis(100),
        "cut before the deadline: {earliest:?}"
    );
    assert!(
        latest <= deadline + Duration::from_secs(3),
        "cut late: {latest:?}"
    );
    assert!(
        trickle_cut >= deadline - Duration::from_millis(100)
            && trickle_cut <= deadline + Duration::from_secs(3),
        "trickling client cut after {trickle_cut:?}"
    );
    assert!(
        closed_within(&mut idle, Duration::from_millis(500)).is_none(),
        "an idle connection is not a slow one"
    );
    frame::write(&mut idle, &Request::Status, MAX_REQUEST_FRAME).expect("status");
    assert!(matches!(
        frame::read::<_, Response>(&mut idle, MAX_RESPONSE_FRAME),
        Ok(Response::Status(_))
    ));

    let served = bystander.assert_served();
    drop((lorises, idle));
    let after = agent.assert_recovers(baseline);
    println!(
        "slow loris: 60 clients stopped mid-frame, cut after {earliest:?}..{latest:?} \
         (deadline {deadline:?}); a client trickling a byte every 250 ms cut after \
         {trickle_cut:?}; bystander {} calls, slowest {:?}; RSS {:.1} -> {:.1} MiB, \
         fds {} -> {}",
        served.calls,
        served.slowest,
        mib(baseline.rss_kib),
        mib(after.rss_kib),
        baseline.fds,
        after.fds
    );
}

#[test]
fn idle_connections_are_closed_and_clients_reconnect() {
    let mut agent = Agent::start(&[("P11AGENT_IDLE_TIMEOUT_MS", "1500")]);
    let baseline = agent.warm_baseline();

    let mut raw = connect(agent.socket());
    hello(&mut raw);
    let since = Instant::now();
    let idle_for = closed_within(&mut raw, Duration::from_secs(10))
        .expect("idle connection closed")
        .duration_since(since);
    assert!(
        idle_for >= Duration::from_millis(1400) && idle_for <= Duration::from_secs(5),
        "closed after {idle_for:?}"
    );

    // The library finds its connection closed and connects again.
    let mut client = agent.daemon.client();
    client.status().expect("status");
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(client.status().expect("status after idling").identities, 1);
    assert_eq!(client.list(&Filter::default()).expect("list").len(), 1);

    // An event stream sends nothing and is not idle: it stays open.
    let mut watcher = connect(agent.socket());
    hello(&mut watcher);
    frame::write(&mut watcher, &Request::Watch, MAX_REQUEST_FRAME).expect("watch");
    assert!(matches!(
        frame::read::<_, Response>(&mut watcher, MAX_RESPONSE_FRAME),
        Ok(Response::Watching)
    ));
    assert!(
        closed_within(&mut watcher, Duration::from_secs(3)).is_none(),
        "a watcher was closed as idle"
    );
    drop((raw, watcher, client));
    let after = agent.assert_recovers(baseline);
    println!(
        "idle: a connection without requests closed after {idle_for:?} (timeout 1.5 s); \
         the client library reconnected; a watcher stayed open; RSS {:.1} -> {:.1} MiB",
        mib(baseline.rss_kib),
        mib(after.rss_kib)
    );
}

#[test]
fn a_thousand_connections_at_once() {
    const FLOOD: usize = 1000;
    raise_open_file_limit(4 * FLOOD as u64);
    let mut agent = Agent::start(&[]);
    let baseline = agent.warm_baseline();
    let bystander = Bystander::start(agent.socket());

    let started = Instant::now();
    let mut flood: Vec<UnixStream> = (0..FLOOD)
        .map(|_| UnixStream::connect(agent.socket()).expect("connect"))
        .collect();
    let opened_in = started.elapsed();
    // Let the listener take in every connection it is going to.
    thread::sleep(Duration::from_secs(1));
    let during = Usage::of(agent.pid());
    let closed = flood.iter().filter(|s| closed_now(s)).count();
    let open = FLOOD - closed;
    assert!(
        open <= MAX_CONNECTIONS,
        "{open} connections held open, cap {MAX_CONNECTIONS}"
    );
    assert!(
        during.fds <= baseline.fds + MAX_CONNECTIONS + 1,
        "daemon holds {} files, {} before",
        during.fds,
        baseline.fds
    );
    // Those left open are served.
    let mut greeted = 0;
    for s in flood.iter_mut() {
        if !closed_now(s) {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            hello(s);
            greeted += 1;
        }
    }
    assert!(greeted > 0 && greeted <= MAX_CONNECTIONS);

    let served = bystander.assert_served();
    drop(flood);
    let after = agent.assert_recovers(baseline);
    println!(
        "flood: {FLOOD} connections opened in {opened_in:?}; the daemon kept {open} open \
         (cap {MAX_CONNECTIONS}) and closed {closed} idle ones to make room; {greeted} \
         served a handshake afterwards; daemon fds {} -> {} -> {}; RSS {:.1} -> {:.1} -> \
         {:.1} MiB; bystander {} calls, no failure, slowest {:?}",
        baseline.fds,
        during.fds,
        after.fds,
        mib(baseline.rss_kib),
        mib(during.rss_kib),
        mib(after.rss_kib),
        served.calls,
        served.slowest
    );
}

#[test]
fn oversized_prefixes_and_truncated_frames() {
    let timeout = FRAME_TIMEOUT_MS.to_string();
    let mut agent = Agent::start(&[("P11AGENT_FRAME_TIMEOUT_MS", &timeout)]);
    let baseline = agent.warm_baseline();
    let bystander = Bystander::start(agent.socket());

    // Lying length prefixes: refused with frame_too_large, then closed,
    // without the daemon allocating what they announce.
    let lies = [
        MAX_REQUEST_FRAME + 1,
        1 << 20,
        1 << 31,
        u32::MAX - 1,
        u32::MAX,
    ];
    let mut oversized = 0;
    for i in 0..300 {
        let mut s = connect(agent.socket());
        if i % 2 == 0 {
            hello(&mut s);
        }
        s.write_all(&lies[i % lies.len()].to_be_bytes())
            .expect("prefix");
        match frame::read::<_, Response>(&mut s, MAX_RESPONSE_FRAME) {
            Ok(Response::Error { code, .. }) => {
                assert_eq!(code, p11agent_proto::ErrorCode::FrameTooLarge)
            }
            other => panic!("oversized prefix answered {other:?}"),
        }
        assert!(closed_within(&mut s, Duration::from_secs(5)).is_some());
        oversized += 1;
    }
    let after_lies = Usage::of(agent.pid());

    // The largest frame allowed, announced and never sent: the daemon
    // holds a 64 KiB buffer for each until the frame deadline.
    let mut held: Vec<UnixStream> = (0..200)
        .map(|_| {
            let mut s = connect(agent.socket());
            s.write_all(&MAX_REQUEST_FRAME.to_be_bytes())
                .expect("prefix");
            s.write_all(b"{").expect("a byte");
            s
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let holding = Usage::of(agent.pid());
    for s in held.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(10)).is_some());
    }
    drop(held);

    // Frames cut short: a body shorter than its prefix, then the end of
    // the stream; half a prefix, then a hang-up.
    let mut truncated = 0;
    for i in 0..300 {
        let mut s = connect(agent.socket());
        if i % 2 == 0 {
            hello(&mut s);
        }
        let body = br#"{"op":"list","filter":{"has_key":true}}"#;
        let cut = 1 + i % (body.len() - 1);
        s.write_all(&(body.len() as u32).to_be_bytes())
            .expect("prefix");
        s.write_all(&body[..cut]).expect("part of the body");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        match frame::read::<_, Response>(&mut s, MAX_RESPONSE_FRAME) {
            Err(FrameError::Closed) => {}
            other => panic!("a truncated frame was answered: {other:?}"),
        }
        truncated += 1;
        let mut s = connect(agent.socket());
        s.write_all(&[0, 0, 0][..1 + i % 3]).expect("half a prefix");
        drop(s);
        truncated += 1;
    }

    let served = bystander.assert_served();
    let after = agent.assert_recovers(baseline);
    println!(
        "oversized/truncated: {oversized} lying prefixes (up to 4 GiB) refused, RSS then \
         {:.1} MiB; 200 connections announcing 64 KiB and stalling: RSS {:.1} MiB while \
         held, cut at the deadline; {truncated} truncated frames closed without an answer; \
         RSS {:.1} -> {:.1} MiB; bystander {} calls, no failure",
        mib(after_lies.rss_kib),
        mib(holding.rss_kib),
        mib(baseline.rss_kib),
        mib(after.rss_kib),
        served.calls
    );
}

/// xorshift64*: a seeded sequence, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Requests to mutate; none can log in or sign, so random bytes cannot
/// spend PIN tries on the token.
const CORPUS: &[&[u8]] = &[
    br#"{"op":"status"}"#,
    br#"{"op":"tokens"}"#,
    br#"{"op":"list","filter":{"subject":"Hostile","has_key":true}}"#,
    br#"{"op":"show","id":"0123456789abcdef"}"#,
    br#"{"op":"select","origin":"https://a.example","schemes":["ed25519"],"chooser":"client"}"#,
    br#"{"op":"decisions"}"#,
    br#"{"op":"forget","origin":"https://a.example"}"#,
];

/// Bytes a broken or hostile client might send on a fresh connection.
fn random_input(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
            // Noise.
            0 => {
                let len = rng.below(200);
                out.extend(rng.bytes(len));
            }
            // A prefix of any size, then noise.
            1 => {
                let len = if rng.below(2) == 0 {
                    rng.next() as u32
                } else {
                    rng.below(300) as u32
                };
                out.extend_from_slice(&len.to_be_bytes());
                let noise = rng.below(200);
                out.extend(rng.bytes(noise));
            }
            // A well-framed body of noise.
            2 => {
                let len = 1 + rng.below(200);
                out.extend(framed(&rng.bytes(len)));
            }
            // A well-framed request with a few bytes changed.
            _ => {
                let mut body = CORPUS[rng.below(CORPUS.len())].to_vec();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(body.len());
                    body[at] = rng.next() as u8;
                }
                out.extend(framed(&body));
            }
        }
    }
    out
}

#[test]
fn random_bytes_many_times_over() {
    const ITERATIONS: usize = 3000;
    const SEED: u64 = 0x005e_ed0f_bad1_b7e5;
    let timeout = FRAME_TIMEOUT_MS.to_string();
    let mut agent = Agent::start(&[("P11AGENT_FRAME_TIMEOUT_MS", &timeout)]);
    let baseline = agent.warm_baseline();
    let bystander = Bystander::start(agent.socket());

    let mut rng = Rng(SEED);
    let mut bytes_sent = 0;
    let mut answers = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..ITERATIONS {
        let mut s = connect(agent.socket());
        if rng.below(2) == 0 {
            hello(&mut s);
        }
        let input = random_input(&mut rng);
        bytes_sent += input.len();
        // The daemon may close before taking it all (a prefix too large).
        let _ = s.write_all(&input);
        let _ = s.shutdown(std::net::Shutdown::Write);
        loop {
            match frame::read::<_, Response>(&mut s, MAX_RESPONSE_FRAME) {
                Ok(Response::Error { code, .. }) => {
                    *answers.entry(code.to_string()).or_default() += 1
                }
                Ok(other) => {
                    let kind = serde_json::to_value(&other)
                        .ok()
                        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                        .unwrap_or_default();
                    *answers.entry(kind).or_default() += 1;
                }
                Err(FrameError::Closed) => break,
                Err(FrameError::Io(e)) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the daemon sent a bad frame or none: {e}"),
            }
        }
    }

    let served = bystander.assert_served();
    let after = agent.assert_recovers(baseline);
    println!(
        "random: {ITERATIONS} connections of random input (seed {SEED:#x}), {bytes_sent} bytes; \
         answers {answers:?}; RSS {:.1} -> {:.1} MiB; bystander {} calls, no failure",
        mib(baseline.rss_kib),
        mib(after.rss_kib),
        served.calls
    );
}

#[test]
fn requests_sent_without_reading_the_answers_are_bounded() {
    const ENOUGH: u64 = 1_000_000;
    let timeout = FRAME_TIMEOUT_MS.to_string();
    let mut agent = Agent::start(&[("P11AGENT_FRAME_TIMEOUT_MS", &timeout)]);
    let baseline = agent.warm_baseline();
    let bystander = Bystander::start(agent.socket());

    let mut s = connect(agent.socket());
    hello(&mut s);
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("write timeout");
    let request = frame::encode(
        &Request::List {
            filter: Filter::default(),
        },
        MAX_REQUEST_FRAME,
    )
    .expect("encode");
    let started = Instant::now();
    let writer = thread::spawn(move || {
        let mut sent = 0u64;
        while sent < ENOUGH {
            if let Err(e) = s.write_all(&request) {
                return (sent, Some(e.kind()), started.elapsed());
            }
            sent += 1;
        }
        (sent, None, started.elapsed())
    });
    let mut peak = baseline;
    while !writer.is_finished() {
        let now = Usage::of(agent.pid());
        peak.rss_kib = peak.rss_kib.max(now.rss_kib);
        thread::sleep(Duration::from_millis(50));
    }
    let (sent, error, took) = writer.join().expect("writer");
    assert!(sent < ENOUGH, "the daemon read {sent} requests unanswered");
    assert!(
        matches!(
            error,
            Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)
        ),
        "the writer ended with {error:?}, not a closed connection"
    );
    assert!(
        took < Duration::from_secs(15),
        "cut off only after {took:?}"
    );
    assert!(
        peak.rss_kib <= baseline.rss_kib + RSS_SLACK_KIB,
        "RSS peaked at {} KiB",
        peak.rss_kib
    );

    let served = bystander.assert_served();
    let after = agent.assert_recovers(baseline);
    println!(
        "pipelining: a client wrote {sent} requests without reading before the buffers \
         filled; the daemon closed it after {took:?}; RSS {:.1} -> peak {:.1} -> {:.1} MiB; \
         bystander {} calls, no failure",
        mib(baseline.rss_kib),
        mib(peak.rss_kib),
        mib(after.rss_kib),
        served.calls
    );
}
