//! A PIN asked of a person through a pinentry program, speaking the
//! Assuan protocol the way gpg-agent does.
//!
//! One exchange per request: spawn the program, read its `OK` greeting,
//! send `OPTION`s (tty, terminal type, locale), `SETTITLE`, `SETDESC`,
//! `SETPROMPT`, `SETERROR` (the token's PIN warning), then `GETPIN`, read
//! the `D` lines and the final `OK` (or `ERR`), send `BYE` and reap the
//! child. The PIN only ever lives in zeroizing buffers until it becomes a
//! [`SecretString`]; it is never logged.

use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::request::{PinError, PinKind, PinRequest, PinSource};
use super::secret;
use crate::process;

/// How long the program may take to start and greet.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the program may take to answer a command other than `GETPIN`
/// (which waits for a person, so has no limit).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the program may take to exit after `BYE` before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Maximum length of an Assuan line, without its line feed.
pub(crate) const MAX_LINE: usize = 1000;
/// Longest line accepted from the program (a little slack over
/// [`MAX_LINE`] for sloppy implementations).
const MAX_RECEIVED_LINE: usize = 4096;
/// Longest PIN accepted.
const MAX_PIN: usize = 4096;

/// `GPG_ERR_CANCELED`, in the low 16 bits of an Assuan error code.
const GPG_ERR_CANCELED: u32 = 99;
/// `GPG_ERR_FULLY_CANCELED`.
const GPG_ERR_FULLY_CANCELED: u32 = 198;

/// A pinentry program (`pinentry`, `pinentry-curses`, `pinentry-gnome3`,
/// ...), started once per PIN request.
///
/// Terminal pinentries need to know the terminal: set `GPG_TTY` (e.g.
/// `export GPG_TTY=$(tty)`) in the agent's environment, as for gpg-agent.
/// Graphical ones use `DISPLAY`/`WAYLAND_DISPLAY` from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Pinentry {
    /// The program to run.
    pub program: PathBuf,
}

impl Pinentry {
    /// A source asking through `program`.
    pub(crate) fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    fn ask(
        &self,
        request: &PinRequest<'_>,
        greeting_timeout: Duration,
    ) -> Result<SecretString, PinError> {
        let mut session = Session::start(&self.program)?;
        let result = session.exchange(request, greeting_timeout);
        // Polite goodbye; the program may already be gone.
        if session.send("BYE").is_ok() {
            let _ = session.read_reply(Some(Duration::from_millis(500)), None);
        }
        drop(session); // waits for (or kills) the child
        result
    }
}

impl Pinentry {
    /// Asks the person to allow or deny something described by `text`
    /// (pinentry's `CONFIRM`); `Ok(false)` when they deny or cancel.
    pub(crate) fn confirm(&self, text: &str) -> Result<bool, PinError> {
        let mut session = Session::start(&self.program)?;
        let result = session.confirm(text, GREETING_TIMEOUT);
        if session.send("BYE").is_ok() {
            let _ = session.read_reply(Some(Duration::from_millis(500)), None);
        }
        drop(session);
        result
    }
}

impl PinSource for Pinentry {
    fn pin(&self, request: &PinRequest<'_>) -> Result<SecretString, PinError> {
        self.ask(request, GREETING_TIMEOUT)
    }
}

/// What the program answered to a command.
#[derive(Debug)]
enum Reply {
    Ok,
    Err { code: u32, text: String },
}

/// One running pinentry.
struct Session {
    program: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Result<Zeroizing<Vec<u8>>, String>>,
}

