//! The first sort by each column of the Instances view after new data arrives, when that
//! column's ranks are built from every instance (later sorts by it are integer sorts): the
//! keystroke (`:sort COLUMN`) applied to a fresh app and a 120x40 frame drawn. Best of three
//! fresh apps per column, so each figure is a true first time.
//! `cargo bench --no-default-features --bench tui_first_sort -- 1000000`

use std::time::{Duration, Instant};

use fleetscope::core::policy::PolicyConfig;
use fleetscope::views::tui::action::{Action, View};
use fleetscope::views::tui::app::AppInit;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

// The UI tests' headless runtime; a bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/common/ui.rs"]
mod ui;
use ui::{Ui, frame};

const COLUMNS: [&str; 9] = [
    "id", "name", "cloud", "account", "region", "group", "image", "age", "uptime",
];
const RUNS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; the size is the first numeric argument.
    let size = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    let inventory = ui::demo_inventory(size);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut best = [Duration::MAX; COLUMNS.len()];
    for _ in 0..RUNS {
        for (column, best) in COLUMNS.iter().zip(&mut best) {
            // A fresh app: the same inventory, no column's ranks built but the default sort's.
            let mut app = Ui::new(
                AppInit::browse(
                    inventory.clone(),
                    ui::rules(),
                    PolicyConfig::default(),
                    ui::now(),
                ),
                None,
            );
            app.update(Action::Show(View::Instances));
            frame(&mut app, &mut terminal);
            let started = Instant::now();
            app.update(Action::StartCommand);
            for c in format!("sort {column}").chars() {
                app.update(Action::Input(c));
            }
            app.update(Action::Submit);
            frame(&mut app, &mut terminal);
            *best = (*best).min(started.elapsed());
            assert_eq!(
                app.browse.instances.rows.len(),
                size,
                "every instance is shown"
            );
        }
    }
    println!("first sort by a column, keystroke to frame, {size} instances (best of {RUNS}):");
    for (column, best) in COLUMNS.iter().zip(best) {
        println!("  {column:<8} {:>8.1} ms", best.as_secs_f64() * 1000.0);
    }
}
