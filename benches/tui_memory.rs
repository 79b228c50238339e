//! Memory of the interactive UI's state: the demo fleet collected into the inventory, evaluated,
//! every view's rows built and a frame drawn, a free-text filter and two sorts applied, then the
//! process's peak RSS (VmHWM).
//! `cargo bench --no-default-features --bench tui_memory -- 100000` (one size per process, so
//! each peak is its own).

use fleetscope::views::tui::action::{Action, View};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

// The UI tests' headless runtime; a bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/common/ui.rs"]
mod ui;
use ui::frame;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; the size is the first numeric argument.
    let size = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100_000);
    // As the runtime does: events one by one, then the final evaluation.
    let mut app = ui::streamed_demo(42, size, ui::now());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    for view in View::ALL {
        app.update(Action::Show(view));
        frame(&mut app, &mut terminal);
    }
    // Free text builds the search text, and a sort by name its ranks: the worst case held.
    app.update(Action::Show(View::Instances));
    app.update(Action::StartFilter);
    for c in "prd".chars() {
        app.update(Action::Input(c));
    }
    app.update(Action::Submit);
    app.update(Action::SortNext);
    app.update(Action::SortNext);
    frame(&mut app, &mut terminal);
    println!(
        "tui state, {size} instances: peak RSS {:.0} MB",
        peak_rss_mb()
    );
}
