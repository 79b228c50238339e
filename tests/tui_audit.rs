//! The incident audit in the UI, headless: find by image key and IP, filters that apply what
//! they show, marks that are seen, and the documented filter examples against the demo.

use fleetscope::core::policy::PolicyConfig;
use fleetscope::queue::Queue;
use fleetscope::queue::rollout::{Phase, RolloutEvent};
use fleetscope::views::tui::action::Effect;
use fleetscope::views::tui::action::{Action, View};
use fleetscope::views::tui::app::{AppInit, Msg};
use fleetscope::views::tui::browse::Browse;
use fleetscope::views::tui::dialog::Dialog;
use fleetscope::views::tui::marks::Marked;

mod common;
use common::ui::{Ui, app_with, demo_app_of, demo_app_with, now, render, rules, type_filter};

fn demo_app(size: usize) -> Ui {
    demo_app_of(size)
}

fn type_text(app: &mut Ui, text: &str) {
    for c in text.chars() {
        app.update(Action::Input(c));
    }
}

/// Commits `query` as the operator would: `/`, the text, Enter.
fn commit_filter(app: &mut Ui, query: &str) {
    app.update(Action::StartFilter);
    app.update(Action::ClearInput);
    type_text(app, query);
    app.update(Action::Submit);
}

fn status(app: &Ui) -> String {
    app.status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default()
}

fn ids(app: &Ui) -> Vec<String> {
    let mut ids: Vec<String> = app
        .browse
        .instances
        .rows
        .iter()
        .map(|&i| app.data.instance(i).id.to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn an_advisorys_image_key_finds_its_instances_in_the_instances_view() {
    let mut app = demo_app(1_500);
    // An AMI and an Azure gallery version, each run by several instances.
    for prefix in ["ami-", "/subscriptions/"] {
        let inv = &app.data.inventory;
        let image = (0..inv.images().len() as u32)
            .filter(|&i| inv.image(i).image.key.starts_with(prefix))
            .max_by_key(|&i| inv.image(i).instances.len())
            .unwrap();
        let key = inv.image(image).image.key.clone();
        let mut expected: Vec<String> = inv
            .image(image)
            .instances
            .iter()
            .map(|&i| inv.instance(i).id.to_string())
            .collect();
        expected.sort();
        assert!(expected.len() > 5, "{key}");
        app.update(Action::Show(View::Instances));
        for query in [key.clone(), format!("image:{key}")] {
            commit_filter(&mut app, &query);
            assert_eq!(ids(&app), expected, "{query}");
        }
        app.update(Action::Show(View::Images));
        commit_filter(&mut app, &format!("image:{key}"));
        assert_eq!(app.browse.images.rows, [image]);
    }
}

#[test]
fn an_alerts_address_finds_its_instance() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    let instance = app.data.instance(700).clone();
    let private = instance.addresses.private_ips[0].clone();
    commit_filter(&mut app, &format!("ip:{private}"));
    assert_eq!(
        ids(&app),
        std::slice::from_ref(&instance.id),
        "an address is one instance"
    );
    commit_filter(&mut app, &private);
    assert!(
        ids(&app).contains(&instance.id.to_string()),
        "free text finds it too"
    );
    let network = format!("{}.0/24", private.rsplit_once('.').unwrap().0);
    commit_filter(&mut app, &format!("ip:{network}"));
    let rows = app.browse.instances.rows.len();
    assert!(rows > 1 && rows <= 256, "{network}: {rows}");
    for &i in &app.browse.instances.rows {
        let ip = &app.data.instance(i).addresses.private_ips[0];
        assert!(ip.starts_with(network.trim_end_matches("0/24")), "{ip}");
    }
    // Distinct private addresses across the fleet: an alert names one server.
    let mut all: Vec<&str> = app
        .data
        .inventory
        .instances()
        .iter()
        .map(|i| i.addresses.private_ips[0].as_str())
        .collect();
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(all.len(), before);
}

#[test]
fn a_filter_that_does_not_parse_keeps_the_committed_one_and_the_title_says_so() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "cloud:aws");
    let aws = app.browse.instances.rows.clone();
    commit_filter(&mut app, "verdict:flagged bogus:1");
    assert_eq!(app.browse.instances.rows, aws, "the previous filter stays");
    assert_eq!(app.browse.instances.input, "cloud:aws");
    let said = status(&app);
    assert!(
        said.contains("unknown field \"bogus\"") && said.contains("kept /cloud:aws"),
        "{said}"
    );
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains(" /cloud:aws "), "{screen}");
    assert!(!screen.contains("bogus:1 "), "{screen}");

    app.update(Action::StartCommand);
    type_text(&mut app, "filter region:");
    app.update(Action::Submit);
    assert_eq!(app.browse.instances.rows, aws);
    assert!(render(&mut app, 120, 40).contains(" /cloud:aws "));

    // While typing, the title shows what is applied, not the text being typed.
    app.update(Action::StartFilter);
    type_text(&mut app, " verdict:bog");
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("is not one of flagged, unknown, outdated, stale, current"),
        "{screen}"
    );
    assert!(screen.contains(" /cloud:aws ") && !screen.contains(" /cloud:aws verdict:bog "));
    app.update(Action::Cancel);
    assert_eq!(app.browse.instances.rows, aws);
}

