//! Human-readable output: tables and short summaries.

use std::io::Write as _;

use p11agent_proto::{ClientAuth, Identity};

/// A table with left-aligned columns sized to their widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) -> std::io::Result<()> {
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
pub fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// `rsa 2048`, `ec P-256`, `ed25519`.
pub fn key_summary(i: &Identity) -> String {
    match i.curve {
        Some(curve) => format!("{} {}", i.key_type.as_str(), curve.as_str()),
        None if i.key_type == p11agent_proto::KeyType::Ed25519 => "ed25519".to_owned(),
        None => format!("{} {}", i.key_type.as_str(), i.key_bits),
    }
}

/// `usable`, or the reasons it is not.
pub fn client_auth_summary(c: &ClientAuth) -> String {
    if c.usable {
        "usable".to_owned()
    } else {
        let reasons: Vec<&str> = c.reasons.iter().map(|r| r.as_str()).collect();
        format!("no: {}", reasons.join(", "))
    }
}

/// An EKU OID with its name when it has a well-known one.
pub fn eku_name(oid: &str) -> String {
    let name = match oid {
        "1.3.6.1.5.5.7.3.1" => "serverAuth",
        "1.3.6.1.5.5.7.3.2" => "clientAuth",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.4" => "emailProtection",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        "2.5.29.37.0" => "anyExtendedKeyUsage",
        "1.3.6.1.4.1.311.20.2.2" => "smartcardLogon",
        _ => return oid.to_owned(),
    };
    format!("{oid} ({name})")
}