impl Session {
    fn start(program: &std::path::Path) -> Result<Self, PinError> {
        let mut command = Command::new(program);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = process::spawn(&mut command).map_err(|e| {
            PinError::Failed(format!("cannot start pinentry {}: {e}", program.display()))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            process::kill_and_reap(&mut child);
            return Err(PinError::Failed("pinentry pipes missing".into()));
        };
        let (tx, rx) = mpsc::sync_channel(16);
        std::thread::Builder::new()
            .name("pinentry-reader".into())
            .spawn(move || read_lines(stdout, &tx))
            .map_err(|e| PinError::Failed(format!("cannot start pinentry reader: {e}")))?;
        Ok(Self {
            program: program.to_path_buf(),
            child,
            stdin: Some(stdin),
            lines: rx,
        })
    }

    fn exchange(
        &mut self,
        request: &PinRequest<'_>,
        greeting_timeout: Duration,
    ) -> Result<SecretString, PinError> {
        self.prepare(greeting_timeout)?;
        self.required(&command_line("SETDESC", &description(request)))?;
        self.required("SETPROMPT PIN:")?;
        if let Some(warning) = &request.warning {
            self.required(&command_line("SETERROR", warning))?;
        }

        self.send("GETPIN")?;
        let mut pin = Zeroizing::new(Vec::with_capacity(256));
        match self.read_reply(None, Some(&mut pin))? {
            Reply::Ok => {}
            Reply::Err { code, .. } if is_cancel(code) => return Err(PinError::Cancelled),
            Reply::Err { code, text } => {
                return Err(PinError::Failed(format!(
                    "pinentry {} failed: ERR {code} {text}",
                    self.program.display()
                )));
            }
        }
        if pin.is_empty() {
            return Err(PinError::Unavailable("the PIN entered was empty".into()));
        }
        secret::into_secret_string(&pin)
            .ok_or_else(|| PinError::Failed("the PIN entered is not valid UTF-8".into()))
    }

    /// Asks yes or no (`CONFIRM`) with `text` as the description.
    fn confirm(&mut self, text: &str, greeting_timeout: Duration) -> Result<bool, PinError> {
        self.prepare(greeting_timeout)?;
        self.required(&command_line("SETDESC", text))?;
        self.required("SETOK Allow")?;
        self.required("SETCANCEL Deny")?;
        self.send("CONFIRM")?;
        match self.read_reply(None, None)? {
            Reply::Ok => Ok(true),
            Reply::Err { code, .. } if is_cancel(code) => Ok(false),
            Reply::Err { code, text } => Err(PinError::Failed(format!(
                "pinentry {} failed to confirm: ERR {code} {text}",
                self.program.display()
            ))),
        }
    }

    /// The greeting, the options and the title.
    fn prepare(&mut self, greeting_timeout: Duration) -> Result<(), PinError> {
        match self.read_reply(Some(greeting_timeout), None)? {
            Reply::Ok => {}
            Reply::Err { code, text } => {
                return Err(PinError::Failed(format!(
                    "pinentry {} refused to start: ERR {code} {text}",
                    self.program.display()
                )));
            }
        }

        for (name, value) in options() {
            // Errors here are not fatal: old or graphical pinentries may not
            // know an option (gpg-agent ignores them too).
            if let Reply::Err { code, text } = self.command(&format!("OPTION {name}={value}"))? {
                if is_cancel(code) {
                    return Err(PinError::Cancelled);
                }
                tracing::debug!(option = name, code, error = %text, "pinentry rejected option");
            }
        }
        if let Reply::Err { code, .. } = self.command("SETTITLE p11agent")? {
            if is_cancel(code) {
                return Err(PinError::Cancelled);
            }
        }
        Ok(())
    }

    /// Sends `line` and reads its reply within [`COMMAND_TIMEOUT`].
    fn command(&mut self, line: &str) -> Result<Reply, PinError> {
        self.send(line)?;
        self.read_reply(Some(COMMAND_TIMEOUT), None)
    }

    /// Like [`Self::command`], with an `ERR` reply an error.
    fn required(&mut self, line: &str) -> Result<(), PinError> {
        match self.command(line)? {
            Reply::Ok => Ok(()),
            Reply::Err { code, .. } if is_cancel(code) => Err(PinError::Cancelled),
            Reply::Err { code, text } => {
                let verb = line.split(' ').next().unwrap_or(line);
                Err(PinError::Failed(format!(
                    "pinentry {} rejected {verb}: ERR {code} {text}",
                    self.program.display()
                )))
            }
        }
    }

    fn send(&mut self, line: &str) -> Result<(), PinError> {
        debug_assert!(line.len() <= MAX_LINE && !line.contains(['\n', '\r']));
        tracing::trace!(
            command = line.split(' ').next().unwrap_or(""),
            "to pinentry"
        );
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| PinError::Failed("pinentry input closed".into()))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        stdin
            .write_all(&bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| {
                PinError::Failed(format!(
                    "pinentry {} stopped talking: {e}",
                    self.program.display()
                ))
            })
    }

