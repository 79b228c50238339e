//! Core speed: build the inventory from demo pages, and evaluate the policy over it, at 100,000
//! and 1,000,000 instances. `cargo bench --bench policy`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fleetscope::clouds::demo::DemoFleet;
use fleetscope::core::event::{CollectEvent, Page};
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};

fn pages(size: usize) -> Vec<Page> {
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let fleet = DemoFleet::new(42, size, now);
    (0..DemoFleet::source_names().count())
        .flat_map(|source| fleet.pages(source).collect::<Vec<_>>())
        .collect()
}

fn build(pages: Vec<Page>) -> Inventory {
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for page in pages {
        inventory.apply(CollectEvent::Page(Box::new(page)));
    }
    inventory
}

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let config = PolicyConfig::default();
    for (size, label) in [(100_000, "100k"), (1_000_000, "1m")] {
        let mut group = c.benchmark_group(label);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if size > 100_000 { 40 } else { 10 }));
        let template = pages(size);
        group.bench_function("build_inventory", |b| {
            b.iter_batched(
                || template.clone(),
                |p| black_box(build(p)),
                BatchSize::PerIteration,
            )
        });
        let inventory = build(template.clone());
        group.bench_function("evaluate", |b| {
            b.iter(|| black_box(evaluate(&inventory, &config, now)))
        });
        group.bench_function("build_and_evaluate", |b| {
            b.iter_batched(
                || template.clone(),
                |p| {
                    let inventory = build(p);
                    black_box(evaluate(&inventory, &config, now).total.total())
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
