//! The interactive UI driven headless: actions and key presses in, state and screens out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

use fleetscope::clouds::demo::{DemoExecutor, DemoFleet};
use fleetscope::core::event::{CollectEvent, Page};
use fleetscope::core::inventory::Inventory;
use fleetscope::core::model::{Cloud, Image, Instance, Tags};
use fleetscope::core::policy::{PolicyConfig, Verdict};
use fleetscope::query::data::short_id;
use fleetscope::queue::Queue;
use fleetscope::queue::rollout::{self, Phase, RolloutEvent};
use fleetscope::views::tui::action::{Action, Effect, View};
use fleetscope::views::tui::app::{AppInit, DriftRow, InstanceScope, Msg};
use fleetscope::views::tui::dialog::{Confirm, Dialog};
use fleetscope::views::tui::marks::Marked;
use fleetscope::views::tui::rollout_state::Ended;
use fleetscope::views::tui::{keymap, save};

mod common;
use common::ui::{
    Ui, app_with, demo_app, demo_app_with, demo_inventory, now, press, render, rules, type_filter,
    type_text,
};

fn visible_verdicts(app: &Ui) -> Vec<Verdict> {
    app.browse
        .instances
        .rows
        .iter()
        .map(|&i| app.data.verdict(i))
        .collect()
}

// ---- screens --------------------------------------------------------------------------------

/// The demo with a few instances queued, so the Queue view has rows of both kinds.
fn app_for_screens() -> Ui {
    let mut app = demo_app();
    app.update(Action::Show(View::Drift));
    app.update(Action::Down); // the first lineage's golden image
    app.update(Action::Down); // the first lineage's next image: outdated, in a group
    app.update(Action::QueueAllOnSelected);
    app.update(Action::Show(View::Instances));
    app.update(Action::StartFilter);
    type_text(&mut app, "cloud:gcp name:vpn");
    app.update(Action::Submit);
    app.update(Action::QueueSelected);
    app.update(Action::Back);
    app.update(Action::Show(View::Overview));
    app.status = None;
    app
}

#[test]
fn every_view_at_120x40_and_80x24() {
    for (width, height) in [(120, 40), (80, 24)] {
        let mut app = app_for_screens();
        for view in View::ALL {
            app.update(Action::Show(view));
            let screen = render(&mut app, width, height);
            insta::assert_snapshot!(format!("{}_{width}x{height}", view.command()), screen);
        }
    }
}

#[test]
fn help_overlay_and_filter_line() {
    let mut app = app_for_screens();
    app.update(Action::Show(View::Instances));
    app.update(Action::ToggleHelp);
    insta::assert_snapshot!("help_instances_80x24", render(&mut app, 80, 24));
    app.update(Action::ToggleHelp);
    app.update(Action::StartFilter);
    type_text(&mut app, "verdict:flagged age:>x");
    insta::assert_snapshot!("filter_error_80x24", render(&mut app, 80, 24));
}

#[test]
fn any_size_draws_without_panicking() {
    let mut app = app_for_screens();
    for view in View::ALL {
        app.update(Action::Show(view));
        for (width, height) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23), (250, 80)] {
            render(&mut app, width, height);
        }
        app.update(Action::ToggleHelp);
        render(&mut app, 12, 4);
        app.update(Action::ToggleHelp);
    }
}

// ---- the update logic -----------------------------------------------------------------------

#[test]
fn filter_terms_narrow_the_instances_and_esc_restores() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    let all = app.browse.instances.rows.len();
    assert_eq!(all, 1_500);
    press(&mut app, KeyCode::Char('/'));
    assert!(matches!(app.dialog(), Some(Dialog::Filter { .. })));
    type_text(&mut app, "cloud:aws verdict:outdated");
    let narrowed = app.browse.instances.rows.len();
    assert!(narrowed > 0 && narrowed < all);
    for &i in &app.browse.instances.rows {
        assert_eq!(app.data.instance(i).cloud.as_str(), "aws");
        assert_eq!(app.data.verdict(i), Verdict::Outdated);
    }
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.dialog(), None);
    assert_eq!(
        app.browse.instances.rows.len(),
        narrowed,
        "Enter keeps the filter"
    );

    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, " !region:us-");
    let fewer = app.browse.instances.rows.len();
    assert!(fewer < narrowed);
    assert!(
        app.browse
            .instances
            .rows
            .iter()
            .all(|&i| !app.data.instance(i).region.starts_with("us-"))
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        app.browse.instances.rows.len(),
        narrowed,
        "Esc while typing restores the filter as it was"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        app.browse.instances.rows.len(),
        all,
        "Esc in the list clears it"
    );
}

#[test]
fn numeric_and_glob_terms_and_errors_keep_the_last_good_filter() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    app.update(Action::StartFilter);
    type_text(&mut app, "age:>30 lineage:*web*");
    let rows = app.browse.instances.rows.clone();
    assert!(!rows.is_empty());
    for &i in &rows {
        assert!(app.data.instance_eval(i).age_days.unwrap() > 30);
        let image = app.data.inventory.image_of(i);
        assert!(app.data.lineage_of_image(image).unwrap().contains("web"));
    }
    // A bad term keeps the filter that last parsed: typed a key at a time, the rows stay
    // those of the last text without an error.
    let mut last_good = rows;
    for c in " uptime:>abc".chars() {
        app.update(Action::Input(c));
        if app.browse.filter_error().is_none() {
            last_good = app.browse.instances.rows.clone();
        }
    }
    assert!(
        app.browse
            .filter_error()
            .unwrap()
            .contains("not a number of days")
    );
    assert_eq!(
        app.browse.instances.rows, last_good,
        "a bad term changes nothing"
    );
    app.update(Action::Submit);
    assert!(app.status.as_ref().is_some_and(|s| s.error));
}

#[test]
fn sorting_by_column_and_reversing() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    let verdicts = visible_verdicts(&app);
    assert!(
        verdicts.windows(2).all(|w| w[0] >= w[1]),
        "most severe first by default"
    );
    app.update(Action::SortReverse);
    let verdicts = visible_verdicts(&app);
    assert!(verdicts.windows(2).all(|w| w[0] <= w[1]));
    app.update(Action::StartCommand);
    type_text(&mut app, "sort uptime desc");
    app.update(Action::Submit);
    let uptimes: Vec<i64> = app
        .browse
        .instances
        .rows
        .iter()
        .map(|&i| app.data.uptime_days(i))
        .collect();
    assert!(uptimes.windows(2).all(|w| w[0] >= w[1]));
    // `l` walks to the next column: from UPTIME to VERDICT, and round to ID.
    press(&mut app, KeyCode::Char('l'));
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(app.browse.instances.sort, 0);
    let ids: Vec<&str> = app
        .browse
        .instances
        .rows
        .iter()
        .map(|&i| app.data.instance(i).id.as_str())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] >= w[1]), "still descending");
}

#[test]
fn marking_rows() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.marked_count(Marked::Instances), 2);
    assert_eq!(app.browse.instances.selected, 2, "space moves down");
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(
        app.marked_count(Marked::Instances),
        1,
        "space again unmarks"
    );
    app.update(Action::StartFilter);
    type_text(&mut app, "cloud:azure");
    app.update(Action::Submit);
    press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        app.marked_count(Marked::Instances),
        1 + app.browse.instances.rows.len()
    );
    press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        app.marked_count(Marked::Instances),
        1,
        "a again unmarks the visible rows only"
    );
    press(&mut app, KeyCode::Char('u'));
    assert!(app.marked_count(Marked::Instances) == 0);
}

#[test]
fn queueing_marked_instances_persists_and_dequeues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.json");
    let mut app = app_with(demo_inventory(1_500), Some(path.clone()));
    app.update(Action::Show(View::Instances));
    app.update(Action::StartFilter);
    type_text(&mut app, "verdict:outdated");
    app.update(Action::Submit);
    for _ in 0..3 {
        press(&mut app, KeyCode::Char(' '));
    }
    let marked: Vec<String> = {
        let mut ids: Vec<String> = app.browse.instances.rows[..3]
            .iter()
            .map(|&i| app.data.instance(i).id.to_string())
            .collect();
        ids.sort();
        ids
    };
    press(&mut app, KeyCode::Char('r'));
    assert!(
        (app.marked_count(Marked::Instances) == 0),
        "marks are used up by the queueing"
    );
    // The runtime hands changes to a saver thread; headless, they are saved here.
    app.save_now();
    let saved = Queue::load(&path).unwrap();
    let mut saved_ids: Vec<String> = saved
        .entries
        .iter()
        .map(|e| e.instance_id.clone())
        .collect();
    saved_ids.sort();
    assert_eq!(saved_ids, marked);
    assert!(saved.entries.iter().all(|e| e.verdict == Verdict::Outdated));
    assert!(saved.entries.iter().all(|e| e.target_image.is_some()));

    // Queueing them again adds nothing.
    app.update(Action::Top);
    for _ in 0..3 {
        press(&mut app, KeyCode::Char(' '));
    }
    press(&mut app, KeyCode::Char('r'));
    app.save_now();
    assert_eq!(Queue::load(&path).unwrap().entries.len(), 3);
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("3 already queued")
    );

    press(&mut app, KeyCode::Char('5'));
    assert_eq!(app.browse.queue_rows.rows.len(), 3);
    press(&mut app, KeyCode::Char('d'));
    app.save_now();
    assert_eq!(Queue::load(&path).unwrap().entries.len(), 2);
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Delete);
    app.save_now();
    assert!(Queue::load(&path).unwrap().entries.is_empty());
}

#[test]
fn queueing_everything_non_current_on_a_lineage_skips_the_golden_image() {
    let mut app = demo_app();
    app.update(Action::Show(View::Drift));
    let Some(DriftRow::Lineage(lineage)) = app.browse.drift.selected_row() else {
        panic!("the drift view starts on a lineage");
    };
    let golden = app.data.eval.lineage_eval(lineage).golden.unwrap();
    let expected: Vec<_> = app
        .data
        .instances_in_lineage(lineage)
        .into_iter()
        .filter(|&i| {
            app.data.inventory.image_of(i) != golden && app.data.verdict(i) != Verdict::Current
        })
        .collect();
    assert!(!expected.is_empty());
    press(&mut app, KeyCode::Char('R'));
    assert_eq!(app.queue().entries.len(), expected.len());
    for entry in &app.queue().entries {
        let i = app
            .data
            .inventory
            .instance_by_id(&entry.instance_id)
            .unwrap();
        assert!(expected.contains(&i));
        assert_ne!(entry.target_image.as_deref(), Some(entry.image.as_str()));
    }
}

