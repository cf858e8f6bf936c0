//! The origin a client connects to: scheme, host and port.
//!
//! An [`Origin`] is both what selection policies are matched against and
//! the key under which a user's choice is remembered, so equivalent
//! spellings must give equal values: `https://Example.COM/`,
//! `example.com` and `https://example.com:443` are one origin, printed as
//! `https://example.com:443`.
//!
//! Hosts are read with the WHATWG URL host parser (the `url` crate), as a
//! browser reads them: lower-cased, internationalised names in punycode,
//! IPv4 addresses in dotted-decimal form (`0x7f.1` is `127.0.0.1`) and IPv6
//! addresses in their RFC 5952 form. The parser is applied whatever the
//! scheme: `url` itself treats hosts of unknown schemes as opaque strings,
//! which would let `ldaps://LDAP.example` and `ldaps://ldap.example` differ.
//!
//! Only the host goes through `url`: `url::Url` needs a scheme, so the
//! forms people type (`example.com`, `host:8443`) do not parse, or parse
//! with `host` as the scheme, and it knows default ports for special
//! schemes only. Splitting scheme, authority and port (RFC 3986's grammar)
//! is therefore done here, in a few lines.

use std::fmt;
use std::str::FromStr;

/// A scheme, host and port.
///
/// Build one with [`Origin::parse`]; its [`Display`](fmt::Display) form,
/// `scheme://host:port` (always with the port, IPv6 hosts in brackets), is
/// canonical and parses back to the same origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Why a string is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OriginError {
    /// The input is empty or only whitespace.
    #[error("empty origin")]
    Empty,

    /// The text before `://` is not an RFC 3986 scheme.
    #[error("invalid scheme {0:?}")]
    InvalidScheme(String),

    /// There is no host, as in `https://` or `https://:443`.
    #[error("no host")]
    MissingHost,

    /// The authority holds user information (`user@host`), which has no
    /// place in an origin.
    #[error("user information (`...@`) is not allowed in an origin")]
    UserInfo,

    /// The host is not a valid domain name or IP address.
    #[error("invalid host {host:?}: {source}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What the URL host parser found wrong.
        #[source]
        source: url::ParseError,
    },

    /// The port is not a number from 1 to 65535.
    #[error("invalid port {0:?}: expected a number from 1 to 65535")]
    InvalidPort(String),

    /// No port was given and the scheme has no default one.
    #[error("no port given, and scheme {0:?} has no default port (only https and http do)")]
    MissingPort(String),
}

impl Origin {
    /// Parses an origin.
    ///
    /// Accepted forms: `scheme://host`, `scheme://host:port`, a full URL
    /// (its path, query and fragment are ignored), `host:port` and a bare
    /// `host`; without a scheme, `https` is assumed. IPv6 addresses go in
    /// brackets (`[::1]:8443`), except that a bare IPv6 address with
    /// nothing else is accepted too. Without a port, `https` means 443 and
    /// `http` 80; any other scheme needs an explicit port.
    ///
    /// A single trailing dot is dropped from a domain name, because it
    /// names the same host (Chromium trims it too before matching
    /// patterns).
    pub(crate) fn parse(input: &str) -> Result<Origin, OriginError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(OriginError::Empty);
        }

        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => (parse_scheme(scheme)?, rest),
            None => ("https".to_owned(), input),
        };

        // The authority ends where the path, query or fragment begins.
        let authority = match rest.find(['/', '?', '#']) {
            Some(end) => &rest[..end],
            None => rest,
        };
        if authority.contains('@') {
            return Err(OriginError::UserInfo);
        }

        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(OriginError::MissingHost);
        }
        let host = canonical_host(host)?;

        let port = match port {
            Some(port) => port,
            None => {
                default_port(&scheme).ok_or_else(|| OriginError::MissingPort(scheme.clone()))?
            }
        };

        Ok(Origin { scheme, host, port })
    }

    /// The scheme, in lower case.
    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host: a lower-case ASCII domain name (punycode for
    /// internationalised names), a dotted-decimal IPv4 address, or an
    /// IPv6 address without brackets.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default filled in.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is an IPv6 address.
    pub(crate) fn is_ipv6(&self) -> bool {
        // Domain names and IPv4 addresses never contain a colon.
        self.host.contains(':')
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Origin::parse(s)
    }
}

/// The default port of `scheme`, for the schemes client certificates are
/// used with in browsers.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Checks an RFC 3986 scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`)
/// and lower-cases it.
fn parse_scheme(scheme: &str) -> Result<String, OriginError> {
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        Ok(scheme.to_ascii_lowercase())
    } else {
        Err(OriginError::InvalidScheme(scheme.to_owned()))
    }
}

