use std::borrow::Cow;
use std::io::Write;

use p11agent_client::Client;
use p11agent_proto::{Event, EventKind};

use super::error::CliError;

/// Arguments of `p11agent watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// Print each event as one JSON object per line, as the protocol
    /// has it, for scripts.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(client: Client, args: WatchArgs) -> Result<(), CliError> {
    let events = client.watch()?;
    let mut out = std::io::stdout().lock();
    for event in events {
        let event = event?;
        match print(&mut out, &event, args.json) {
            Ok(()) => {}
            // The reader went away (`p11agent watch | head -1`): that ends
            // the watch as Ctrl-C would, and is no failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes one event as one line, flushed at once: events are read as
/// they happen, often through a pipe, which would otherwise hold them.
fn print(out: &mut impl Write, event: &Event, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, event)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", describe(event))?;
    }
    out.flush()
}

/// `2026-11-23T12:00:01Z token inserted  card (serial 9980f9c5…)`,
/// `… identity added  CN=Demo (01477c05…) on card`.
fn describe(event: &Event) -> String {
    let mut line = format!(
        "{} {}",
        whole_seconds(&event.time),
        event.event.as_str().replace('_', " ")
    );
    let mut what = Vec::new();
    match (&event.subject, &event.id) {
        (Some(subject), Some(id)) => what.push(format!("{subject} ({})", abbreviated(id))),
        (Some(subject), None) => what.push(subject.clone()),
        (None, Some(id)) => what.push(abbreviated(id).into_owned()),
        (None, None) => {}
    }
    if let Some(token) = &event.token {
        what.push(if what.is_empty() {
            format!("{} (serial {})", token.label, abbreviated(&token.serial))
        } else {
            format!("on {}", token.label)
        });
    }
    match (event.event, &event.detail) {
        (EventKind::Lagged, Some(n)) => {
            what.push(format!("{n} events missed: this watch read too slowly"));
        }
        (_, Some(detail)) => what.push(detail.clone()),
        (_, None) => {}
    }
    if !what.is_empty() {
        line.push_str("  ");
        line.push_str(&what.join(" "));
    }
    line
}

/// An RFC 3339 time without its fraction of a second, for reading.
fn whole_seconds(time: &str) -> Cow<'_, str> {
    match time.split_once('.') {
        Some((seconds, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            Cow::Owned(format!("{seconds}{zone}"))
        }
        None => Cow::Borrowed(time),
    }
}

/// The first 8 characters and an ellipsis: enough to tell ids and
/// serials apart on screen (and accepted by `show` as an id prefix).
fn abbreviated(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(8) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::Token;

    fn token() -> Token {
        Token {
            label: "p11agent-demo".into(),
            serial: "9980f9c5a1b2c3d4".into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            slot: 1,
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
        }
    }

    #[test]
    fn token_events_name_the_token() {
        let event =
            Event::new(EventKind::TokenInserted, "2026-11-23T12:00:01.123456Z").token(token());
        assert_eq!(
            describe(&event),
            "2026-11-23T12:00:01Z token inserted  p11agent-demo (serial 9980f9c5…)"
        );
    }

    #[test]
    fn identity_events_name_the_identity_and_its_token() {
        let event = Event::new(EventKind::IdentityAdded, "2026-11-23T12:00:01Z")
            .token(token())
            .identity("01477c05deadbeef", "CN=Demo EC User");
        assert_eq!(
            describe(&event),
            "2026-11-23T12:00:01Z identity added  CN=Demo EC User (01477c05…) on p11agent-demo"
        );
    }

    #[test]
    fn other_events_show_their_detail() {
        let lagged = Event::new(EventKind::Lagged, "2026-11-23T12:00:01+00:00").detail("12");
        assert_eq!(
            describe(&lagged),
            "2026-11-23T12:00:01+00:00 lagged  12 events missed: this watch read too slowly"
        );
        let module =
            Event::new(EventKind::ModuleUnavailable, "t").detail("/usr/lib/opensc-pkcs11.so");
        assert_eq!(
            describe(&module),
            "t module unavailable  /usr/lib/opensc-pkcs11.so"
        );
        assert_eq!(describe(&Event::new(EventKind::Unknown, "t")), "t unknown");
    }

    #[test]
    fn json_lines_are_protocol_events() {
        let event = Event::new(EventKind::Login, "2026-11-23T12:00:01Z").token(token());
        let mut out = Vec::new();
        print(&mut out, &event, true).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 1);
        assert!(text.ends_with('\n'));
        let back: Event = serde_json::from_str(&text).expect("json");
        assert_eq!(back, event);
    }

    #[test]
    fn short_texts_are_not_abbreviated() {
        assert_eq!(abbreviated("12345678"), "12345678");
        assert_eq!(abbreviated("123456789"), "12345678…");
        assert_eq!(
            whole_seconds("2026-11-23T12:00:01Z"),
            "2026-11-23T12:00:01Z"
        );
    }
}