#[test]
fn enter_drills_down_and_esc_comes_back() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let image = app.browse.images.selected_row().unwrap();
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.browse.view, View::Instances);
    assert_eq!(app.browse.instance_scope, InstanceScope::Image(image));
    let mut on_image = app.browse.instances.rows.clone();
    on_image.sort_unstable();
    let mut expected = app.data.inventory.image(image).instances.clone();
    expected.sort_unstable();
    assert_eq!(on_image, expected);
    assert!(render(&mut app, 120, 40).contains(&format!(
        "Instances on image {}",
        app.data.image_label(image)
    )));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.browse.view, View::Images);
    assert_eq!(app.browse.images.selected_row(), Some(image));
    assert_eq!(app.browse.instance_scope, InstanceScope::All);
    assert_eq!(app.browse.instances.rows.len(), 1_500);

    // From the drift view, a group row lists its members.
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Char('G'));
    let Some(DriftRow::Group(group)) = app.browse.drift.selected_row() else {
        panic!("groups with skew or drift end the drift view");
    };
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.browse.instances.rows.len(),
        app.data.inventory.group(group).members.len()
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.browse.view, View::Drift);
}

#[test]
fn commands_complete_and_explain_mistakes() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "ins");
    press(&mut app, KeyCode::Tab);
    assert_eq!(
        app.dialog(),
        Some(&Dialog::Command {
            line: "instances ".into()
        })
    );
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.browse.view, View::Instances);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "sort ve");
    press(&mut app, KeyCode::Tab);
    assert_eq!(
        app.dialog(),
        Some(&Dialog::Command {
            line: "sort verdict ".into()
        })
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "frobnicate");
    press(&mut app, KeyCode::Enter);
    let status = app.status.clone().unwrap();
    assert!(status.error && status.text.contains("unknown command"));
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "q");
    assert_eq!(press(&mut app, KeyCode::Enter), Some(Effect::Quit));
}

#[test]
fn help_is_modal_and_q_closes_it() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('?'));
    assert!(matches!(app.dialog(), Some(Dialog::Help { .. })));
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(
        app.browse.view,
        View::Overview,
        "keys go to the help while it is open"
    );
    assert_eq!(press(&mut app, KeyCode::Char('q')), None);
    assert_eq!(app.dialog(), None);
    assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Effect::Quit));
}

#[test]
fn mouse_clicks_select_rows_and_tabs() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    render(&mut app, 120, 40);
    let rows = app.layout.rows;
    app.update(Action::Click {
        column: rows.x + 3,
        row: rows.y + 4,
    });
    assert_eq!(app.browse.instances.selected, 4);
    app.update(Action::ScrollDown);
    assert_eq!(app.browse.instances.selected, 5);
    // The tab bar: " fleetscope " then " 1 Overview " ...
    app.update(Action::Click { column: 14, row: 0 });
    assert_eq!(app.browse.view, View::Overview);
}

#[test]
fn pages_stream_in_and_a_refresh_swaps_in_whole() {
    let fleet = DemoFleet::new(42, 1_500, now());
    let mut app = Ui::new(
        AppInit {
            collecting: true,
            ..AppInit::browse(
                Inventory::new(rules()),
                rules(),
                PolicyConfig::default(),
                now(),
            )
        },
        None,
    );
    let events: Vec<CollectEvent> = fleet.events().collect();
    let half = events.len() / 2;
    for event in events[..half].iter().cloned() {
        app.send(Msg::Collected(event));
    }
    assert!(app.fleet.needs_evaluation());
    app.send(Msg::Evaluate { now: now() });
    let partial = app.data.eval.total.total();
    assert!(partial > 0 && partial < 1_500);
    assert_eq!(app.browse.instances.rows.len() as u32, partial);
    for event in events[half..].iter().cloned() {
        app.send(Msg::Collected(event));
    }
    app.send(Msg::CollectionDone { now: now() });
    assert!(!app.fleet.collecting());
    assert_eq!(app.data.eval.total.total(), 1_500);

    // A refresh collects aside: the screen keeps the old fleet until the new one is complete.
    assert_eq!(app.update(Action::Refresh), Some(Effect::Refresh));
    assert!(app.fleet.refreshing());
    app.send(Msg::Collected(CollectEvent::Failed {
        source: "aws:prod".into(),
        error: "expired token".into(),
    }));
    // A source that ended with part of it unlisted is as visible as a failed one.
    app.send(Msg::Collected(CollectEvent::Incomplete {
        source: "gcp:shop".into(),
        error: "unreachable: zones/us-east1-b".into(),
    }));
    assert_eq!(app.data.eval.total.total(), 1_500);
    assert!(app.sources().iter().any(|s| s.name == "aws:prod"));
    app.send(Msg::CollectionDone { now: now() });
    assert_eq!(app.data.eval.total.total(), 0);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("failed: expired token"), "{screen}");
    assert!(screen.contains("1 failed"));
    assert!(screen.contains("incomplete: unreachable: zone"), "{screen}");
    assert!(screen.contains("1 incomplete"), "{screen}");
}

#[test]
fn a_snapshot_cannot_be_refreshed() {
    let mut app = Ui::new(
        AppInit {
            live: false,
            ..AppInit::browse(demo_inventory(10), rules(), PolicyConfig::default(), now())
        },
        None,
    );
    assert_eq!(app.update(Action::Refresh), None);
    assert!(app.status.clone().unwrap().text.contains("snapshot"));
}

#[test]
fn copy_gives_the_full_id() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    let id = app
        .data
        .instance(app.browse.instances.selected_row().unwrap())
        .id
        .to_string();
    assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Effect::Copy(id)));
}

#[test]
fn a_queue_that_cannot_be_saved_stays_in_memory_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: every save fails.
    let path = dir.path().join("queue.json");
    std::fs::create_dir(&path).unwrap();
    let mut app = app_with(demo_inventory(100), Some(path));
    app.update(Action::Show(View::Instances));
    app.update(Action::QueueSelected);
    app.save_now();
    assert_eq!(app.queue().entries.len(), 1);
    let status = app.status.clone().unwrap();
    assert!(
        status.error && status.text.contains("queue.json"),
        "{}",
        status.text
    );
}

#[test]
fn free_text_finds_what_a_field_by_field_search_finds() {
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    for needle in [
        "prd-01", "EU-WEST", "api", "outdated", "1111", "acme", "x-none", "ami-0", "10.0.1",
        "internal",
    ] {
        type_filter(&mut app, &format!("{needle} !{needle}z"));
        let lower = needle.to_lowercase();
        let expected = (0..1_500u32)
            .filter(|&i| {
                let instance = app.data.instance(i);
                let image = app.data.inventory.image_of(i);
                let group = app
                    .data
                    .inventory
                    .group_of(i)
                    .map_or("", |g| app.data.group_label(g));
                let fields = [
                    instance.id.as_str(),
                    &instance.name,
                    &instance.account,
                    &instance.region,
                    group,
                    app.data.image_label(image),
                    app.data.lineage_of_image(image).unwrap_or(""),
                    app.data.verdict(i).as_str(),
                    instance.cloud.as_str(),
                    &app.data.inventory.image(image).image.key,
                ];
                let a = &instance.addresses;
                let addresses = a
                    .private_ips
                    .iter()
                    .chain(&a.public_ips)
                    .chain(&a.dns_names);
                let has = |n: &str| {
                    fields.iter().any(|f| f.to_lowercase().contains(n))
                        || addresses.clone().any(|f| f.to_lowercase().contains(n))
                };
                has(&lower) && !has(&format!("{lower}z"))
            })
            .count();
        assert_eq!(app.browse.instances.rows.len(), expected, "{needle}");
    }
}

/// The rollout plan the loop would make for the app's apply request, by the demo's executor.
/// The plan arrives as the runtime hands it over; the confirmation opens with it.
fn plan_ready(app: &mut Ui, plan: rollout::Plan) {
    let queue = app.queue().clone();
    app.send(Msg::Planned(Ok((plan, queue))));
    assert!(
        matches!(app.dialog(), Some(Dialog::Confirm(_))),
        "the plan opens the confirmation"
    );
}

fn demo_plan(app: &Ui) -> rollout::Plan {
    let executor = DemoExecutor::new(DemoFleet::new(42, 1_500, now()), Duration::ZERO);
    futures::executor::block_on(rollout::plan(
        app.queue(),
        &[],
        &executor,
        &rollout::Settings::default(),
    ))
}

#[test]
fn apply_shows_the_plan_needs_the_typed_phrase_and_never_runs_read_only() {
    let mut app = app_for_screens();
    press(&mut app, KeyCode::Char('5'));
    let executable: Vec<String> = app
        .queue()
        .applicable()
        .map(|e| e.instance_id.clone())
        .collect();
    assert!(!executable.is_empty());
    assert_eq!(
        press(&mut app, KeyCode::Char('A')),
        Some(Effect::PlanApply),
        "A asks for the rollout plan first"
    );
    assert_eq!(app.dialog(), None, "no confirmation before the plan");
    let plan = demo_plan(&app);
    let ids: Vec<String> = plan
        .waves
        .iter()
        .flatten()
        .map(|p| p.entry.instance_id.clone())
        .collect();
    assert_eq!(ids.len(), executable.len());
    plan_ready(&mut app, plan.clone());
    let Some(Dialog::Confirm(Confirm { phrase: asked, .. })) = app.dialog().cloned() else {
        panic!("the plan opens the confirmation");
    };
    let phrase = format!("replace {}", ids.len());
    assert_eq!(asked, phrase);
    insta::assert_snapshot!("apply_confirm_80x24", render(&mut app, 80, 24));
    type_text(&mut app, "yes");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "a wrong phrase is a no"
    );
    assert_eq!(app.dialog(), None);
    press(&mut app, KeyCode::Char('A'));
    plan_ready(&mut app, plan.clone());
    type_text(&mut app, &phrase);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Apply(Box::new(plan)))
    );
    assert!(app.rollout.applying());
    assert_eq!(
        press(&mut app, KeyCode::Char('q')),
        None,
        "q does not cut an apply short"
    );
    app.send(Msg::Rollout(RolloutEvent::WaveStarted { wave: 1, of: 3 }));
    for id in &ids {
        app.send(Msg::Rollout(RolloutEvent::Phase {
            instance_id: id.clone(),
            phase: Phase::WaitingHealthy,
        }));
    }
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("applying: wave 1 of 3"), "{screen}");
    assert!(screen.contains("health gate"), "{screen}");
    assert_eq!(
        press(&mut app, KeyCode::Char('S')),
        Some(Effect::StopApply),
        "S asks the rollout to start nothing new"
    );
    assert_eq!(press(&mut app, KeyCode::Char('S')), None, "asked once");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let force = keymap::action_for(&ctrl_c, app.browse.view, app.key_scope()).unwrap();
    assert_eq!(app.update(force), Some(Effect::Quit));
    let before = app.queue().entries.len();
    press(&mut app, KeyCode::Char('d'));
    assert_eq!(
        app.queue().entries.len(),
        before,
        "the queue is not edited mid-apply"
    );

    let mut read_only = Ui::new(
        AppInit {
            queue: app.queue().clone(),
            read_only: true,
            ..AppInit::browse(demo_inventory(100), rules(), PolicyConfig::default(), now())
        },
        None,
    );
    read_only.update(Action::Show(View::Queue));
    assert_eq!(read_only.update(Action::Apply), None);
    assert_eq!(read_only.dialog(), None);
    assert!(
        read_only
            .status
            .clone()
            .unwrap()
            .text
            .contains("--read-only")
    );
    assert_eq!(read_only.update(Action::StopApply), None);
}