/// Splits an authority into its host (IPv6 still in brackets) and port.
/// An empty port (`host:`) counts as absent, as in the URL standard.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), OriginError> {
    let (host, port) = if authority.starts_with('[') {
        // The brackets exist so that the address's colons are not read
        // as the port separator.
        match authority.find(']') {
            Some(end) => {
                let (host, after) = authority.split_at(end + 1);
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return Err(OriginError::InvalidPort(after.to_owned())),
                }
            }
            // Let the host parser say what is wrong with it.
            None => (authority, None),
        }
    } else if authority.matches(':').count() > 1 {
        // More than one colon can only be an IPv6 address without
        // brackets, and then with no port: `::1:8443` is an address.
        (authority, None)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => {
            Some(parse_port(port).ok_or_else(|| OriginError::InvalidPort(port.to_owned()))?)
        }
    };
    Ok((host, port))
}

/// Parses a port: decimal digits only, 1 to 65535.
fn parse_port(port: &str) -> Option<u16> {
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|&port| port != 0)
}

/// Canonicalises a host as the URL standard does; a bare IPv6 address is
/// accepted too.
fn canonical_host(host: &str) -> Result<String, OriginError> {
    let parsed = if !host.starts_with('[') && host.contains(':') {
        url::Host::parse(&format!("[{host}]"))
    } else {
        url::Host::parse(host)
    };
    match parsed {
        Ok(url::Host::Domain(domain)) => Ok(trim_ending_dot(domain)),
        Ok(url::Host::Ipv4(address)) => Ok(address.to_string()),
        Ok(url::Host::Ipv6(address)) => Ok(ipv6_text(address)),
        Err(source) => Err(OriginError::InvalidHost {
            host: host.to_owned(),
            source,
        }),
    }
}

/// The URL standard's text form of an IPv6 address, without brackets.
///
/// This form (`::ffff:102:304`, not Rust's `::ffff:1.2.3.4`) is the one
/// patterns are canonicalised to as well, so plain string comparison
/// matches addresses.
pub(super) fn ipv6_text(address: std::net::Ipv6Addr) -> String {
    let bracketed = url::Host::<String>::Ipv6(address).to_string();
    bracketed
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .map(str::to_owned)
        .unwrap_or(bracketed)
}

