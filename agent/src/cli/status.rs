use p11agent_client::Client;

use super::error::CliError;

pub(super) fn run(client: &mut Client, json: bool) -> Result<(), CliError> {
    let status = client.status()?;
    if json {
        return super::format::print_json(&status);
    }
    println!("{} is running", status.agent);
    println!("socket:     {}", status.socket);
    println!("uptime:     {} s", status.uptime_seconds);
    println!("tokens:     {}", status.tokens);
    println!("identities: {}", status.identities);
    println!("modules:");
    for module in &status.modules {
        if status.isolated_modules.contains(module) {
            println!("  {module} (in a helper process)");
        } else {
            println!("  {module} (in the agent)");
        }
    }
    for failed in &status.module_errors {
        println!("  {} (unusable: {})", failed.module, failed.error);
    }
    Ok(())
}
