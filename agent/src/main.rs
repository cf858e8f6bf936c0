//! The `p11agent` command: a thin layer over the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = p11agent::cli::Args::parse();
    match p11agent::cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`p11agent list | head -1`): like other
        // Unix tools, stop quietly.
        Err(p11agent::cli::CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("p11agent: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
