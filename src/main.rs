use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetscope::cli::Cli::parse();
    match fleetscope::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line, no backtrace: errors here are about input the user can fix.
            eprintln!("fleetscope: {error:#}");
            ExitCode::from(2)
        }
    }
}
