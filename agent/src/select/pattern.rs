//! Chromium's content-settings URL patterns, as used by the
//! `AutoSelectCertificateForUrls` policy, matched against an [`Origin`].
//!
//! Written here because no crate implements this syntax (the `[*.]`
//! subdomain wildcard, a missing port meaning any port, Chromium's scheme
//! rules); URL-pattern and glob crates have other grammars. Hosts are
//! canonicalised by the `url` crate, as [`Origin`]'s are; this file
//! applies Chromium's parsing and matching rules on top.
//!
//! The grammar and meaning follow Chromium's own code, not only its
//! documentation: `PatternParser::Parse` in
//! `components/content_settings/core/common/content_settings_pattern_parser.cc`
//! and `ContentSettingsPattern::Builder::Canonicalize`, `Validate` and
//! `ContentSettingsPattern::Matches` in `content_settings_pattern.cc`
//! (chromium/chromium), with the enterprise documentation "Enterprise
//! policy URL pattern format" (chromeenterprise.google/policies/url-patterns).
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | every origin |
//! | `example.com` | host `example.com` exactly, any scheme, any port |
//! | `[*.]example.com` | `example.com` and every subdomain, any scheme, any port |
//! | `https://[*.]example.com` | the same, `https` only |
//! | `https://www.example.com:8443` | that host, scheme and port only |
//! | `*://host`, `host:*`, `https://*` | a `*` scheme, port or host matches any |
//! | `192.168.1.10`, `[::1]` | that IP address exactly (IPv6 in brackets) |
//!
//! What Chromium does, and so what this module does:
//!
//! * A missing scheme means any scheme, like `*://`. A missing port means
//!   **any port**, not the scheme's default: `https://example.com` matches
//!   `https://example.com:8443` too (the parser calls `WithPortWildcard`
//!   whenever no port is given).
//! * Only `http`, `https` and `*` are valid schemes for host patterns
//!   (`Validate`); Chromium's `file://` and extension schemes have no
//!   place in TLS client authentication. A `*` or missing scheme also
//!   matches origins of other schemes, such as `ldaps://host:636`.
//! * `[*.]` must be followed directly by the domain: `[*.].example.com` is
//!   invalid (crbug.com/823706), and so is `[*.]` before an IP address.
//!   `[*.]` with nothing after it matches every host, like `*`.
//! * A `*` anywhere else in the host is invalid: no partial wildcards.
//! * Hosts are canonicalised like URL hosts: lower case, punycode for
//!   internationalised names, IPv4 and IPv6 addresses in canonical form.
//!   One trailing dot is dropped (`example.com.`); two are invalid.
//! * Matching compares the canonical host exactly, or for `[*.]domain` as
//!   the domain itself or a name ending in `.domain`; schemes and ports
//!   compare exactly. Comparison is case-sensitive on canonical forms.
//! * A path (`https://example.com/login`) is accepted and ignored for
//!   http and https patterns: Chromium stores it but neither matches on
//!   it nor prints it back. (The enterprise documentation calls paths
//!   invalid for content-settings policies, but Chromium's parser takes
//!   them.) Client certificates are chosen per connection anyway, before
//!   any path is sent.
//!
//! Where this module is stricter: Chromium drops an invalid pattern
//! silently (a `VLOG`), while here every invalid pattern is an error with
//! a reason. Chromium keeps ports as strings, so `:99999` or `:0443` are
//! valid there and match nothing; here they are errors. And Chromium turns
//! `[*.]` followed by a host that fails to canonicalise into an any-host
//! pattern; here that is an error, since it would send a certificate
//! everywhere.

use std::fmt;
use std::str::FromStr;

use super::origin::{ipv6_text, trim_ending_dot, Origin};

/// A Chromium content-settings URL pattern; see the [module](self)
/// documentation for the syntax and meaning.
///
/// Two patterns that match the same origins because they are spelled
/// alike up to canonicalisation (`HTTPS://Example.com/` and
/// `https://example.com`) compare equal and print alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pattern {
    /// `None` for any scheme.
    scheme: Option<String>,
    host: HostPattern,
    /// `None` for any port.
    port: Option<u16>,
}

