//! Whether an identity may be offered for TLS client authentication.
//!
//! The reasons, checked in this order and all reported when several apply:
//!
//! 1. [`Reason::NoPrivateKey`]: the token holds no key for the
//!    certificate (CA certificates on a token always get this one);
//! 2. [`Reason::UnsupportedKey`]: the agent cannot sign with the key's
//!    algorithm or curve: [`KeyType::Other`], or an EC key on a curve
//!    other than P-256, P-384 and P-521 (see [`key_supported`]);
//! 3. [`Reason::Expired`]: `now` is after `notAfter`;
//! 4. [`Reason::NotYetValid`]: `now` is before `notBefore`;
//! 5. [`Reason::KeyUsage`]: Key Usage is present without
//!    `digitalSignature`;
//! 6. [`Reason::ExtendedKeyUsage`]: Extended Key Usage is present without
//!    clientAuth (1.3.6.1.5.5.7.3.2) and without anyExtendedKeyUsage
//!    (2.5.29.37.0).
//!
//! Only the validity checks depend on the time, so [`Usability`] settles
//! the others once, when a certificate is stored, and a query only
//! compares two timestamps.

use p11agent_proto::{ClientAuth, Curve, KeyType, Reason};
use time::OffsetDateTime;
use x509_parser::asn1_rs::Oid;

use super::eku;

/// Key Usage name that client authentication needs.
pub(crate) const KU_DIGITAL_SIGNATURE: &str = "digitalSignature";

/// Whether the agent can sign with a key of this type and curve: false
/// for [`KeyType::Other`] and for an EC key without one of the named
/// curves it knows (`curve` is `None`).
pub(crate) fn key_supported(key_type: KeyType, curve: Option<Curve>) -> bool {
    match key_type {
        KeyType::Rsa | KeyType::Ed25519 => true,
        KeyType::Ec => curve.is_some(),
        _ => false,
    }
}