#[test]
fn queue_changes_keep_what_another_process_changed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.json");
    let mut app = app_with(demo_inventory(1_500), Some(path.clone()));
    app.update(Action::Show(View::Instances));
    let ids: Vec<String> = app.browse.instances.rows[..3]
        .iter()
        .map(|&i| app.data.instance(i).id.to_string())
        .collect();
    app.update(Action::QueueSelected); // ids[0]
    app.save_now();
    // Another process queues ids[1] (say, a second UI).
    let other = fleetscope::queue::entry_for(
        &app.data.inventory,
        &app.data.eval,
        app.data.inventory.instance_by_id(&ids[1]).unwrap(),
        now(),
    );
    Queue::update(&path, |queue| queue.add([other])).unwrap();
    app.update(Action::Down);
    app.update(Action::Down);
    app.update(Action::QueueSelected); // ids[2]
    app.save_now();
    let on_disk = |path: &std::path::Path| -> Vec<String> {
        let mut ids: Vec<String> = Queue::load(path)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.instance_id)
            .collect();
        ids.sort();
        ids
    };
    let mut all = ids.clone();
    all.sort();
    assert_eq!(on_disk(&path), all);
    assert_eq!(
        app.queue().entries.len(),
        3,
        "the UI shows the queue as saved"
    );
    // An apply elsewhere replaces ids[0] and takes it off; the UI's next change keeps it off.
    Queue::update(&path, |queue| queue.remove(&[ids[0].as_str()])).unwrap();
    app.update(Action::Dequeue); // ids[2], the selected row
    app.save_now();
    assert_eq!(on_disk(&path), vec![ids[1].clone()]);
}

/// Another fleetscope changes the queue file while this screen is open: Ctrl-r shows the file's
/// queue and says what changed; the apply confirmation is made from the file and says so too.
#[test]
fn a_queue_changed_under_an_open_ui_shows_on_refresh_and_in_the_apply_dialog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.json");
    let mut app = app_with(demo_inventory(1_500), Some(path.clone()));
    app.update(Action::Show(View::Instances));
    let ids: Vec<String> = app.browse.instances.rows[..3]
        .iter()
        .map(|&i| app.data.instance(i).id.to_string())
        .collect();
    for _ in 0..3 {
        app.update(Action::QueueSelected);
        app.update(Action::Down);
    }
    app.save_now();
    assert_eq!(app.queue().entries.len(), 3);
    // Another process applies two of them: they leave the file.
    Queue::update(&path, |q| q.remove(&[ids[0].as_str(), ids[1].as_str()])).unwrap();
    assert_eq!(
        app.update(Action::Refresh),
        Some(Effect::Refresh),
        "a refresh also re-reads the queue file"
    );
    assert_eq!(app.queue().entries.len(), 1, "the file's queue is shown");
    let status = app.status.clone().unwrap().text;
    assert_eq!(
        status,
        "the queue changed outside this screen: 2 taken off; 1 queued now"
    );

    // Then another process queues two more; the plan is made from the file.
    let more: Vec<_> = app.browse.instances.rows[3..5]
        .iter()
        .map(|&i| fleetscope::queue::entry_for(&app.data.inventory, &app.data.eval, i, now()))
        .collect();
    Queue::update(&path, |q| q.add(more)).unwrap();
    app.update(Action::Show(View::Queue));
    assert_eq!(app.update(Action::Apply), Some(Effect::PlanApply));
    let file = Queue::load(&path).unwrap();
    let executor = DemoExecutor::new(DemoFleet::new(42, 1_500, now()), Duration::ZERO);
    let plan = futures::executor::block_on(rollout::plan(
        &file,
        &[],
        &executor,
        &rollout::Settings::default(),
    ));
    let planned = plan.entries();
    app.send(Msg::Planned(Ok((plan, file))));
    if app.dialog().is_none() {
        return assert_eq!(planned, 0, "no confirmation only when nothing can run");
    }
    let Some(Dialog::Confirm(Confirm {
        phrase, changed, ..
    })) = app.dialog().cloned()
    else {
        panic!("the plan opens the confirmation");
    };
    assert_eq!(phrase, format!("replace {planned}"));
    assert_eq!(
        changed.as_deref(),
        Some("the queue changed outside this screen: 2 added; 3 queued now")
    );
    assert_eq!(app.queue().entries.len(), 3);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("2 added; 3 queued now"), "{screen}");
}

/// `R` on a group in template drift says the apply points it at the golden image first; with
/// template updates off, that the operator must; an apply's template steps show in the Queue
/// view on their own lines with their live step.
#[test]
fn a_drifted_group_says_its_template_step_comes_first_and_the_queue_shows_it() {
    use fleetscope::core::policy::TemplateStatus;
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Char('G'));
    let drifted = (0..app.browse.drift.rows.len())
        .find(|&p| {
            matches!(app.browse.drift.rows[p], DriftRow::Group(g)
                if matches!(app.data.eval.group_eval(g).template, TemplateStatus::Drift { .. }))
        })
        .expect("the demo has a group in template drift");
    app.browse.drift.select(drifted);
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains("an apply's template step fixes it"),
        "{screen}"
    );
    let mut app = demo_app_with(|init| init.confirm_queue_over = 1_000);
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Char('G'));
    app.browse.drift.select(drifted);
    press(&mut app, KeyCode::Char('R'));
    let status = app.status.clone().unwrap();
    assert!(!status.error, "{status:?}");
    assert!(
        status.text.contains("; the apply first points")
            && status.text.ends_with("(a template step)"),
        "{}",
        status.text
    );

    // Off: the operator is told to point it first.
    let mut off = demo_app_with(|init| {
        init.template_updates = false;
        init.confirm_queue_over = 1_000;
    });
    press(&mut off, KeyCode::Char('4'));
    press(&mut off, KeyCode::Char('G'));
    off.browse.drift.select(drifted);
    press(&mut off, KeyCode::Char('R'));
    assert!(
        off.status
            .clone()
            .unwrap()
            .text
            .contains("template updates are off: point"),
        "{:?}",
        off.status
    );

    // The apply: the plan's template step gets its own line in the Queue view.
    press(&mut app, KeyCode::Char('5'));
    assert_eq!(press(&mut app, KeyCode::Char('A')), Some(Effect::PlanApply));
    let plan = demo_plan(&app);
    assert_eq!(plan.templates.len(), 1, "{}", plan.describe());
    let phrase = plan.phrase();
    assert!(phrase.ends_with(", update 1 template"), "{phrase}");
    plan_ready(&mut app, plan.clone());
    let dialog = render(&mut app, 160, 48);
    assert!(dialog.contains("First 1 template step"), "{dialog}");
    type_text(&mut app, &phrase);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Apply(Box::new(plan.clone())))
    );
    let group = plan.templates[0].group.clone();
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: fleetscope::queue::journal::template_id(&group),
        phase: Phase::UpdatingTemplate,
    }));
    let screen = render(&mut app, 160, 48);
    let line = screen
        .lines()
        .find(|l| l.contains("template step: point"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(line.contains("template "), "{line}");
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: fleetscope::queue::journal::template_id(&group),
        phase: Phase::TemplateUpdated,
    }));
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains(" template ok template step: point"),
        "{screen}"
    );
}

// ---- the drift view: the groups' section, its words, image names, details, folding ---------

/// The demo's groups in template drift, and those with version skew.
fn drifted_and_skewed(app: &Ui) -> (Vec<u32>, Vec<u32>) {
    let groups = 0..app.data.inventory.groups().len() as u32;
    let drifted = groups
        .clone()
        .filter(|&g| app.data.eval.group_eval(g).drift())
        .collect();
    let skewed = groups
        .filter(|&g| app.data.eval.group_eval(g).skew())
        .collect();
    (drifted, skewed)
}

/// The group rows of the Drift view, in order.
fn drift_group_rows(app: &Ui) -> Vec<u32> {
    app.browse
        .drift
        .rows
        .iter()
        .filter_map(|row| match row {
            DriftRow::Group(g) => Some(*g),
            _ => None,
        })
        .collect()
}

fn is_lineage_image_or_group(row: DriftRow) -> bool {
    matches!(
        row,
        DriftRow::Lineage(_) | DriftRow::Image(_) | DriftRow::Group(_)
    )
}

/// Groups get a section of their own at the end of the Drift view, under a header row that
/// counts them; those in template drift come first; the title carries the counts too.
#[test]
fn drift_groups_have_a_section_headed_by_their_counts() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    let (drifted, skewed) = drifted_and_skewed(&app);
    assert!(!drifted.is_empty() && !skewed.is_empty());
    let counts = format!(
        "{} in template drift, {} with version skew",
        drifted.len(),
        skewed.len()
    );
    let top = render(&mut app, 120, 40);
    let title = top.lines().nth(1).unwrap();
    assert!(title.contains(&counts), "{top}");

    let rows = app.browse.drift.rows.clone();
    let first = rows
        .iter()
        .position(|r| matches!(r, DriftRow::Group(_)))
        .unwrap();
    assert!(
        first > 0 && !is_lineage_image_or_group(rows[first - 1]),
        "a header row opens the section: {:?}",
        rows[first - 1]
    );
    let section = drift_group_rows(&app);
    assert_eq!(section.len(), rows.len() - first, "the groups end the view");
    let (in_drift, skew_only) = section.split_at(drifted.len());
    assert!(
        in_drift
            .iter()
            .all(|&g| app.data.eval.group_eval(g).drift()),
        "template drift first"
    );
    assert!(
        skew_only
            .iter()
            .all(|&g| !app.data.eval.group_eval(g).drift() && app.data.eval.group_eval(g).skew()),
        "then version skew"
    );

    app.browse.drift.select(first - 1);
    let screen = render(&mut app, 120, 40);
    let header = screen
        .lines()
        .find(|l| l.contains("Groups") && l.contains(&counts))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(header.contains(&section.len().to_string()), "{header}");
}

