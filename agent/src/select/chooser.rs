//! The user's chooser program: asked which client certificate to send
//! when policy says a person must pick one and the TLS application has no
//! chooser of its own.
//!
//! # The chooser contract
//!
//! The agent runs the program (with the arguments configured, and its own
//! environment) once per question, without a shell:
//!
//! * **stdin**: one JSON object, then end of file:
//!
//!   ```json
//!   {"version": 1,
//!    "origin": "https://host:port",
//!    "candidates": [<identity>, ...]}
//!   ```
//!
//!   `origin` is the canonical `scheme://host:port` asking for a
//!   certificate. Each candidate is an identity record exactly as
//!   `p11agent list --json` prints it (`id`, `subject`, `issuer`,
//!   `not_after`, `token.label`, ...). `version` is 1; a program seeing
//!   another version should refuse (exit non-zero). Programs should
//!   ignore fields they do not know.
//!
//! * **stdout**: one JSON object (surrounding white space allowed; at
//!   most 64 KiB in all):
//!   * `{"choice": "<id>"}` sends the candidate whose `id` is exactly
//!     `<id>`;
//!   * `{"choice": null}` sends no certificate;
//!   * with `"remember": false` added, the answer holds for this
//!     connection only; by default (`true`) it is remembered for the
//!     origin, and the agent does not ask again.
//!
//!   Other fields are an error, so that a misspelt `remember` is not
//!   silently taken for the default.
//!
//! * **exit status** 0 with such an answer. Anything else cancels the
//!   question — nothing is sent and nothing is remembered: a non-zero
//!   exit status (the way for a person to cancel), no output, output that
//!   is not such an object, an `id` that is not one of the candidates, or
//!   no exit within the time limit (120 s by default), after which the
//!   program is killed.
//!
//! * **stderr** is logged by the agent, line by line.
//!
//! A program killed at the time limit cannot pass the kill on: a script
//! that starts a dialog should `exec` it, so that the dialog goes with it.
//!
//! The agent ships a chooser for a person at a terminal, `p11agent
//! chooser`.

use std::ffi::OsString;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use p11agent_proto::Identity;
use serde::{Deserialize, Serialize};

use super::decisions::Choice;
use crate::process;

/// The version of the request this code sends.
pub const PROTOCOL_VERSION: u32 = 1;
/// How long the program may take unless told otherwise: a person reads
/// the list and picks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The most output accepted: far more than any answer needs.
const MAX_OUTPUT: usize = 64 * 1024;
/// How long the program's output may stay open after it exits (a
/// background process it started may hold it).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The longest stderr line logged; the rest of the line is dropped.
const MAX_LOGGED_LINE: usize = 1024;

/// What the program reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChooserRequest {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The origin asking, `scheme://host:port`.
    pub origin: String,
    /// The identities the person may choose from.
    pub candidates: Vec<Identity>,
}

/// What the program writes on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChooserReply {
    /// The id of the identity to send, or `None` (JSON `null`) to send no
    /// certificate. Required, even when `null`.
    #[serde(deserialize_with = "Option::deserialize")]
    pub choice: Option<String>,
    /// Whether to remember the answer for the origin.
    #[serde(default = "remember_by_default")]
    pub remember: bool,
}

fn remember_by_default() -> bool {
    true
}

/// The person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send this identity.
    Send {
        /// Its id, one of the candidates'.
        id: String,
        /// Whether to remember the answer for the origin.
        remember: bool,
    },
    /// Send no certificate.
    SendNone {
        /// Whether to remember the answer for the origin.
        remember: bool,
    },
}

impl Answer {
    /// Whether the answer is to be remembered for the origin.
    pub fn remember(&self) -> bool {
        match self {
            Answer::Send { remember, .. } | Answer::SendNone { remember } => *remember,
        }
    }

    /// The answer as a choice to remember.
    pub fn into_choice(self) -> Choice {
        match self {
            Answer::Send { id, .. } => Choice::Identity(id),
            Answer::SendNone { .. } => Choice::SendNone,
        }
    }
}