/// The host part of a pattern, canonicalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    /// `*`: every host.
    Any,
    /// One host; IPv6 addresses without brackets, as in [`Origin::host`].
    Exact(String),
    /// `[*.]domain`: the domain and all its subdomains.
    DomainAndSubdomains(String),
}

/// Why a string is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    /// The pattern is the empty string.
    #[error("empty pattern (use `*` to match every origin)")]
    Empty,

    /// The scheme is not `http`, `https` or `*`.
    #[error("unsupported scheme {0:?}: only https, http and * are allowed")]
    UnsupportedScheme(String),

    /// There is no host, as in `https://` or `https://:443`.
    #[error("no host (use `*` for any host)")]
    MissingHost,

    /// A `[` opens an IPv6 address or `[*.]` but is never closed.
    #[error("`[` without a closing `]`")]
    UnclosedBracket,

    /// An IPv6 address without brackets, whose colons would be read as
    /// the port separator.
    #[error("IPv6 addresses must be written in brackets, as in `[::1]`")]
    UnbracketedIpv6,

    /// A `*` in the host other than `*` alone or a leading `[*.]`.
    #[error("wildcard in host {0:?}: only `*` alone or a leading `[*.]` is allowed")]
    MisplacedWildcard(String),

    /// `[*.]` followed by a dot, as in `[*.].example.com`.
    #[error("`[*.]` is followed directly by the domain (`[*.]example.com`), not by another dot")]
    DotAfterWildcard,

    /// `[*.]` before an IP address.
    #[error("`[*.]` cannot be used with an IP address ({0})")]
    WildcardOnIpAddress(String),

    /// The host is not a valid domain name or IP address.
    #[error("invalid host {host:?}: {source}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What the URL host parser found wrong.
        #[source]
        source: url::ParseError,
    },

    /// The host ends in more than one dot.
    #[error("host {0:?} ends in more than one dot")]
    TrailingDots(String),

    /// The port is neither `*` nor a number from 1 to 65535.
    #[error("invalid port {0:?}: expected `*` or a number from 1 to 65535 without leading zeros")]
    InvalidPort(String),
}

/// Chromium's marker for "this domain and its subdomains".
const DOMAIN_WILDCARD: &str = "[*.]";

impl Pattern {
    /// Parses a pattern.
    pub(crate) fn parse(spec: &str) -> Result<Pattern, PatternError> {
        if spec.is_empty() {
            return Err(PatternError::Empty);
        }
        if spec == "*" {
            return Ok(Pattern {
                scheme: None,
                host: HostPattern::Any,
                port: None,
            });
        }

        // An empty scheme (`://host`) is a wildcard in Chromium too.
        let (scheme, rest) = spec.split_once("://").unwrap_or(("", spec));
        let scheme = match scheme {
            "" | "*" => None,
            scheme => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "https" && scheme != "http" {
                    return Err(PatternError::UnsupportedScheme(scheme));
                }
                Some(scheme)
            }
        };
        if rest.is_empty() {
            return Err(PatternError::MissingHost);
        }

        let before_path = rest.split('/').next().unwrap_or(rest);
        if before_path.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(PatternError::UnbracketedIpv6);
        }

        // The port separator is searched for after a leading `[...]`
        // (`[*.]` or an IPv6 address), whose colons are not separators.
        let search_from = if rest.starts_with('[') {
            rest.find(']').ok_or(PatternError::UnclosedBracket)?
        } else {
            0
        };
        // The path, if any, is ignored (see the module documentation).
        let (host, port) = match rest[search_from..]
            .find([':', '/'])
            .map(|i| i + search_from)
        {
            None => (rest, ""),
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], ""),
            Some(i) => {
                let after = &rest[i + 1..];
                let port_end = after.find('/').unwrap_or(after.len());
                (&rest[..i], &after[..port_end])
            }
        };

        Ok(Pattern {
            scheme,
            host: parse_host(host)?,
            port: parse_port(port)?,
        })
    }

    /// Whether `origin` is one of the origins this pattern stands for.
    pub(crate) fn matches(&self, origin: &Origin) -> bool {
        let scheme_matches = self.scheme.as_deref().is_none_or(|s| s == origin.scheme());
        let port_matches = self.port.is_none_or(|p| p == origin.port());
        let host = origin.host();
        let host_matches = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => host == exact,
            HostPattern::DomainAndSubdomains(domain) => {
                host == domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.'))
            }
        };
        scheme_matches && host_matches && port_matches
    }
}