/// `drift` and `template` find the groups in template drift, `skew` those with version skew;
/// `?` lists the words with what they mean.
#[test]
fn drift_template_and_skew_find_the_groups_concerned() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    let (drifted, skewed) = drifted_and_skewed(&app);
    for (words, wanted) in [
        ("drift", &drifted),
        ("template", &drifted),
        ("skew", &skewed),
        ("SKEW", &skewed),
    ] {
        type_filter(&mut app, words);
        press(&mut app, KeyCode::Enter);
        assert!(app.browse.filter_error().is_none(), "/{words}");
        let mut shown = drift_group_rows(&app);
        shown.sort_unstable();
        assert_eq!(&shown, wanted, "/{words}");
        assert!(
            !app.browse
                .drift
                .rows
                .iter()
                .any(|r| matches!(r, DriftRow::Lineage(_) | DriftRow::Image(_))),
            "/{words}: only groups"
        );
    }
    type_filter(&mut app, "!drift");
    press(&mut app, KeyCode::Enter);
    let shown = drift_group_rows(&app);
    assert!(!shown.is_empty());
    assert!(shown.iter().all(|g| !drifted.contains(g)));
    assert!(
        app.browse
            .drift
            .rows
            .iter()
            .any(|r| matches!(r, DriftRow::Lineage(_))),
        "the lineages stay"
    );
    type_filter(&mut app, "drift cloud:gcp");
    press(&mut app, KeyCode::Enter);
    let shown = drift_group_rows(&app);
    assert!(!shown.is_empty() && shown.len() < drifted.len());
    assert!(shown.iter().all(|&g| {
        app.data.eval.group_eval(g).drift()
            && app
                .data
                .inventory
                .group(g)
                .group
                .as_ref()
                .unwrap()
                .cloud
                .as_str()
                == "gcp"
    }));
    press(&mut app, KeyCode::Esc);
    // Tab completes the word, with no colon: it takes no value.
    type_filter(&mut app, "!sk");
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.browse.drift.input, "!skew");
    assert!(app.browse.filter_error().is_none());
    press(&mut app, KeyCode::Esc);

    press(&mut app, KeyCode::Char('?'));
    let mut help = String::new();
    for _ in 0..40 {
        help.push_str(&render(&mut app, 120, 60));
        press(&mut app, KeyCode::Char('j'));
    }
    for word in ["drift", "skew"] {
        assert!(
            help.lines().any(|l| {
                // Inside the help's box.
                let inside = l.split('│').nth(1).unwrap_or("").trim();
                inside.starts_with(&format!("{word} ")) && inside.contains("group")
            }),
            "{word}\n{help}"
        );
    }
}

/// The position and index of the first AWS group in template drift.
fn drifted_aws_group(app: &Ui) -> (usize, u32) {
    use fleetscope::core::model::Cloud;
    app.browse
        .drift
        .rows
        .iter()
        .enumerate()
        .find_map(|(p, row)| match *row {
            DriftRow::Group(g)
                if app.data.eval.group_eval(g).drift()
                    && app.data.inventory.group(g).group.as_ref().unwrap().cloud == Cloud::Aws =>
            {
                Some((p, g))
            }
            _ => None,
        })
        .expect("the demo has an AWS group in template drift")
}

/// The pane of two lines under the list, as drawn.
fn drift_pane(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[lines.len() - 3..lines.len() - 1].join("\n")
}

/// Wherever a Drift row shows an image it names it, the id beside the name where there is room.
#[test]
fn drift_rows_show_images_by_name_beside_their_ids() {
    use fleetscope::core::policy::TemplateStatus;
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    let (position, group) = drifted_aws_group(&app);
    let TemplateStatus::Drift { points_at, golden } =
        app.data.eval.group_eval(group).template.clone()
    else {
        unreachable!()
    };
    let golden = golden.unwrap();
    let name = |key: &str| {
        let i = app.data.inventory.image_by_key(key).unwrap();
        app.data.image_label(i).to_owned()
    };
    let (launches, golden_name) = (name(&points_at), name(&golden));
    assert!(points_at.starts_with("ami-") && launches != points_at);
    app.browse.drift.select(position);
    let screen = render(&mut app, 200, 48);
    let label = app.data.group_label(group).to_owned();
    let row = screen
        .lines()
        .find(|l| l.contains(&format!("asg {label}")))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        row.contains(&format!("launches {launches}")) && !row.contains(&points_at),
        "{row}"
    );
    let pane = drift_pane(&screen);
    for wanted in [&launches, &points_at, &golden_name, &golden] {
        assert!(pane.contains(wanted.as_str()), "{wanted}\n{pane}");
    }

    // An AWS image row's pane: its name, and its AMI id.
    app.browse.drift.select(0);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let Some(DriftRow::Image(image)) = app.browse.drift.selected_row() else {
        panic!("the first lineage's images follow it");
    };
    let entry = app.data.inventory.image(image).image.clone();
    assert!(entry.key.starts_with("ami-") && !entry.name.is_empty());
    let pane = drift_pane(&render(&mut app, 120, 40));
    assert!(
        pane.contains(&entry.name) && pane.contains(&entry.key),
        "{pane}"
    );
}

/// `i` on a group shows what it is, what its template launches against the golden image, which
/// images its members run, and what an apply would do; on lineages and images too. Enter still
/// lists the instances.
#[test]
fn i_on_a_drift_row_shows_its_detail_and_enter_still_lists_its_instances() {
    use fleetscope::core::policy::TemplateStatus;
    for template_updates in [true, false] {
        let mut app = demo_app_with(|init| init.template_updates = template_updates);
        press(&mut app, KeyCode::Char('4'));
        let (position, group) = drifted_aws_group(&app);
        app.browse.drift.select(position);
        press(&mut app, KeyCode::Char('i'));
        assert_eq!(app.dialog(), Some(&Dialog::Detail { scroll: 0 }));
        let screen = render(&mut app, 160, 48);
        let entry = app.data.inventory.group(group);
        let described = entry.group.as_ref().unwrap();
        let TemplateStatus::Drift { points_at, golden } =
            app.data.eval.group_eval(group).template.clone()
        else {
            unreachable!()
        };
        let name = |key: &str| {
            let i = app.data.inventory.image_by_key(key).unwrap();
            app.data.image_label(i).to_owned()
        };
        for wanted in [
            entry.key.clone(),
            "aws".to_owned(),
            format!("{} member", entry.members.len()),
            described.template.clone().unwrap(),
            name(&points_at),
            points_at.clone(),
            name(golden.as_deref().unwrap()),
        ] {
            assert!(screen.contains(&wanted), "{wanted}\n{screen}");
        }
        if template_updates {
            assert!(screen.contains("template step"), "{screen}");
        } else {
            assert!(screen.contains("template updates are off"), "{screen}");
        }
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.dialog(), None);
        assert_eq!(app.browse.view, View::Drift);
    }

    // A group with version skew: each image its members run, with how many.
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    let position = app
        .browse
        .drift
        .rows
        .iter()
        .position(|r| matches!(*r, DriftRow::Group(g) if app.data.eval.group_eval(g).skew()))
        .unwrap();
    let Some(DriftRow::Group(group)) = app.browse.drift.rows.get(position).copied() else {
        unreachable!()
    };
    app.browse.drift.select(position);
    press(&mut app, KeyCode::Char('i'));
    let screen = render(&mut app, 160, 48);
    let inv = &app.data.inventory;
    for &image in &app.data.eval.group_eval(group).images {
        let on = inv
            .group(group)
            .members
            .iter()
            .filter(|&&m| inv.image_of(m) == image)
            .count();
        let label = app.data.image_label(image);
        let line = screen
            .lines()
            .find(|l| l.contains(label) && l.contains(" member"))
            .unwrap_or_else(|| panic!("{label}\n{screen}"));
        assert!(line.contains(&format!("{on} member")), "{line}");
    }
    press(&mut app, KeyCode::Esc);

    // Enter on a group lists its members, as before.
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.browse.view, View::Instances);
    assert_eq!(app.browse.instance_scope, InstanceScope::Group(group));
    press(&mut app, KeyCode::Esc);

    // A lineage, and an image.
    app.browse.drift.select(0);
    let Some(DriftRow::Lineage(lineage)) = app.browse.drift.selected_row() else {
        panic!("the drift view starts on a lineage");
    };
    press(&mut app, KeyCode::Char('i'));
    assert_eq!(app.dialog(), Some(&Dialog::Detail { scroll: 0 }));
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains(&app.data.inventory.lineage(lineage).name) && screen.contains("golden"),
        "{screen}"
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('i'));
    let Some(DriftRow::Image(image)) = app.browse.drift.selected_row() else {
        panic!("an image follows its lineage");
    };
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains(&app.data.inventory.image(image).image.key),
        "{screen}"
    );
}

