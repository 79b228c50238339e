//! Keystroke to frame in the interactive UI on the demo fleet: a filter edit (re-filter the
//! sorted rows), a sort change (re-sort every row in scope), a scroll; each followed by drawing a
//! 120x40 frame to a buffer. `cargo bench --no-default-features --bench tui`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fleetscope::views::tui::action::{Action, View};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

// The UI tests' headless runtime; a bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/common/ui.rs"]
mod ui;
use ui::{Ui, frame};

fn demo_app(size: usize) -> Ui {
    ui::app_with(ui::demo_inventory(size), None)
}

/// The filter line open with `text` typed, as the operator leaves it before the next key.
fn type_filter(app: &mut Ui, text: &str) {
    if app.dialog().is_none() {
        app.update(Action::StartFilter);
    }
    app.update(Action::ClearInput);
    for c in text.chars() {
        app.update(Action::Input(c));
    }
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
        let mut turn = 0;
        let mut last_letter = |app: &mut Ui, letter: char| {
            turn += 1;
            app.update(if turn % 2 == 0 {
                Action::DeleteChar
            } else {
                Action::Input(letter)
            })
        };
        type_filter(&mut app, "cloud:aws verdict:outdated age:>3");
        group.bench_function("filter_keystroke_to_frame", |b| {
            b.iter(|| {
                last_letter(&mut app, '0');
                frame(&mut app, &mut terminal);
                black_box(app.browse.instances.rows.len())
            })
        });
        // Free text is matched against every instance's own fields: the slowest filter.
        type_filter(&mut app, "prd-01");
        group.bench_function("filter_text_keystroke_to_frame", |b| {
            b.iter(|| {
                last_letter(&mut app, '2');
                frame(&mut app, &mut terminal);
                black_box(app.browse.instances.rows.len())
            })
        });
        type_filter(&mut app, "");
        app.update(Action::Submit);

        // `l`: sort by the next column, every instance re-sorted (by keys built on first use).
        group.bench_function("sort_keystroke_to_frame", |b| {
            b.iter(|| {
                app.update(Action::SortNext);
                frame(&mut app, &mut terminal);
                black_box(app.browse.instances.sort)
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
                    frame(&mut fresh, &mut terminal);
                    fresh
                },
                criterion::BatchSize::PerIteration,
            )
        });

        group.bench_function("scroll_keystroke_to_frame", |b| {
            b.iter(|| {
                app.update(Action::PageDown);
                frame(&mut app, &mut terminal);
                black_box(app.browse.instances.selected)
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
                    app.update(Action::Yes);
                    frame(&mut app, &mut terminal);
                    total += started.elapsed();
                    black_box(app.queue().entries.len());
                    app.update(Action::Show(View::Queue));
                    app.update(Action::MarkAllVisible);
                    app.update(Action::Dequeue);
                    app.update(Action::Show(View::Drift));
                }
                total
            })
        });
        app.update(Action::QueueAllOnSelected);
        app.update(Action::Yes);
        println!(
            "tui_{label}: R on the most lagging lineage queues {} instances",
            app.queue().entries.len()
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
