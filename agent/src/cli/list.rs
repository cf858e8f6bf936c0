use p11agent_client::Client;
use p11agent_proto::{Filter, KeyType};
use serde_json::json;

use super::error::CliError;
use super::format::{client_auth_summary, key_summary, short_id, Table};

/// Arguments of `p11agent list`. Every filter given must hold.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Subject contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Subject is exactly DN (RFC 4514, as printed).
    #[arg(long, value_name = "DN")]
    subject_exact: Option<String>,
    /// Issuer contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    issuer: Option<String>,
    /// Issuer is exactly DN (RFC 4514, as printed).
    #[arg(long, value_name = "DN")]
    issuer_exact: Option<String>,
    /// SHA-256 fingerprint starts with HEX (colons allowed).
    #[arg(long, value_name = "HEX")]
    fingerprint: Option<String>,
    /// Key type.
    #[arg(long, value_enum)]
    key_type: Option<KeyTypeArg>,
    /// On the token with this label or serial.
    #[arg(long, value_name = "LABEL|SERIAL")]
    token: Option<String>,
    /// Only identities with a private key.
    #[arg(long, conflicts_with = "no_key")]
    has_key: bool,
    /// Only certificates without a private key.
    #[arg(long)]
    no_key: bool,
    /// Only identities usable for TLS client authentication.
    #[arg(long, conflicts_with = "unusable")]
    usable: bool,
    /// Only identities not usable for TLS client authentication.
    #[arg(long)]
    unusable: bool,
    /// Only identities whose token is inserted.
    #[arg(long, conflicts_with = "absent")]
    present: bool,
    /// Only identities of removed tokens the agent remembers.
    #[arg(long)]
    absent: bool,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyTypeArg {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

impl ListArgs {
    fn filter(&self) -> Filter {
        let flag = |yes: bool, no: bool| match (yes, no) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Filter {
            subject: self.subject.clone(),
            subject_exact: self.subject_exact.clone(),
            issuer: self.issuer.clone(),
            issuer_exact: self.issuer_exact.clone(),
            fingerprint: self.fingerprint.clone(),
            key_type: self.key_type.map(|k| match k {
                KeyTypeArg::Rsa => KeyType::Rsa,
                KeyTypeArg::Ec => KeyType::Ec,
                KeyTypeArg::Ed25519 => KeyType::Ed25519,
                KeyTypeArg::Other => KeyType::Other,
            }),
            token: self.token.clone(),
            has_key: flag(self.has_key, self.no_key),
            client_auth: flag(self.usable, self.unusable),
            present: flag(self.present, self.absent),
        }
    }
}

pub(super) fn run(client: &mut Client, args: ListArgs) -> Result<(), CliError> {
    let filter = args.filter();
    let identities = client.list(&filter)?;
    if args.json {
        return super::format::print_json(&json!({ "identities": identities }));
    }
    if identities.is_empty() {
        if filter == Filter::default() {
            println!("No certificates found. See `p11agent tokens` for the tokens the agent sees.");
        } else {
            println!("No certificates match.");
        }
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "SUBJECT",
        "ISSUER",
        "KEY",
        "PRIVATE KEY",
        "TOKEN",
        "CLIENT AUTH",
    ]);
    for i in &identities {
        table.row(vec![
            short_id(&i.id).to_owned(),
            i.subject.clone(),
            i.issuer.clone(),
            key_summary(i),
            if i.has_private_key { "yes" } else { "no" }.to_owned(),
            if i.present {
                i.token.label.clone()
            } else {
                format!("{} (absent)", i.token.label)
            },
            client_auth_summary(&i.client_auth),
        ]);
    }
    table.print()?;
    Ok(())
}
