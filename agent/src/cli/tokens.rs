use p11agent_client::Client;
use serde_json::json;

use super::error::CliError;
use super::format::Table;

pub(super) fn run(client: &mut Client, json: bool) -> Result<(), CliError> {
    let tokens = client.tokens()?;
    if json {
        return super::format::print_json(&json!({ "tokens": tokens }));
    }
    if tokens.is_empty() {
        println!(
            "No tokens found. Is the card inserted, and the module loaded (see `p11agent status`)?"
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "LABEL",
        "SERIAL",
        "MANUFACTURER",
        "MODEL",
        "SLOT",
        "CERTS",
        "KEYS",
        "STATUS",
        "MODULE",
    ]);
    for t in &tokens {
        table.row(vec![
            t.token.label.clone(),
            t.token.serial.clone(),
            t.token.manufacturer.clone(),
            t.token.model.clone(),
            t.token.slot.to_string(),
            t.certificates.to_string(),
            t.keys.to_string(),
            t.status.as_str().to_owned(),
            t.token.module.clone(),
        ]);
    }
    table.print()?;
    Ok(())
}