#[test]
fn closed_values_several_values_order_and_findings_narrow_as_they_say() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    let verdict_count = |app: &mut Ui, query: &str| {
        commit_filter(app, query);
        assert!(app.browse.filter_error().is_none(), "{query}");
        app.browse.instances.rows.len()
    };
    let outdated = verdict_count(&mut app, "verdict:outdated");
    let stale = verdict_count(&mut app, "verdict:stale");
    let either = verdict_count(&mut app, "verdict:outdated,stale");
    assert_eq!(either, outdated + stale);
    let at_least = verdict_count(&mut app, "verdict:>=outdated");
    let worse = verdict_count(&mut app, "verdict:flagged,unknown");
    assert_eq!(at_least, outdated + worse);

    let exposed = verdict_count(&mut app, "exposed");
    assert!(exposed > 0);
    for &i in &app.browse.instances.rows {
        assert!(!app.data.instance(i).exposure.is_empty());
    }
    let long_lived = verdict_count(&mut app, "long-lived");
    assert!(long_lived > 0);
    for &i in &app.browse.instances.rows {
        assert!(app.data.eval.long_lived[i as usize]);
    }
    verdict_count(&mut app, "behind:>2");
    assert!(!app.browse.instances.rows.is_empty());
    for &i in &app.browse.instances.rows {
        assert!(app.data.instance_eval(i).behind_by > 2);
    }
    for bad in ["verdict:bogus", "cloud:oracle", "state:melting"] {
        commit_filter(&mut app, bad);
        assert!(
            status(&app).contains("is not one of"),
            "{bad}: {}",
            status(&app)
        );
    }
}

