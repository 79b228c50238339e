//! The first sort by each column of the Instances view after new data arrives, when that
//! column's ranks are built from every instance (later sorts by it are integer sorts): the
//! keystroke (`:sort COLUMN`) applied to a fresh app and a 120x40 frame drawn. Best of three
//! fresh apps per column, so each figure is a true first time.
//! `cargo bench --no-default-features --bench tui_first_sort -- 1000000`

use std::time::{Duration, Instant};

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
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let rules = LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    };
    let mut inventory = Inventory::new(rules.clone());
    for event in DemoFleet::new(42, size, now).events() {
        inventory.apply(event);
    }
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut best = [Duration::MAX; COLUMNS.len()];
    for _ in 0..RUNS {
        for (column, best) in COLUMNS.iter().zip(&mut best) {
            // A fresh app: the same inventory, no column's ranks built but the default sort's.
            let mut app = App::new(AppInit {
                inventory: inventory.clone(),
                rules: rules.clone(),
                policy: PolicyConfig::default(),
                now,
                queue: Queue::default(),
                queue_path: None,
                live: true,
                collecting: false,
                read_only: false,
            });
            app.update(Action::Show(View::Instances));
            terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
            let started = Instant::now();
            app.update(Action::StartCommand);
            for c in format!("sort {column}").chars() {
                app.update(Action::Input(c));
            }
            app.update(Action::Submit);
            terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
            *best = (*best).min(started.elapsed());
            assert_eq!(app.instances.rows.len(), size, "every instance is shown");
        }
    }
    println!("first sort by a column, keystroke to frame, {size} instances (best of {RUNS}):");
    for (column, best) in COLUMNS.iter().zip(best) {
        println!("  {column:<8} {:>8.1} ms", best.as_secs_f64() * 1000.0);
    }
}
