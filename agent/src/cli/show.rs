use std::io::Write as _;

use base64::Engine as _;
use p11agent_client::Client;
use serde_json::json;

use super::error::CliError;
use super::format::{client_auth_summary, eku_name, key_summary};

/// Arguments of `p11agent show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The identity's id (SHA-256 fingerprint) or a unique prefix of at
    /// least 8 hex digits, as `p11agent list` prints it.
    id: String,
    /// Print JSON: the identity record plus `certificate_pem`.
    #[arg(long, conflicts_with = "pem")]
    json: bool,
    /// Print only the certificate, PEM-encoded.
    #[arg(long)]
    pem: bool,
}

pub(super) fn run(client: &mut Client, args: ShowArgs) -> Result<(), CliError> {
    let shown = client.show(&args.id)?;
    let pem = to_pem(&shown.certificate);
    if args.pem {
        print!("{pem}");
        return Ok(());
    }
    let i = &shown.identity;
    if args.json {
        let mut value = json!(i);
        value["certificate_pem"] = json!(pem);
        return super::format::print_json(&value);
    }
    let mut out = std::io::stdout().lock();
    let or_absent = |v: &Option<Vec<String>>, f: fn(&str) -> String| match v {
        Some(list) if list.is_empty() => "(present, empty)".to_owned(),
        Some(list) => list.iter().map(|s| f(s)).collect::<Vec<_>>().join(", "),
        None => "(absent)".to_owned(),
    };
    writeln!(out, "id:                 {}", i.id)?;
    writeln!(out, "subject:            {}", i.subject)?;
    writeln!(out, "issuer:             {}", i.issuer)?;
    writeln!(out, "serial:             {}", i.serial)?;
    writeln!(out, "not before:         {}", i.not_before)?;
    writeln!(out, "not after:          {}", i.not_after)?;
    writeln!(out, "key:                {}", key_summary(i))?;
    writeln!(
        out,
        "key usage:          {}",
        or_absent(&i.key_usage, str::to_owned)
    )?;
    writeln!(
        out,
        "extended key usage: {}",
        or_absent(&i.extended_key_usage, eku_name)
    )?;
    writeln!(
        out,
        "private key:        {}",
        if i.has_private_key { "present" } else { "none" }
    )?;
    writeln!(
        out,
        "token:              {} (serial {}, {} {}, slot {})",
        i.token.label, i.token.serial, i.token.manufacturer, i.token.model, i.token.slot
    )?;
    writeln!(out, "module:             {}", i.token.module)?;
    writeln!(out, "certificate uri:    {}", i.cert_uri)?;
    writeln!(
        out,
        "key uri:            {}",
        i.key_uri.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "client auth:        {}",
        client_auth_summary(&i.client_auth)
    )?;
    Ok(())
}

fn to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