/// The filter examples `?` lists for a view, and the README's, all match rows of the demo.
#[test]
fn every_documented_filter_example_matches_demo_rows() {
    // Trusted owners set as the README's example does, so `untrusted-source` has rows: the
    // demo's AWS account and Azure gallery, not its Google Cloud image project.
    let mut app = demo_app_with(|init| {
        init.policy.trusted_owners = vec!["999900001111".into(), "acme".into()];
    });
    // Something queued, so the Queue view has rows to filter.
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "verdict:>=outdated");
    app.update(Action::MarkAllVisible);
    app.update(Action::QueueSelected);
    app.update(Action::Yes);
    commit_filter(&mut app, "");
    // One of them failed, as the demo's failing instance does in every apply.
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: app.queue().entries[0].instance_id.clone(),
        phase: Phase::Failed("the replacement failed its health check".into()),
    }));
    for view in [View::Images, View::Instances, View::Drift, View::Queue] {
        app.update(Action::Show(view));
        for &field in Browse::fields_of(view) {
            let example = Browse::filter_example(view, field);
            commit_filter(&mut app, example);
            assert!(
                app.browse.filter_error().is_none(),
                "{view:?} {example}: {:?}",
                status(&app)
            );
            let rows = match view {
                View::Images => app.browse.images.rows.len(),
                View::Instances => app.browse.instances.rows.len(),
                View::Drift => app.browse.drift.rows.len(),
                _ => app.browse.queue_rows.rows.len(),
            };
            assert!(rows > 0, "{view:?}: {example} matches nothing");
        }
        commit_filter(&mut app, "");
    }
    let help = {
        app.update(Action::Show(View::Instances));
        app.update(Action::ToggleHelp);
        let mut screen = String::new();
        for _ in 0..40 {
            screen.push_str(&render(&mut app, 120, 60));
            app.update(Action::Down);
        }
        app.update(Action::ToggleHelp);
        screen
    };
    assert!(help.contains("ip:10.0.0.0/8") && help.contains("verdict:>=outdated"));

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("The filter is whitespace-separated terms")
        .unwrap();
    let end = start + readme[start..].find("The title always shows").unwrap();
    // The incident audit's walk-through, up to its next section, is made of examples too.
    let audit = readme.find("### Incident audit").unwrap();
    let audit_end = audit + 1 + readme[audit + 1..].find("\n#").unwrap();
    let incident = readme[audit..audit_end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            span.starts_with("ip:") || span.starts_with("image:ami-0") && !span.contains('…')
        });
    // Words of the Drift view's groups, tried there.
    let drift_words = ["drift", "skew", "template", "version"];
    let examples: Vec<&str> = readme[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            !span.contains('…')
                && !span.starts_with("field:")
                && (span.contains(':')
                    || span.contains('.')
                    || ["exposed", "long-lived", "untrusted-source"].contains(span)
                    || drift_words.contains(span))
        })
        .chain(incident)
        .collect();
    assert!(examples.len() > 20, "{examples:?}");
    assert!(examples.contains(&"ip:10.0.1.0/24"), "{examples:?}");
    assert!(
        drift_words.iter().all(|w| examples.contains(w)),
        "{examples:?}"
    );
    for example in examples {
        let view = if drift_words.contains(&example) {
            View::Drift
        } else {
            View::Instances
        };
        app.update(Action::Show(view));
        type_filter(&mut app, example);
        if app.browse.filter_error().is_some() {
            app.update(Action::Cancel);
            app.update(Action::Show(View::Images));
            type_filter(&mut app, example);
        }
        assert!(
            app.browse.filter_error().is_none(),
            "README {example}: {:?}",
            app.browse.filter_error()
        );
        let rows = match app.browse.view {
            View::Images => app.browse.images.rows.len(),
            View::Drift => app.browse.drift_groups.groups.len(),
            _ => app.browse.instances.rows.len(),
        };
        assert!(rows > 0, "README {example} matches nothing in the demo");
        // Esc: the filter as it was before.
        app.update(Action::Cancel);
    }
}

#[test]
fn hidden_marks_are_counted_named_and_a_clearing_can_be_undone() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "lineage:web* verdict:outdated");
    let marked = app.browse.instances.rows.len();
    assert!(marked > 3);
    app.update(Action::MarkAllVisible);
    let screen = render(&mut app, 160, 48);
    assert!(screen.contains(&format!("· {marked} marked ")), "{screen}");
    commit_filter(&mut app, "cloud:gcp");
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains(&format!("· {marked} marked, {marked} hidden")),
        "{screen}"
    );

    // Esc clears the filter; the marks stay, still counted.
    app.update(Action::Back);
    let shown = render(&mut app, 160, 48);
    assert!(shown.contains(&format!("· {marked} marked ")), "{shown}");
    // A second Esc clears the marks, says so, and U brings them back.
    app.update(Action::Back);
    assert!(
        status(&app).contains(&format!("cleared {marked} marks")),
        "{}",
        status(&app)
    );
    assert!(!render(&mut app, 160, 48).contains("marked"));
    app.update(Action::UndoClearMarks);
    assert_eq!(app.marked_count(Marked::Instances), marked);
    // Filtered away, `r` acts on the hidden marks and says so.
    commit_filter(&mut app, "cloud:gcp");
    app.update(Action::QueueSelected);
    let said = status(&app);
    assert!(
        said.contains(&format!(
            "queued {marked} instances ({marked} marked, {marked} of them hidden by the filter)"
        )),
        "{said}"
    );
    assert!(app.marked_count(Marked::Instances) == 0);
    app.update(Action::UndoClearMarks);
    assert!(
        (app.marked_count(Marked::Instances) == 0),
        "marks acted on are spent: {}",
        status(&app)
    );
}