    /// Reads lines up to the `OK` or `ERR` ending a reply. `D` lines are
    /// decoded into `data` (or dropped when it is `None`); status and
    /// comment lines are skipped; an `INQUIRE` is answered with `CAN`.
    fn read_reply(
        &mut self,
        timeout: Option<Duration>,
        mut data: Option<&mut Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, PinError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let received = match deadline {
                None => self
                    .lines
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => self
                    .lines
                    .recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            let line = match received {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => return Err(PinError::Failed(e)),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(PinError::Failed(format!(
                        "pinentry {} did not answer within {} s",
                        self.program.display(),
                        timeout.unwrap_or_default().as_secs_f32()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PinError::Failed(format!(
                        "pinentry {} exited unexpectedly",
                        self.program.display()
                    )));
                }
            };
            let line: &[u8] = &line;
            if line == b"OK" || line.starts_with(b"OK ") {
                return Ok(Reply::Ok);
            } else if line == b"ERR" || line.starts_with(b"ERR ") {
                return Ok(parse_err(&line[3..]));
            } else if line == b"D" || line.starts_with(b"D ") {
                if let Some(buf) = data.as_deref_mut() {
                    unescape_into(buf, line.get(2..).unwrap_or_default());
                    if buf.len() > MAX_PIN {
                        return Err(PinError::Failed("pinentry sent an over-long PIN".into()));
                    }
                }
            } else if line == b"S" || line.starts_with(b"S ") || line.starts_with(b"#") {
                // status or comment: nothing to do
            } else if line == b"INQUIRE" || line.starts_with(b"INQUIRE ") {
                tracing::debug!("pinentry sent an INQUIRE; cancelling it");
                self.send("CAN")?;
            } else if line.is_empty() {
                // tolerate blank lines
            } else {
                // Unknown line: skip it. Its content is not logged since it
                // could, in a broken program, hold the PIN.
                tracing::debug!(len = line.len(), "ignoring unexpected line from pinentry");
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF tells the program to go
        if let Ok(Some(_)) = process::wait_until(&mut self.child, Instant::now() + EXIT_TIMEOUT) {
            return;
        }
        tracing::warn!(program = %self.program.display(), "pinentry did not exit; killing it");
        process::kill_and_reap(&mut self.child);
    }
}

/// Reads lines from the program's output and passes them on, until end of
/// file (the channel then disconnects) or an error (sent as `Err`).
fn read_lines(mut stdout: ChildStdout, tx: &SyncSender<Result<Zeroizing<Vec<u8>>, String>>) {
    let mut pending = Zeroizing::new(Vec::with_capacity(2 * MAX_RECEIVED_LINE));
    let mut chunk = Zeroizing::new([0u8; 1024]);
    loop {
        let n = match stdout.read(&mut chunk[..]) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot read from pinentry: {e}")));
                return;
            }
        };
        secret::extend(&mut pending, &chunk[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let mut line_end = end;
            if line_end > 0 && pending[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let mut line = Zeroizing::new(Vec::with_capacity(line_end));
            line.extend_from_slice(&pending[..line_end]);
            pending.drain(..=end);
            if tx.send(Ok(line)).is_err() {
                return;
            }
        }
        if pending.len() > MAX_RECEIVED_LINE {
            let _ = tx.send(Err("pinentry sent an over-long line".into()));
            return;
        }
    }
}

fn parse_err(rest: &[u8]) -> Reply {
    let rest = String::from_utf8_lossy(rest);
    let rest = rest.trim_start();
    let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Reply::Err {
        code: code.parse().unwrap_or(0),
        text: text.trim().to_owned(),
    }
}

/// Whether an Assuan error code means the person cancelled
/// (`GPG_ERR_CANCELED` from any source, e.g. 83886179 from pinentry).
pub(crate) fn is_cancel(code: u32) -> bool {
    matches!(code & 0xFFFF, GPG_ERR_CANCELED | GPG_ERR_FULLY_CANCELED)
}

/// The `OPTION`s gpg-agent sends that make sense here, from this process's
/// environment. Values that cannot be sent verbatim are skipped.
fn options() -> Vec<(&'static str, String)> {
    fn env(names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.is_empty())
            .filter(|v| !v.contains(|c: char| c == '%' || c.is_control()))
    }
    let mut options = Vec::new();
    let wanted: [(&str, &[&str]); 4] = [
        ("ttyname", &["GPG_TTY"]),
        ("ttytype", &["TERM"]),
        ("lc-ctype", &["LC_ALL", "LC_CTYPE", "LANG"]),
        ("lc-messages", &["LC_ALL", "LC_MESSAGES", "LANG"]),
    ];
    for (name, vars) in wanted {
        if let Some(value) = env(vars) {
            if name.len() + value.len() + "OPTION =".len() <= MAX_LINE {
                options.push((name, value));
            }
        }
    }
    options
}

/// The text shown above the PIN field.
pub(crate) fn description(request: &PinRequest<'_>) -> String {
    let token = request.token;
    let mut text = String::from("Please enter the PIN for the token\n");
    text.push('"');
    text.push_str(&token.label);
    text.push('"');
    if !token.serial.is_empty() {
        text.push_str(" (serial ");
        text.push_str(&token.serial);
        text.push(')');
    }
    match request.kind {
        PinKind::User => text.push_str("\nto log in."),
        PinKind::ContextSpecific => text.push_str("\nto authorise one signature."),
    }
    text
}

/// `VERB escaped-parameter`, cut to at most [`MAX_LINE`] bytes.
pub(crate) fn command_line(verb: &str, parameter: &str) -> String {
    let mut line = String::with_capacity(MAX_LINE);
    line.push_str(verb);
    line.push(' ');
    let budget = MAX_LINE.saturating_sub(line.len());
    line.push_str(&escape(parameter, budget));
    line
}

/// Percent-escapes `%`, CR, LF and the other control characters of `text`,
/// as Assuan requires of parameters, keeping at most `budget` bytes (never
/// cutting a character or an escape in two).
pub(crate) fn escape(text: &str, budget: usize) -> String {
    let mut out = String::with_capacity(text.len().min(budget));
    for c in text.chars() {
        let mut utf8 = [0u8; 4];
        let escaped;
        let piece: &str = if c == '%' || c.is_ascii_control() {
            escaped = format!("%{:02X}", u32::from(c));
            &escaped
        } else {
            c.encode_utf8(&mut utf8)
        };
        if out.len() + piece.len() > budget {
            break;
        }
        out.push_str(piece);
    }
    out
}

/// Decodes Assuan `%XX` escapes of `data` onto the end of `out`. A `%` not
/// followed by two hex digits is kept as is.
pub(crate) fn unescape_into(out: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut i = 0;
    while i < data.len() {
        let mut byte = data[i];
        if byte == b'%' && i + 2 < data.len() {
            if let (Some(hi), Some(lo)) = (hex(data[i + 1]), hex(data[i + 2])) {
                byte = hi << 4 | lo;
                i += 2;
            }
        }
        secret::extend(out, &[byte]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::Token;
    use secrecy::ExposeSecret;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn token() -> Token {
        Token {
            label: "My Card".into(),
            serial: "SN-42".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            slot: 3,
            module: "/lib/softhsm.so".into(),
        }
    }

    /// Writes an executable `/bin/sh` script into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A pinentry that greets, acknowledges every command, answers GETPIN
    /// with `getpin` (lines separated by `\n`), and exits on BYE.
    fn fake(dir: &Path, name: &str, getpin: &str, log: Option<&Path>) -> PathBuf {
        let record = log.map_or(String::new(), |log| {
            format!("printf '%s\\n' \"$line\" >> '{}'\n", log.display())
        });
        let getpin: String = getpin
            .lines()
            .map(|l| format!("printf '%s\\n' '{l}'; "))
            .collect();
        script(
            dir,
            name,
            &format!(
                "echo 'OK Pleased to meet you'\n\
                 while IFS= read -r line; do\n\
                 {record}\
                 case \"$line\" in\n\
                 GETPIN) {getpin};;\n\
                 BYE) echo 'OK closing connection'; exit 0;;\n\
                 *) echo OK;;\n\
                 esac\n\
                 done\n"
            ),
        )
    }

    fn ask(program: &Path, kind: PinKind, warning: Option<&str>) -> Result<SecretString, PinError> {
        let token = token();
        let request = PinRequest {
            token: &token,
            kind,
            warning: warning.map(str::to_owned),
        };
        Pinentry::new(program).pin(&request)
    }

    #[test]
    fn escape_percent_cr_lf_and_controls() {
        assert_eq!(escape("a%b\r\nc\td", 1000), "a%25b%0D%0Ac%09d");
        assert_eq!(escape("ünïcode ok", 1000), "ünïcode ok");
        assert_eq!(escape("", 10), "");
    }

    #[test]
    fn escape_respects_budget_without_cutting() {
        assert_eq!(escape("abc%", 5), "abc");
        assert_eq!(escape("abc%", 6), "abc%25");
        assert_eq!(escape("aé", 2), "a");
        let long = "%".repeat(2000);
        let line = command_line("SETDESC", &long);
        assert!(line.len() <= MAX_LINE);
        assert!(line.ends_with("%25"));
    }

    #[test]
    fn unescape_decodes_escapes() {
        let mut out = Zeroizing::new(Vec::new());
        unescape_into(&mut out, b"12%2534 5%0a%0D");
        assert_eq!(&out[..], b"12%34 5\n\r");
        let mut out = Zeroizing::new(Vec::new());
        unescape_into(&mut out, b"100% %zz %4");
        assert_eq!(&out[..], b"100% %zz %4");
    }

    #[test]
    fn escape_roundtrip() {
        let text = "p%i\nn 1\r2\u{7f}3";
        let mut out = Zeroizing::new(Vec::new());
        unescape_into(&mut out, escape(text, 1000).as_bytes());
        assert_eq!(&out[..], text.as_bytes());
    }

    #[test]
    fn cancel_codes() {
        assert!(is_cancel(83_886_179));
        assert!(is_cancel(99));
        assert!(is_cancel((5 << 24) | 198));
        assert!(!is_cancel(83_886_180));
        assert!(!is_cancel(0));
    }

    #[test]
    fn description_names_token_and_purpose() {
        let token = token();
        let user = description(&PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        });
        assert!(
            user.contains("\"My Card\"") && user.contains("SN-42"),
            "{user}"
        );
        let one = description(&PinRequest {
            token: &token,
            kind: PinKind::ContextSpecific,
            warning: None,
        });
        assert!(one.contains("to authorise one signature"), "{one}");
    }

    #[test]
    fn pin_with_percent_and_spaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake(
            dir.path(),
            "pe",
            "S SOMETHING\n# comment\nD 12%2534 5\nOK",
            None,
        );
        let pin = ask(&program, PinKind::User, None).expect("pin");
        assert_eq!(pin.expose_secret(), "12%34 5");
    }

    #[test]
    fn pin_split_over_two_data_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake(dir.path(), "pe", "D abc%25\nD def ghi\nOK", None);
        let pin = ask(&program, PinKind::User, None).expect("pin");
        assert_eq!(pin.expose_secret(), "abc%def ghi");
    }

    #[test]
    fn cancelled_prompt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake(
            dir.path(),
            "pe",
            "ERR 83886179 Operation cancelled <Pinentry>",
            None,
        );
        assert!(matches!(
            ask(&program, PinKind::User, None),
            Err(PinError::Cancelled)
        ));
    }