/// The facts that decide client-auth usability, with the time-independent
/// checks already made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usability {
    has_private_key: bool,
    key_supported: bool,
    key_usage_ok: bool,
    extended_key_usage_ok: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Usability {
    /// Settles the time-independent checks.
    ///
    /// `key_type` and `curve` describe the certified key as
    /// [`super::cert`] reads it; `key_usage` holds Key Usage bit names and
    /// `extended_key_usage` purposes, each `None` when the extension is
    /// absent.
    pub(crate) fn new(
        has_private_key: bool,
        key_type: KeyType,
        curve: Option<Curve>,
        key_usage: Option<&[String]>,
        extended_key_usage: Option<&[Oid<'_>]>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        let key_usage_ok =
            key_usage.is_none_or(|names| names.iter().any(|n| n == KU_DIGITAL_SIGNATURE));
        let extended_key_usage_ok = extended_key_usage.is_none_or(|oids| {
            oids.iter()
                .any(|o| *o == eku::CLIENT_AUTH || *o == eku::ANY)
        });
        Usability {
            has_private_key,
            key_supported: key_supported(key_type, curve),
            key_usage_ok,
            extended_key_usage_ok,
            not_before,
            not_after,
        }
    }

    /// Every reason that excludes the identity at `now`, in the order of
    /// the module documentation; empty when it is usable.
    pub(crate) fn reasons(&self, now: OffsetDateTime) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if !self.has_private_key {
            reasons.push(Reason::NoPrivateKey);
        }
        if !self.key_supported {
            reasons.push(Reason::UnsupportedKey);
        }
        if now > self.not_after {
            reasons.push(Reason::Expired);
        }
        if now < self.not_before {
            reasons.push(Reason::NotYetValid);
        }
        if !self.key_usage_ok {
            reasons.push(Reason::KeyUsage);
        }
        if !self.extended_key_usage_ok {
            reasons.push(Reason::ExtendedKeyUsage);
        }
        reasons
    }

    /// Whether any reason applies at `now`, without building the list.
    pub(crate) fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.has_private_key
            && self.key_supported
            && self.key_usage_ok
            && self.extended_key_usage_ok
            && now <= self.not_after
            && now >= self.not_before
    }

    /// The verdict at `now`.
    pub(crate) fn client_auth(&self, now: OffsetDateTime) -> ClientAuth {
        ClientAuth::from_reasons(self.reasons(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOT_BEFORE: OffsetDateTime = datetime!(2024-01-01 00:00 UTC);
    const NOT_AFTER: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const INSIDE: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn check(
        has_key: bool,
        ku: Option<&[&str]>,
        eku: Option<&[Oid<'static>]>,
        now: OffsetDateTime,
    ) -> Vec<Reason> {
        check_key(has_key, KeyType::Ec, Some(Curve::P256), ku, eku, now)
    }

    fn check_key(
        has_key: bool,
        key_type: KeyType,
        curve: Option<Curve>,
        ku: Option<&[&str]>,
        eku: Option<&[Oid<'static>]>,
        now: OffsetDateTime,
    ) -> Vec<Reason> {
        let ku = ku.map(strings);
        let u = Usability::new(
            has_key,
            key_type,
            curve,
            ku.as_deref(),
            eku,
            NOT_BEFORE,
            NOT_AFTER,
        );
        let reasons = u.reasons(now);
        assert_eq!(u.is_usable(now), reasons.is_empty());
        assert_eq!(u.client_auth(now).usable, reasons.is_empty());
        reasons
    }

    #[test]
    fn usable_when_nothing_applies() {
        assert!(check(true, None, None, INSIDE).is_empty());
        assert!(check(
            true,
            Some(&["digitalSignature"]),
            Some(&[eku::CLIENT_AUTH]),
            INSIDE
        )
        .is_empty());
        assert!(check(true, None, Some(&[eku::ANY]), INSIDE).is_empty());
        // The bounds themselves are inside the validity.
        assert!(check(true, None, None, NOT_BEFORE).is_empty());
        assert!(check(true, None, None, NOT_AFTER).is_empty());
    }

    #[test]
    fn each_reason_alone() {
        assert_eq!(check(false, None, None, INSIDE), [Reason::NoPrivateKey]);
        assert_eq!(
            check(true, None, None, datetime!(2026-01-01 00:00:01 UTC)),
            [Reason::Expired]
        );
        assert_eq!(
            check(true, None, None, datetime!(2023-12-31 23:59:59 UTC)),
            [Reason::NotYetValid]
        );
        assert_eq!(
            check(true, Some(&["keyEncipherment"]), None, INSIDE),
            [Reason::KeyUsage]
        );
        assert_eq!(check(true, Some(&[]), None, INSIDE), [Reason::KeyUsage]);
        assert_eq!(
            check(true, None, Some(&[eku::SERVER_AUTH]), INSIDE),
            [Reason::ExtendedKeyUsage]
        );
    }

    #[test]
    fn supported_keys() {
        for (key_type, curve) in [
            (KeyType::Rsa, None),
            (KeyType::Ec, Some(Curve::P256)),
            (KeyType::Ec, Some(Curve::P384)),
            (KeyType::Ec, Some(Curve::P521)),
            (KeyType::Ed25519, None),
        ] {
            assert!(key_supported(key_type, curve), "{key_type:?} {curve:?}");
            assert!(check_key(true, key_type, curve, None, None, INSIDE).is_empty());
        }
    }

    #[test]
    fn reason_unsupported_key() {
        assert!(!key_supported(KeyType::Other, None));
        assert!(!key_supported(KeyType::Ec, None));
        assert_eq!(
            check_key(true, KeyType::Other, None, None, None, INSIDE),
            [Reason::UnsupportedKey]
        );
        assert_eq!(
            check_key(true, KeyType::Ec, None, None, None, INSIDE),
            [Reason::UnsupportedKey]
        );
        // Right after no_private_key, before the validity reasons.
        assert_eq!(
            check_key(
                false,
                KeyType::Other,
                None,
                None,
                None,
                datetime!(2030-01-01 00:00 UTC)
            ),
            [
                Reason::NoPrivateKey,
                Reason::UnsupportedKey,
                Reason::Expired
            ]
        );
    }

    #[test]
    fn all_reasons_in_order() {
        assert_eq!(
            check_key(
                false,
                KeyType::Ec,
                None,
                Some(&["keyCertSign"]),
                Some(&[eku::EMAIL_PROTECTION]),
                datetime!(2030-01-01 00:00 UTC)
            ),
            [
                Reason::NoPrivateKey,
                Reason::UnsupportedKey,
                Reason::Expired,
                Reason::KeyUsage,
                Reason::ExtendedKeyUsage
            ]
        );
    }
}