/// An exposed, flagged-or-worse instance: the pane shows every reason, the exposure, the image
/// name and key, the group's template state, the addresses and the tags, wrapped, not cut.
#[test]
fn the_detail_pane_shows_everything_known_about_an_instance() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "exposed long-lived");
    assert!(!app.browse.instances.rows.is_empty());
    let i = app.browse.instances.selected_row().unwrap();
    let instance = app.data.instance(i).clone();
    let image = app
        .data
        .inventory
        .image(app.data.inventory.image_of(i))
        .image
        .clone();
    app.update(Action::ShowDetail);
    assert_eq!(app.dialog(), Some(&Dialog::Detail { scroll: 0 }));
    for (width, height) in [(160, 48), (80, 24)] {
        let mut screen = String::new();
        // Opened again, from the top.
        app.update(Action::Back);
        app.update(Action::ShowDetail);
        for _ in 0..30 {
            screen.push_str(&render(&mut app, width, height));
            app.update(Action::Down);
        }
        let joined: String = screen.split_whitespace().collect::<Vec<_>>().join("");
        let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join("");
        for wanted in [
            instance.id.as_str(),
            &image.key,
            &instance.exposure[0],
            &instance.addresses.private_ips[0],
            "long-lived",
            "service=",
            "tags",
        ] {
            assert!(
                joined.contains(&squeeze(wanted)),
                "{width}x{height}: {wanted}\n{screen}"
            );
        }
        if !image.name.is_empty() {
            assert!(joined.contains(&squeeze(&image.name)), "{}", image.name);
        }
        for reason in &app.data.instance_eval(i).reasons {
            assert!(
                joined.contains(&squeeze(reason)),
                "{width}x{height}: {reason}"
            );
        }
    }
    app.update(Action::Back);
    assert_eq!(app.dialog(), None, "Esc closes the pane");
    assert_eq!(app.browse.view, View::Instances);
    insta::assert_snapshot!("detail_instance_80x24", {
        app.update(Action::ShowDetail);
        render(&mut app, 80, 24)
    });
    insta::assert_snapshot!("detail_instance_160x48", render(&mut app, 160, 48));
    app.update(Action::Back);
    app.update(Action::Show(View::Images));
    app.update(Action::ShowDetail);
    insta::assert_snapshot!("detail_image_80x24", render(&mut app, 80, 24));
}

#[test]
fn marked_counts_and_the_filter_in_force_on_screen() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "lineage:web* verdict:>=outdated");
    app.update(Action::MarkAllVisible);
    commit_filter(&mut app, "lineage:web* uptime:<20");
    app.status = None;
    insta::assert_snapshot!("marks_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("marks_160x48", render(&mut app, 160, 48));
}

