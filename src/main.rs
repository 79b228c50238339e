use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Readable panic reports; errors themselves are printed below as one line.
    let _ = color_eyre::install();
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
