//! `p11agent select` and `p11agent explain`: the agent's decision for a
//! server, as JSON or as a report that says why each identity is or is
//! not offered.

use std::path::{Path, PathBuf};

use p11agent_client::{Client, SelectQuery};
use p11agent_proto::{Basis, ChooserMode, Decision, Excluded, Identity, Reason, Scheme, Selection};
use x509_parser::prelude::FromDer as _;

use super::error::CliError;
use super::format::print_json;
use super::format::short_id;
use p11agent_proto::dn::format_name;

/// Arguments of `p11agent select` and `p11agent explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct SelectArgs {
    /// The server: https://host[:port], a URL, or host:port.
    #[arg(long, value_name = "URL")]
    origin: String,
    /// A CA the server accepts: a file with PEM or DER certificates
    /// (their subjects are used) or a DER distinguished name. Repeat for
    /// several; none means the server accepts any issuer.
    #[arg(long = "ca", value_name = "FILE")]
    cas: Vec<PathBuf>,
    /// A signature scheme the server accepts (IANA name, e.g.
    /// ecdsa_secp256r1_sha256). Repeat for several; none skips the check.
    #[arg(long = "scheme", value_name = "NAME", value_parser = parse_scheme)]
    schemes: Vec<Scheme>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_scheme(name: &str) -> Result<Scheme, String> {
    Scheme::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown scheme; known: {}", known.join(", "))
    })
}

/// Asks the agent what it would send, without prompting anyone and
/// without remembering anything.
fn ask(agent: &mut Client, args: &SelectArgs) -> Result<(Selection, Vec<Vec<u8>>), CliError> {
    let mut ca_names = Vec::new();
    for path in &args.cas {
        ca_names.extend(ca_names_in(path)?);
    }
    let mut query = SelectQuery::new(args.origin.clone());
    query.ca_names = ca_names.clone();
    query.schemes = (!args.schemes.is_empty()).then(|| args.schemes.clone());
    query.chooser = ChooserMode::Client;
    Ok((agent.select(&query)?, ca_names))
}

/// `p11agent select`.
pub(super) fn select(agent: &mut Client, args: SelectArgs) -> Result<(), CliError> {
    let (selection, _) = ask(agent, &args)?;
    if args.json {
        return print_json(&selection);
    }
    println!("decision: {}", selection.decision.as_str());
    println!("basis:    {}", basis_text(&selection));
    if let Some(identity) = &selection.identity {
        println!("identity: {} {}", short_id(&identity.id), identity.subject);
    }
    println!(
        "candidates: {}, excluded: {} (`p11agent explain` tells why)",
        selection.candidates.len(),
        selection.excluded.len()
    );
    Ok(())
}

/// `p11agent explain`.
pub(super) fn explain(agent: &mut Client, args: SelectArgs) -> Result<(), CliError> {
    let (selection, ca_names) = ask(agent, &args)?;
    if args.json {
        return print_json(&selection);
    }
    print!("{}", report(&selection, &ca_names, &args.schemes));
    Ok(())
}

/// The readable report (also the local half of `p11agent probe`).
pub(super) fn report(selection: &Selection, ca_names: &[Vec<u8>], schemes: &[Scheme]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "Origin: {}", selection.origin);
    if ca_names.is_empty() {
        let _ = writeln!(out, "Server accepts: certificates from any CA");
    } else {
        let _ = writeln!(out, "Server accepts certificates issued under:");
        for name in ca_names {
            let _ = writeln!(out, "  {}", name_text(name));
        }
    }
    if schemes.is_empty() {
        let _ = writeln!(out, "Server's signature schemes: not given (not checked)");
    } else {
        let names: Vec<&str> = schemes.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(out, "Server's signature schemes: {}", names.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Decision: {}", decision_text(selection));
    let _ = writeln!(out);
    if selection.candidates.is_empty() {
        let _ = writeln!(out, "Candidates: none");
    } else {
        let _ = writeln!(out, "Candidates ({}):", selection.candidates.len());
        for identity in &selection.candidates {
            let mark = match &selection.identity {
                Some(sent) if sent.id == identity.id => "→",
                _ => "✓",
            };
            let _ = writeln!(
                out,
                "  {mark} {} {}",
                short_id(&identity.id),
                identity.subject
            );
            let _ = writeln!(
                out,
                "      issued by {}; valid until {}; token {}",
                identity.issuer, identity.not_after, identity.token.label
            );
        }
    }
    if !selection.excluded.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Not offered ({}):", selection.excluded.len());
        for excluded in &selection.excluded {
            let _ = writeln!(out, "  ✗ {} {}", short_id(&excluded.id), excluded.subject);
            for reason in &excluded.reasons {
                let _ = writeln!(out, "      {}", reason_text(*reason, excluded));
            }
        }
    }
    out
}

