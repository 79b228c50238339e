//! Keystroke to frame in the interactive UI on the demo fleet: a filter edit (re-filter the
//! sorted rows), a sort change (re-sort every row in scope), a scroll; each followed by drawing a
//! 120x40 frame to a buffer. `cargo bench --no-default-features --bench tui`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
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

fn demo_app(size: usize) -> App {
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let rules = LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    };
    let mut inventory = Inventory::new(rules.clone());
    for event in DemoFleet::new(42, size, now).events() {
        inventory.apply(event);
    }
    App::new(AppInit {
        inventory,
        rules,
        policy: PolicyConfig::default(),
        now,
        queue: Queue::default(),
        queue_path: None,
        live: true,
        collecting: false,
        read_only: false,
    })
}

fn bench(c: &mut Criterion) {
    for (size, label) in [(100_000, "100k"), (1_000_000, "1m")] {
        let mut app = demo_app(size);
        app.update(Action::Show(View::Instances));
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        let mut group = c.benchmark_group(format!("tui_{label}"));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(if size > 100_000 { 20 } else { 8 }));

        // Typing the last letter of a filter, or deleting it: both re-filter every row.
        let filters = [
            "cloud:aws verdict:outdated age:>30",
            "cloud:aws verdict:outdated age:>3",
        ];
        let mut turn = 0;
        group.bench_function("filter_keystroke_to_frame", |b| {
            b.iter(|| {
                turn += 1;
                app.set_filter(filters[turn % 2].to_owned());
                terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
                black_box(app.instances.rows.len())
            })
        });
        // Free text is matched against every instance's own fields: the slowest filter.
        let texts = ["prd-01", "prd-012"];
        group.bench_function("filter_text_keystroke_to_frame", |b| {
            b.iter(|| {
                turn += 1;
                app.set_filter(texts[turn % 2].to_owned());
                terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
                black_box(app.instances.rows.len())
            })
        });
        app.set_filter(String::new());

        // `l`: sort by the next column, every instance re-sorted (by keys built on first use).
        group.bench_function("sort_keystroke_to_frame", |b| {
            b.iter(|| {
                app.update(Action::SortNext);
                terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
                black_box(app.instances.sort)
            })
        });

        // The first sort by NAME after the data changed: its ranks are built from every name.
        group.bench_function("sort_by_name_first_time_to_frame", |b| {
            b.iter_batched(
                || {
                    let mut fresh = demo_app(size);
                    fresh.update(Action::Show(View::Instances));
                    fresh
                },
                |mut fresh| {
                    fresh.update(Action::StartCommand);
                    for c in "sort name".chars() {
                        fresh.update(Action::Input(c));
                    }
                    fresh.update(Action::Submit);
                    terminal
                        .draw(|frame| draw::draw(frame, &mut fresh))
                        .unwrap();
                    fresh
                },
                criterion::BatchSize::PerIteration,
            )
        });

        group.bench_function("scroll_keystroke_to_frame", |b| {
            b.iter(|| {
                app.update(Action::PageDown);
                terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
                black_box(app.instances.selected)
            })
        });

        // `R` on the most lagging lineage, then `y` to the "queue N instances?" question: the
        // entries are made and the queue changed in memory (saving is the saver thread's).
        // Each iteration starts from an empty queue, emptied outside the timing.
        app.update(Action::Show(View::Drift));
        app.update(Action::Top);
        group.bench_function("queue_lineage_keystrokes_to_frame", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = std::time::Instant::now();
                    app.update(Action::QueueAllOnSelected);
                    app.update(Action::Input('y'));
                    terminal.draw(|frame| draw::draw(frame, &mut app)).unwrap();
                    total += started.elapsed();
                    black_box(app.queue.entries.len());
                    app.update(Action::Show(View::Queue));
                    app.update(Action::MarkAllVisible);
                    app.update(Action::Dequeue);
                    app.update(Action::Show(View::Drift));
                }
                total
            })
        });
        app.update(Action::QueueAllOnSelected);
        app.update(Action::Input('y'));
        println!(
            "tui_{label}: R on the most lagging lineage queues {} instances",
            app.queue.entries.len()
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
