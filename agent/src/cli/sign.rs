use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use p11agent_client::Client;
use p11agent_proto::Scheme;

use super::error::CliError;

/// Arguments of `p11agent sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The identity's id (SHA-256 fingerprint) or a unique prefix of at
    /// least 8 hex digits, as `p11agent list` prints it.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The TLS signature scheme (IANA name). ECDSA schemes are bound to
    /// their curve; `p11agent show ID --json` lists an identity's schemes.
    #[arg(long, value_name = "NAME", value_parser = scheme_parser())]
    scheme: Scheme,
    /// The message to sign (not a digest: the agent hashes); `-` is stdin.
    #[arg(long = "in", value_name = "FILE", default_value = "-")]
    input: PathBuf,
    /// Where to write the signature (raw bytes; DER for ECDSA); `-` is
    /// stdout.
    #[arg(long = "out", value_name = "FILE", default_value = "-")]
    output: PathBuf,
}

/// Accepts exactly the scheme names the protocol knows; clap lists them
/// in `--help` and in the error for an unknown name.
fn scheme_parser() -> impl clap::builder::TypedValueParser<Value = Scheme> {
    PossibleValuesParser::new(Scheme::ALL.map(Scheme::as_str))
        .try_map(|name| Scheme::from_name(&name).ok_or("unknown signature scheme"))
}

pub(super) fn run(client: &mut Client, args: SignArgs) -> Result<(), CliError> {
    let message = read_input(&args.input)?;
    let signature = client.sign(&args.id, args.scheme, &message)?;
    if is_stdio(&args.output) {
        let mut out = std::io::stdout().lock();
        out.write_all(&signature)?;
        out.flush()?;
    } else {
        std::fs::write(&args.output, &signature).map_err(|source| CliError::File {
            action: "write",
            path: args.output.clone(),
            source,
        })?;
    }
    Ok(())
}

fn is_stdio(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

fn read_input(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let mut message = Vec::new();
    let result = if is_stdio(path) {
        std::io::stdin()
            .lock()
            .read_to_end(&mut message)
            .map(|_| ())
    } else {
        std::fs::read(path).map(|data| message = data)
    };
    result.map_err(|source| CliError::File {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(message)
}
