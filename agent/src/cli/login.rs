use std::io::BufRead as _;

use p11agent_client::Client;
use p11agent_proto::Pin;
use zeroize::Zeroizing;

use super::error::CliError;

/// Arguments of `p11agent login`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// Token label or serial; may be omitted when only one token is present.
    token: Option<String>,
    /// Read the PIN from the first line of standard input instead of
    /// letting the agent ask through its pinentry or PIN file.
    #[arg(long)]
    pin_stdin: bool,
}

/// Arguments of `p11agent logout`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// Token label or serial; all tokens when omitted.
    token: Option<String>,
}

pub(super) fn login(client: &mut Client, args: LoginArgs) -> Result<(), CliError> {
    let pin = if args.pin_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line)?;
        let pin = line.trim_end_matches(['\r', '\n']);
        if pin.is_empty() {
            return Err(CliError::Usage("--pin-stdin read an empty PIN".into()));
        }
        Some(Pin::new(pin.to_owned()))
    } else {
        None
    };
    let token = client.login(args.token.as_deref(), pin)?;
    println!("logged in to {} (serial {})", token.label, token.serial);
    Ok(())
}

pub(super) fn logout(client: &mut Client, args: LogoutArgs) -> Result<(), CliError> {
    let tokens = client.logout(args.token.as_deref())?;
    if tokens.is_empty() {
        println!("no token was logged in");
    }
    for token in tokens {
        println!("logged out of {} (serial {})", token.label, token.serial);
    }
    Ok(())
}
