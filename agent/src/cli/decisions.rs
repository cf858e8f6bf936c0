//! `p11agent decisions` and `p11agent forget`: the choices remembered per
//! origin, and clearing them (a browser's "clear SSL state").

use p11agent_client::Client;

use super::error::CliError;
use super::format::{print_json, JsonArg};
use super::format::{short_id, Table};

/// Arguments of `p11agent forget`.
#[derive(Debug, clap::Args)]
pub(crate) struct ForgetArgs {
    /// The origin whose choice to forget (https://host[:port], a URL or
    /// host:port).
    #[arg(value_name = "ORIGIN", required_unless_present = "all")]
    origin: Option<String>,
    /// Forget every remembered choice.
    #[arg(long, conflicts_with = "origin")]
    all: bool,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    json: bool,
}

/// `p11agent decisions`.
pub(super) fn decisions(agent: &mut Client, args: JsonArg) -> Result<(), CliError> {
    let decisions = agent.decisions()?;
    if args.json {
        // An object, as every other --json prints, so that fields can be
        // added beside the list.
        return print_json(&serde_json::json!({ "decisions": decisions }));
    }
    if decisions.is_empty() {
        println!("no choices remembered");
        return Ok(());
    }
    let mut table = Table::new(&["ORIGIN", "CHOICE", "DECIDED", "KEPT"]);
    for d in decisions {
        let choice = match (&d.id, &d.subject) {
            (Some(id), Some(subject)) => format!("{} {subject}", short_id(id)),
            (Some(id), None) => format!("{} (not in the store now)", short_id(id)),
            (None, _) => "send no certificate".to_owned(),
        };
        let kept = if d.persistent {
            "on disk"
        } else {
            "until exit"
        };
        table.row(vec![d.origin, choice, d.decided_at, kept.to_owned()]);
    }
    table.print()?;
    Ok(())
}

/// `p11agent forget`.
pub(super) fn forget(agent: &mut Client, args: ForgetArgs) -> Result<(), CliError> {
    let origin = if args.all {
        None
    } else {
        args.origin.as_deref()
    };
    let forgotten = agent.forget(origin)?;
    if args.json {
        return print_json(&serde_json::json!({ "forgotten": forgotten }));
    }
    match (forgotten.len(), origin) {
        (0, Some(origin)) => println!("no choice was remembered for {origin}"),
        (0, None) => println!("no choices were remembered"),
        _ => {
            for origin in &forgotten {
                println!("forgot the choice for {origin}");
            }
        }
    }
    Ok(())
}
