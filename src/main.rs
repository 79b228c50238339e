use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// `--help` and `--version` print as clap writes them; a usage error is one line and a pointer
/// to `--help`, exit 2, like every other error here.
fn usage_error(error: &clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = error.render().to_string();
    // clap's first paragraph is "error: <what>" (a list of missing arguments may follow on
    // its own lines); after it come tips and usage, which --help has.
    let what: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let what = what.join(" ");
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    eprintln!(
        "fleetscope: {} (see fleetscope --help)",
        fleetscope::text::escape(what)
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // Readable panic reports. Errors are printed below as one line, so they keep eyre's own
    // handler, which captures no backtrace unless RUST_LIB_BACKTRACE asks: color-eyre's would
    // capture one for every error, a second's work in a debug build, and never show it.
    let (panic_hook, _) = color_eyre::config::HookBuilder::default().into_hooks();
    panic_hook.install();
    // A panic inside a source fails that source in one line; its detail goes to the log.
    fleetscope::clouds::log_source_panics();
    let cli = match fleetscope::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match fleetscope::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line, no backtrace: errors here are about input the user can fix. Escaped,
            // since they quote names and answers from clouds and files. A closed stderr loses
            // the line, never turns it into a panic.
            let _ = writeln!(
                std::io::stderr(),
                "fleetscope: {}",
                fleetscope::text::escape(&format!("{error:#}"))
            );
            ExitCode::from(2)
        }
    }
}