/// `z` folds the selected lineage's images (from the lineage or one of its images) and the
/// groups' section (from its header or a group); the marker says ▸ folded, ▾ open. `Z` folds
/// every lineage, so the groups are a page away.
#[test]
fn z_folds_the_selected_lineage_or_the_groups_and_the_marker_says_which() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('4'));
    let Some(DriftRow::Lineage(lineage)) = app.browse.drift.selected_row() else {
        panic!("the drift view starts on a lineage");
    };
    let name = app.data.inventory.lineage(lineage).name.clone();
    let images = app.data.inventory.lineage(lineage).images.len();
    let all = app.browse.drift.rows.len();
    assert!(render(&mut app, 120, 40).contains(&format!("▾ {name}")));
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.browse.drift.rows.len(), all - images);
    assert_eq!(
        app.browse.drift.selected_row(),
        Some(DriftRow::Lineage(lineage))
    );
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains(&format!("▸ {name}")) && !screen.contains(&format!("▾ {name}")),
        "{screen}"
    );
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.browse.drift.rows.len(), all);
    assert!(render(&mut app, 120, 40).contains(&format!("▾ {name}")));

    // From one of its images: the lineage folds and is selected.
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.browse.drift.rows.len(), all - images);
    assert_eq!(
        app.browse.drift.selected_row(),
        Some(DriftRow::Lineage(lineage))
    );
    // A filter keeps the fold.
    type_filter(&mut app, "cloud:aws");
    press(&mut app, KeyCode::Enter);
    assert!(!app.browse.drift.rows.contains(&DriftRow::Image(
        app.data.inventory.lineage(lineage).images[0]
    )));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.browse.drift.rows.len(), all);

    // Z: every lineage folds, and again: every lineage opens.
    press(&mut app, KeyCode::Char('Z'));
    let rows = app.browse.drift.rows.clone();
    assert!(!rows.iter().any(|r| matches!(r, DriftRow::Image(_))));
    let lineages = rows
        .iter()
        .filter(|r| matches!(r, DriftRow::Lineage(_)))
        .count();
    let groups = drift_group_rows(&app).len();
    assert_eq!(
        rows.len(),
        lineages + 1 + groups,
        "lineages, the header, the groups"
    );
    let screen = render(&mut app, 120, 40);
    assert!(
        screen
            .lines()
            .filter(|l| l.contains('▾'))
            .all(|l| l.contains("Groups")),
        "{screen}"
    );
    press(&mut app, KeyCode::Char('Z'));
    assert_eq!(app.browse.drift.rows.len(), all);

    // The groups' section, from a group.
    press(&mut app, KeyCode::Char('G'));
    assert!(matches!(
        app.browse.drift.selected_row(),
        Some(DriftRow::Group(_))
    ));
    press(&mut app, KeyCode::Char('z'));
    assert!(drift_group_rows(&app).is_empty());
    assert_eq!(app.browse.drift.rows.len(), all - groups);
    let header = app.browse.drift.selected_row().unwrap();
    assert!(!is_lineage_image_or_group(header), "{header:?}");
    let screen = render(&mut app, 120, 40);
    assert!(screen.lines().any(|l| l.contains("▸ Groups")), "{screen}");
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(drift_group_rows(&app).len(), groups);

    // The help says so.
    let help = keymap::help_for(View::Drift);
    for key in ["z", "Z", "i"] {
        assert!(
            help.iter().any(|l| l.keys == key && l.scope == "This view"),
            "{key}"
        );
    }
}

/// Keys that mean something in another view say where, instead of nothing; an empty queue says
/// how to fill it, not that a filter hides its rows.
#[test]
fn a_key_for_another_view_says_where_and_an_empty_queue_says_how_to_fill_it() {
    let mut app = demo_app();
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let action = keymap::action_for(&key('/'), app.browse.view, app.key_scope());
    assert_eq!(app.browse.view, View::Overview);
    app.update(action.expect("/ on the Overview is answered"));
    assert_eq!(
        app.status.clone().unwrap().text,
        "not in Overview: that key works in Images (2), Instances (3), Drift (4), Queue (5)"
    );
    press(&mut app, KeyCode::Char('3'));
    let action = keymap::action_for(&key('A'), app.browse.view, app.key_scope()).unwrap();
    app.update(action);
    assert_eq!(
        app.status.clone().unwrap().text,
        "not in Instances: that key works in Queue (5)"
    );
    press(&mut app, KeyCode::Char('5'));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("the queue is empty: r queues"), "{screen}");
    assert!(!screen.contains("no rows match"), "{screen}");
}

/// The Queue view's REASON says why an entry cannot go, or why it failed, before why it was
/// queued.
#[test]
fn the_queue_view_says_why_an_entry_is_blocked_or_failed() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    for _ in 0..2 {
        app.update(Action::QueueSelected);
        app.update(Action::Down);
    }
    assert_eq!(app.queue().entries.len(), 2);
    // The file says the first cannot go (as a later check of its lineage would).
    let mut file = app.queue().clone();
    file.entries[0].strategy = fleetscope::queue::Strategy::NotExecutable {
        why: "its lineage has no golden image".into(),
    };
    app.send(Msg::Saved(save::Saved {
        batches: 0,
        changes: Vec::new(),
        result: Ok(file),
    }));
    let failed = app.queue().entries[1].instance_id.clone();
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: failed,
        phase: Phase::Failed("the replacement failed its health check".into()),
    }));
    press(&mut app, KeyCode::Char('5'));
    let screen = render(&mut app, 200, 20);
    assert!(
        screen.contains("blocked: its lineage has no golden image"),
        "{screen}"
    );
    assert!(
        screen.contains("failed: the replacement failed its health check"),
        "{screen}"
    );
}

// ---- columns --------------------------------------------------------------------------------

/// A list as drawn: each header title with the columns it spans, and the visible rows' cells.
struct Drawn {
    titles: Vec<(String, usize)>,
    rows: Vec<Vec<String>>,
}

impl Drawn {
    /// How many columns the column titled `title` spans.
    fn width(&self, title: &str) -> Option<usize> {
        self.titles
            .iter()
            .find(|(t, _)| t == title)
            .map(|(_, w)| *w)
    }

    /// The visible cells of the column titled `title` (a sort arrow aside).
    fn column(&self, title: &str) -> Vec<&str> {
        let at = self
            .titles
            .iter()
            .position(|(t, _)| t.trim_end_matches(['▲', '▼']) == title)
            .unwrap_or_else(|| panic!("no {title} column in {:?}", self.titles));
        self.rows.iter().map(|row| row[at].as_str()).collect()
    }
}

/// The Instances view filtered by `filter` and drawn at `width`.
fn instance_table(app: &mut Ui, filter: &str, width: u16) -> Drawn {
    press(app, KeyCode::Char('3'));
    press(app, KeyCode::Char('/'));
    type_text(app, filter);
    press(app, KeyCode::Enter);
    let screen = render(app, width, 30);
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let top = usize::from(app.layout.rows.y);
    let header = &lines[top - 1];
    // Titles start after a space; each column runs to the space before the next title.
    let starts: Vec<usize> = (0..header.len())
        .filter(|&x| header[x] != ' ' && (x == 0 || header[x - 1] == ' '))
        .collect();
    let titles: Vec<(String, usize)> = starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).map_or(header.len(), |next| next - 1);
            let title = header[start..end].iter().collect::<String>();
            (title.trim_end().to_owned(), end - start)
        })
        .collect();
    let shown = app
        .browse
        .instances
        .window(
            app.browse.instances.offset,
            usize::from(app.layout.rows.height),
        )
        .len();
    let rows = lines[top..top + shown]
        .iter()
        .map(|line| {
            titles
                .iter()
                .zip(&starts)
                .map(|((_, width), &start)| {
                    let cell: String = line.iter().skip(start).take(*width).collect();
                    cell.trim_end().to_owned()
                })
                .collect()
        })
        .collect();
    Drawn { titles, rows }
}

/// Asserts that `cell` shows `full`, whole or cut in the middle: its start and its end kept.
fn shows(cell: &str, full: &str) {
    match cell.split_once('…') {
        Some((start, end)) => assert!(
            full.starts_with(start) && full.ends_with(end) && start.len() + end.len() < full.len(),
            "{cell:?} is not {full:?} cut in the middle"
        ),
        None => assert_eq!(cell, full),
    }
}

/// Asserts that cells showing different values read differently.
fn told_apart(cells: &[&str], values: &[&str]) {
    for a in 0..cells.len() {
        for b in a + 1..cells.len() {
            if values[a] != values[b] {
                assert_ne!(cells[a], cells[b], "{} and {}", values[a], values[b]);
            }
        }
    }
}

#[test]
fn ids_cut_to_fit_keep_their_distinguishing_end() {
    let mut app = demo_app();
    let drawn = instance_table(&mut app, "cloud:azure group:frontend", 160);
    let visible: Vec<u32> = app
        .browse
        .instances
        .window(app.browse.instances.offset, drawn.rows.len())
        .to_vec();
    assert!(visible.len() > 10, "{} rows", visible.len());
    let full: Vec<String> = visible
        .iter()
        .map(|&i| short_id(&app.data.instance(i).id).into_owned())
        .collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let ids = drawn.column("ID");
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "ids read the same: {ids:#?}");
    assert!(
        ids.iter().any(|id| id.contains('…')),
        "at 160 columns these ids are cut: {ids:#?}"
    );
    for (cell, id) in ids.iter().zip(&full) {
        shows(cell, id);
    }
}

#[test]
fn an_empty_column_gives_its_room_away_while_names_are_cut() {
    let mut app = demo_app();
    // The AWS instances of screenshots/instances.png: none in a group.
    let drawn = instance_table(&mut app, "cloud:aws verdict:outdated age:>20", 120);
    let visible: Vec<u32> = app
        .browse
        .instances
        .window(app.browse.instances.offset, drawn.rows.len())
        .to_vec();
    assert!(visible.len() > 10, "{} rows", visible.len());
    assert!(
        drawn.column("GROUP").iter().all(|cell| cell.is_empty()),
        "{:#?}",
        drawn.rows
    );
    // GROUP is as wide as its header, not its minimum of 12.
    assert_eq!(
        drawn.width("GROUP"),
        Some("GROUP".len()),
        "{:?}",
        drawn.titles
    );
    // NAME is still cut at 120 columns, IMAGE coming first, but wider than its minimum.
    assert!(drawn.width("NAME") > Some(12), "{:?}", drawn.titles);
    let names = drawn.column("NAME");
    assert!(names.iter().any(|n| n.contains('…')), "{names:#?}");
    let full: Vec<&str> = visible
        .iter()
        .map(|&i| app.data.instance(i).name.as_str())
        .collect();
    for (cell, name) in names.iter().zip(&full) {
        shows(cell, name);
    }
    told_apart(&names, &full);
}

// ---- why something failed or cannot run -----------------------------------------------------

/// Selects the Queue view's row of `instance_id`.
fn select_entry(app: &mut Ui, instance_id: &str) {
    app.update(Action::Top);
    for _ in 0..app.browse.queue_rows.rows.len() {
        let selected = app.browse.queue_rows.selected_row();
        if selected.is_some_and(|e| app.queue().entries[e].instance_id == instance_id) {
            return;
        }
        app.update(Action::Down);
    }
    panic!("{instance_id} is not listed");
}

