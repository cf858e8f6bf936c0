//! Events: what the agent reports to the clients that watch it.
//!
//! After a [`Request::Watch`](crate::Request::Watch) the agent answers
//! [`Response::Watching`](crate::Response::Watching) and then sends one
//! [`Response::Event`](crate::Response::Event) per event, for as long as
//! the client stays connected. The crate README describes the stream.

use serde::{Deserialize, Serialize};

use crate::identity::Token;

/// Something that happened in the agent.
///
/// On the wire an event is a JSON object with `event` (the kind) and
/// `time` always present, and `token`, `id`, `subject` and `detail` only
/// when the kind has them:
///
/// ```json
/// {"event": "login", "token": {"label": "card", ...}, "time": "2026-11-23T12:00:01Z"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// The token concerned (token and identity events, login, logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// The identity concerned, by id (identity events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subject DN of the identity concerned (identity events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// More about the event: the module path for module events, the
    /// number of events missed for [`EventKind::Lagged`], an error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it happened, RFC 3339 in UTC.
    pub time: String,
}

impl Event {
    /// An event of `kind` that happened at `time` (RFC 3339), with no
    /// token, identity or detail yet.
    pub fn new(kind: EventKind, time: impl Into<String>) -> Self {
        Event {
            event: kind,
            token: None,
            id: None,
            subject: None,
            detail: None,
            time: time.into(),
        }
    }

    /// An event of `kind` that happens now.
    pub fn now(kind: EventKind) -> Self {
        use time::format_description::well_known::Rfc3339;
        let now = time::OffsetDateTime::now_utc();
        // Formatting fails only for years past 9999; the debug form
        // still tells a reader when, should that ever happen.
        let time = now.format(&Rfc3339).unwrap_or_else(|_| now.to_string());
        Event::new(kind, time)
    }

    /// Names the token the event concerns.
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Names the identity the event concerns, by id and subject DN.
    pub fn identity(mut self, id: impl Into<String>, subject: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self.subject = Some(subject.into());
        self
    }

    /// Adds the detail text.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The kinds of events.
///
/// Clients must accept kinds they do not know: later versions add more,
/// and this crate reads them as [`EventKind::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A token appeared (a card was inserted, a module found a new token).
    TokenInserted,
    /// A token went away; its identities are no longer offered and its
    /// login is gone.
    TokenRemoved,
    /// An identity entered the store.
    IdentityAdded,
    /// An identity left the store.
    IdentityRemoved,
    /// The agent logged in to a token.
    Login,
    /// The agent logged out of a token.
    Logout,
    /// A PKCS#11 module stopped answering or failed to load; `detail`
    /// names it.
    ModuleUnavailable,
    /// A module that was unavailable works again; `detail` names it.
    ModuleAvailable,
    /// This watcher read too slowly and missed events; `detail` holds
    /// how many. The agent never waits for a watcher: it drops the
    /// oldest events instead.
    Lagged,
    /// A kind this version of the crate does not know (from a newer
    /// agent).
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The kind as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TokenInserted => "token_inserted",
            EventKind::TokenRemoved => "token_removed",
            EventKind::IdentityAdded => "identity_added",
            EventKind::IdentityRemoved => "identity_removed",
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::ModuleUnavailable => "module_unavailable",
            EventKind::ModuleAvailable => "module_available",
            EventKind::Lagged => "lagged",
            EventKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;

    fn token() -> Token {
        Token {
            label: "card".into(),
            serial: "9980f9c5".into(),
            manufacturer: "m".into(),
            model: "mo".into(),
            slot: 3,
            module: "/lib/x.so".into(),
        }
    }

    #[test]
    fn absent_members_are_left_out() {
        let event = Event::new(EventKind::Lagged, "2026-11-23T12:00:01Z").detail("12");
        let json = serde_json::to_string(&event).expect("json");
        assert_eq!(
            json,
            r#"{"event":"lagged","detail":"12","time":"2026-11-23T12:00:01Z"}"#
        );
    }

    #[test]
    fn an_event_frame_round_trips() {
        let event = Event::new(EventKind::IdentityAdded, "2026-11-23T12:00:01Z")
            .token(token())
            .identity("01477c05", "CN=Demo");
        let response = Response::Event(event.clone());
        let json = serde_json::to_value(&response).expect("json");
        assert_eq!(json["type"], "event");
        assert_eq!(json["event"], "identity_added");
        assert_eq!(json["token"]["slot"], 3);
        assert_eq!(json["subject"], "CN=Demo");
        let back: Response = serde_json::from_value(json).expect("decode");
        assert_eq!(back, Response::Event(event));
    }

    #[test]
    fn kinds_and_members_from_a_newer_agent_are_accepted() {
        let json = r#"{"type":"event","event":"battery_low","level":3,"time":"t"}"#;
        match serde_json::from_str::<Response>(json).expect("decode") {
            Response::Event(event) => {
                assert_eq!(event.event, EventKind::Unknown);
                assert_eq!(event.time, "t");
            }
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let event = Event::now(EventKind::Login);
        let parsed = time::OffsetDateTime::parse(
            &event.time,
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        assert_eq!(parsed.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn wire_names_match_as_str() {
        for kind in [
            EventKind::TokenInserted,
            EventKind::TokenRemoved,
            EventKind::IdentityAdded,
            EventKind::IdentityRemoved,
            EventKind::Login,
            EventKind::Logout,
            EventKind::ModuleUnavailable,
            EventKind::ModuleAvailable,
            EventKind::Lagged,
            EventKind::Unknown,
        ] {
            let json = serde_json::to_value(kind).expect("json");
            assert_eq!(json, kind.as_str());
        }
    }
}