    #[test]
    fn other_error_is_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake(
            dir.path(),
            "pe",
            "ERR 83918950 Inappropriate ioctl for device <Pinentry>",
            None,
        );
        match ask(&program, PinKind::User, None) {
            Err(PinError::Failed(msg)) => assert!(msg.contains("83918950"), "{msg}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn empty_pin_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake(dir.path(), "pe", "OK", None);
        assert!(matches!(
            ask(&program, PinKind::User, None),
            Err(PinError::Unavailable(_))
        ));
    }

    #[test]
    fn inquire_is_cancelled_gracefully() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let program = fake(
            dir.path(),
            "pe",
            "INQUIRE SOMETHING\nD 4321\nOK",
            Some(&log),
        );
        let pin = ask(&program, PinKind::User, None).expect("pin");
        assert_eq!(pin.expose_secret(), "4321");
        let log = fs::read_to_string(&log).expect("log");
        assert!(log.lines().any(|l| l == "CAN"), "{log}");
    }

    #[test]
    fn program_exiting_at_once_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), "pe", "exit 0\n");
        let started = Instant::now();
        assert!(matches!(
            ask(&program, PinKind::User, None),
            Err(PinError::Failed(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn program_dying_during_getpin_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(
            dir.path(),
            "pe",
            "echo OK\n\
             while IFS= read -r line; do\n\
             case \"$line\" in GETPIN) exit 1;; *) echo OK;; esac\n\
             done\n",
        );
        assert!(matches!(
            ask(&program, PinKind::User, None),
            Err(PinError::Failed(_))
        ));
    }

    #[test]
    fn missing_program_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        match ask(&dir.path().join("nope"), PinKind::User, None) {
            Err(PinError::Failed(msg)) => assert!(msg.contains("nope"), "{msg}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn silent_program_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(dir.path(), "pe", "exec sleep 30\n");
        let token = token();
        let request = PinRequest {
            token: &token,
            kind: PinKind::User,
            warning: None,
        };
        let started = Instant::now();
        let result = Pinentry::new(&program).ask(&request, Duration::from_millis(300));
        assert!(matches!(result, Err(PinError::Failed(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn program_ignoring_bye_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = script(
            dir.path(),
            "pe",
            "echo OK\n\
             while IFS= read -r line; do\n\
             case \"$line\" in\n\
             GETPIN) echo 'D 1234'; echo OK;;\n\
             BYE) echo OK; exec sleep 30;;\n\
             *) echo OK;;\n\
             esac\n\
             done\n",
        );
        let started = Instant::now();
        let pin = ask(&program, PinKind::User, None).expect("pin");
        assert_eq!(pin.expose_secret(), "1234");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn commands_sent_describe_token_and_never_carry_the_pin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let program = fake(dir.path(), "pe", "D s3cr3t-PIN\nOK", Some(&log));
        let pin = ask(
            &program,
            PinKind::ContextSpecific,
            Some("final try: the card locks after one more wrong PIN"),
        )
        .expect("pin");
        assert_eq!(pin.expose_secret(), "s3cr3t-PIN");
        let log = fs::read_to_string(&log).expect("log");
        let lines: Vec<&str> = log.lines().collect();
        let setdesc = lines
            .iter()
            .find(|l| l.starts_with("SETDESC "))
            .expect("SETDESC sent");
        assert!(
            setdesc.contains("My Card") && setdesc.contains("SN-42"),
            "{setdesc}"
        );
        assert!(setdesc.contains("authorise one signature"), "{setdesc}");
        assert!(
            setdesc.contains("%0A") && !setdesc.contains('\r'),
            "{setdesc}"
        );
        assert!(
            lines.contains(&"SETERROR final try: the card locks after one more wrong PIN"),
            "{log}"
        );
        assert!(lines.contains(&"SETTITLE p11agent"), "{log}");
        assert!(lines.contains(&"SETPROMPT PIN:"), "{log}");
        let getpin = lines
            .iter()
            .position(|l| *l == "GETPIN")
            .expect("GETPIN sent");
        assert_eq!(lines.last(), Some(&"BYE"));
        assert!(lines[..getpin].iter().all(|l| !l.starts_with("GETPIN")));
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE));
        assert!(!log.contains("s3cr3t"), "{log}");
    }

    #[test]
    fn no_seterror_without_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let program = fake(dir.path(), "pe", "D 1\nOK", Some(&log));
        ask(&program, PinKind::User, None).expect("pin");
        let log = fs::read_to_string(&log).expect("log");
        assert!(!log.contains("SETERROR"), "{log}");
        assert!(log.contains("to log in"), "{log}");
    }

    /// A real pinentry, run by hand under a terminal, e.g.
    /// `GPG_TTY=$(tty) P11AGENT_TEST_PINENTRY=/usr/bin/pinentry-tty cargo
    /// test -p p11agent real_pinentry -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs a terminal and a person (or a pty feeding keystrokes)"]
    fn real_pinentry() {
        let program = std::env::var_os("P11AGENT_TEST_PINENTRY")
            .map_or_else(|| PathBuf::from("/usr/bin/pinentry"), PathBuf::from);
        let result = ask(&program, PinKind::ContextSpecific, Some("2 tries left"));
        match result {
            Ok(pin) => println!("got a PIN of {} bytes", pin.expose_secret().len()),
            Err(e) => println!("no PIN: {e}"),
        }
    }
}