/// The detail pane (`i`) of a failed entry says why it failed, where that was seen and what
/// can be done; an entry this apply did not start says why not.
#[test]
fn a_failed_entrys_detail_pane_says_why_it_failed() {
    let mut app = demo_app();
    press(&mut app, KeyCode::Char('3'));
    for _ in 0..2 {
        app.update(Action::QueueSelected);
        app.update(Action::Down);
    }
    let (failed, not_started) = (
        app.queue().entries[0].instance_id.clone(),
        app.queue().entries[1].instance_id.clone(),
    );
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: failed.clone(),
        phase: Phase::Failed("the replacement failed its health check".into()),
    }));
    app.send(Msg::Rollout(RolloutEvent::Phase {
        instance_id: not_started.clone(),
        phase: Phase::NotStarted("1 failed (rollout.max_failures is 0)".into()),
    }));
    press(&mut app, KeyCode::Char('5'));
    select_entry(&mut app, &failed);
    let strip = render(&mut app, 160, 30);
    assert!(
        strip.contains("last attempt failed: the replacement failed its health check"),
        "{strip}"
    );
    press(&mut app, KeyCode::Char('i'));
    assert!(matches!(app.dialog(), Some(Dialog::Detail { .. })));
    let pane = render(&mut app, 120, 40);
    assert!(
        pane.contains("failed     the replacement failed its health check"),
        "{pane}"
    );
    assert!(pane.contains("· in this screen's apply"), "{pane}");
    assert!(pane.contains("d takes it off the queue"), "{pane}");
    press(&mut app, KeyCode::Esc);
    select_entry(&mut app, &not_started);
    press(&mut app, KeyCode::Char('i'));
    let pane = render(&mut app, 120, 40);
    assert!(
        pane.contains("step       not started: 1 failed (rollout.max_failures is 0)"),
        "{pane}"
    );
    assert!(!pane.contains("failed     "), "it did not fail: {pane}");
}

/// The cells of the first screen row holding `text`, and that row's text.
fn row_with(buffer: &ratatui::buffer::Buffer, text: &str) -> Option<(u16, String)> {
    (0..buffer.area.height).find_map(|y| {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        line.contains(text).then_some((y, line))
    })
}

fn draw_buffer(app: &mut Ui, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    common::ui::frame(app, &mut terminal);
    terminal.backend().buffer().clone()
}

/// How the last apply ended stays above the Queue view's list, green, yellow or red, whatever the
/// status line says next, until Esc dismisses it.
#[test]
fn the_last_applys_outcome_stays_on_the_queue_view_until_esc() {
    use ratatui::style::Color;
    let mut app = app_for_screens();
    press(&mut app, KeyCode::Char('5'));
    // A clean end is green.
    app.send(Msg::ApplyDone {
        outcome: Ok(Ended {
            summary: "72 replaced".into(),
            clean: true,
        }),
        queue: Ok(app.queue().clone()),
    });
    let buffer = draw_buffer(&mut app, 120, 40);
    let (y, line) = row_with(&buffer, "last apply:").expect("the outcome is on screen");
    let x = line.find("last apply").unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Green);
    // One with failures or a stop wants a look: yellow.
    let summary = "70 replaced, 2 failed, 1 not executable; stopped: 2 failed";
    app.send(Msg::ApplyDone {
        outcome: Ok(Ended {
            summary: summary.into(),
            clean: false,
        }),
        queue: Ok(app.queue().clone()),
    });
    press(&mut app, KeyCode::Char('a'));
    assert!(
        app.status.as_ref().unwrap().text.starts_with("marked"),
        "another message took the status line: {:?}",
        app.status
    );
    let buffer = draw_buffer(&mut app, 120, 40);
    let (y, line) = row_with(&buffer, "last apply:").expect("the outcome is on screen");
    assert!(
        line.contains(&format!("last apply: {summary} · Esc dismisses")),
        "{line}"
    );
    let x = line.find("last apply").unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Yellow);
    // Narrow, the summary gives way; how to dismiss it stays.
    let narrow = render(&mut app, 60, 20);
    assert!(narrow.contains("… · Esc dismisses"), "{narrow}");

    press(&mut app, KeyCode::Esc);
    assert_eq!(
        app.marked_count(Marked::Entries),
        app.queue().entries.len(),
        "the first Esc dismisses the outcome, nothing else"
    );
    let screen = render(&mut app, 120, 40);
    assert!(!screen.contains("last apply"), "{screen}");

    app.send(Msg::ApplyDone {
        outcome: Err("the queue changed since the plan: plan and confirm again".into()),
        queue: Ok(app.queue().clone()),
    });
    press(&mut app, KeyCode::Char('j'));
    let buffer = draw_buffer(&mut app, 120, 40);
    let (y, line) = row_with(&buffer, "last apply failed:").expect("the failure is on screen");
    assert!(
        line.contains("last apply failed: the queue changed since the plan"),
        "{line}"
    );
    let x = line.find("last apply").unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    // Elsewhere it is not drawn, and Esc there leaves it.
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('5'));
    assert!(render(&mut app, 120, 40).contains("last apply failed:"));
}

/// The apply dialog says how many entries are not executable and stay queued, apart from
/// those the check found cannot go now.
#[test]
fn the_apply_dialog_says_how_many_are_not_executable() {
    let mut app = app_for_screens();
    press(&mut app, KeyCode::Char('5'));
    let mut plan = demo_plan(&app);
    let blocked = plan.left.clone();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert!(!blocked[0].0.strategy.executable());
    let moved = plan.waves.last_mut().unwrap().pop().unwrap();
    plan.left
        .push((moved.entry, "source aws:gone is not configured".into()));
    press(&mut app, KeyCode::Char('A'));
    plan_ready(&mut app, plan.clone());
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("1  not executable (blocked), left queued: its lineage has no golden"),
        "{screen}"
    );
    assert!(
        screen.contains("1  cannot go now, left queued: source aws:gone is not configured"),
        "{screen}"
    );
    press(&mut app, KeyCode::Esc);
    // Several: the Queue view lists them.
    let mut again = blocked[0].clone();
    again.0.instance_id.push_str("-2");
    plan.left.push(again);
    press(&mut app, KeyCode::Char('A'));
    plan_ready(&mut app, plan);
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("2  not executable (blocked), left queued: /blocked in the Queue view"),
        "{screen}"
    );
}

/// `failed` and `blocked` are filter words of the Queue view: `/failed`, `a`, `d` takes the
/// failed entries off the queue together; `?` lists both.
#[test]
fn failed_and_blocked_entries_are_one_filter_word_away() {
    let mut app = app_for_screens();
    press(&mut app, KeyCode::Char('5'));
    let before = app.queue().entries.len();
    let mut failed: Vec<String> = app.queue().entries[3..5]
        .iter()
        .map(|e| e.instance_id.clone())
        .collect();
    failed.sort();
    for id in &failed {
        app.send(Msg::Rollout(RolloutEvent::Phase {
            instance_id: id.clone(),
            phase: Phase::Failed("the replacement failed its health check".into()),
        }));
    }
    type_filter(&mut app, "bl");
    app.update(Action::Complete);
    assert_eq!(
        app.browse.queue_rows.input, "blocked",
        "a bare word: no colon"
    );
    app.update(Action::Submit);
    let blocked: Vec<bool> = app
        .browse
        .queue_rows
        .rows
        .iter()
        .map(|&e| app.queue().entries[e].strategy.executable())
        .collect();
    assert_eq!(blocked, [false], "the one not executable");
    type_filter(&mut app, "!failed");
    app.update(Action::Submit);
    assert_eq!(app.browse.queue_rows.rows.len(), before - 2);
    type_filter(&mut app, "failed");
    app.update(Action::Submit);
    let shown: Vec<String> = app
        .browse
        .queue_rows
        .rows
        .iter()
        .map(|&e| app.queue().entries[e].instance_id.clone())
        .collect();
    assert_eq!(shown, failed);
    assert!(
        render(&mut app, 120, 40).contains("Queue · 72 executable, 1 not, 2 failed (2) /failed")
    );
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('d'));
    assert_eq!(app.queue().entries.len(), before - 2);
    assert!(failed.iter().all(|id| !app.is_queued(id)));
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("took 2 instances off the queue")
    );

    app.update(Action::ToggleHelp);
    let mut help = String::new();
    for _ in 0..30 {
        help.push_str(&render(&mut app, 120, 60));
        app.update(Action::Down);
    }
    assert!(
        help.contains("failed  its last attempt failed (this apply, or as the journal tells)"),
        "{help}"
    );
    assert!(
        help.contains("blocked  not executable: STEP says blocked, REASON why"),
        "{help}"
    );
}

/// The Overview's STALE column is a verdict (one per instance, the most severe wins), which
/// the Overview says, with the age filter that counts more.
#[test]
fn the_overview_says_its_stale_column_is_a_verdict_not_an_age() {
    let mut app = demo_app();
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("Fleet by verdict (one per instance, most severe wins)"),
        "{screen}"
    );
    assert!(
        screen.contains("STALE = verdict: older than 14d, not outdated/flagged/unknown;"),
        "{screen}"
    );
    assert!(
        screen.contains("age:>14 counts every image older than 14d"),
        "{screen}"
    );
    let narrow = render(&mut app, 80, 24);
    assert!(
        narrow.contains("STALE = verdict: older than 14d, not"),
        "{narrow}"
    );
    // What the column counts, and what the age filter counts.
    let stale = app.data.eval.total.get(Verdict::Stale) as usize;
    press(&mut app, KeyCode::Char('3'));
    type_filter(&mut app, "verdict:stale");
    app.update(Action::Submit);
    assert_eq!(app.browse.instances.rows.len(), stale);
    type_filter(&mut app, "age:>14");
    app.update(Action::Submit);
    assert!(app.browse.instances.rows.len() > stale);
    // The limit is the configured one.
    let mut thirty = demo_app_with(|init| init.policy.max_image_age_days = 30);
    let screen = render(&mut thirty, 120, 40);
    assert!(
        screen.contains("STALE = verdict: older than 30d") && screen.contains("age:>30 counts"),
        "{screen}"
    );
}

