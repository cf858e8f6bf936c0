//! Auto-select rules, in the format of Chromium's
//! `AutoSelectCertificateForUrls` policy, and the origins that may get a
//! lone candidate without a rule.
//!
//! No crate reads this policy or applies its filters: serde parses the
//! JSON or TOML, and this file applies Chromium's matching rules, stricter
//! where it says so below.
//!
//! A rule pairs a [`Pattern`] with a certificate filter:
//!
//! ```json
//! {"pattern": "https://[*.]example.com",
//!  "filter": {"ISSUER": {"CN": "Example CA", "O": "Example"},
//!             "SUBJECT": {"OU": "Staff"}}}
//! ```
//!
//! Chromium stores each entry of the policy as a string holding that JSON
//! object; both forms are accepted here, in JSON and in the daemon's TOML
//! configuration:
//!
//! ```toml
//! auto_select = [
//!   { pattern = "https://[*.]example.com", filter = { ISSUER = { CN = "Example CA" } } },
//!   "{\"pattern\": \"intranet.example\", \"filter\": {}}",
//! ]
//! ```
//!
//! # Filter semantics (Chromium's)
//!
//! From `CertMatchesSelectionFilters` in
//! `chrome/browser/enterprise/util/managed_browser_utils.cc` and
//! `certificate_matching::CertificatePrincipalPattern` in
//! `components/certificate_matching/certificate_principal_pattern.cc`
//! (chromium/chromium):
//!
//! * A filter has an optional `ISSUER` and an optional `SUBJECT` object,
//!   each with optional string keys `CN`, `L`, `O` and `OU`. A certificate
//!   matches when both its issuer and its subject name match.
//! * `CN` must equal the name's common name and `L` its locality, exactly
//!   (case-sensitive, no normalisation). Chromium keeps one of each: the
//!   first non-empty value in the encoded name (`net::CertPrincipal`).
//! * `O` and `OU` must equal one of the name's organisations or
//!   organisational units: a name may carry several.
//! * Keys that are absent match anything, so `{}` matches every
//!   certificate.
//!
//! # Where this is stricter than Chromium
//!
//! Chromium skips an entry it cannot use (`VLOG` only) and ignores keys
//! it does not know, non-string values and empty strings. A misspelt key
//! (`"Issuer"`, `"cn"`) there silently widens a filter to every
//! certificate, which for a client certificate is a privacy leak. Here
//! every such mistake is an error naming the entry's index: unknown keys,
//! values that are not strings, empty values, a missing `pattern` or
//! `filter`, and invalid patterns. Chromium also reads the JSON strings
//! with trailing commas allowed; serde_json does not allow them.
//!
//! # Rule order
//!
//! See [`AutoSelectRules::first_match`]: rules are tried in the order
//! given, and the first whose pattern matches the origin and whose filter
//! accepts at least one candidate wins. This is an ordered list by design
//! (the administrator decides precedence). Chromium instead merges the
//! filters of entries with the same pattern text into one setting, uses
//! only the setting of the most specific pattern that matches the URL
//! (content-settings precedence), and does not fall back to a less
//! specific pattern when that setting's filters accept no certificate.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::Deserialize;

use super::origin::Origin;
use super::pattern::{Pattern, PatternError};
use crate::store::NameParts;

/// What one principal (`ISSUER` or `SUBJECT`) of a filter asks for;
/// `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PrincipalFilter {
    common_name: Option<String>,
    locality: Option<String>,
    organization: Option<String>,
    organizational_unit: Option<String>,
}

impl PrincipalFilter {
    /// Chromium's `CertificatePrincipalPattern::Matches`.
    fn matches(&self, name: &NameParts) -> bool {
        let single = |wanted: &Option<String>, value: Option<&String>| {
            wanted.as_ref().is_none_or(|wanted| value == Some(wanted))
        };
        let any = |wanted: &Option<String>, values: &[String]| {
            wanted.as_ref().is_none_or(|wanted| values.contains(wanted))
        };
        single(&self.common_name, name.common_name.as_ref())
            && single(&self.locality, name.localities.first())
            && any(&self.organization, &name.organizations)
            && any(&self.organizational_unit, &name.organizational_units)
    }
}

