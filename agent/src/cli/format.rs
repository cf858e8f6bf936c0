//! Human-readable output: tables and short summaries.

use std::io::Write as _;
use std::str::FromStr as _;

use p11agent_proto::{ClientAuth, Identity, KeyType};
use x509_parser::asn1_rs::Oid;

use crate::store::eku;

/// A table with left-aligned columns sized to their widest cell.
pub(super) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(super) fn print(&self) -> std::io::Result<()> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = std::io::stdout().lock();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', w - width(cell) + 2));
                }
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// The first 16 hex digits of an id: enough to be unique in practice and
/// accepted by `show`.
pub(super) fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// `rsa 2048`, `ec P-256`, `ec 256` (an EC key on another curve),
/// `ed25519`, `other`.
pub(super) fn key_summary(i: &Identity) -> String {
    match (i.key_type, i.curve) {
        (_, Some(curve)) => format!("{} {}", i.key_type.as_str(), curve.as_str()),
        (KeyType::Ed25519 | KeyType::Other, None) => i.key_type.as_str().to_owned(),
        (_, None) => format!("{} {}", i.key_type.as_str(), i.key_bits),
    }
}

/// `usable`, or the reasons it is not.
pub(super) fn client_auth_summary(c: &ClientAuth) -> String {
    if c.usable {
        "usable".to_owned()
    } else {
        let reasons: Vec<&str> = c.reasons.iter().map(|r| r.as_str()).collect();
        format!("no: {}", reasons.join(", "))
    }
}

/// The Extended Key Usage purposes `show` names.
static EKU_NAMES: [(Oid<'static>, &str); 8] = [
    (eku::SERVER_AUTH, "serverAuth"),
    (eku::CLIENT_AUTH, "clientAuth"),
    (eku::CODE_SIGNING, "codeSigning"),
    (eku::EMAIL_PROTECTION, "emailProtection"),
    (eku::TIME_STAMPING, "timeStamping"),
    (eku::OCSP_SIGNING, "OCSPSigning"),
    (eku::ANY, "anyExtendedKeyUsage"),
    (eku::SMARTCARD_LOGON, "smartcardLogon"),
];

/// A dotted EKU OID with its name when it has a well-known one.
pub(super) fn eku_name(oid: &str) -> String {
    let known = Oid::from_str(oid)
        .ok()
        .and_then(|parsed| EKU_NAMES.iter().find(|(known, _)| *known == parsed));
    match known {
        Some((_, name)) => format!("{oid} ({name})"),
        None => oid.to_owned(),
    }
}

/// The `--json` switch shared by listings.
#[derive(Debug, clap::Args)]
pub(crate) struct JsonArg {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Prints a value as pretty JSON on stdout.
pub(super) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), super::CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_proto::{Curve, Token};

    fn identity(key_type: KeyType, key_bits: u32, curve: Option<Curve>) -> Identity {
        Identity {
            id: "00".repeat(32),
            subject: "CN=x".into(),
            issuer: "CN=x".into(),
            serial: "01".into(),
            not_before: "2024-01-01T00:00:00Z".into(),
            not_after: "2034-01-01T00:00:00Z".into(),
            key_type,
            key_bits,
            curve,
            key_usage: None,
            extended_key_usage: None,
            has_private_key: true,
            token: Token {
                label: "t".into(),
                serial: "1".into(),
                manufacturer: "m".into(),
                model: "mo".into(),
                slot: 0,
                module: "/lib/x.so".into(),
            },
            cert_uri: "pkcs11:object=c".into(),
            key_uri: None,
            client_auth: ClientAuth::from_reasons(Vec::new()),
            schemes: Vec::new(),
            present: true,
        }
    }

    #[test]
    fn key_summaries() {
        let summary = |t, b, c| key_summary(&identity(t, b, c));
        assert_eq!(summary(KeyType::Rsa, 2048, None), "rsa 2048");
        assert_eq!(summary(KeyType::Ec, 256, Some(Curve::P256)), "ec P-256");
        assert_eq!(summary(KeyType::Ec, 256, None), "ec 256");
        assert_eq!(summary(KeyType::Ed25519, 256, None), "ed25519");
        assert_eq!(summary(KeyType::Other, 0, None), "other");
    }

    #[test]
    fn eku_names() {
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.1"),
            "1.3.6.1.5.5.7.3.1 (serverAuth)"
        );
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.2"),
            "1.3.6.1.5.5.7.3.2 (clientAuth)"
        );
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.3"),
            "1.3.6.1.5.5.7.3.3 (codeSigning)"
        );
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.4"),
            "1.3.6.1.5.5.7.3.4 (emailProtection)"
        );
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.8"),
            "1.3.6.1.5.5.7.3.8 (timeStamping)"
        );
        assert_eq!(
            eku_name("1.3.6.1.5.5.7.3.9"),
            "1.3.6.1.5.5.7.3.9 (OCSPSigning)"
        );
        assert_eq!(eku_name("2.5.29.37.0"), "2.5.29.37.0 (anyExtendedKeyUsage)");
        assert_eq!(
            eku_name("1.3.6.1.4.1.311.20.2.2"),
            "1.3.6.1.4.1.311.20.2.2 (smartcardLogon)"
        );
        // Unknown purposes, and anything that is not an OID, as given.
        assert_eq!(eku_name("1.3.6.1.5.5.7.3.5"), "1.3.6.1.5.5.7.3.5");
        assert_eq!(eku_name("1.2.3.4"), "1.2.3.4");
        assert_eq!(eku_name("clientAuth"), "clientAuth");
        assert_eq!(eku_name(""), "");
    }
}