#[test]
fn badges_say_what_kind_of_fleet_is_on_screen() {
    use fleetscope::views::tui::app::Badges;
    let mut app = demo_app(1_500);
    let plain = render(&mut app, 160, 48);
    assert!(!plain.contains("DEMO") && !plain.contains("SNAPSHOT"));
    app.badges = Badges {
        demo: true,
        snapshot: None,
        fixed_now: Some(now()),
    };
    insta::assert_snapshot!("badges_demo_now_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("badges_demo_now_160x48", render(&mut app, 160, 48));
    let wide = render(&mut app, 160, 48);
    assert!(
        wide.lines()
            .next()
            .unwrap()
            .contains(" DEMO   FIXED TIME  2026-11-01 00:00 UTC"),
        "{wide}"
    );
    app.badges = Badges {
        demo: false,
        snapshot: Some(now()),
        fixed_now: None,
    };
    let first = render(&mut app, 160, 48);
    let top = first.lines().next().unwrap();
    assert!(
        top.contains(" SNAPSHOT 2026-11-01 00:00 · ") && top.contains("d old "),
        "{top}"
    );
    let narrow = render(&mut app, 80, 24);
    assert!(
        narrow.lines().next().unwrap().contains(" SNAP "),
        "{narrow}"
    );
}

#[test]
fn a_failed_save_shows_unsaved_until_one_succeeds_and_quitting_asks() {
    use fleetscope::views::tui::action::Effect;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.json");
    // A directory where the file should be: saves fail until it goes.
    std::fs::create_dir(&path).unwrap();
    let mut app = app_with(common::ui::demo_inventory(300), Some(path.clone()));
    app.update(Action::Show(View::Instances));
    let before = chrono::Utc::now();
    app.update(Action::QueueSelected);
    app.save_now();
    assert!(app.queue_state().unsaved());
    assert!(
        app.queue().entries[0].queued_at >= before,
        "queued_at is when the key was pressed"
    );
    assert!(
        render(&mut app, 160, 48)
            .lines()
            .next()
            .unwrap()
            .contains("QUEUE UNSAVED")
    );
    assert_eq!(
        app.update(Action::Quit),
        None,
        "q with unsaved changes asks first"
    );
    assert!(status(&app).contains("q again quits without them"));
    app.update(Action::Down);
    assert_eq!(
        app.update(Action::Quit),
        None,
        "any other key in between stays"
    );
    assert_eq!(app.update(Action::Quit), Some(Effect::Quit));

    std::fs::remove_dir(&path).unwrap();
    app.update(Action::Down);
    app.update(Action::QueueSelected);
    app.save_now();
    assert!(!app.queue_state().unsaved(), "{}", status(&app));
    assert_eq!(
        Queue::load(&path).unwrap().entries.len(),
        2,
        "the whole queue is saved"
    );
    assert!(!render(&mut app, 160, 48).contains("UNSAVED"));
    assert_eq!(app.update(Action::Quit), Some(Effect::Quit));
}

#[test]
fn a_disabled_queue_refuses_changes_and_says_what_to_do() {
    let mut app = Ui::new(
        AppInit {
            queue_disabled: Some("queue disabled: /x/queue.json: damaged queue file: expected value; `fleetscope queue clear --yes` moves it aside".to_owned()),
            ..AppInit::browse(common::ui::demo_inventory(300), rules(), PolicyConfig::default(), now())
        },
        None,
    );
    app.update(Action::Show(View::Instances));
    app.update(Action::QueueSelected);
    assert!(app.queue().entries.is_empty());
    assert!(
        status(&app).contains("queue clear --yes"),
        "{}",
        status(&app)
    );
    assert!(render(&mut app, 160, 48).contains("QUEUE DISABLED"));
    app.update(Action::Show(View::Queue));
    app.update(Action::Apply);
    assert!(status(&app).contains("queue disabled"));
}

#[test]
fn queueing_many_at_once_asks_with_the_count_per_verdict() {
    let mut app = demo_app(1_500);
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "verdict:>=outdated");
    let rows = app.browse.instances.rows.len();
    assert!(rows > 100, "{rows}");
    app.update(Action::MarkAllVisible);
    app.update(Action::QueueSelected);
    let question = status(&app);
    assert!(
        question.starts_with(&format!("queue {rows} instances (")),
        "{question}"
    );
    assert!(
        question.contains(" outdated") && question.ends_with("? y/N"),
        "{question}"
    );
    assert!(app.dialog().is_some(), "the answer is typed");
    assert!(app.queue().entries.is_empty(), "nothing before the answer");
    app.update(Action::No);
    assert!(app.queue().entries.is_empty());
    assert_eq!(status(&app), "nothing was queued; the marks stay");
    assert!(app.dialog().is_none());
    // Saying no, or Esc, leaves the marks as they were.
    assert_eq!(
        app.marked_count(Marked::Instances),
        rows,
        "no keeps the marks"
    );
    app.update(Action::QueueSelected);
    app.update(Action::Cancel);
    assert!(app.queue().entries.is_empty());
    assert_eq!(
        app.marked_count(Marked::Instances),
        rows,
        "Esc keeps the marks"
    );
    // Yes queues them, and spends the marks.
    app.update(Action::QueueSelected);
    app.update(Action::Yes);
    assert_eq!(app.queue().entries.len(), rows, "{}", status(&app));
    assert!(
        (app.marked_count(Marked::Instances) == 0),
        "queued marks are spent"
    );
    app.update(Action::Show(View::Queue));
    app.update(Action::MarkAllVisible);
    app.update(Action::Dequeue);
    app.update(Action::Show(View::Instances));

    // At the limit it does not ask.
    let mut app = Ui::new(
        AppInit {
            confirm_queue_over: rows,
            ..AppInit::browse(
                common::ui::demo_inventory(1_500),
                rules(),
                PolicyConfig::default(),
                now(),
            )
        },
        None,
    );
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "verdict:>=outdated");
    app.update(Action::MarkAllVisible);
    app.update(Action::QueueSelected);
    assert_eq!(app.queue().entries.len(), rows, "{}", status(&app));
    app.update(Action::Show(View::Queue));
    app.update(Action::MarkAllVisible);
    app.update(Action::Dequeue);
    app.update(Action::Show(View::Drift));
    app.update(Action::QueueAllOnSelected);
    if app.dialog().is_some() {
        app.update(Action::Yes);
    }
    assert!(!app.queue().entries.is_empty());
}