/// The certificate filter of a rule: what the issuer and the subject
/// names must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CertFilter {
    issuer: PrincipalFilter,
    subject: PrincipalFilter,
}

impl CertFilter {
    /// Whether a certificate with these subject and issuer names passes:
    /// both must match their part of the filter.
    pub(crate) fn matches(&self, subject: &NameParts, issuer: &NameParts) -> bool {
        self.issuer.matches(issuer) && self.subject.matches(subject)
    }
}

/// One auto-select rule: the origins it applies to and the certificates
/// it picks there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pattern: Pattern,
    filter: CertFilter,
}

/// The auto-select rules, in order.
///
/// Deserialises from a list whose entries are rule objects or strings
/// holding a rule object as JSON (see the [module](self) documentation),
/// from any serde format; [`AutoSelectRules::from_json_str`] reads a JSON
/// file. The default is no rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AutoSelectRules(Vec<Rule>);

/// The rule that decided, and what it picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleMatch<'a, T> {
    /// The rule's position in the list, from 0.
    pub index: usize,
    /// The candidates the rule's filter accepts, in candidate order;
    /// never empty.
    pub matched: Vec<&'a T>,
}

/// Why one entry of the auto-select rules was rejected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RuleError {
    /// A string entry does not hold a valid rule as JSON.
    #[error("the string is not a valid rule as JSON: {0}")]
    Json(#[source] serde_json::Error),

    /// An object entry has a missing field, an unknown key or a value
    /// of the wrong type.
    #[error("{0}")]
    Invalid(#[source] serde_json::Error),

    /// The entry is neither an object nor a string.
    #[error("expected a rule object or a string holding one as JSON, found {0}")]
    NotAnObject(&'static str),

    /// The pattern is invalid.
    #[error("invalid pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },

    /// A filter value is the empty string, which Chromium reads as
    /// "absent", matching anything: almost certainly not what was meant.
    #[error("filter {field} is empty; leave it out to match any value")]
    EmptyValue {
        /// The key, as `ISSUER.CN`.
        field: String,
    },
}

/// Why a list of auto-select rules was rejected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RulesError {
    /// The text is not JSON, or not a JSON list.
    #[cfg(test)]
    #[error("auto-select rules must be a JSON list: {0}")]
    Json(#[source] serde_json::Error),

    /// One entry is invalid.
    #[error("auto-select rule {index}: {source}")]
    Rule {
        /// The entry's position in the list, from 0.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: RuleError,
    },
}

impl AutoSelectRules {
    /// Reads rules from a JSON list, such as a file holding the value of
    /// Chromium's `AutoSelectCertificateForUrls` policy. The daemon reads
    /// its rules through its configuration (`Deserialize`); the tests
    /// write theirs as Chromium's policy is written.
    #[cfg(test)]
    pub(crate) fn from_json_str(text: &str) -> Result<AutoSelectRules, RulesError> {
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(RulesError::Json)?;
        AutoSelectRules::from_entries(entries)
    }

    /// Finds the rule that decides for `origin` among `candidates`.
    ///
    /// `names` gives a candidate's `(subject, issuer)` names. Rules are
    /// tried in order; a rule applies when its pattern matches `origin`
    /// and its filter accepts at least one candidate, and the first that
    /// applies wins. A rule whose pattern matches but whose filter accepts
    /// no candidate does not stop later rules from applying. `None` when
    /// no rule applies.
    pub(crate) fn first_match<'a, T>(
        &self,
        origin: &Origin,
        candidates: &'a [T],
        names: impl Fn(&T) -> (&NameParts, &NameParts),
    ) -> Option<RuleMatch<'a, T>> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.pattern.matches(origin))
            .find_map(|(index, rule)| {
                let matched: Vec<&T> = candidates
                    .iter()
                    .filter(|&candidate| {
                        let (subject, issuer) = names(candidate);
                        rule.filter.matches(subject, issuer)
                    })
                    .collect();
                (!matched.is_empty()).then_some(RuleMatch { index, matched })
            })
    }

    /// Builds the rules from already-parsed list entries.
    fn from_entries(entries: Vec<serde_json::Value>) -> Result<AutoSelectRules, RulesError> {
        entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                rule_from_entry(entry).map_err(|source| RulesError::Rule { index, source })
            })
            .collect::<Result<Vec<Rule>, RulesError>>()
            .map(AutoSelectRules)
    }
}