#[test]
fn untrusted_source_filters_rows_and_shows_in_the_detail_pane() {
    // Unset, every owner is trusted: the word is known and matches nothing.
    let mut app = demo_app();
    app.update(Action::Show(View::Instances));
    type_filter(&mut app, "untrusted-source");
    app.update(Action::Submit);
    assert!(app.browse.filter_error().is_none());
    assert!(app.browse.instances.rows.is_empty());

    // The demo's AWS account and Azure gallery trusted, its Google Cloud image project not.
    let mut app = demo_app_with(|init| {
        init.policy.trusted_owners = vec!["999900001111".into(), "acme".into()];
    });
    app.update(Action::Show(View::Instances));
    let all = app.browse.instances.rows.len();
    type_filter(&mut app, "untrusted-source");
    app.update(Action::Submit);
    let rows = app.browse.instances.rows.clone();
    assert!(!rows.is_empty() && rows.len() < all);
    for &i in &rows {
        assert_eq!(app.data.instance(i).cloud.as_str(), "gcp");
    }
    type_filter(&mut app, "!untrusted-source cloud:gcp");
    app.update(Action::Submit);
    // The GCP instances left are those whose image could not be read: owner unknown.
    for &i in &app.browse.instances.rows {
        assert!(
            !app.data
                .image_eval(app.data.inventory.image_of(i))
                .untrusted_source
        );
    }
    type_filter(&mut app, "untrusted-source");
    app.update(Action::Submit);
    app.update(Action::ShowDetail);
    let screen = render(&mut app, 160, 48);
    assert!(screen.contains("untrusted-source"), "{screen}");
    assert!(
        screen.contains("image owner acme-images is not in policy.trusted_owners"),
        "{screen}"
    );
}

// ---- one estate: images across accounts -----------------------------------------------------

fn estate_instance(source: &str, account: &str, id: String, image: &str) -> Instance {
    Instance {
        id: id.clone().into(),
        cloud: Cloud::Aws,
        source: source.into(),
        account: account.into(),
        region: "eu-west-1".into(),
        zone: "eu-west-1a".into(),
        name: id.into(),
        state: "running".into(),
        instance_type: "m6i.large".into(),
        launched: now() - chrono::Duration::days(1),
        image: image.into(),
        group: None,
        tags: Tags::new(),
        exposure: Vec::new(),
        addresses: Default::default(),
    }
}

/// An AMI baked in an image-factory account and shared into twelve member accounts (account
/// `n` runs `n + 1` instances of it); half the members read it, the others are sent it as
/// unreadable. Another AMI runs in one account only.
fn shared_image_estate() -> Inventory {
    let shared = Image {
        key: "ami-0shared".into(),
        cloud: Cloud::Aws,
        name: "web-2.0.0-20261030".into(),
        created: Some(now() - chrono::Duration::days(2)),
        owner: "999900001111".into(),
        owner_alias: None,
        family: None,
        deprecation: None,
        tags: [("lineage", "web")].into_iter().collect(),
        readable: true,
        unreadable_reason: None,
    };
    let solo = Image {
        key: "ami-0solo".into(),
        name: "db-1.0.0-20261029".into(),
        tags: [("lineage", "db")].into_iter().collect(),
        ..shared.clone()
    };
    let mut inventory = Inventory::new(rules());
    for n in 0..12u64 {
        let source = format!("aws:member-{n:02}");
        let account = format!("{}", 100_000_000_000 + n);
        let image = if n % 2 == 0 {
            shared.clone()
        } else {
            Image::unreadable("ami-0shared", Cloud::Aws, "not shared with this account")
        };
        let mut instances: Vec<Instance> = (0..=n)
            .map(|i| estate_instance(&source, &account, format!("i-{n:02}-{i:02}"), "ami-0shared"))
            .collect();
        let mut images = vec![image];
        if n == 3 {
            images.push(solo.clone());
            instances.push(estate_instance(
                &source,
                &account,
                "i-solo-1".into(),
                "ami-0solo",
            ));
            instances.push(estate_instance(
                &source,
                &account,
                "i-solo-2".into(),
                "ami-0solo",
            ));
        }
        inventory.apply(CollectEvent::Page(Box::new(Page {
            source,
            instances,
            images,
            groups: Vec::new(),
        })));
    }
    inventory
}

fn image_keys(app: &Ui) -> Vec<String> {
    app.browse
        .images
        .rows
        .iter()
        .map(|&i| app.data.inventory.image(i).image.key.clone())
        .collect()
}

#[test]
fn images_show_filter_and_sort_by_the_accounts_running_them() {
    let mut app = app_with(shared_image_estate(), None);
    app.update(Action::Show(View::Images));
    assert_eq!(app.data.inventory.images().len(), 2, "one image per AMI");
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains(" ACCOUNTS "), "{screen}");
    let row = |screen: &str, name: &str| -> Vec<String> {
        let line = screen
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}\n{screen}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    // CLOUD ID NAME LINEAGE AGE INSTANCES ACCOUNTS VERDICT: 78 instances in 12 accounts.
    let shared = row(&screen, "web-2.0.0-20261030");
    assert_eq!(
        shared[shared.len() - 3..],
        ["78", "12", "current"],
        "{screen}"
    );
    let solo = row(&screen, "db-1.0.0-20261029");
    assert_eq!(solo[solo.len() - 3..], ["2", "1", "current"], "{screen}");

    for (query, expected) in [
        ("accounts:>10", vec!["ami-0shared"]),
        ("accounts:>=12", vec!["ami-0shared"]),
        ("accounts:>12", vec![]),
        ("accounts:1", vec!["ami-0solo"]),
        ("accounts:<=1", vec!["ami-0solo"]),
        ("accounts:<2,12", vec!["ami-0shared", "ami-0solo"]),
        ("!accounts:1", vec!["ami-0shared"]),
    ] {
        type_filter(&mut app, query);
        app.update(Action::Submit);
        assert!(app.browse.filter_error().is_none(), "{query}");
        let mut keys = image_keys(&app);
        keys.sort();
        assert_eq!(keys, expected, "{query}");
    }
    type_filter(&mut app, "accounts:many");
    assert!(
        app.browse
            .filter_error()
            .is_some_and(|e| e.contains("not a number of accounts")),
        "{:?}",
        app.browse.filter_error()
    );
    app.update(Action::Cancel);
    type_filter(&mut app, "");
    app.update(Action::Submit);

    // Sorted by how many accounts run them, either way.
    app.update(Action::StartCommand);
    type_text(&mut app, "sort accounts asc");
    app.update(Action::Submit);
    assert_eq!(image_keys(&app), ["ami-0solo", "ami-0shared"]);
    app.update(Action::SortReverse);
    assert_eq!(image_keys(&app), ["ami-0shared", "ami-0solo"]);
}

#[test]
fn an_images_detail_lists_the_accounts_running_it_most_first() {
    let mut app = app_with(shared_image_estate(), None);
    app.update(Action::Show(View::Images));
    type_filter(&mut app, "accounts:>1");
    app.update(Action::Submit);
    app.update(Action::ShowDetail);
    let screen = render(&mut app, 120, 40);
    // Most instances first: account n runs n + 1; the first eight by name, then the rest.
    let listed: Vec<(&str, &str)> = screen
        .lines()
        .filter_map(|l| {
            let at = l.find("1000000000")?;
            let mut words = l[at..].split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("100000000011", "12"),
            ("100000000010", "11"),
            ("100000000009", "10"),
            ("100000000008", "9"),
            ("100000000007", "8"),
            ("100000000006", "7"),
            ("100000000005", "6"),
            ("100000000004", "5"),
        ],
        "{screen}"
    );
    assert!(
        screen.contains("accounts   100000000011  12 instances"),
        "{screen}"
    );
    // Accounts 0..=3 run 1 + 2 + 3 + 4 instances.
    assert!(screen.contains("and 4 more (10 instances)"), "{screen}");
    // The image is the factory's description, read by the members that can read it.
    assert!(screen.contains("web-2.0.0-20261030"), "{screen}");
    assert!(!screen.contains("not shared with this account"), "{screen}");

    // One account: said as one.
    app.update(Action::Back);
    type_filter(&mut app, "accounts:1");
    app.update(Action::Submit);
    app.update(Action::ShowDetail);
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("account    100000000003  2 instances"),
        "{screen}"
    );
    assert!(!screen.contains("more ("), "{screen}");
}

// ---- one estate: an Overview for 200 sources -----------------------------------------------

/// Where each of an estate's 200 sources stands, as discovery announced them and collection
/// left them: 120 AWS accounts, 50 Azure subscriptions, 30 Google Cloud projects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Standing {
    Failed,
    Incomplete,
    InProgress,
    Waiting,
    Done,
    Skipped,
}

fn estate_standing(cloud: Cloud, n: usize) -> Standing {
    use Standing::*;
    match cloud {
        Cloud::Aws => match n {
            7 | 47 | 87 => Failed,
            13 | 73 => Incomplete,
            20 | 70 => Skipped,
            100..110 => InProgress,
            110.. => Waiting,
            _ => Done,
        },
        Cloud::Azure => match n {
            5 => Failed,
            6 => Incomplete,
            30 => Skipped,
            40..45 => InProgress,
            45.. => Waiting,
            _ => Done,
        },
        Cloud::Gcp => match n {
            // The last project by name, so last of all in name order.
            29 => Failed,
            0 => Skipped,
            25 | 26 => InProgress,
            27 => Waiting,
            _ => Done,
        },
    }
}

/// The source's name and, where the name is not it, its account (subscription) id.
fn estate_source(cloud: Cloud, n: usize) -> (String, Option<String>) {
    match cloud {
        Cloud::Aws => (
            format!("aws:acct-{n:03}"),
            Some(format!("{}", 100_000_000_000 + n)),
        ),
        Cloud::Azure => (
            format!("azure:sub-{n:02}"),
            Some(format!("{n:08x}-0000-4000-8000-000000000000")),
        ),
        Cloud::Gcp => (format!("gcp:proj-{n:02}"), None),
    }
}

const ESTATE: [(Cloud, usize); 3] = [(Cloud::Aws, 120), (Cloud::Azure, 50), (Cloud::Gcp, 30)];

/// Every source announced (as an organization's discovery does), then each taken as far as
/// its standing says, the clouds' events interleaved as a real collection's are.
fn estate_events() -> Vec<CollectEvent> {
    let mut announced = Vec::new();
    let mut rest = Vec::new();
    for (cloud, count) in ESTATE {
        for n in 0..count {
            let (source, account) = estate_source(cloud, n);
            announced.push(CollectEvent::Waiting {
                source: source.clone(),
                cloud,
                account: account.clone(),
            });
            let standing = estate_standing(cloud, n);
            let mut events = Vec::new();
            if standing == Standing::Skipped {
                events.push(CollectEvent::Skipped {
                    source,
                    cloud,
                    account,
                    reason: "account suspended".into(),
                });
            } else if standing != Standing::Waiting {
                events.push(CollectEvent::Started {
                    source: source.clone(),
                    cloud,
                    expected_pages: None,
                });
                events.extend(match standing {
                    Standing::Failed => Some(CollectEvent::Failed {
                        error: format!("AccessDenied: no role in {source}"),
                        source,
                    }),
                    Standing::Incomplete => Some(CollectEvent::Incomplete {
                        source,
                        error: "eu-west-1: timed out".into(),
                    }),
                    Standing::Done => Some(CollectEvent::Finished { source }),
                    _ => None,
                });
            }
            rest.push(events);
        }
    }
    // Round robin over the sources, so no cloud finishes first.
    let mut interleaved = announced;
    let longest = rest.iter().map(Vec::len).max().unwrap_or(0);
    for step in 0..longest {
        for events in &rest {
            interleaved.extend(events.get(step).cloned());
        }
    }
    interleaved
}