/// 50,000 queued in one key: the key returns with the queue changed in memory, the file is
/// written by the saver as one compact document.
#[test]
fn a_large_bulk_queue_is_saved_compact_by_the_saver() {
    use fleetscope::views::tui::save;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.json");
    let mut app = app_with(common::ui::demo_inventory(60_000), Some(path.clone()));
    app.update(Action::Show(View::Instances));
    commit_filter(&mut app, "!verdict:current");
    app.update(Action::MarkAllVisible);
    let marked = app.marked_count(Marked::Instances);
    assert!(marked > 20_000, "{marked}");
    app.update(Action::QueueSelected);
    // The answer as the runtime sees it: the queue changed here, the changes handed over.
    let effects = app.app.handle(Msg::Action(Action::Yes));
    assert_eq!(app.queue().entries.len(), marked);
    let [Effect::Save(changes)] = &effects[..] else {
        panic!("one save: {effects:?}");
    };
    assert_eq!(app.queue_state().saves_in_flight(), 1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let saver = save::start(path.clone(), tx);
    saver.send(changes.clone()).unwrap();
    let done = rx.blocking_recv().unwrap();
    app.send(Msg::Saved(done));
    assert_eq!(app.queue_state().saves_in_flight(), 0);
    assert!(!app.queue_state().unsaved());
    assert_eq!(Queue::load(&path).unwrap().entries.len(), marked);
    let size = std::fs::metadata(&path).unwrap().len();
    let per_entry = size / marked as u64;
    assert!(per_entry < 700, "{per_entry} bytes per entry");
}

#[test]
fn a_failed_sources_whole_error_is_one_key_away() {
    use fleetscope::core::event::CollectEvent;
    use fleetscope::core::model::Cloud;
    let mut app = demo_app(300);
    let error = "us-east-1: DescribeInstances: UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:iam::111111111111:user/audit is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action";
    for event in [
        CollectEvent::Started {
            source: "aws:audit".into(),
            cloud: Cloud::Aws,
            expected_pages: None,
        },
        CollectEvent::Failed {
            source: "aws:audit".into(),
            error: error.into(),
        },
    ] {
        app.send(Msg::Collected(event));
    }
    app.update(Action::Show(View::Overview));
    let overview = render(&mut app, 80, 24);
    assert!(
        !overview.contains("identity-based policy"),
        "the list cuts it"
    );
    // Failures come first: the failed source is the list's first, selected as it opens.
    let selected = app.browse.selected_source(app.sources()).unwrap();
    assert_eq!(app.sources()[selected].name, "aws:audit");
    app.update(Action::ShowDetail);
    let screen = render(&mut app, 80, 24);
    for part in [
        "UnauthorizedOperation: You are",
        "arn:aws:iam::111111111111:user/audit is not authorized to perform:",
        "identity-based policy allows the",
        "ec2:DescribeInstances action",
    ] {
        assert!(screen.contains(part), "{part}\n{screen}");
    }
    assert!(screen.contains("state      failed"), "{screen}");
    // When it happened is this run's clock: scrubbed for the snapshot.
    let when = screen.find("when       ").unwrap() + "when       ".len();
    let stamp = &screen[when..when + "2026-11-26 14:51 UTC".len()];
    assert!(stamp.ends_with(" UTC"), "{stamp}");
    let screen = screen.replace(stamp, "[time]");
    insta::assert_snapshot!("source_error_80x24", screen);
}
