//! Policy: which candidate to send, or whether a person must choose
//! (DESIGN.md, "Client-certificate selection", after the filter).
//!
//! In order, the first that applies decides:
//!
//! 1. no candidates: nothing can be sent ([`Decision::None`]);
//! 2. a choice remembered for the origin: the remembered identity when it
//!    is still a candidate for this server (a server whose CA list
//!    changed, or a card that was swapped, falls through to the rules),
//!    or "send none";
//! 3. the first auto-select rule whose pattern matches the origin and
//!    whose filter matches a candidate: the first match, or a prompt
//!    among the matches when several match and
//!    `force_prompt_on_multiple_matches` is set;
//! 4. exactly one candidate and `send_when_single_candidate` covers the
//!    origin: that one;
//! 5. otherwise a person chooses among all candidates. There is no
//!    silent default: a client certificate identifies its holder to
//!    every site it is sent to, like a cookie that cannot be cleared.
//!
//! A remembered choice comes before the rules because it only exists
//! where a person was asked, and a person's explicit answer (above all
//! "send none") must not be overridden behind their back; `p11agent
//! forget` clears it.

use p11agent_proto::{Basis, Decision};

use super::decisions::Choice;
use super::origin::Origin;
use super::policy::{AutoSelectRules, SingleCandidatePatterns};
use crate::store::NameParts;

/// The configured policy.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// Auto-select rules, in order.
    pub rules: AutoSelectRules,
    /// Prompt instead of taking the first when a rule matches several.
    pub force_prompt_on_multiple_matches: bool,
    /// Origins to which the only candidate may be sent without a rule.
    pub send_when_single_candidate: SingleCandidatePatterns,
}

/// What policy decided, with candidates by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub basis: Basis,
    /// The auto-select rule that matched.
    pub rule: Option<usize>,
    /// With [`Decision::Selected`], the candidate to send.
    pub selected: Option<usize>,
    /// With [`Decision::Prompt`], the candidates a person chooses among.
    pub choices: Vec<usize>,
}

impl Outcome {
    fn new(decision: Decision, basis: Basis) -> Self {
        Outcome {
            decision,
            basis,
            rule: None,
            selected: None,
            choices: Vec::new(),
        }
    }

    fn selected(index: usize, basis: Basis) -> Self {
        Outcome {
            selected: Some(index),
            ..Outcome::new(Decision::Selected, basis)
        }
    }
}

/// A candidate as policy sees it.
pub(crate) trait Candidate {
    /// The identity id.
    fn id(&self) -> &str;
    /// Subject and issuer name parts, for rule filters.
    fn names(&self) -> (&NameParts, &NameParts);
}