/// An app collecting the estate: its 200 sources in every state.
fn estate_app() -> Ui {
    let mut app = Ui::new(
        AppInit {
            collecting: true,
            ..AppInit::browse(
                Inventory::new(rules()),
                rules(),
                PolicyConfig::default(),
                now(),
            )
        },
        None,
    );
    for event in estate_events() {
        app.send(Msg::Collected(event));
    }
    app
}

/// The Overview's source list as drawn: its lines inside the box, trimmed, header lines and all.
fn source_lines(screen: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in screen.lines() {
        // The right-hand box of the top half: after the fleet box's right border.
        let Some(at) = line.find("││") else {
            continue;
        };
        let inner = &line[at + "││".len()..];
        let inner = inner.strip_suffix('│').unwrap_or(inner);
        lines.push(inner.trim_end().to_owned());
    }
    lines
}

#[test]
fn the_overview_counts_200_sources_and_groups_them_by_cloud_failures_first() {
    let mut app = estate_app();
    assert_eq!(app.sources().len(), 200);
    let screen = render(&mut app, 160, 48);
    // The top bar's progress: ended sources of all.
    assert!(screen.contains("collecting 167/200 sources"), "{screen}");
    let lines = source_lines(&screen);
    assert_eq!(
        lines[0],
        "200 sources: 5 failed, 3 incomplete, 17 in progress, 16 waiting, 155 done, 4 skipped",
        "{screen}"
    );
    // While collecting, a bar of the sources that have ended.
    assert!(lines[1].contains("167/200 ended"), "{screen}");
    assert_eq!(
        lines[2],
        "aws · 120 sources: 3 failed, 2 incomplete, 10 in progress, 10 waiting, 93 done, 2 skipped",
        "{screen}"
    );
    // Failed first, then incomplete, then in progress; each by name, its account beside it.
    let names: Vec<&str> = lines[3..10]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "aws:acct-007",
            "aws:acct-047",
            "aws:acct-087",
            "aws:acct-013",
            "aws:acct-073",
            "aws:acct-100",
            "aws:acct-101",
        ],
        "{screen}"
    );
    let words: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        words[..4],
        ["aws:acct-007", "100000000007", "0", "failed:"],
        "{screen}"
    );
    assert!(
        lines[3].ends_with("failed: AccessDenied: no role in aws:acct-007"),
        "the state has the room the accounts of other clouds do not take: {}",
        lines[3]
    );
    assert!(
        lines[6].contains("incomplete: eu-west-1: timed out"),
        "{}",
        lines[6]
    );
    assert!(lines[8].contains("collecting, 0 pages"), "{}", lines[8]);

    // Every source, and each cloud's header, is a line of the list in that order: what the
    // selection walks through, row by row.
    let mut walked = Vec::new();
    let mut last = String::new();
    for _ in 0..200 {
        let selected = app.browse.selected_source(app.sources()).unwrap();
        last = app.sources()[selected].name.clone();
        walked.push((app.sources()[selected].cloud, last.clone()));
        app.update(Action::Down);
    }
    let clouds: Vec<Cloud> = walked.iter().map(|(c, _)| *c).collect();
    assert!(clouds.windows(2).all(|w| w[0] <= w[1]), "grouped by cloud");
    assert_eq!(clouds.iter().filter(|&&c| c == Cloud::Azure).count(), 50);
    let standing_of = |name: &str| {
        ESTATE
            .iter()
            .flat_map(|&(cloud, count)| (0..count).map(move |n| (cloud, n)))
            .find(|&(cloud, n)| estate_source(cloud, n).0 == name)
            .map(|(cloud, n)| estate_standing(cloud, n))
            .unwrap()
    };
    let order = [
        Standing::Failed,
        Standing::Incomplete,
        Standing::InProgress,
        Standing::Waiting,
        Standing::Done,
        Standing::Skipped,
    ];
    let rank = |name: &str| order.iter().position(|&s| s == standing_of(name)).unwrap();
    for pair in walked.windows(2) {
        let ((ca, a), (cb, b)) = (&pair[0], &pair[1]);
        if ca == cb {
            assert!((rank(a), a) < (rank(b), b), "{a} before {b} within {ca}");
        }
    }
    assert_eq!(last, "gcp:proj-00", "the skipped project is last of all");
}

#[test]
fn the_selection_scrolls_to_a_failure_at_the_bottom_and_enter_shows_it() {
    let mut app = estate_app();
    render(&mut app, 120, 40);
    // The Google Cloud projects come last; their failure first among them, after the 170
    // AWS accounts and Azure subscriptions.
    for _ in 0..170 {
        press(&mut app, KeyCode::Char('j'));
    }
    let selected = app.browse.selected_source(app.sources()).unwrap();
    assert_eq!(app.sources()[selected].name, "gcp:proj-29");
    let buffer = draw_buffer(&mut app, 120, 40);
    let (y, line) = row_with(&buffer, "gcp:proj-29").expect("scrolled into view");
    assert!(line.contains("failed: AccessDenied"), "{line}");
    let x = line.find("gcp:proj-29").unwrap();
    let x = line[..x].chars().count() as u16;
    assert!(
        buffer[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED),
        "the selected line is highlighted"
    );
    // Its cloud's header came into view with it, just above.
    let (header_y, header) = row_with(&buffer, "gcp · 30 sources").expect("the gcp header");
    assert_eq!(header_y + 1, y, "{header}");
    assert!(
        header.contains("gcp · 30 sources: 1 failed, 2 in progress"),
        "{header}"
    );
    // The top of the list has scrolled away.
    assert!(row_with(&buffer, "aws · 120 sources").is_none());
    assert!(
        row_with(&buffer, "200 sources: 5 failed").is_some(),
        "the summary stays"
    );

    // Enter: that source's whole story.
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains(" Source "), "{screen}");
    assert!(screen.contains("gcp:proj-29"), "{screen}");
    assert!(screen.contains("state      failed"), "{screen}");
    assert!(
        screen.contains("AccessDenied: no role in gcp:proj-29"),
        "{screen}"
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.dialog().is_none(), "{:?}", app.dialog());

    // An account discovered by its name shows its id in the pane too.
    press(&mut app, KeyCode::Char('g'));
    let selected = app.browse.selected_source(app.sources()).unwrap();
    assert_eq!(app.sources()[selected].name, "aws:acct-007");
    press(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("aws:acct-007"), "{screen}");
    assert!(screen.contains("account    100000000007"), "{screen}");
}

#[test]
fn the_selection_stays_on_its_source_as_it_moves_between_groups() {
    let mut app = estate_app();
    render(&mut app, 120, 40);
    // The first AWS account in progress: after 3 failed and 2 incomplete.
    for _ in 0..5 {
        press(&mut app, KeyCode::Char('j'));
    }
    let name = |app: &Ui| {
        let selected = app.browse.selected_source(app.sources()).unwrap();
        app.sources()[selected].name.clone()
    };
    assert_eq!(name(&app), "aws:acct-100");
    // It fails: up among the failures it goes, the selection with it.
    app.send(Msg::Collected(CollectEvent::Failed {
        source: "aws:acct-100".into(),
        error: "ThrottlingException: rate exceeded".into(),
    }));
    assert_eq!(name(&app), "aws:acct-100");
    let buffer = draw_buffer(&mut app, 120, 40);
    let (y, line) = row_with(&buffer, "aws:acct-100").unwrap();
    assert!(line.contains("failed: Throttli"), "{line}");
    let (above, _) = row_with(&buffer, "aws:acct-087").unwrap();
    assert_eq!(above + 1, y, "after the failures before it by name");
    assert!(row_with(&buffer, "6 failed, 3 incomplete, 16 in progress").is_some());
    // Down goes on from where it is now.
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(name(&app), "aws:acct-013");

    // Collection over: no progress bar; the counts stay.
    for (cloud, count) in ESTATE {
        for n in 0..count {
            let (source, _) = estate_source(cloud, n);
            if matches!(
                estate_standing(cloud, n),
                Standing::InProgress | Standing::Waiting
            ) && source != "aws:acct-100"
            {
                app.send(Msg::Collected(CollectEvent::Finished { source }));
            }
        }
    }
    app.send(Msg::CollectionDone { now: now() });
    let screen = render(&mut app, 160, 48);
    assert!(!screen.contains(" ended"), "{screen}");
    assert!(
        screen.contains("200 sources: 6 failed, 3 incomplete, 187 done, 4 skipped"),
        "{screen}"
    );
}

#[test]
fn a_click_on_the_overviews_list_selects_that_source_and_page_keys_move_by_a_screen() {
    let mut app = estate_app();
    let buffer = draw_buffer(&mut app, 120, 40);
    let column = app.layout.rows.x + 2;
    let (y, _) = row_with(&buffer, "aws:acct-073").unwrap();
    app.update(Action::Click { column, row: y });
    let name = |app: &Ui| {
        let selected = app.browse.selected_source(app.sources()).unwrap();
        app.sources()[selected].name.clone()
    };
    assert_eq!(name(&app), "aws:acct-073");
    // A cloud's header selects nothing.
    let (header, _) = row_with(&buffer, "aws · 120 sources").unwrap();
    app.update(Action::Click {
        column,
        row: header,
    });
    assert_eq!(name(&app), "aws:acct-073");
    // A page is the list's height: the selection moves by it and stays in view.
    let page = usize::from(app.layout.rows.height);
    assert!(page > 5, "{page}");
    press(&mut app, KeyCode::PageDown);
    let moved = name(&app);
    assert_ne!(moved, "aws:acct-073");
    let buffer = draw_buffer(&mut app, 120, 40);
    assert!(row_with(&buffer, &moved).is_some(), "{moved} in view");
    press(&mut app, KeyCode::PageUp);
    assert_eq!(name(&app), "aws:acct-073");
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(name(&app), "gcp:proj-00");
    let buffer = draw_buffer(&mut app, 120, 40);
    assert!(row_with(&buffer, "gcp:proj-00").is_some());
}