/// Why no answer was obtained. Every variant means the question was
/// cancelled: nothing is sent and nothing remembered; the message says
/// why, for the log.
#[derive(Debug, thiserror::Error)]
pub enum ChooserError {
    /// The program could not be started.
    #[error("cannot start certificate chooser {}: {source}", program.display())]
    Start {
        /// The program.
        program: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The program did not exit within the time limit and was killed.
    #[error("certificate chooser {} did not answer within {} s; killed it", program.display(), timeout.as_secs_f32())]
    TimedOut {
        /// The program.
        program: PathBuf,
        /// The limit.
        timeout: Duration,
    },
    /// The program exited unsuccessfully (or was killed by a signal):
    /// the person cancelled, or the program failed.
    #[error("certificate chooser {} ended without an answer ({status})", program.display())]
    Exited {
        /// The program.
        program: PathBuf,
        /// How it ended.
        status: ExitStatus,
    },
    /// The program's output is not an answer.
    #[error("certificate chooser {} gave no usable answer: {reason}", program.display())]
    BadOutput {
        /// The program.
        program: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The program chose an identity that was not offered.
    #[error("certificate chooser {} chose {id:?}, which is not one of the candidates", program.display())]
    UnknownId {
        /// The program.
        program: PathBuf,
        /// The id it answered.
        id: String,
    },
    /// Talking to or waiting for the program failed.
    #[error("cannot run certificate chooser {}: {source}", program.display())]
    Io {
        /// The program.
        program: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A chooser program, started once per question.
#[derive(Debug, Clone)]
pub struct Chooser {
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
}

impl Chooser {
    /// A chooser running `program` without arguments, with
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same chooser, run with `args` (e.g. `["chooser"]` for the
    /// agent's own terminal chooser).
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The same chooser with another time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Asks which of `candidates` to send to `origin`. Blocks until the
    /// program answers or the time limit passes; call it on a blocking
    /// thread.
    pub fn choose(&self, origin: &str, candidates: &[Identity]) -> Result<Answer, ChooserError> {
        tracing::debug!(
            program = %self.program.display(),
            origin,
            candidates = candidates.len(),
            "asking the certificate chooser"
        );
        let request = ChooserRequest {
            version: PROTOCOL_VERSION,
            origin: origin.to_owned(),
            candidates: candidates.to_vec(),
        };
        let request = serde_json::to_vec(&request).map_err(|e| self.io_error(e.into()))?;
        let output = self.run(request)?;
        let reply = parse_reply(&output).map_err(|reason| ChooserError::BadOutput {
            program: self.program.clone(),
            reason,
        })?;
        match reply.choice {
            None => Ok(Answer::SendNone {
                remember: reply.remember,
            }),
            Some(id) if candidates.iter().any(|c| c.id == id) => Ok(Answer::Send {
                id,
                remember: reply.remember,
            }),
            Some(id) => Err(ChooserError::UnknownId {
                program: self.program.clone(),
                id,
            }),
        }
    }

    /// Runs the program with `request` on its stdin; its stdout once it
    /// exited successfully.
    fn run(&self, request: Vec<u8>) -> Result<Vec<u8>, ChooserError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = process::spawn(&mut command).map_err(|source| ChooserError::Start {
            program: self.program.clone(),
            source,
        })?;
        let deadline = Instant::now() + self.timeout;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            process::kill_and_reap(&mut child);
            return Err(self.io_error(io::Error::other("pipes to the program missing")));
        };

        let output = match self.tend_pipes(request, stdin, stdout, stderr) {
            Ok(output) => output,
            Err(e) => {
                process::kill_and_reap(&mut child);
                return Err(self.io_error(e));
            }
        };

        let status = match process::wait_until(&mut child, deadline) {
            Ok(Some(status)) => status,
            Ok(None) => {
                process::kill_and_reap(&mut child);
                return Err(ChooserError::TimedOut {
                    program: self.program.clone(),
                    timeout: self.timeout,
                });
            }
            Err(e) => {
                process::kill_and_reap(&mut child);
                return Err(self.io_error(e));
            }
        };
        if !status.success() {
            return Err(ChooserError::Exited {
                program: self.program.clone(),
                status,
            });
        }
        self.collect(&output)
    }

    /// Starts a thread per pipe: one writes `request` to the program,
    /// one logs what it says on stderr, and one reads its output, sent on
    /// the channel returned once the program closes its stdout.
    ///
    /// Threads, so that a program that neither reads all of its input nor
    /// stops writing cannot block the agent; none is joined, since a
    /// background process the program started may keep a pipe open long
    /// after the program is gone.
    fn tend_pipes(
        &self,
        request: Vec<u8>,
        mut stdin: ChildStdin,
        stdout: ChildStdout,
        stderr: ChildStderr,
    ) -> io::Result<Receiver<io::Result<Output>>> {
        let program = self.program.clone();
        thread::Builder::new()
            .name("chooser-stdin".into())
            .spawn(move || {
                // A program may answer without reading its input; the
                // broken pipe is then no error.
                if let Err(e) = stdin.write_all(&request) {
                    tracing::debug!(program = %program.display(), error = %e, "chooser did not read its input");
                }
            })?;
        let program = self.program.clone();
        thread::Builder::new()
            .name("chooser-stderr".into())
            .spawn(move || log_stderr(stderr, &program))?;
        let (tx, rx) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("chooser-stdout".into())
            .spawn(move || {
                let _ = tx.send(read_output(stdout));
            })?;
        Ok(rx)
    }

    /// The program's output, once its stdout is closed.
    fn collect(&self, output: &Receiver<io::Result<Output>>) -> Result<Vec<u8>, ChooserError> {
        let bad = |reason: &str| ChooserError::BadOutput {
            program: self.program.clone(),
            reason: reason.to_owned(),
        };
        match output.recv_timeout(OUTPUT_GRACE) {
            Ok(Ok(Output::Complete(bytes))) => Ok(bytes),
            Ok(Ok(Output::TooLong)) => Err(bad(&format!("more than {MAX_OUTPUT} bytes of output"))),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(RecvTimeoutError::Timeout) => Err(bad(
                "its output stayed open after it exited (a process it started in the background?)",
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(self.io_error(io::Error::other("the thread reading the output stopped")))
            }
        }
    }

    fn io_error(&self, source: io::Error) -> ChooserError {
        ChooserError::Io {
            program: self.program.clone(),
            source,
        }
    }
}

/// Everything the program wrote, or the note that it wrote too much.
enum Output {
    Complete(Vec<u8>),
    TooLong,
}

/// Reads `stdout` to its end, keeping at most [`MAX_OUTPUT`] bytes but
/// draining the rest, so that the program is not blocked writing.
fn read_output(mut stdout: ChildStdout) -> io::Result<Output> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut too_long = false;
    loop {
        let n = match stdout.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if bytes.len() + n > MAX_OUTPUT {
            too_long = true;
        } else if !too_long {
            bytes.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(if too_long {
        Output::TooLong
    } else {
        Output::Complete(bytes)
    })
}

/// Logs each line the program writes on stderr, as the program's words
/// (debug-escaped, so that control characters cannot forge log lines).
fn log_stderr(stderr: ChildStderr, program: &std::path::Path) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let shown: String = text.chars().take(MAX_LOGGED_LINE).collect();
        tracing::info!(program = %program.display(), stderr = ?shown, "certificate chooser says");
    }
}

/// The reply in `output`, or why it is not one.
fn parse_reply(output: &[u8]) -> Result<ChooserReply, String> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return Err("no output".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(output).map_err(|e| format!("not JSON: {e}"))?;
    // Checked here because serde would also take an array of the fields'
    // values for the object.
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    serde_json::from_value(value).map_err(|e| format!("not a chooser answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{ClientAuth, KeyType, Token};
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    fn identity(n: u8, subject: &str) -> Identity {
        Identity {
            id: format!("{n:02x}").repeat(32),
            subject: subject.into(),
            issuer: "CN=Test CA".into(),
            serial: format!("{n:02x}"),
            not_before: "2024-01-01T00:00:00Z".into(),
            not_after: "2034-01-01T00:00:00Z".into(),
            key_type: KeyType::Rsa,
            key_bits: 2048,
            curve: None,
            key_usage: None,
            extended_key_usage: None,
            has_private_key: true,
            token: Token {
                label: "Card".into(),
                serial: "1".into(),
                manufacturer: "m".into(),
                model: "x".into(),
                slot: 0,
                module: "/lib/x.so".into(),
            },
            cert_uri: "pkcs11:object=c".into(),
            key_uri: Some("pkcs11:object=k".into()),
            client_auth: ClientAuth::from_reasons(Vec::new()),
            schemes: Vec::new(),
            present: true,
        }
    }

    fn candidates() -> Vec<Identity> {
        vec![
            identity(0xa1, "CN=Alice"),
            identity(0xb2, "CN=Alice (sign)"),
        ]
    }

    const ORIGIN: &str = "https://example.org:443";

    /// Writes an executable `/bin/sh` script into `dir`.
    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("chooser");
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// Runs a chooser whose script is `body` on the test candidates.
    fn ask(body: &str) -> Result<Answer, ChooserError> {
        let dir = tempfile::tempdir().expect("tempdir");
        Chooser::new(script(dir.path(), body)).choose(ORIGIN, &candidates())
    }

    fn second_id() -> String {
        "b2".repeat(32)
    }

    #[test]
    fn picks_a_candidate() {
        let answer = ask(&format!(
            "cat >/dev/null\necho '{{\"choice\": \"{}\"}}'\n",
            second_id()
        ));
        assert_eq!(
            answer.expect("answer"),
            Answer::Send {
                id: second_id(),
                remember: true
            }
        );
    }

    #[test]
    fn sends_none() {
        let answer = ask("cat >/dev/null\necho '{\"choice\": null}'\n").expect("answer");
        assert_eq!(answer, Answer::SendNone { remember: true });
        assert!(answer.remember());
        assert_eq!(answer.into_choice(), Choice::SendNone);
    }

    #[test]
    fn remember_false() {
        let answer = ask(&format!(
            "cat >/dev/null\nprintf '  {{\"remember\": false,\\n \"choice\": \"{}\"}}\\n\\n'\n",
            second_id()
        ))
        .expect("answer");
        assert!(!answer.remember());
        assert_eq!(answer.into_choice(), Choice::Identity(second_id()));
        let answer = ask("echo '{\"choice\": null, \"remember\": false}'\n").expect("answer");
        assert_eq!(answer, Answer::SendNone { remember: false });
    }

    #[test]
    fn answer_without_reading_input() {
        // Input larger than a pipe buffer, never read.
        let many: Vec<Identity> = (0..200).map(|n| identity(n, "CN=Someone")).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let chooser = Chooser::new(script(dir.path(), "echo '{\"choice\": null}'\n"));
        assert_eq!(
            chooser.choose(ORIGIN, &many).expect("answer"),
            Answer::SendNone { remember: true }
        );
    }

    #[test]
    fn non_zero_exit_cancels() {
        match ask("cat >/dev/null\necho '{\"choice\": null}'\nexit 1\n") {
            Err(ChooserError::Exited { status, .. }) => assert_eq!(status.code(), Some(1)),
            other => panic!("expected Exited, got {other:?}"),
        }
    }

    #[test]
    fn killed_by_signal_cancels() {
        match ask("kill -TERM $$\n") {
            Err(e @ ChooserError::Exited { .. }) => {
                assert!(e.to_string().contains("signal"), "{e}");
            }
            other => panic!("expected Exited, got {other:?}"),
        }
    }

    #[test]
    fn empty_output_cancels() {
        for body in ["cat >/dev/null\n", "echo\necho '  '\n"] {
            match ask(body) {
                Err(ChooserError::BadOutput { reason, .. }) => assert_eq!(reason, "no output"),
                other => panic!("expected BadOutput, got {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_output_cancels() {
        for body in [
            "echo 1\n",
            "echo yes please\n",
            "echo '{\"choice\": 1}'\n",
            "echo '{}'\n",
            "echo '{\"remember\": false}'\n",
            "echo '{\"choice\": null, \"remeber\": false}'\n",
            "echo '{\"choice\": null}{\"choice\": null}'\n",
            "echo '[null]'\n",
        ] {
            assert!(
                matches!(ask(body), Err(ChooserError::BadOutput { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn too_much_output_cancels() {
        match ask("yes '{\"choice\": null}' | head -c 200000\n") {
            Err(ChooserError::BadOutput { reason, .. }) => {
                assert!(reason.contains("more than"), "{reason}");
            }
            other => panic!("expected BadOutput, got {other:?}"),
        }
    }

    #[test]
    fn unknown_id_cancels() {
        let short = &second_id()[..16];
        for id in [
            short.to_owned(),
            second_id().to_uppercase(),
            "03".repeat(32),
        ] {
            match ask(&format!("echo '{{\"choice\": \"{id}\"}}'\n")) {
                Err(ChooserError::UnknownId { id: answered, .. }) => assert_eq!(answered, id),
                other => panic!("expected UnknownId for {id}, got {other:?}"),
            }
        }
    }

    #[test]
    fn timeout_kills_the_program() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let program = script(
            dir.path(),
            &format!("echo $$ > '{}'\nexec sleep 30\n", pid_file.display()),
        );
        let started = Instant::now();
        let result = Chooser::new(&program)
            .with_timeout(Duration::from_millis(300))
            .choose(ORIGIN, &candidates());
        let elapsed = started.elapsed();
        match result {
            Err(ChooserError::TimedOut { timeout, .. }) => {
                assert_eq!(timeout, Duration::from_millis(300));
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        // Killed and reaped: the pid no longer names a process (not even
        // a zombie).
        let pid = fs::read_to_string(&pid_file).expect("pid");
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "chooser {pid} still exists"
        );
    }

    #[test]
    fn timeout_with_a_grandchild_holding_output_returns_quickly() {
        // `sleep` runs as the shell's child and keeps stdout open after
        // the shell is killed.
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), "sleep 30\necho '{\"choice\": null}'\n");
        let started = Instant::now();
        let result = Chooser::new(&program)
            .with_timeout(Duration::from_millis(300))
            .choose(ORIGIN, &candidates());
        assert!(
            matches!(result, Err(ChooserError::TimedOut { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_held_open_after_exit_cancels() {
        let started = Instant::now();
        match ask("echo '{\"choice\": null}'\nsleep 30 &\nexit 0\n") {
            Err(ChooserError::BadOutput { reason, .. }) => {
                assert!(reason.contains("stayed open"), "{reason}");
            }
            other => panic!("expected BadOutput, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_cannot_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("nope");
        match Chooser::new(&program).choose(ORIGIN, &candidates()) {
            Err(e @ ChooserError::Start { .. }) => {
                assert!(e.to_string().contains("nope"), "{e}");
            }
            other => panic!("expected Start, got {other:?}"),
        }
    }

    #[test]
    fn program_gets_the_request_on_stdin_and_its_arguments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("input");
        let argv = dir.path().join("argv");
        let program = script(
            dir.path(),
            &format!(
                "printf '%s\\n' \"$@\" > '{}'\ncat > '{}'\necho '{{\"choice\": null}}'\n",
                argv.display(),
                input.display()
            ),
        );
        Chooser::new(&program)
            .with_args(["one", "two words"])
            .choose(ORIGIN, &candidates())
            .expect("answer");
        assert_eq!(fs::read_to_string(&argv).expect("argv"), "one\ntwo words\n");

        let bytes = fs::read(&input).expect("input");
        let request: ChooserRequest = serde_json::from_slice(&bytes).expect("request");
        assert_eq!(
            request,
            ChooserRequest {
                version: 1,
                origin: ORIGIN.into(),
                candidates: candidates(),
            }
        );
        // The identities are serialised as is: the same fields as
        // `p11agent list --json`.
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["origin"], ORIGIN);
        assert_eq!(
            value["candidates"][1],
            serde_json::to_value(identity(0xb2, "CN=Alice (sign)")).expect("identity")
        );
    }

    #[test]
    fn stderr_does_not_disturb_the_answer() {
        let answer = ask(
            "cat >/dev/null\necho 'some diagnostics' >&2\nhead -c 100000 /dev/zero >&2\necho '{\"choice\": null}'\n",
        );
        assert_eq!(answer.expect("answer"), Answer::SendNone { remember: true });
    }

    #[test]
    fn reply_serialises_as_documented() {
        let reply = ChooserReply {
            choice: None,
            remember: true,
        };
        assert_eq!(
            serde_json::to_string(&reply).expect("json"),
            r#"{"choice":null,"remember":true}"#
        );
        let reply: ChooserReply = serde_json::from_str(r#"{"choice": "ab"}"#).expect("parse");
        assert_eq!(
            reply,
            ChooserReply {
                choice: Some("ab".into()),
                remember: true
            }
        );
    }

    #[test]
    fn answer_helpers() {
        let answer = Answer::Send {
            id: "ab".into(),
            remember: false,
        };
        assert!(!answer.remember());
        assert_eq!(answer.into_choice(), Choice::Identity("ab".into()));
    }
}
