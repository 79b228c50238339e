//! The whole product as a user runs it: `fleetscope --demo --demo-size N --report --format json`
//! as a release process, its wall time and peak RSS, best of several runs.
//! `cargo bench --no-default-features --bench report_process`.

use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    // Cargo builds the binary for a benchmark with the benchmark's own profile and features.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    for size in [100_000usize, 1_000_000] {
        let mut best_secs = f64::MAX;
        let mut peak_kib = 0u64;
        for _ in 0..3 {
            let started = Instant::now();
            let output = Command::new("/usr/bin/time")
                .arg("-f")
                .arg("%M")
                .arg(binary)
                .args([
                    "--demo",
                    "--demo-size",
                    &size.to_string(),
                    "--report",
                    "--format",
                    "json",
                    "--now",
                    "2026-11-01T00:00:00Z",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run fleetscope under /usr/bin/time (Debian package `time`)");
            let secs = started.elapsed().as_secs_f64();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            let kib: u64 = stderr
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            best_secs = best_secs.min(secs);
            peak_kib = peak_kib.max(kib);
        }
        println!(
            "report --format json, {size} instances: best wall {:.2} s, peak RSS {:.0} MB",
            best_secs,
            peak_kib as f64 / 1024.0
        );
    }
}