/// One line on what was decided and why.
fn decision_text(selection: &Selection) -> String {
    let identity = |i: &Identity| format!("send {} ({})", i.subject, short_id(&i.id));
    match (selection.decision, &selection.identity) {
        (Decision::Selected, Some(i)) => format!("{}: {}", identity(i), basis_text(selection)),
        (Decision::Prompt, _) => format!(
            "ask the user to choose among {} certificate(s): {}",
            selection.choices.len(),
            basis_text(selection)
        ),
        (Decision::Declined, _) => format!("send no certificate: {}", basis_text(selection)),
        _ => "send no certificate: no identity qualifies (see below)".to_owned(),
    }
}

fn basis_text(selection: &Selection) -> String {
    match selection.basis {
        Basis::Fixed => "the identity was named by the client".to_owned(),
        Basis::Remembered => format!(
            "a choice remembered for this origin (`p11agent forget {}` clears it)",
            selection.origin
        ),
        Basis::Rule => match selection.rule {
            Some(i) if selection.decision == Decision::Prompt => format!(
                "auto-select rule #{i} matches several and force_prompt_on_multiple_matches is set"
            ),
            Some(i) => format!("auto-select rule #{i} matches"),
            None => "an auto-select rule matches".to_owned(),
        },
        Basis::SingleCandidate => {
            "the only candidate, and send_when_single_candidate covers this origin".to_owned()
        }
        Basis::Chooser => "the user chose".to_owned(),
        Basis::NoCandidates => "no identity qualifies".to_owned(),
        Basis::UserMustChoose => "no auto-select rule matches this origin, and nothing is \
             sent to a site without the user's say (a client certificate identifies you)"
            .to_owned(),
        Basis::NoChooser => "the user must choose, but no chooser is configured".to_owned(),
        Basis::ChooserCancelled => "the user cancelled the choice".to_owned(),
        // A basis added to the protocol after this text was written.
        other => other.as_str().to_owned(),
    }
}

/// What a reason code means for this identity.
fn reason_text(reason: Reason, excluded: &Excluded) -> String {
    match reason {
        Reason::NoPrivateKey => "no_private_key: the token holds no private key for it \
             (a CA certificate, or the key is elsewhere)"
            .to_owned(),
        Reason::UnsupportedKey => {
            "unsupported_key: the agent cannot sign with this key's algorithm or curve".to_owned()
        }
        Reason::Expired => "expired: its validity has ended".to_owned(),
        Reason::NotYetValid => "not_yet_valid: its validity has not begun".to_owned(),
        Reason::KeyUsage => "key_usage: Key Usage lacks digitalSignature".to_owned(),
        Reason::ExtendedKeyUsage => {
            "extended_key_usage: Extended Key Usage lacks clientAuth".to_owned()
        }
        Reason::IssuerNotAccepted => format!(
            "issuer_not_accepted: issued by {}, and neither that CA nor any CA above it \
             is in the server's list",
            excluded.issuer
        ),
        Reason::NoCommonScheme => {
            "no_common_scheme: its key can make none of the server's signature schemes".to_owned()
        }
        Reason::TokenAbsent => "token_absent: its token is not inserted".to_owned(),
        // A reason added to the protocol after this text was written.
        other => other.as_str().to_owned(),
    }
}

/// A DER name as RFC 4514 text (hex when it does not parse).
fn name_text(der: &[u8]) -> String {
    match x509_parser::x509::X509Name::from_der(der) {
        Ok((_, name)) => format_name(&name),
        Err(_) => hex::encode(der),
    }
}

/// The CA names a `--ca` file stands for: the subjects of the
/// certificates in it (PEM or DER), or the DER name it holds.
fn ca_names_in(path: &Path) -> Result<Vec<Vec<u8>>, CliError> {
    let data = std::fs::read(path).map_err(|source| CliError::File {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let bad = |why: String| CliError::Usage(format!("--ca {}: {why}", path.display()));
    if data.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut names = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&data) {
            let pem = pem.map_err(|e| bad(format!("bad PEM: {e}")))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            names.push(subject_of(&pem.contents).ok_or_else(|| {
                bad("a CERTIFICATE block is not an X.509 certificate".to_owned())
            })?);
        }
        if names.is_empty() {
            return Err(bad("no CERTIFICATE block".to_owned()));
        }
        return Ok(names);
    }
    if let Some(subject) = subject_of(&data) {
        return Ok(vec![subject]);
    }
    match x509_parser::x509::X509Name::from_der(&data) {
        Ok(([], _)) => Ok(vec![data]),
        _ => Err(bad(
            "neither PEM or DER certificates nor a DER distinguished name".to_owned(),
        )),
    }
}

fn subject_of(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(cert.subject().as_raw().to_vec())
}
