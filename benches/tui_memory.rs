//! Memory of the interactive UI's state: the demo fleet collected into the inventory, evaluated,
//! every view's rows built and a frame drawn, a free-text filter and two sorts applied, then the
//! process's peak RSS (VmHWM).
//! `cargo bench --no-default-features --bench tui_memory -- 100000` (one size per process, so
//! each peak is its own).

use chrono::{TimeZone, Utc};
use fleetscope::clouds::demo::DemoFleet;
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::PolicyConfig;
use fleetscope::queue::Queue;
use fleetscope::views::tui::action::{Action, View};
use fleetscope::views::tui::app::{App, AppInit};
use fleetscope::views::tui::draw;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

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
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let rules = LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    };
    let fleet = DemoFleet::new(42, size, now);
    let mut app = App::new(AppInit {
        inventory: Inventory::new(rules.clone()),
        rules,
        policy: PolicyConfig::default(),
        now,
        queue: Queue::default(),
        queue_path: None,
        live: true,
        collecting: true,
        read_only: false,
    });
    // As the runtime does: events one by one, then the final evaluation.
    for event in fleet.events() {
        app.apply_event(event);
    }
    app.collection_finished(now);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    for view in View::ALL {
        app.update(Action::Show(view));
        terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
    }
    // Free text builds the search text, and a sort by name its ranks: the worst case held.
    app.update(Action::Show(View::Instances));
    app.set_filter("prd".to_owned());
    app.update(Action::SortNext);
    app.update(Action::SortNext);
    terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
    println!(
        "tui state, {size} instances: peak RSS {:.0} MB",
        peak_rss_mb()
    );
}