impl<'de> Deserialize<'de> for AutoSelectRules {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Going through JSON values keeps the messages of a TOML and a
        // JSON configuration alike, and lets an entry be a rule object or
        // a string holding one whatever the format.
        let entries = Vec::<serde_json::Value>::deserialize(deserializer)?;
        AutoSelectRules::from_entries(entries).map_err(D::Error::custom)
    }
}

/// A rule as written, before its pattern and values are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    pattern: String,
    filter: ObjectOnly<FilterSpec>,
}

/// A filter as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterSpec {
    #[serde(rename = "ISSUER", default, deserialize_with = "present")]
    issuer: Option<ObjectOnly<PrincipalSpec>>,
    #[serde(rename = "SUBJECT", default, deserialize_with = "present")]
    subject: Option<ObjectOnly<PrincipalSpec>>,
}

/// One principal of a filter as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalSpec {
    #[serde(rename = "CN", default, deserialize_with = "present")]
    common_name: Option<String>,
    #[serde(rename = "L", default, deserialize_with = "present")]
    locality: Option<String>,
    #[serde(rename = "O", default, deserialize_with = "present")]
    organization: Option<String>,
    #[serde(rename = "OU", default, deserialize_with = "present")]
    organizational_unit: Option<String>,
}

/// Reads an optional key's value, refusing `null`: `Option` alone would
/// read `"CN": null` as "absent", widening the filter.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `T` read from an object only. serde's derived structs also accept a
/// list of field values, so `"filter": []` would otherwise be an empty
/// filter, matching every certificate.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOnly<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

impl PrincipalSpec {
    /// Checks that no value is empty; `principal` names it in errors.
    fn into_filter(self, principal: &str) -> Result<PrincipalFilter, RuleError> {
        let check = |key: &str, value: Option<String>| match value {
            Some(value) if value.is_empty() => Err(RuleError::EmptyValue {
                field: format!("{principal}.{key}"),
            }),
            value => Ok(value),
        };
        Ok(PrincipalFilter {
            common_name: check("CN", self.common_name)?,
            locality: check("L", self.locality)?,
            organization: check("O", self.organization)?,
            organizational_unit: check("OU", self.organizational_unit)?,
        })
    }
}

/// Reads one entry of the list: a rule object, or a string holding one.
fn rule_from_entry(entry: serde_json::Value) -> Result<Rule, RuleError> {
    let ObjectOnly(spec) = match entry {
        serde_json::Value::String(text) => {
            serde_json::from_str::<ObjectOnly<RuleSpec>>(&text).map_err(RuleError::Json)?
        }
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(RuleError::Invalid)?
        }
        serde_json::Value::Null => return Err(RuleError::NotAnObject("null")),
        serde_json::Value::Bool(_) => return Err(RuleError::NotAnObject("a boolean")),
        serde_json::Value::Number(_) => return Err(RuleError::NotAnObject("a number")),
        serde_json::Value::Array(_) => return Err(RuleError::NotAnObject("a list")),
    };
    let pattern = Pattern::parse(&spec.pattern).map_err(|source| RuleError::Pattern {
        pattern: spec.pattern.clone(),
        source,
    })?;
    let ObjectOnly(filter) = spec.filter;
    let principal = |spec: Option<ObjectOnly<PrincipalSpec>>, name: &str| {
        spec.map(|ObjectOnly(spec)| spec)
            .unwrap_or_default()
            .into_filter(name)
    };
    Ok(Rule {
        pattern,
        filter: CertFilter {
            issuer: principal(filter.issuer, "ISSUER")?,
            subject: principal(filter.subject, "SUBJECT")?,
        },
    })
}

