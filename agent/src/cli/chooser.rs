//! `p11agent chooser`: the certificate chooser the agent ships, for a
//! person at a terminal. It implements the contract documented in
//! [`crate::select::chooser`]: a request on stdin, the question on the
//! terminal, the answer on stdout.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::OFlag;
use p11agent_client::tls::{Chooser, UserChoice};
use p11agent_proto::Identity;

use super::error::{CliError, TtyChooserError};
use super::format::short_id;
use crate::select::chooser::{ChooserReply, ChooserRequest, PROTOCOL_VERSION};

/// Arguments of `p11agent chooser`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChooserArgs {
    /// The terminal to ask on.
    #[arg(long, value_name = "PATH", default_value = "/dev/tty")]
    tty: PathBuf,
}

/// Runs the chooser on this process's stdin and stdout.
pub(super) fn run(args: ChooserArgs) -> Result<(), CliError> {
    serve(io::stdin().lock(), &args.tty, io::stdout().lock())
}

/// Reads the request from `input`, asks on the terminal at `tty` and
/// writes the answer to `output`; nothing is written unless the person
/// answered.
fn serve(mut input: impl Read, tty: &Path, mut output: impl Write) -> Result<(), CliError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|source| CliError::File {
            action: "read",
            path: PathBuf::from("-"),
            source,
        })?;
    let request: ChooserRequest =
        serde_json::from_slice(&bytes).map_err(TtyChooserError::Request)?;
    if request.version != PROTOCOL_VERSION {
        return Err(TtyChooserError::Version(request.version).into());
    }

    let terminal_error = |source| TtyChooserError::Terminal {
        path: tty.to_path_buf(),
        source,
    };
    // O_NOCTTY: a terminal named with --tty must not become the
    // controlling terminal of a chooser that happens to lead a session.
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(tty)
        .map_err(terminal_error)?;
    let reply = ask(&request, &mut BufReader::new(&terminal), &mut &terminal)
        .map_err(terminal_error)?
        .ok_or(TtyChooserError::Cancelled)?;

    serde_json::to_writer(&mut output, &reply).map_err(io::Error::from)?;
    writeln!(output)?;
    output.flush()?;
    Ok(())
}

/// The terminal as the application's own chooser, for commands such as
/// `p11agent get` run by a person: `None` when standard input is not a
/// terminal (a script), so the agent's policy and chooser program decide.
pub(super) fn terminal_chooser() -> Option<Arc<Chooser>> {
    if !io::stdin().is_terminal() {
        return None;
    }
    let chooser = |origin: &str, candidates: &[Identity]| -> Option<UserChoice> {
        let request = ChooserRequest {
            version: PROTOCOL_VERSION,
            origin: origin.to_owned(),
            candidates: candidates.to_vec(),
        };
        let terminal = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let reply = ask(&request, &mut BufReader::new(&terminal), &mut &terminal).ok()??;
        let remember = reply.remember;
        Some(match reply.choice {
            Some(id) => UserChoice::Send { id, remember },
            None => UserChoice::SendNone { remember },
        })
    };
    Some(Arc::new(chooser))
}

/// Shows the request on `out` and reads the person's answer from `input`;
/// `None` when they cancelled.
fn ask(
    request: &ChooserRequest,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> io::Result<Option<ChooserReply>> {
    let origin = printable(&request.origin);
    let count = request.candidates.len();
    writeln!(out)?;
    writeln!(out, "{origin} asks for a client certificate.")?;
    if count == 0 {
        writeln!(out, "None of your certificates fits its request.")?;
    }
    for (n, candidate) in request.candidates.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "  {}) {}", n + 1, printable(&candidate.subject))?;
        writeln!(out, "     issuer:  {}", printable(&candidate.issuer))?;
        writeln!(out, "     expires: {}", printable(&candidate.not_after))?;
        writeln!(out, "     token:   {}", printable(&candidate.token.label))?;
        writeln!(out, "     id:      {}", printable(short_id(&candidate.id)))?;
    }
    writeln!(out)?;

    let prompt = match count {
        0 => "Send no certificate (n), or cancel (q)? ".to_owned(),
        1 => "Send certificate 1, no certificate (n), or cancel (q)? ".to_owned(),
        _ => format!("Send which certificate (1-{count}), no certificate (n), or cancel (q)? "),
    };
    let choice = loop {
        write!(out, "{prompt}")?;
        out.flush()?;
        let Some(line) = read_answer(input)? else {
            return cancelled(out);
        };
        match line.as_str() {
            "" | "q" | "Q" => return cancelled(out),
            "n" | "N" => break None,
            number => match number.parse::<usize>() {
                Ok(n) if (1..=count).contains(&n) => {
                    break Some(&request.candidates[n - 1]);
                }
                _ if count == 0 => writeln!(out, "Please answer n or q.")?,
                _ => writeln!(out, "Please answer a number from 1 to {count}, n or q.")?,
            },
        }
    };

    let remember = loop {
        write!(out, "Remember this choice for {origin}? [Y/n] ")?;
        out.flush()?;
        // Leaving without an answer confirms nothing: better to ask again
        // next time than to send on a guess.
        let Some(line) = read_answer(input)? else {
            return cancelled(out);
        };
        match line.to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => break true,
            "n" | "no" => break false,
            _ => writeln!(out, "Please answer y or n.")?,
        }
    };

    match choice {
        Some(identity) => writeln!(out, "Sending {}.", printable(&identity.subject))?,
        None => writeln!(out, "Sending no certificate.")?,
    }
    out.flush()?;
    Ok(Some(ChooserReply {
        choice: choice.map(|identity| identity.id.clone()),
        remember,
    }))
}