/// Applies the policy to the candidates for `origin`, given the choice
/// remembered for it.
pub(crate) fn decide<C: Candidate>(
    policy: &Policy,
    origin: &Origin,
    remembered: Option<&Choice>,
    candidates: &[C],
) -> Outcome {
    if candidates.is_empty() {
        return Outcome::new(Decision::None, Basis::NoCandidates);
    }
    match remembered {
        Some(Choice::SendNone) => return Outcome::new(Decision::Declined, Basis::Remembered),
        Some(Choice::Identity(id)) => {
            if let Some(index) = candidates.iter().position(|c| c.id() == id) {
                return Outcome::selected(index, Basis::Remembered);
            }
        }
        None => {}
    }
    if let Some(found) = policy
        .rules
        .first_match(origin, candidates, |c: &C| c.names())
    {
        // Back from references to positions: the matches are in
        // candidate order, so one pass finds them all.
        let indices: Vec<usize> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| found.matched.iter().any(|m| std::ptr::eq(*m, *c)))
            .map(|(i, _)| i)
            .collect();
        let mut outcome = match indices.as_slice() {
            [first, _, ..] if !policy.force_prompt_on_multiple_matches => {
                Outcome::selected(*first, Basis::Rule)
            }
            [_, _, ..] => Outcome {
                choices: indices,
                ..Outcome::new(Decision::Prompt, Basis::Rule)
            },
            [only] => Outcome::selected(*only, Basis::Rule),
            [] => Outcome::new(Decision::None, Basis::NoCandidates),
        };
        outcome.rule = Some(found.index);
        return outcome;
    }
    if candidates.len() == 1 && policy.send_when_single_candidate.allows(origin) {
        return Outcome::selected(0, Basis::SingleCandidate);
    }
    Outcome {
        choices: (0..candidates.len()).collect(),
        ..Outcome::new(Decision::Prompt, Basis::UserMustChoose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        id: String,
        subject: NameParts,
        issuer: NameParts,
    }

    impl Candidate for Fake {
        fn id(&self) -> &str {
            &self.id
        }
        fn names(&self) -> (&NameParts, &NameParts) {
            (&self.subject, &self.issuer)
        }
    }

    fn fake(id: &str, cn: &str, issuer_cn: &str) -> Fake {
        let parts = |cn: &str| NameParts {
            common_name: Some(cn.to_owned()),
            ..NameParts::default()
        };
        Fake {
            id: id.to_owned(),
            subject: parts(cn),
            issuer: parts(issuer_cn),
        }
    }

    fn policy(rules: &str, force: bool, single: &[&str]) -> Policy {
        Policy {
            rules: AutoSelectRules::from_json_str(rules).expect("rules"),
            force_prompt_on_multiple_matches: force,
            send_when_single_candidate: serde_json::from_value(serde_json::json!(single))
                .expect("patterns"),
        }
    }

    fn origin(text: &str) -> Origin {
        Origin::parse(text).expect("origin")
    }

    const RULES: &str = r#"[
        {"pattern": "https://[*.]corp.test", "filter": {"ISSUER": {"CN": "Corp CA"}}},
        "{\"pattern\": \"https://[*.]corp.test\", \"filter\": {\"SUBJECT\": {\"CN\": \"bob\"}}}",
        {"pattern": "https://any.test", "filter": {}}
    ]"#;

    #[test]
    fn nothing_to_send() {
        let outcome = decide(&Policy::default(), &origin("a.test"), None, &[] as &[Fake]);
        assert_eq!(
            (outcome.decision, outcome.basis),
            (Decision::None, Basis::NoCandidates)
        );
        // Even a remembered "send none" has nothing to decline.
        let outcome = decide(
            &Policy::default(),
            &origin("a.test"),
            Some(&Choice::SendNone),
            &[] as &[Fake],
        );
        assert_eq!(outcome.decision, Decision::None);
    }

    #[test]
    fn rules_in_order_first_match_wins() {
        let policy = policy(RULES, false, &[]);
        let candidates = [
            fake("a", "alice", "Other CA"),
            fake("b", "bob", "Other CA"),
            fake("c", "carol", "Corp CA"),
        ];
        // Rule 0 matches carol by issuer.
        let outcome = decide(&policy, &origin("https://www.corp.test"), None, &candidates);
        assert_eq!(outcome.selected, Some(2));
        assert_eq!((outcome.basis, outcome.rule), (Basis::Rule, Some(0)));
        // Without carol, rule 0 matches no candidate and rule 1 (a JSON
        // string entry) picks bob.
        let outcome = decide(
            &policy,
            &origin("https://corp.test"),
            None,
            &candidates[..2],
        );
        assert_eq!((outcome.selected, outcome.rule), (Some(1), Some(1)));
        // The empty filter of rule 2 matches all: the first is sent.
        let outcome = decide(&policy, &origin("https://any.test:443"), None, &candidates);
        assert_eq!((outcome.selected, outcome.rule), (Some(0), Some(2)));
        // Scheme and host must match: no rule for http or another host.
        for other in [
            "http://www.corp.test",
            "https://corp.test.evil",
            "https://any.test.x",
        ] {
            let outcome = decide(&policy, &origin(other), None, &candidates);
            assert_eq!(
                (outcome.decision, outcome.basis),
                (Decision::Prompt, Basis::UserMustChoose),
                "{other}"
            );
            assert_eq!(outcome.choices, [0, 1, 2]);
        }
    }

    #[test]
    fn force_prompt_on_multiple_matches() {
        let candidates = [
            fake("a", "alice", "Corp CA"),
            fake("b", "bob", "Other CA"),
            fake("c", "carol", "Corp CA"),
        ];
        let o = origin("https://corp.test");
        let outcome = decide(&policy(RULES, true, &[]), &o, None, &candidates);
        assert_eq!(
            (outcome.decision, outcome.basis, outcome.rule),
            (Decision::Prompt, Basis::Rule, Some(0))
        );
        assert_eq!(outcome.choices, [0, 2]);
        // One match is sent even with the switch on.
        let outcome = decide(&policy(RULES, true, &[]), &o, None, &candidates[..2]);
        assert_eq!(outcome.selected, Some(0));
        // Switch off: the first match.
        let outcome = decide(&policy(RULES, false, &[]), &o, None, &candidates);
        assert_eq!(outcome.selected, Some(0));
    }

    #[test]
    fn no_silent_sending_without_a_rule() {
        let one = [fake("a", "alice", "X")];
        let o = origin("https://intranet.test:8443");
        let outcome = decide(&Policy::default(), &o, None, &one);
        assert_eq!(
            (outcome.decision, outcome.choices.as_slice()),
            (Decision::Prompt, &[0][..])
        );
        let switched = policy("[]", false, &["https://[*.]intranet.test"]);
        let outcome = decide(&switched, &o, None, &one);
        assert_eq!(
            (outcome.decision, outcome.basis, outcome.selected),
            (Decision::Selected, Basis::SingleCandidate, Some(0))
        );
        // Only for a single candidate, and only where the pattern says.
        let two = [fake("a", "alice", "X"), fake("b", "bob", "X")];
        assert_eq!(decide(&switched, &o, None, &two).decision, Decision::Prompt);
        let elsewhere = origin("https://other.test");
        assert_eq!(
            decide(&switched, &elsewhere, None, &one).decision,
            Decision::Prompt
        );
    }

    #[test]
    fn remembered_choices_come_first_while_they_are_candidates() {
        let policy = policy(RULES, false, &[]);
        let candidates = [fake("a", "alice", "Other"), fake("c", "carol", "Corp CA")];
        let o = origin("https://corp.test");
        let alice = Choice::Identity("a".to_owned());
        let outcome = decide(&policy, &o, Some(&alice), &candidates);
        assert_eq!(
            (outcome.selected, outcome.basis),
            (Some(0), Basis::Remembered)
        );
        let outcome = decide(&policy, &o, Some(&Choice::SendNone), &candidates);
        assert_eq!(
            (outcome.decision, outcome.basis),
            (Decision::Declined, Basis::Remembered)
        );
        // A remembered identity that is not a candidate falls through.
        let gone = Choice::Identity("zzz".to_owned());
        let outcome = decide(&policy, &o, Some(&gone), &candidates);
        assert_eq!((outcome.selected, outcome.basis), (Some(1), Basis::Rule));
    }
}