/// The origins where the agent may send the only candidate certificate
/// without an auto-select rule.
///
/// A client certificate identifies its holder to every server that
/// receives it, so by default (no patterns) a lone candidate is never
/// sent silently. Deserialises from a list of pattern strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SingleCandidatePatterns(Vec<Pattern>);

impl SingleCandidatePatterns {
    /// Whether the only candidate may be sent to `origin` without asking.
    pub(crate) fn allows(&self, origin: &Origin) -> bool {
        self.0.iter().any(|pattern| pattern.matches(origin))
    }
}

impl<'de> Deserialize<'de> for SingleCandidatePatterns {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                Pattern::parse(text).map_err(|e| {
                    D::Error::custom(format!("single-candidate pattern {index} ({text:?}): {e}"))
                })
            })
            .collect::<Result<Vec<Pattern>, D::Error>>()
            .map(SingleCandidatePatterns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An origin and the rule index and candidate labels it must get.
    type OrderCase = (&'static str, Option<(usize, &'static [&'static str])>);

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap_or_else(|e| panic!("test origin {text}: {e}"))
    }

    fn rules(json: &str) -> AutoSelectRules {
        AutoSelectRules::from_json_str(json).unwrap_or_else(|e| panic!("test rules: {e}"))
    }

    fn name(cn: &str, l: &[&str], o: &[&str], ou: &[&str]) -> NameParts {
        let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
        NameParts {
            common_name: (!cn.is_empty()).then(|| cn.to_owned()),
            localities: strings(l),
            organizations: strings(o),
            organizational_units: strings(ou),
        }
    }

    /// A test candidate: a label and its (subject, issuer) names.
    struct Cert {
        label: &'static str,
        subject: NameParts,
        issuer: NameParts,
    }

    fn names(cert: &Cert) -> (&NameParts, &NameParts) {
        (&cert.subject, &cert.issuer)
    }

    fn certs() -> Vec<Cert> {
        vec![
            Cert {
                label: "alice-corp",
                subject: name("Alice", &["Paris"], &["Corp"], &["Staff", "Admins"]),
                issuer: name("Corp CA", &["Paris"], &["Corp"], &["PKI"]),
            },
            Cert {
                label: "alice-gov",
                subject: name("Alice", &[], &["Gov"], &["Citizens"]),
                issuer: name("Gov CA", &[], &["Gov", "Ministry"], &[]),
            },
            Cert {
                label: "bob-corp",
                subject: name("Bob", &["Lyon", "Paris"], &["Corp"], &["Staff"]),
                issuer: name("Corp CA", &["Paris"], &["Corp"], &["PKI"]),
            },
        ]
    }

    fn labels(found: &Option<RuleMatch<'_, Cert>>) -> Option<(usize, Vec<&'static str>)> {
        found
            .as_ref()
            .map(|m| (m.index, m.matched.iter().map(|c| c.label).collect()))
    }

    #[test]
    fn filters_follow_chromium() {
        // (filter JSON, labels of the certificates it accepts)
        let cases: &[(&str, &[&str])] = &[
            (r#"{}"#, &["alice-corp", "alice-gov", "bob-corp"]),
            (
                r#"{"ISSUER": {}, "SUBJECT": {}}"#,
                &["alice-corp", "alice-gov", "bob-corp"],
            ),
            (
                r#"{"ISSUER": {"CN": "Corp CA"}}"#,
                &["alice-corp", "bob-corp"],
            ),
            (r#"{"ISSUER": {"CN": "corp ca"}}"#, &[]),
            (r#"{"ISSUER": {"CN": "Corp"}}"#, &[]),
            (r#"{"ISSUER": {"O": "Ministry"}}"#, &["alice-gov"]),
            (
                r#"{"ISSUER": {"O": "Gov", "CN": "Gov CA"}}"#,
                &["alice-gov"],
            ),
            (r#"{"ISSUER": {"OU": "PKI"}}"#, &["alice-corp", "bob-corp"]),
            (r#"{"ISSUER": {"L": "Paris"}}"#, &["alice-corp", "bob-corp"]),
            (
                r#"{"SUBJECT": {"CN": "Alice"}}"#,
                &["alice-corp", "alice-gov"],
            ),
            (r#"{"SUBJECT": {"O": "Corp"}}"#, &["alice-corp", "bob-corp"]),
            // One of several OUs is enough.
            (r#"{"SUBJECT": {"OU": "Admins"}}"#, &["alice-corp"]),
            (
                r#"{"SUBJECT": {"OU": "Staff"}}"#,
                &["alice-corp", "bob-corp"],
            ),
            // L compares the first locality only, as Chromium keeps one.
            (r#"{"SUBJECT": {"L": "Lyon"}}"#, &["bob-corp"]),
            (r#"{"SUBJECT": {"L": "Paris"}}"#, &["alice-corp"]),
            // Every key of both principals must match.
            (
                r#"{"ISSUER": {"CN": "Corp CA"}, "SUBJECT": {"CN": "Bob"}}"#,
                &["bob-corp"],
            ),
            (
                r#"{"ISSUER": {"CN": "Gov CA"}, "SUBJECT": {"O": "Corp"}}"#,
                &[],
            ),
            (
                r#"{"SUBJECT": {"CN": "Alice", "O": "Gov", "OU": "Citizens"}}"#,
                &["alice-gov"],
            ),
            (r#"{"SUBJECT": {"CN": "Alice", "OU": "PKI"}}"#, &[]),
            // A subject value does not match the issuer, and the reverse.
            (r#"{"SUBJECT": {"CN": "Corp CA"}}"#, &[]),
            (r#"{"ISSUER": {"CN": "Alice"}}"#, &[]),
        ];
        let certs = certs();
        for (filter, expected) in cases {
            let json = format!(r#"[{{"pattern": "*", "filter": {filter}}}]"#);
            let rules = rules(&json);
            let accepted: Vec<&str> = certs
                .iter()
                .filter(|c| rules.0[0].filter.matches(&c.subject, &c.issuer))
                .map(|c| c.label)
                .collect();
            assert_eq!(&accepted, expected, "filter {filter}");
        }
    }

    #[test]
    fn a_name_without_the_field_does_not_match_a_filter_on_it() {
        let rules = rules(
            r#"[{"pattern": "*", "filter": {"SUBJECT": {"CN": "x"}, "ISSUER": {"L": "y"}}}]"#,
        );
        let empty = NameParts::default();
        assert!(!rules.0[0]
            .filter
            .matches(&empty, &name("", &["y"], &[], &[])));
        assert!(!rules.0[0].filter.matches(&name("x", &[], &[], &[]), &empty));
        assert!(rules.0[0]
            .filter
            .matches(&name("x", &[], &[], &[]), &name("", &["y"], &[], &[])));
    }

    #[test]
    fn first_match_takes_rules_in_order() {
        let rules = rules(
            r#"[
                {"pattern": "https://[*.]gov.example", "filter": {"ISSUER": {"CN": "Gov CA"}}},
                {"pattern": "https://[*.]corp.example", "filter": {"ISSUER": {"CN": "Nobody's CA"}}},
                {"pattern": "https://[*.]corp.example", "filter": {"SUBJECT": {"CN": "Bob"}}},
                {"pattern": "https://[*.]corp.example", "filter": {"ISSUER": {"CN": "Corp CA"}}},
                {"pattern": "https://shared.example", "filter": {"ISSUER": {"O": "Corp"}}},
                {"pattern": "[*.]example", "filter": {"SUBJECT": {"CN": "Alice"}}},
                {"pattern": "https://print.example:8443", "filter": {}}
            ]"#,
        );
        let certs = certs();
        // (origin, expected (rule index, labels))
        let cases: &[OrderCase] = &[
            ("https://gov.example", Some((0, &["alice-gov"]))),
            ("https://portal.gov.example:8443", Some((0, &["alice-gov"]))),
            // Rule 1 matches the origin but no certificate: rule 2 decides,
            // and rule 3, which would match more, is never reached.
            ("https://www.corp.example", Some((2, &["bob-corp"]))),
            (
                "https://shared.example",
                Some((4, &["alice-corp", "bob-corp"])),
            ),
            // Only the catch-all of rule 5 applies.
            (
                "https://other.example",
                Some((5, &["alice-corp", "alice-gov"])),
            ),
            (
                "http://gov.example",
                Some((5, &["alice-corp", "alice-gov"])),
            ),
            (
                "https://print.example:8443",
                Some((5, &["alice-corp", "alice-gov"])),
            ),
            ("https://example.org", None),
            ("https://gov.example.org", None),
        ];
        for (o, expected) in cases {
            let found = rules.first_match(&origin(o), &certs, names);
            let expected = expected.map(|(index, l)| (index, l.to_vec()));
            assert_eq!(labels(&found), expected, "{o}");
        }
        // No candidates, no match.
        assert!(rules
            .first_match(&origin("https://gov.example"), &certs[..0], names)
            .is_none());
        // Without rule 5, the empty filter of rule 6 picks every candidate
        // for its origin.
        let without_catch_all = AutoSelectRules(
            rules
                .0
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 5)
                .map(|(_, r)| r.clone())
                .collect(),
        );
        let found =
            without_catch_all.first_match(&origin("https://print.example:8443"), &certs, names);
        assert_eq!(
            labels(&found),
            Some((5, vec!["alice-corp", "alice-gov", "bob-corp"]))
        );
        assert!(without_catch_all
            .first_match(&origin("https://print.example"), &certs, names)
            .is_none());
    }

    #[test]
    fn no_rules_match_nothing() {
        let certs = certs();
        assert!(AutoSelectRules::default()
            .first_match(&origin("https://example.com"), &certs, names)
            .is_none());
        assert_eq!(rules("[]"), AutoSelectRules::default());
    }

    #[test]
    fn string_entries_hold_json_as_chromium_stores_them() {
        let from_strings = rules(
            r#"[
                "{\"pattern\": \"https://[*.]example.com\", \"filter\": {\"ISSUER\": {\"CN\": \"Corp CA\"}}}",
                "{\"pattern\": \"*\", \"filter\": {}}"
            ]"#,
        );
        let from_objects = rules(
            r#"[
                {"pattern": "https://[*.]example.com", "filter": {"ISSUER": {"CN": "Corp CA"}}},
                {"pattern": "*", "filter": {}}
            ]"#,
        );
        assert_eq!(from_strings, from_objects);
        assert_eq!(from_strings.0.len(), 2);
        assert_eq!(
            from_strings.0[0].pattern.to_string(),
            "https://[*.]example.com"
        );
    }

    #[test]
    fn toml_entries_may_be_tables_or_strings() {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            auto_select: AutoSelectRules,
            #[serde(default)]
            single_candidate: SingleCandidatePatterns,
        }
        let config: Config = toml::from_str(
            r#"
            auto_select = [
              { pattern = "https://[*.]corp.example", filter = { ISSUER = { CN = "Corp CA" }, SUBJECT = { OU = "Admins" } } },
              "{\"pattern\": \"gov.example\", \"filter\": {\"ISSUER\": {\"O\": \"Gov\"}}}",
              { pattern = "*", filter = {} },
            ]
            single_candidate = ["https://[*.]intranet.example", "localhost:8443"]
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let certs = certs();
        let pick = |o: &str| labels(&config.auto_select.first_match(&origin(o), &certs, names));
        assert_eq!(
            pick("https://www.corp.example"),
            Some((0, vec!["alice-corp"]))
        );
        assert_eq!(
            pick("https://gov.example:444"),
            Some((1, vec!["alice-gov"]))
        );
        assert_eq!(
            pick("https://x.gov.example"),
            Some((2, vec!["alice-corp", "alice-gov", "bob-corp"]))
        );

        assert!(config
            .single_candidate
            .allows(&origin("https://wiki.intranet.example")));
        assert!(config
            .single_candidate
            .allows(&origin("https://localhost:8443")));
        assert!(!config.single_candidate.allows(&origin("https://localhost")));
        assert!(!config
            .single_candidate
            .allows(&origin("https://example.com")));
        assert_eq!(config.single_candidate.0.len(), 2);

        let empty: Config = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.auto_select.0.is_empty());
        assert!(!empty.single_candidate.allows(&origin("https://localhost")));
    }

    #[test]
    fn bad_entries_name_their_index_and_fault() {
        // (JSON list, index, what the error says)
        let cases: &[(&str, usize, &str)] = &[
            (
                r#"[{"pattern": "*.example.com", "filter": {}}]"#,
                0,
                "invalid pattern \"*.example.com\": wildcard in host",
            ),
            (
                r#"[{"pattern": "*", "filter": {}}, {"pattern": "", "filter": {}}]"#,
                1,
                "invalid pattern \"\": empty pattern",
            ),
            (r#"[{"pattern": "*"}]"#, 0, "missing field `filter`"),
            (r#"[{"filter": {}}]"#, 0, "missing field `pattern`"),
            (
                r#"[{"pattern": "*", "filter": {"Issuer": {"CN": "x"}}}]"#,
                0,
                "unknown field `Issuer`, expected `ISSUER` or `SUBJECT`",
            ),
            (
                r#"[{"pattern": "*", "filter": {"ISSUER": {"cn": "x"}}}]"#,
                0,
                "unknown field `cn`",
            ),
            (
                r#"[{"pattern": "*", "filter": {"ISSUER": {"C": "FR"}}}]"#,
                0,
                "unknown field `C`",
            ),
            (
                r#"[{"pattern": "*", "filter": {}, "extra": 1}]"#,
                0,
                "unknown field `extra`",
            ),
            (
                r#"[{"pattern": "*", "filter": {"SUBJECT": {"CN": 5}}}]"#,
                0,
                "invalid type: integer `5`, expected a string",
            ),
            (
                r#"[{"pattern": "*", "filter": {"ISSUER": {"O": ""}}}]"#,
                0,
                "filter ISSUER.O is empty; leave it out to match any value",
            ),
            (
                r#"[{"pattern": "*", "filter": {"SUBJECT": {"OU": ""}}}]"#,
                0,
                "filter SUBJECT.OU is empty",
            ),
            (
                r#"[{"pattern": "*", "filter": []}]"#,
                0,
                "invalid type: sequence, expected an object",
            ),
            (
                r#"[{"pattern": "*", "filter": {"ISSUER": []}}]"#,
                0,
                "invalid type: sequence, expected an object",
            ),
            (
                r#"[{"pattern": "*", "filter": {"ISSUER": null}}]"#,
                0,
                "invalid type: null, expected an object",
            ),
            (
                r#"[{"pattern": "*", "filter": {"SUBJECT": {"CN": null}}}]"#,
                0,
                "invalid type: null, expected a string",
            ),
            (
                r#"[{"pattern": "*", "filter": {"SUBJECT": {"O": ["a"]}}}]"#,
                0,
                "expected a string",
            ),
            (
                r#"["[\"*\", {}]"]"#,
                0,
                "the string is not a valid rule as JSON: invalid type: sequence",
            ),
            (
                r#"[{"pattern": 1, "filter": {}}]"#,
                0,
                "invalid type: integer `1`, expected a string",
            ),
            (
                r#"["{\"pattern\": \"*\", \"filter\": {},}"]"#,
                0,
                "the string is not a valid rule as JSON: ",
            ),
            (
                r#"["not json"]"#,
                0,
                "the string is not a valid rule as JSON: ",
            ),
            (
                r#"["{\"pattern\": \"ftp://x\", \"filter\": {}}"]"#,
                0,
                "invalid pattern \"ftp://x\": unsupported scheme",
            ),
            (
                r#"[{"pattern": "*", "filter": {}}, 42]"#,
                1,
                "found a number",
            ),
            (r#"[null]"#, 0, "found null"),
            (r#"[["*"]]"#, 0, "found a list"),
        ];
        for (json, index, says) in cases {
            let err = AutoSelectRules::from_json_str(json).expect_err(json);
            match &err {
                RulesError::Rule { index: got, .. } => assert_eq!(got, index, "{json}"),
                RulesError::Json(e) => panic!("{json}: not a rule error: {e}"),
            }
            let message = err.to_string();
            let prefix = format!("auto-select rule {index}: ");
            assert!(message.starts_with(&prefix), "{json}: {message}");
            assert!(message.contains(says), "{json}: {message}");
        }
    }

    #[test]
    fn a_list_is_required() {
        for json in [r#"{"pattern": "*", "filter": {}}"#, "", "[", r#""*""#] {
            assert!(
                matches!(
                    AutoSelectRules::from_json_str(json),
                    Err(RulesError::Json(_))
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn toml_errors_name_the_rule() {
        type Config = std::collections::HashMap<String, AutoSelectRules>;
        let err = toml::from_str::<Config>(
            r#"auto_select = [ { pattern = "*", filter = {} }, { pattern = "*", filter = { SUBJECT = { Cn = "x" } } } ]"#,
        )
        .expect_err("unknown key");
        let message = err.to_string();
        assert!(
            message.contains("auto-select rule 1: unknown field `Cn`"),
            "{message}"
        );

        let err = toml::from_str::<Config>(r#"auto_select = "*""#).expect_err("not a list");
        assert!(err.to_string().contains("expected a sequence"), "{err}");
    }

    #[test]
    fn single_candidate_patterns_reject_bad_patterns_by_index() {
        let err =
            serde_json::from_str::<SingleCandidatePatterns>(r#"["localhost", "[*.]10.0.0.1"]"#)
                .expect_err("IP with wildcard");
        assert!(
            err.to_string().starts_with(
                "single-candidate pattern 1 (\"[*.]10.0.0.1\"): `[*.]` cannot be used"
            ),
            "{err}"
        );
        assert!(serde_json::from_str::<SingleCandidatePatterns>(r#""*""#).is_err());
        let all: SingleCandidatePatterns = serde_json::from_str(r#"["*"]"#).expect("valid");
        assert!(all.allows(&origin("https://anything.example:1")));
    }

    #[test]
    fn name_parts_from_an_rcgen_certificate() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Alice");
        dn.push(DnType::OrganizationName, "Corp");
        dn.push(DnType::OrganizationalUnitName, "Staff");
        dn.push(DnType::LocalityName, "Paris");
        params.distinguished_name = dn;
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.der()).unwrap_or_else(|e| panic!("{e}"));
        let subject = NameParts::from_x509(parsed.subject());
        let issuer = NameParts::from_x509(parsed.issuer());
        assert_eq!(subject, name("Alice", &["Paris"], &["Corp"], &["Staff"]));
        assert_eq!(issuer, subject);

        let rules = rules(
            r#"[{"pattern": "[*.]corp.example", "filter": {"ISSUER": {"CN": "Alice", "L": "Paris"}, "SUBJECT": {"O": "Corp", "OU": "Staff"}}}]"#,
        );
        let candidates = [(subject, issuer)];
        let found = rules.first_match(&origin("https://corp.example"), &candidates, |(s, i)| {
            (s, i)
        });
        assert_eq!(found.map(|m| (m.index, m.matched.len())), Some((0, 1)));
    }
}
