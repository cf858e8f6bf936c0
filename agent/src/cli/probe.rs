//! `p11agent probe`: what a TLS server asks of a client certificate (the
//! CA names and signature schemes of its CertificateRequest), joined with
//! which local identities the agent would offer it and why not the others.

use std::time::Duration;

use p11agent_client::tls::probe::{self, Outcome, Probe, ProbeOptions, ProbeVersion};
use p11agent_client::{Client, ClientError, SelectQuery};
use p11agent_proto::dn::name_to_string;
use p11agent_proto::{ChooserMode, Scheme, Selection};
use serde_json::json;

use super::error::CliError;
use super::format::print_json;

/// Arguments of `p11agent probe`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// The server: HOST:PORT (port 443 when omitted), or an https URL.
    #[arg(value_name = "HOST:PORT")]
    server: String,
    /// The name to send as SNI and to use for the origin [default: HOST].
    #[arg(long, value_name = "NAME")]
    servername: Option<String>,
    /// Offer only TLS 1.2 (servers may ask differently per version).
    #[arg(long, conflicts_with = "tls13")]
    tls12: bool,
    /// Offer only TLS 1.3.
    #[arg(long)]
    tls13: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    json: bool,
}

/// `p11agent probe`.
pub(super) fn run(socket: Option<std::path::PathBuf>, args: ProbeArgs) -> Result<(), CliError> {
    let (host, port) = host_port(&args.server)?;
    let options = ProbeOptions {
        server_name: args.servername.clone(),
        timeout: Duration::from_secs(args.timeout),
        version: match (args.tls12, args.tls13) {
            (true, _) => ProbeVersion::Tls12,
            (_, true) => ProbeVersion::Tls13,
            _ => ProbeVersion::Any,
        },
    };
    let probed = probe::probe(&host, port, &options)
        .map_err(|e| CliError::Get(format!("cannot probe {host}:{port}: {e}")))?;
    let origin_host = args.servername.as_deref().unwrap_or(&host);
    let origin = if origin_host.contains(':') {
        format!("https://[{origin_host}]:{port}")
    } else {
        format!("https://{origin_host}:{port}")
    };
    let schemes: Vec<Scheme> = probed
        .schemes
        .iter()
        .filter_map(|s| Scheme::from_code(u16::from(*s)))
        .collect();

    // The local view needs the agent; the server's side is worth
    // showing without it.
    let local = if probed.certificate_requested {
        Some(local_view(socket, &origin, &probed, schemes.clone()))
    } else {
        None
    };
    if args.json {
        let (selection, agent_error) = match &local {
            Some(Ok(selection)) => (Some(selection), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        return print_json(&json!({
            "server": format!("{host}:{port}"),
            "origin": origin,
            "protocol": probed.protocol,
            "cipher_suite": probed.cipher_suite,
            "server_certificates": probed.server_chain_subjects,
            "certificate_requested": probed.certificate_requested,
            "ca_names": probed.ca_names.iter().map(|n| name_to_string(n)).collect::<Vec<_>>(),
            "schemes": probed.schemes.iter().map(|s| scheme_name(*s)).collect::<Vec<_>>(),
            "without_certificate": outcome_text(&probed.outcome),
            "selection": selection,
            "agent_error": agent_error,
        }));
    }
    print!("{}", server_report(&host, port, &probed));
    match local {
        None => {}
        Some(Ok(selection)) => {
            println!();
            print!(
                "{}",
                super::select::report(&selection, &probed.ca_names, &schemes)
            );
        }
        Some(Err(ClientError::NotRunning { .. })) => {
            println!("\n(the agent is not running, so the local identities are not shown)")
        }
        Some(Err(e)) => println!("\n(the agent could not be asked: {e})"),
    }
    Ok(())
}

fn local_view(
    socket: Option<std::path::PathBuf>,
    origin: &str,
    probed: &Probe,
    schemes: Vec<Scheme>,
) -> Result<Selection, ClientError> {
    let mut agent = match socket {
        Some(path) => Client::connect(path)?,
        None => Client::connect_default()?,
    };
    let mut query = SelectQuery::new(origin);
    query.ca_names = probed.ca_names.clone();
    query.schemes = Some(schemes);
    query.chooser = ChooserMode::Client;
    agent.select(&query)
}

/// The server's side, as `openssl s_client` would show it.
fn server_report(host: &str, port: u16, probed: &Probe) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Server: {host}:{port} ({}, {})",
        probed.protocol, probed.cipher_suite
    );
    if let Some(leaf) = probed.server_chain_subjects.first() {
        let _ = writeln!(out, "Server certificate: {leaf} (not verified)");
    }
    if !probed.certificate_requested {
        let _ = writeln!(out, "The server does not ask for a client certificate.");
        return out;
    }
    let _ = writeln!(
        out,
        "The server asks for a client certificate; without one it {}.",
        outcome_text(&probed.outcome)
    );
    if probed.ca_names.is_empty() {
        let _ = writeln!(
            out,
            "Acceptable client certificate CA names: none given (any issuer)"
        );
    } else {
        let _ = writeln!(
            out,
            "Acceptable client certificate CA names ({}):",
            probed.ca_names.len()
        );
        for name in &probed.ca_names {
            let _ = writeln!(out, "  {}", name_to_string(name));
        }
    }
    let names: Vec<String> = probed.schemes.iter().map(|s| scheme_name(*s)).collect();
    let _ = writeln!(
        out,
        "Requested signature schemes: {}",
        if names.is_empty() {
            "none that rustls can use".to_owned()
        } else {
            names.join(", ")
        }
    );
    out
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted => "carries on (the certificate is optional)".to_owned(),
        Outcome::Refused { alert: Some(alert) } => {
            format!("refuses the connection (alert {alert:?})")
        }
        Outcome::Refused { alert: None } => "closes the connection".to_owned(),
        Outcome::NoAnswer => {
            "says nothing within the wait (unknown whether it is required)".to_owned()
        }
        Outcome::Failed(e) => format!("could not be judged: {e}"),
    }
}