/// Drops one trailing dot from a domain name (`example.com.`), keeping a
/// lone `.`, as Chromium's `TrimEndingDot` does.
pub(super) fn trim_ending_dot(mut domain: String) -> String {
    if domain.len() > 1 && domain.ends_with('.') {
        domain.pop();
    }
    domain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input and a check of the error it must give.
    type ErrorCase = (&'static str, fn(&OriginError) -> bool);

    #[test]
    fn parses_and_canonicalises() {
        // (input, scheme, host, port, display)
        let cases: &[(&str, &str, &str, u16, &str)] = &[
            (
                "https://example.com",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "https://Example.COM/",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "HTTPS://EXAMPLE.COM:443",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "https://example.com:8443",
                "https",
                "example.com",
                8443,
                "https://example.com:8443",
            ),
            (
                "http://example.com",
                "http",
                "example.com",
                80,
                "http://example.com:80",
            ),
            (
                "http://example.com:8080/x",
                "http",
                "example.com",
                8080,
                "http://example.com:8080",
            ),
            (
                "https://www.example.com/path/to?q=1#frag",
                "https",
                "www.example.com",
                443,
                "https://www.example.com:443",
            ),
            (
                "https://example.com?q",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "https://example.com#f",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "example.com",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "example.com:8443",
                "https",
                "example.com",
                8443,
                "https://example.com:8443",
            ),
            (
                "localhost:8443",
                "https",
                "localhost",
                8443,
                "https://localhost:8443",
            ),
            (
                "example.com/path",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "  example.com  ",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "https://example.com.",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "https://example.com:",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
            (
                "ldaps://LDAP.example.com:636",
                "ldaps",
                "ldap.example.com",
                636,
                "ldaps://ldap.example.com:636",
            ),
            (
                "https://127.0.0.1",
                "https",
                "127.0.0.1",
                443,
                "https://127.0.0.1:443",
            ),
            (
                "https://0x7f.1:8443",
                "https",
                "127.0.0.1",
                8443,
                "https://127.0.0.1:8443",
            ),
            (
                "192.168.1.10:8443",
                "https",
                "192.168.1.10",
                8443,
                "https://192.168.1.10:8443",
            ),
            ("https://[::1]", "https", "::1", 443, "https://[::1]:443"),
            (
                "https://[::1]:8443/x",
                "https",
                "::1",
                8443,
                "https://[::1]:8443",
            ),
            (
                "[2001:DB8:0:0:0:0:0:1]:8443",
                "https",
                "2001:db8::1",
                8443,
                "https://[2001:db8::1]:8443",
            ),
            (
                "2001:db8::1",
                "https",
                "2001:db8::1",
                443,
                "https://[2001:db8::1]:443",
            ),
            (
                "https://[::ffff:1.2.3.4]",
                "https",
                "::ffff:102:304",
                443,
                "https://[::ffff:102:304]:443",
            ),
            (
                "https://bücher.example",
                "https",
                "xn--bcher-kva.example",
                443,
                "https://xn--bcher-kva.example:443",
            ),
            (
                "https://BÜCHER.example",
                "https",
                "xn--bcher-kva.example",
                443,
                "https://xn--bcher-kva.example:443",
            ),
            (
                "https://ex%41mple.com",
                "https",
                "example.com",
                443,
                "https://example.com:443",
            ),
        ];
        for &(input, scheme, host, port, display) in cases {
            let origin = Origin::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(origin.scheme(), scheme, "{input}");
            assert_eq!(origin.host(), host, "{input}");
            assert_eq!(origin.port(), port, "{input}");
            assert_eq!(origin.to_string(), display, "{input}");
            // The display form is canonical: it parses back to itself.
            assert_eq!(Origin::parse(display).as_ref(), Ok(&origin), "{input}");
        }
    }

    #[test]
    fn equivalent_spellings_are_equal() {
        let groups: &[&[&str]] = &[
            &[
                "https://Example.COM/",
                "https://example.com:443",
                "example.com",
                "EXAMPLE.com:443",
                "https://example.com./login",
            ],
            &["http://example.com", "http://example.com:80/"],
            &[
                "https://[::1]:443",
                "::1",
                "[0:0:0:0:0:0:0:1]",
                "https://[::1]/x",
            ],
        ];
        for group in groups {
            let first = Origin::parse(group[0]).expect("first of group");
            for other in &group[1..] {
                assert_eq!(
                    Origin::parse(other).as_ref(),
                    Ok(&first),
                    "{other} vs {}",
                    group[0]
                );
            }
        }
        let distinct = [
            "https://example.com",
            "http://example.com",
            "https://example.com:8443",
            "https://www.example.com",
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(Origin::parse(a), Origin::parse(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[ErrorCase] = &[
            ("", |e| *e == OriginError::Empty),
            ("   ", |e| *e == OriginError::Empty),
            ("https://", |e| *e == OriginError::MissingHost),
            ("https://:443", |e| *e == OriginError::MissingHost),
            ("https:///path", |e| *e == OriginError::MissingHost),
            (":8443", |e| *e == OriginError::MissingHost),
            (
                "1https://example.com",
                |e| matches!(e, OriginError::InvalidScheme(s) if s == "1https"),
            ),
            ("ht tp://example.com", |e| {
                matches!(e, OriginError::InvalidScheme(_))
            }),
            (
                "://example.com",
                |e| matches!(e, OriginError::InvalidScheme(s) if s.is_empty()),
            ),
            ("https://user@example.com", |e| *e == OriginError::UserInfo),
            ("https://user:pw@example.com:443", |e| {
                *e == OriginError::UserInfo
            }),
            (
                "https://example.com:0",
                |e| matches!(e, OriginError::InvalidPort(p) if p == "0"),
            ),
            ("https://example.com:65536", |e| {
                matches!(e, OriginError::InvalidPort(_))
            }),
            ("https://example.com:-1", |e| {
                matches!(e, OriginError::InvalidPort(_))
            }),
            ("https://example.com:+443", |e| {
                matches!(e, OriginError::InvalidPort(_))
            }),
            ("https://example.com:https", |e| {
                matches!(e, OriginError::InvalidPort(_))
            }),
            (
                "https://[::1]x",
                |e| matches!(e, OriginError::InvalidPort(p) if p == "x"),
            ),
            ("https://[::1", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("https://[::g]", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("https://exa mple.com", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("https://exa<mple.com", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("https://256.0.0.1", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("https://1.2.3.4.5", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            ("example.com:443:1", |e| {
                matches!(e, OriginError::InvalidHost { .. })
            }),
            (
                "ldaps://ldap.example.com",
                |e| matches!(e, OriginError::MissingPort(s) if s == "ldaps"),
            ),
            (
                "wss://example.com",
                |e| matches!(e, OriginError::MissingPort(s) if s == "wss"),
            ),
        ];
        for (input, expected) in cases {
            match Origin::parse(input) {
                Ok(origin) => panic!("{input:?} parsed as {origin}"),
                Err(e) => assert!(expected(&e), "{input:?}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let message = |input: &str| {
            Origin::parse(input)
                .map(|o| o.to_string())
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(
            message("smtps://mail.example.com"),
            "no port given, and scheme \"smtps\" has no default port (only https and http do)"
        );
        assert_eq!(
            message("example.com:99999"),
            "invalid port \"99999\": expected a number from 1 to 65535"
        );
        assert!(message("https://exa mple.com").starts_with("invalid host \"exa mple.com\": "));
    }

    #[test]
    fn from_str_is_parse() {
        let origin: Origin = "example.com:8443".parse().expect("parses");
        assert_eq!(origin.to_string(), "https://example.com:8443");
    }
}