/// Parses and canonicalises the host part.
fn parse_host(host: &str) -> Result<HostPattern, PatternError> {
    match host {
        "" => Err(PatternError::MissingHost),
        "*" => Ok(HostPattern::Any),
        _ => match host.strip_prefix(DOMAIN_WILDCARD) {
            Some("") => Ok(HostPattern::Any),
            Some(domain) => {
                if domain.contains('*') {
                    return Err(PatternError::MisplacedWildcard(host.to_owned()));
                }
                match canonical_host(domain)? {
                    Canonical::Domain(canonical) if canonical.starts_with('.') => {
                        Err(PatternError::DotAfterWildcard)
                    }
                    Canonical::Domain(canonical) => Ok(HostPattern::DomainAndSubdomains(canonical)),
                    Canonical::Ip(_) => Err(PatternError::WildcardOnIpAddress(domain.to_owned())),
                }
            }
            None => {
                if host.contains('*') {
                    return Err(PatternError::MisplacedWildcard(host.to_owned()));
                }
                match canonical_host(host)? {
                    Canonical::Domain(canonical) | Canonical::Ip(canonical) => {
                        Ok(HostPattern::Exact(canonical))
                    }
                }
            }
        },
    }
}

/// A canonical host, as [`Origin`] holds it.
enum Canonical {
    Domain(String),
    Ip(String),
}

/// Canonicalises a host with the URL host parser (as Chromium's
/// `net::CanonicalizeHost` does), the same way [`Origin`] does, so that
/// matching can compare strings.
fn canonical_host(host: &str) -> Result<Canonical, PatternError> {
    let parsed = url::Host::parse(host).map_err(|source| PatternError::InvalidHost {
        host: host.to_owned(),
        source,
    })?;
    match parsed {
        url::Host::Domain(domain) => {
            // Two dots would canonicalise differently a second time, so
            // Chromium rejects them rather than trimming both.
            if domain.ends_with("..") {
                return Err(PatternError::TrailingDots(host.to_owned()));
            }
            Ok(Canonical::Domain(trim_ending_dot(domain)))
        }
        url::Host::Ipv4(address) => Ok(Canonical::Ip(address.to_string())),
        url::Host::Ipv6(address) => Ok(Canonical::Ip(ipv6_text(address))),
    }
}

/// Parses the port part: empty or `*` for any port, else 1 to 65535.
fn parse_port(port: &str) -> Result<Option<u16>, PatternError> {
    if port.is_empty() || port == "*" {
        return Ok(None);
    }
    let canonical_digits = port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
    match port.parse::<u16>() {
        Ok(number) if canonical_digits => Ok(Some(number)),
        _ => Err(PatternError::InvalidPort(port.to_owned())),
    }
}

impl fmt::Display for Pattern {
    /// The canonical text, in the most compact form Chromium's
    /// `PatternParser::ToString` gives: `*` for the all-wildcard pattern,
    /// the scheme only when it is not a wildcard, the port only when it
    /// is not a wildcard, and never a path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme.is_none() && self.host == HostPattern::Any && self.port.is_none() {
            return f.write_str("*");
        }
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Exact(host) if host.contains(':') => write!(f, "[{host}]")?,
            HostPattern::Exact(host) => f.write_str(host)?,
            HostPattern::DomainAndSubdomains(domain) => write!(f, "{DOMAIN_WILDCARD}{domain}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Pattern {
    /// Reads a pattern from its text; an invalid one fails with the
    /// pattern and the reason.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid pattern {text:?}: {e}")))
    }
}