/// The IANA name of a scheme, also for those the agent cannot make.
fn scheme_name(scheme: p11agent_client::tls::rustls::SignatureScheme) -> String {
    let code = u16::from(scheme);
    if let Some(known) = Scheme::from_code(code) {
        return known.as_str().to_owned();
    }
    match code {
        0x0201 => "rsa_pkcs1_sha1".to_owned(),
        0x0203 => "ecdsa_sha1".to_owned(),
        0x0808 => "ed448".to_owned(),
        0x0809 => "rsa_pss_pss_sha256".to_owned(),
        0x080a => "rsa_pss_pss_sha384".to_owned(),
        0x080b => "rsa_pss_pss_sha512".to_owned(),
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256".to_owned(),
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384".to_owned(),
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512".to_owned(),
        other => format!("0x{other:04x}"),
    }
}

/// HOST:PORT, [V6]:PORT, HOST, or an https URL.
fn host_port(text: &str) -> Result<(String, u16), CliError> {
    let bad = || CliError::Usage(format!("{text:?} is not HOST:PORT or an https URL"));
    let rest = text.strip_prefix("https://").unwrap_or(text);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| bad())?,
            None if after.is_empty() => 443,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        None if !authority.is_empty() => Ok((authority.to_owned(), 443)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let ok = |t: &str| host_port(t).expect(t);
        assert_eq!(ok("example.com:8443"), ("example.com".into(), 8443));
        assert_eq!(ok("example.com"), ("example.com".into(), 443));
        assert_eq!(ok("https://example.com:444/x"), ("example.com".into(), 444));
        assert_eq!(ok("[::1]:4433"), ("::1".into(), 4433));
        assert_eq!(ok("[::1]"), ("::1".into(), 443));
        for bad in ["", ":443", "host:port", "[::1", "::1:443", "host:99999"] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }
}
