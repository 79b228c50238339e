//! The whole text of errors that screens, reports and the journal show as one short sentence:
//! appended, one line each, to `fleetscope.log` in the data directory, so the full chain is
//! there for a bug report without ever reaching an operator's screen.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static LOG: OnceLock<Option<Mutex<File>>> = OnceLock::new();

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("fleetscope.log")
}

/// Opens the log once per process; without a writable data directory nothing is logged, which
/// never stops the program.
pub fn open(data_dir: &Path) {
    LOG.get_or_init(|| {
        crate::files::create_private_dir(data_dir).ok()?;
        crate::files::private_file()
            .create(true)
            .append(true)
            .open(path_in(data_dir))
            .ok()
            .map(Mutex::new)
    });
}

/// Records the full text behind a shortened error.
pub fn error(short: &str, full: &str) {
    let Some(Some(file)) = LOG.get() else {
        return;
    };
    if let Ok(mut file) = file.lock() {
        let full = full.replace('\n', " ");
        let _ = writeln!(
            file,
            "{} error: {short} | {full}",
            chrono::Utc::now().to_rfc3339()
        );
    }
}

/// An error and every cause under it, outermost first, on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