impl serde::Serialize for Pattern {
    /// Writes the canonical text.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern and a check of the error it must give.
    type ErrorCase = (&'static str, fn(&PatternError) -> bool);

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap_or_else(|e| panic!("test origin {text}: {e}"))
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap_or_else(|e| panic!("test pattern {text}: {e}"))
    }

    /// (pattern, canonical text, origins it matches, origins it does not)
    type Case = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    );

    const CASES: &[Case] = &[
        (
            "*",
            "*",
            &[
                "https://example.com",
                "http://a.b.c:8080",
                "https://[::1]:1",
                "ldaps://ldap.example:636",
            ],
            &[],
        ),
        (
            "[*.]example.com",
            "[*.]example.com",
            &[
                "https://example.com",
                "https://www.example.com",
                "https://a.b.example.com:8443",
                "http://example.com",
                "ldaps://ldap.example.com:636",
            ],
            &[
                "https://badexample.com",
                "https://example.com.evil.net",
                "https://example.org",
                "https://com",
            ],
        ),
        (
            "example.com",
            "example.com",
            &[
                "https://example.com",
                "http://example.com",
                "https://example.com:8443",
                "https://EXAMPLE.com.",
            ],
            &["https://www.example.com", "https://example.org"],
        ),
        (
            "https://[*.]example.com",
            "https://[*.]example.com",
            &[
                "https://example.com",
                "https://www.example.com",
                "https://www.example.com:8443",
            ],
            &[
                "http://example.com",
                "http://www.example.com",
                "ldaps://example.com:636",
            ],
        ),
        (
            "https://www.example.com:8443",
            "https://www.example.com:8443",
            &[
                "https://www.example.com:8443",
                "https://WWW.example.com:8443/x",
            ],
            &[
                "https://www.example.com",
                "http://www.example.com:8443",
                "https://example.com:8443",
                "https://a.www.example.com:8443",
            ],
        ),
        // No port means any port, not the scheme's default.
        (
            "https://example.com",
            "https://example.com",
            &[
                "https://example.com",
                "https://example.com:8443",
                "https://example.com:80",
            ],
            &["http://example.com", "https://www.example.com"],
        ),
        (
            "https://example.com:443",
            "https://example.com:443",
            &["https://example.com", "https://example.com:443"],
            &["https://example.com:8443"],
        ),
        (
            "*://example.com",
            "example.com",
            &[
                "https://example.com",
                "http://example.com:8080",
                "ldaps://example.com:636",
            ],
            &["https://www.example.com"],
        ),
        (
            "example.com:*",
            "example.com",
            &["https://example.com:1", "http://example.com"],
            &["https://www.example.com"],
        ),
        (
            "example.com:8443",
            "example.com:8443",
            &["https://example.com:8443", "http://example.com:8443"],
            &["https://example.com", "https://example.com:443"],
        ),
        (
            "*://*:443",
            "*:443",
            &["https://example.com", "http://anything.example:443"],
            &["https://example.com:8443", "http://example.com"],
        ),
        (
            "https://*",
            "https://*",
            &["https://example.com", "https://[::1]:8443"],
            &["http://example.com"],
        ),
        (
            "https://*:8443",
            "https://*:8443",
            &["https://example.com:8443"],
            &["https://example.com", "http://example.com:8443"],
        ),
        (
            "http://[*.]example.com:*",
            "http://[*.]example.com",
            &["http://example.com", "http://x.example.com:1234"],
            &["https://example.com"],
        ),
        (
            "192.168.1.10",
            "192.168.1.10",
            &["https://192.168.1.10", "http://192.168.1.10:8080"],
            &[
                "https://192.168.1.1",
                "https://192.168.1.100",
                "https://10.192.168.1.10.example",
            ],
        ),
        (
            "https://127.0.0.1:8443",
            "https://127.0.0.1:8443",
            &["https://127.0.0.1:8443", "https://0x7f.1:8443"],
            &["https://127.0.0.1", "https://localhost:8443"],
        ),
        (
            "[::1]",
            "[::1]",
            &["https://[::1]", "http://[::1]:8080", "https://[0:0::1]"],
            &["https://[::2]", "https://127.0.0.1", "https://localhost"],
        ),
        (
            "https://[0:0:0:0:0:0:0:1]:8443",
            "https://[::1]:8443",
            &["https://[::1]:8443"],
            &["https://[::1]"],
        ),
        (
            "[::ffff:1.2.3.4]",
            "[::ffff:102:304]",
            &["https://[::ffff:1.2.3.4]"],
            &["https://1.2.3.4"],
        ),
        // Canonicalisation: case, punycode, trailing dot, percent-encoding.
        (
            "HTTPS://WWW.Example.COM",
            "https://www.example.com",
            &["https://www.example.com:8443"],
            &["http://www.example.com"],
        ),
        (
            "[*.]bücher.example",
            "[*.]xn--bcher-kva.example",
            &[
                "https://bücher.example",
                "https://shop.xn--bcher-kva.example",
            ],
            &["https://bucher.example"],
        ),
        (
            "example.com.",
            "example.com",
            &["https://example.com"],
            &["https://www.example.com"],
        ),
        (
            "ex%41mple.com",
            "example.com",
            &["https://example.com"],
            &[],
        ),
        // `[*.]` alone is every host, like `*`.
        (
            "https://[*.]",
            "https://*",
            &["https://example.com"],
            &["http://example.com"],
        ),
        (
            "://example.com",
            "example.com",
            &["http://example.com"],
            &[],
        ),
        // Paths are ignored for http and https patterns.
        (
            "https://example.com/login",
            "https://example.com",
            &["https://example.com", "https://example.com:8443"],
            &["http://example.com"],
        ),
        (
            "https://example.com:8443/*",
            "https://example.com:8443",
            &["https://example.com:8443"],
            &[],
        ),
        (
            "[*.]example.com/a/b:c",
            "[*.]example.com",
            &["https://www.example.com:9"],
            &[],
        ),
        (
            "[::1]:8443/x",
            "[::1]:8443",
            &["https://[::1]:8443"],
            &["https://[::1]"],
        ),
        // An empty port is any port, as in Chromium.
        (
            "example.com:",
            "example.com",
            &["https://example.com:8443"],
            &[],
        ),
        (
            "localhost",
            "localhost",
            &["https://localhost:8443"],
            &["https://localhost.example"],
        ),
    ];

    #[test]
    fn patterns_match_as_in_chromium() {
        for &(text, canonical, matching, not_matching) in CASES {
            let parsed = pattern(text);
            assert_eq!(parsed.to_string(), canonical, "canonical form of {text}");
            assert_eq!(
                pattern(canonical),
                parsed,
                "{canonical} parses back to {text}"
            );
            for o in matching {
                assert!(parsed.matches(&origin(o)), "{text} should match {o}");
            }
            for o in not_matching {
                assert!(!parsed.matches(&origin(o)), "{text} should not match {o}");
            }
        }
    }

    #[test]
    fn rejects_invalid_patterns() {
        let cases: &[ErrorCase] = &[
            ("", |e| *e == PatternError::Empty),
            ("https://", |e| *e == PatternError::MissingHost),
            ("https://:443", |e| *e == PatternError::MissingHost),
            ("https:///path", |e| *e == PatternError::MissingHost),
            (":443", |e| *e == PatternError::MissingHost),
            ("/path", |e| *e == PatternError::MissingHost),
            (
                "ftp://example.com",
                |e| matches!(e, PatternError::UnsupportedScheme(s) if s == "ftp"),
            ),
            (
                "file:///tmp/x",
                |e| matches!(e, PatternError::UnsupportedScheme(s) if s == "file"),
            ),
            ("chrome-extension://abc", |e| {
                matches!(e, PatternError::UnsupportedScheme(_))
            }),
            (
                "ldaps://ldap.example.com:636",
                |e| matches!(e, PatternError::UnsupportedScheme(s) if s == "ldaps"),
            ),
            ("[::1", |e| *e == PatternError::UnclosedBracket),
            ("https://[*.example.com", |e| {
                *e == PatternError::UnclosedBracket
            }),
            ("::1", |e| *e == PatternError::UnbracketedIpv6),
            ("2001:db8::1/x", |e| *e == PatternError::UnbracketedIpv6),
            (
                "*.example.com",
                |e| matches!(e, PatternError::MisplacedWildcard(h) if h == "*.example.com"),
            ),
            ("www.*.com", |e| {
                matches!(e, PatternError::MisplacedWildcard(_))
            }),
            ("exa*mple.com", |e| {
                matches!(e, PatternError::MisplacedWildcard(_))
            }),
            ("[*.]*.example.com", |e| {
                matches!(e, PatternError::MisplacedWildcard(_))
            }),
            ("[*.].example.com", |e| *e == PatternError::DotAfterWildcard),
            ("[*.]192.168.1.10", |e| {
                matches!(e, PatternError::WildcardOnIpAddress(_))
            }),
            ("[*.]10.1", |e| {
                matches!(e, PatternError::WildcardOnIpAddress(_))
            }),
            ("[*.][::1]", |e| {
                matches!(e, PatternError::InvalidHost { .. })
            }),
            ("[*.]exa mple.com", |e| {
                matches!(e, PatternError::InvalidHost { .. })
            }),
            ("exa mple.com", |e| {
                matches!(e, PatternError::InvalidHost { .. })
            }),
            ("example.com?q=1", |e| {
                matches!(e, PatternError::InvalidHost { .. })
            }),
            ("[::g]", |e| matches!(e, PatternError::InvalidHost { .. })),
            ("[::1]x", |e| matches!(e, PatternError::InvalidHost { .. })),
            ("256.1.1.1", |e| {
                matches!(e, PatternError::InvalidHost { .. })
            }),
            ("example.com..", |e| {
                matches!(e, PatternError::TrailingDots(_))
            }),
            (
                "example.com:http",
                |e| matches!(e, PatternError::InvalidPort(p) if p == "http"),
            ),
            (
                "example.com:0",
                |e| matches!(e, PatternError::InvalidPort(p) if p == "0"),
            ),
            (
                "example.com:0443",
                |e| matches!(e, PatternError::InvalidPort(p) if p == "0443"),
            ),
            ("example.com:65536", |e| {
                matches!(e, PatternError::InvalidPort(_))
            }),
            ("example.com:-1", |e| {
                matches!(e, PatternError::InvalidPort(_))
            }),
            ("example.com:44*", |e| {
                matches!(e, PatternError::InvalidPort(_))
            }),
            ("[::1]:x", |e| matches!(e, PatternError::InvalidPort(_))),
        ];
        for (text, expected) in cases {
            match Pattern::parse(text) {
                Ok(parsed) => panic!("{text:?} parsed as {parsed}"),
                Err(e) => assert!(expected(&e), "{text:?}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_clear() {
        let message = |text: &str| {
            Pattern::parse(text)
                .map(|p| p.to_string())
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(
            message("*.example.com"),
            "wildcard in host \"*.example.com\": only `*` alone or a leading `[*.]` is allowed"
        );
        assert_eq!(
            message("ftp://x"),
            "unsupported scheme \"ftp\": only https, http and * are allowed"
        );
        assert_eq!(
            message("[*.].example.com"),
            "`[*.]` is followed directly by the domain (`[*.]example.com`), not by another dot"
        );
    }

    #[test]
    fn serde_reads_and_writes_the_text() {
        let parsed: Vec<Pattern> =
            serde_json::from_str(r#"["HTTPS://[*.]Example.com:443/x", "*"]"#)
                .expect("valid patterns");
        assert_eq!(
            parsed,
            vec![pattern("https://[*.]example.com:443"), pattern("*")]
        );
        assert_eq!(
            serde_json::to_string(&parsed).expect("serialises"),
            r#"["https://[*.]example.com:443","*"]"#
        );

        let err = serde_json::from_str::<Vec<Pattern>>(r#"["ok.example", "*.bad.example"]"#)
            .expect_err("invalid pattern");
        assert!(
            err.to_string()
                .starts_with("invalid pattern \"*.bad.example\": wildcard in host"),
            "{err}"
        );
        assert!(serde_json::from_str::<Pattern>("42").is_err());
    }
}