/// Says that the question was cancelled; the answer for that.
fn cancelled(out: &mut impl Write) -> io::Result<Option<ChooserReply>> {
    writeln!(out)?;
    writeln!(out, "Cancelled: no certificate sent.")?;
    out.flush()?;
    Ok(None)
}

/// A line from the person, trimmed; `None` at end of input.
fn read_answer(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if input.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).trim().to_owned()))
}

/// `text` safe to print on a terminal: names in certificates and token
/// labels come from others, and control characters (escape sequences) or
/// bidirectional overrides in them could rewrite what the person sees.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{ClientAuth, Identity, KeyType, Token};
    use std::io::Cursor;

    const ORIGIN: &str = "https://example.org:443";

    fn identity(n: u8, subject: &str) -> Identity {
        Identity {
            id: format!("{n:02x}").repeat(32),
            subject: subject.into(),
            issuer: "CN=Test CA,O=Example".into(),
            serial: format!("{n:02x}"),
            not_before: "2024-01-01T00:00:00Z".into(),
            not_after: format!("2034-0{n}-01T00:00:00Z"),
            key_type: KeyType::Ec,
            key_bits: 256,
            curve: None,
            key_usage: None,
            extended_key_usage: None,
            has_private_key: true,
            token: Token {
                label: format!("Card {n}"),
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

    fn request(candidates: Vec<Identity>) -> ChooserRequest {
        ChooserRequest {
            version: PROTOCOL_VERSION,
            origin: ORIGIN.into(),
            candidates,
        }
    }

    fn two() -> ChooserRequest {
        request(vec![
            identity(1, "CN=Alice"),
            identity(2, "CN=Alice Signing"),
        ])
    }

    /// Asks with `typed` as the person's input; the answer and the text
    /// shown.
    fn ask_typed(request: &ChooserRequest, typed: &str) -> (Option<ChooserReply>, String) {
        let mut shown = Vec::new();
        let reply = ask(request, &mut Cursor::new(typed.as_bytes()), &mut shown).expect("ask");
        (reply, String::from_utf8(shown).expect("utf-8"))
    }

    fn send(n: u8, remember: bool) -> Option<ChooserReply> {
        Some(ChooserReply {
            choice: Some(format!("{n:02x}").repeat(32)),
            remember,
        })
    }

    #[test]
    fn shows_origin_and_numbered_candidates() {
        let (_, shown) = ask_typed(&two(), "q\n");
        assert!(
            shown.contains("https://example.org:443 asks for a client certificate."),
            "{shown}"
        );
        for expected in [
            "  1) CN=Alice\n",
            "  2) CN=Alice Signing\n",
            "     issuer:  CN=Test CA,O=Example\n",
            "     expires: 2034-02-01T00:00:00Z\n",
            "     token:   Card 2\n",
            "     id:      0202020202020202\n",
            "Send which certificate (1-2), no certificate (n), or cancel (q)? ",
        ] {
            assert!(
                shown.contains(expected),
                "missing {expected:?} in:\n{shown}"
            );
        }
        assert!(!shown.contains(&"02".repeat(9)), "{shown}");
    }

    #[test]
    fn number_picks_and_remembers_by_default() {
        let (reply, shown) = ask_typed(&two(), "2\n\n");
        assert_eq!(reply, send(2, true));
        assert!(
            shown.contains("Remember this choice for https://example.org:443? [Y/n] "),
            "{shown}"
        );
        assert!(shown.contains("Sending CN=Alice Signing."), "{shown}");
    }

    #[test]
    fn remember_answers() {
        assert_eq!(ask_typed(&two(), " 1 \ny\n").0, send(1, true));
        assert_eq!(ask_typed(&two(), "1\nYES\n").0, send(1, true));
        assert_eq!(ask_typed(&two(), "1\nn\n").0, send(1, false));
        assert_eq!(ask_typed(&two(), "1\r\nNo\r\n").0, send(1, false));
        let (reply, shown) = ask_typed(&two(), "1\nperhaps\nn\n");
        assert_eq!(reply, send(1, false));
        assert!(shown.contains("Please answer y or n."), "{shown}");
    }

    #[test]
    fn n_sends_none() {
        let (reply, shown) = ask_typed(&two(), "n\n\n");
        assert_eq!(
            reply,
            Some(ChooserReply {
                choice: None,
                remember: true
            })
        );
        assert!(shown.contains("Sending no certificate."), "{shown}");
        let (reply, _) = ask_typed(&two(), "N\nn\n");
        assert_eq!(
            reply,
            Some(ChooserReply {
                choice: None,
                remember: false
            })
        );
    }

    #[test]
    fn empty_line_q_and_end_of_input_cancel() {
        for typed in ["\n", "q\n", "Q\n", "", "  \n1\n"] {
            let (reply, shown) = ask_typed(&two(), typed);
            assert_eq!(reply, None, "{typed:?}");
            assert!(shown.contains("Cancelled: no certificate sent."), "{shown}");
        }
    }

    #[test]
    fn end_of_input_at_remember_question_cancels() {
        assert_eq!(ask_typed(&two(), "1\n").0, None);
        assert_eq!(ask_typed(&two(), "n\n").0, None);
    }

    #[test]
    fn wrong_numbers_ask_again() {
        let (reply, shown) = ask_typed(&two(), "0\n3\nabc\n-1\n2\n\n");
        assert_eq!(reply, send(2, true));
        assert_eq!(
            shown
                .matches("Please answer a number from 1 to 2, n or q.")
                .count(),
            4,
            "{shown}"
        );
    }

    #[test]
    fn one_candidate() {
        let single = request(vec![identity(1, "CN=Alice")]);
        let (reply, shown) = ask_typed(&single, "1\n\n");
        assert_eq!(reply, send(1, true));
        assert!(
            shown.contains("Send certificate 1, no certificate (n), or cancel (q)? "),
            "{shown}"
        );
    }

    #[test]
    fn no_candidates_allows_only_none_or_cancel() {
        let empty = request(Vec::new());
        let (reply, shown) = ask_typed(&empty, "1\nn\nn\n");
        assert_eq!(
            reply,
            Some(ChooserReply {
                choice: None,
                remember: false
            })
        );
        assert!(shown.contains("None of your certificates fits"), "{shown}");
        assert!(shown.contains("Please answer n or q."), "{shown}");
    }

    #[test]
    fn terminal_controls_in_names_are_neutralised() {
        let mut evil = identity(1, "CN=\u{1b}[2J\u{1b}]0;owned\u{7}Mallory\u{202e}gpj.exe");
        evil.token.label = "Card\r\nfake line".into();
        let mut req = request(vec![evil]);
        req.origin = "https://x\u{9b}31m:443".into();
        let (_, shown) = ask_typed(&req, "q\n");
        assert!(
            !shown.contains(['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}']),
            "{shown:?}"
        );
        assert!(
            shown.contains("CN=?[2J?]0;owned?Mallory?gpj.exe"),
            "{shown}"
        );
        assert!(shown.contains("token:   Card??fake line"), "{shown}");
        assert!(shown.contains("https://x?31m:443 asks"), "{shown}");
    }

    #[test]
    fn non_utf8_answer_is_not_an_error() {
        let mut shown = Vec::new();
        let typed: &[u8] = b"\xff\n2\n\n";
        let reply = ask(&two(), &mut Cursor::new(typed), &mut shown).expect("ask");
        assert_eq!(reply, send(2, true));
    }

    #[test]
    fn bad_requests_are_refused_before_the_terminal() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Not a terminal: never opened, since the request is refused first.
        let tty = dir.path().join("no-tty");
        let mut out = Vec::new();
        let err = serve(&b"{\"origin\": 1}"[..], &tty, &mut out).expect_err("bad");
        assert!(
            matches!(err, CliError::Chooser(TtyChooserError::Request(_))),
            "{err:?}"
        );
        let mut newer = serde_json::to_value(two()).expect("json");
        newer["version"] = 2.into();
        let err = serve(newer.to_string().as_bytes(), &tty, &mut out).expect_err("version");
        assert!(
            matches!(err, CliError::Chooser(TtyChooserError::Version(2))),
            "{err:?}"
        );
        assert!(out.is_empty());
        assert!(!tty.exists());
    }

    #[test]
    fn request_fields_unknown_to_this_version_are_ignored() {
        let mut value = serde_json::to_value(two()).expect("json");
        value["hint"] = "from a later agent".into();
        value["candidates"][0]["extra"] = true.into();
        let parsed: ChooserRequest = serde_json::from_value(value).expect("parse");
        assert_eq!(parsed, two());
    }

    #[test]
    fn no_terminal_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tty = dir.path().join("missing-tty");
        let mut out = Vec::new();
        let body = serde_json::to_vec(&two()).expect("json");
        let err = serve(&body[..], &tty, &mut out).expect_err("no tty");
        assert!(
            matches!(err, CliError::Chooser(TtyChooserError::Terminal { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains("missing-tty"), "{err}");
        assert!(out.is_empty());
    }
}
