//! The detail pane: everything known about the selected instance, image, queue entry, source, or
//! the Drift view's lineage, image or group, one fact a line, wrapped rather than cut, so no
//! reason pushes another out of sight.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::action::View;
use super::app::App;
use super::rollout_state::LastFailure;
use super::style::{escaped, phase_style, verdict_style};
use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, LineageIdx};
use crate::core::model::{SourceState, SourceStatus};
use crate::core::policy::TemplateStatus;
use crate::query::data::Data;
use crate::query::subject::DriftRow;
use crate::queue::rollout::Phase;

/// The pane's title and lines for the selected row of the current view, if it has one.
pub fn content(app: &App) -> Option<(String, Vec<Line<'static>>)> {
    let content = match app.browse.view {
        View::Instances => app
            .browse
            .instances
            .selected_row()
            .map(|i| (" Instance ".to_owned(), instance_lines(app, i))),
        View::Images => app
            .browse
            .images
            .selected_row()
            .map(|i| (" Image ".to_owned(), image_lines(&app.data, i))),
        View::Queue => app
            .browse
            .queue_rows
            .selected_row()
            .map(|e| (" Queued instance ".to_owned(), queue_lines(app, e))),
        View::Overview => app
            .browse
            .selected_source(app.sources())
            .map(|s| (" Source ".to_owned(), source_lines(app, &app.sources()[s]))),
        View::Drift => app.browse.drift.selected_row().map(|row| match row {
            DriftRow::Lineage(l) => (" Lineage ".to_owned(), lineage_lines(&app.data, l)),
            DriftRow::Image(i) => (" Image ".to_owned(), image_lines(&app.data, i)),
            DriftRow::Groups => (
                " Groups with version skew or template drift ".to_owned(),
                groups_lines(app),
            ),
            DriftRow::Group(g) => (" Group ".to_owned(), group_lines(app, g)),
        }),
    };
    content.map(|(title, lines)| (title, escaped(lines)))
}

pub fn draw(frame: &mut Frame, app: &App, scroll: u16) {
    let Some((title, lines)) = content(app) else {
        return;
    };
    let screen = frame.area();
    let width = screen.width.saturating_sub(4).min(120);
    let height = screen.height.saturating_sub(2);
    let area = Rect {
        x: screen.x + (screen.width - width) / 2,
        y: screen.y + (screen.height - height) / 2,
        width,
        height,
    };
    let block = Block::bordered()
        .title(Line::from(title).bold())
        .title_bottom(Line::from(" j/k scroll · Esc closes ").dim());
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block)
            .scroll((scroll, 0)),
        area,
    );
}

fn label(name: &str) -> Span<'static> {
    Span::styled(format!("{name:<10} "), Style::new().fg(Color::Cyan).bold())
}

fn fact(name: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![label(name), Span::raw(value.into())])
}

fn date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn verdict_lines(data: &Data, image: ImageIdx) -> Vec<Line<'static>> {
    let eval = data.image_eval(image);
    let mut lines = vec![Line::from(vec![
        label("verdict"),
        Span::styled(eval.verdict.as_str(), verdict_style(eval.verdict)),
    ])];
    if eval.reasons.is_empty() {
        lines.push(fact("", "on the golden image, within the age limit"));
    }
    // Every reason on its own line: the most severe first, none hiding the next.
    for reason in &eval.reasons {
        lines.push(fact("", format!("· {reason}")));
    }
    lines
}

fn instance_lines(app: &App, i: InstanceIdx) -> Vec<Line<'static>> {
    let data = &app.data;
    let inv = &data.inventory;
    let instance = data.instance(i);
    let image = inv.image_of(i);
    let entry = inv.image(image);
    let eval = data.image_eval(image);
    let mut lines = vec![
        Line::from(instance.id.to_string()).bold(),
        fact(
            "name",
            if instance.name.is_empty() {
                "(none)"
            } else {
                &instance.name
            },
        ),
    ];
    lines.extend(verdict_lines(data, image));
    for exposure in &instance.exposure {
        lines.push(Line::from(vec![
            label("exposed"),
            Span::styled(exposure.clone(), Style::new().fg(Color::Red)),
        ]));
    }
    let uptime = data.uptime_days(i);
    if data.eval.long_lived[i as usize] {
        lines.push(Line::from(vec![
            label("long-lived"),
            Span::styled(
                format!(
                    "up {uptime} days, longer than the {}-day limit: recycle it",
                    app.policy().max_instance_age_days
                ),
                Style::new().fg(Color::Yellow),
            ),
        ]));
    }
    if eval.untrusted_source {
        lines.push(Line::from(vec![
            label("untrusted-source"),
            Span::styled(
                format!(
                    "image owner {} is not in policy.trusted_owners",
                    crate::core::policy::owner_label(&entry.image)
                ),
                Style::new().fg(Color::Red),
            ),
        ]));
    }
    if app.is_queued(&instance.id) {
        lines.push(fact("queued", "yes: see the Queue view"));
    }
    lines.push(Line::from(""));
    lines.push(fact(
        "image",
        if entry.image.name.is_empty() {
            "(name unknown)".to_owned()
        } else {
            entry.image.name.clone()
        },
    ));
    lines.push(fact("key", entry.image.key.clone()));
    lines.push(fact(
        "created",
        match (entry.image.created, eval.age_days) {
            (Some(created), Some(age)) => format!("{} ({age} days ago)", date(created)),
            _ => "unknown".to_owned(),
        },
    ));
    lines.push(fact(
        "lineage",
        data.lineage_of_image(image)
            .unwrap_or("none (no readable metadata)")
            .to_owned(),
    ));
    lines.push(fact(
        "golden",
        match eval.golden {
            Some(g) if g == image => "this image".to_owned(),
            Some(g) => format!(
                "{} ({}){}",
                data.image_label(g),
                inv.image(g).image.key,
                if eval.behind_by > 0 {
                    format!(", {} newer", eval.behind_by)
                } else {
                    String::new()
                }
            ),
            None => "none".to_owned(),
        },
    ));
    lines.push(Line::from(""));
    lines.push(fact(
        "launched",
        format!("{} (up {uptime} days)", date(instance.launched)),
    ));
    lines.push(fact(
        "where",
        format!(
            "{} · account {} · {} · zone {}",
            instance.cloud,
            instance.account,
            instance.region,
            if instance.zone.is_empty() {
                "?"
            } else {
                &instance.zone
            }
        ),
    ));
    lines.push(fact(
        "runs",
        format!(
            "{} · {} · source {}",
            instance.state, instance.instance_type, instance.source
        ),
    ));
    match inv.group_of(i) {
        Some(g) => {
            let group = inv.group(g);
            let geval = data.eval.group_eval(g);
            lines.push(fact(
                "group",
                format!("{} ({})", data.group_label(g), group.key),
            ));
            let template = group
                .group
                .as_ref()
                .and_then(|d| d.template.clone())
                .unwrap_or_else(|| "unknown template".to_owned());
            let state = match &geval.template {
                TemplateStatus::Unresolved => "its image could not be resolved".to_owned(),
                TemplateStatus::Golden => "points at the golden image".to_owned(),
                TemplateStatus::Drift { points_at, golden } => format!(
                    "launches {points_at}, golden is {}: replacing members brings the old image back",
                    golden.as_deref().unwrap_or("unknown")
                ),
            };
            lines.push(fact("template", format!("{template}: {state}")));
            if geval.skew() {
                lines.push(fact(
                    "skew",
                    format!("members run {} images", geval.images.len()),
                ));
            }
        }
        None => lines.push(fact("group", "none: a standalone instance")),
    }
    let a = &instance.addresses;
    lines.push(Line::from(""));
    for (name, values) in [
        ("private ip", &a.private_ips),
        ("public ip", &a.public_ips),
        ("dns", &a.dns_names),
    ] {
        if !values.is_empty() {
            lines.push(fact(name, values.join(", ")));
        }
    }
    if a.is_empty() {
        lines.push(fact("addresses", "none reported"));
    }
    tag_lines(&mut lines, instance.tags.iter());
    lines
}

fn tag_lines<'a>(lines: &mut Vec<Line<'static>>, tags: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (key, value) in tags {
        lines.push(fact(
            if first { "tags" } else { "" },
            format!("{key}={value}"),
        ));
        first = false;
    }
    if first {
        lines.push(fact("tags", "none"));
    }
}

fn image_lines(data: &Data, i: ImageIdx) -> Vec<Line<'static>> {
    let inv = &data.inventory;
    let entry = inv.image(i);
    let eval = data.image_eval(i);
    let image = &entry.image;
    let mut lines = vec![Line::from(image.key.clone()).bold()];
    lines.push(fact(
        "name",
        if image.name.is_empty() {
            "(unknown)".to_owned()
        } else {
            image.name.clone()
        },
    ));
    lines.extend(verdict_lines(data, i));
    if let Some(reason) = &image.unreadable_reason {
        lines.push(fact("unreadable", reason.clone()));
    }
    lines.push(Line::from(""));
    lines.push(fact(
        "created",
        match (image.created, eval.age_days) {
            (Some(created), Some(age)) => format!("{} ({age} days ago)", date(created)),
            _ => "unknown".to_owned(),
        },
    ));
    lines.push(fact(
        "owner",
        format!(
            "{} · {}",
            image.cloud,
            if image.owner.is_empty() {
                "?"
            } else {
                &image.owner
            }
        ),
    ));
    lines.push(fact(
        "lineage",
        data.lineage_of_image(i).unwrap_or("none").to_owned(),
    ));
    lines.push(fact(
        "golden",
        match eval.golden {
            Some(g) if g == i => "this image".to_owned(),
            Some(g) => format!(
                "{} ({}), {} newer",
                data.image_label(g),
                inv.image(g).image.key,
                eval.behind_by
            ),
            None => "none".to_owned(),
        },
    ));
    if let Some(deprecation) = &image.deprecation {
        let when = deprecation.at.map(date);
        let state = deprecation.state.clone();
        lines.push(fact(
            "deprecated",
            [state, when]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
        ));
    }
    lines.push(fact("instances", entry.instances.len().to_string()));
    account_lines(&mut lines, data, i);
    tag_lines(&mut lines, image.tags.iter());
    lines
}

/// Accounts shown by name in an image's detail; the rest are counted.
const ACCOUNTS_SHOWN: usize = 8;

/// The accounts (subscriptions, projects) that run the image, most instances first: an image
/// shared from a factory account into many others is one image running in all of them.
fn account_lines(lines: &mut Vec<Line<'static>>, data: &Data, image: ImageIdx) {
    let accounts = data.image_accounts();
    let all = accounts.of_image(image);
    let count = all.len();
    if count == 0 {
        lines.push(fact("accounts", "none: no instance runs it"));
        return;
    }
    let width = accounts
        .of_image(image)
        .take(ACCOUNTS_SHOWN)
        .map(|(account, _)| account.chars().count())
        .max()
        .unwrap_or(0);
    let mut rest = 0;
    for (n, (account, instances)) in all.enumerate() {
        if n >= ACCOUNTS_SHOWN {
            rest += instances;
            continue;
        }
        let label = match n {
            0 if count == 1 => "account",
            0 => "accounts",
            _ => "",
        };
        lines.push(fact(
            label,
            format!(
                "{account:<width$}  {}",
                plural(instances as usize, "instance")
            ),
        ));
    }
    if count > ACCOUNTS_SHOWN {
        lines.push(fact(
            "",
            format!(
                "and {} more ({})",
                count - ACCOUNTS_SHOWN,
                plural(rest as usize, "instance")
            ),
        ));
    }
}

fn source_lines(app: &App, source: &SourceStatus) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(source.name.clone()).bold(),
        fact("cloud", source.cloud.as_str()),
    ];
    if let Some(account) = &source.account {
        lines.push(fact("account", account.clone()));
    }
    let (state, style) = match &source.state {
        SourceState::Waiting => ("waiting".to_owned(), Style::new().fg(Color::DarkGray)),
        SourceState::Collecting => ("collecting".to_owned(), Style::new().fg(Color::Yellow)),
        SourceState::Skipped { reason } => (format!("skipped: {reason}"), Style::new().dim()),
        SourceState::Done => ("done".to_owned(), Style::new().fg(Color::Green)),
        SourceState::Incomplete { .. } => ("incomplete".to_owned(), Style::new().fg(Color::Red)),
        SourceState::Failed { .. } => ("failed".to_owned(), Style::new().fg(Color::Red)),
    };
    lines.push(Line::from(vec![label("state"), Span::styled(state, style)]));
    lines.push(fact(
        "when",
        app.fleet.source_ended(&source.name).map_or_else(
            || "not seen by this UI (still collecting, or from a snapshot)".to_owned(),
            date,
        ),
    ));
    if let Some((_, error)) = source.state.problem() {
        // The whole error, wrapped: the list cuts it to a line.
        lines.push(Line::from(vec![
            label("error"),
            Span::styled(error.to_owned(), Style::new().fg(Color::Red)),
        ]));
    }
    lines.push(fact(
        "collected",
        format!(
            "{} instances in {} pages{}",
            source.instances,
            source.pages,
            source
                .expected_pages
                .map_or(String::new(), |n| format!(" of {n}"))
        ),
    ));
    for (n, warning) in source.warnings.iter().enumerate() {
        lines.push(Line::from(vec![
            label(if n == 0 { "warnings" } else { "" }),
            Span::styled(warning.clone(), Style::new().fg(Color::Yellow)),
        ]));
    }
    lines
}

fn queue_lines(app: &App, e: usize) -> Vec<Line<'static>> {
    let entry = &app.queue().entries[e];
    let data = &app.data;
    let image_name = |key: &str| {
        data.inventory
            .image_by_key(key)
            .map(|i| data.image_label(i).to_owned())
            .filter(|name| name != key)
            .map_or(key.to_owned(), |name| format!("{name} ({key})"))
    };
    let executable = entry.strategy.executable();
    let mut lines = vec![Line::from(entry.instance_id.clone()).bold()];
    // Why its last attempt failed comes first: it is why the entry is still here.
    if let Some(failure) = app.rollout.last_failure(&entry.instance_id) {
        lines.push(Line::from(vec![
            label("failed"),
            Span::styled(failure.error().to_owned(), Style::new().fg(Color::Red)),
        ]));
        lines.push(fact(
            "",
            match failure {
                LastFailure::ThisApply(_) => "· in this screen's apply".to_owned(),
                LastFailure::Journaled(journaled) => format!(
                    "· journaled {} (an earlier apply, or another fleetscope's)",
                    date(journaled.at)
                ),
            },
        ));
        lines.push(fact(
            "",
            "· the next apply tries it again; d takes it off the queue",
        ));
    }
    match app.rollout.phase(&entry.instance_id) {
        Some(Phase::Failed(_)) | None => {}
        Some(phase) => lines.push(Line::from(vec![
            label("step"),
            Span::styled(phase.to_string(), phase_style(phase)),
        ])),
    }
    lines.extend([
        fact("name", entry.name.clone()),
        Line::from(vec![
            label("verdict"),
            Span::styled(entry.verdict.as_str(), verdict_style(entry.verdict)),
        ]),
        fact("", format!("· {}", entry.reason)),
        Line::from(vec![
            label("strategy"),
            Span::styled(
                entry.strategy.describe(),
                if executable {
                    Style::new().fg(Color::Green)
                } else {
                    Style::new().fg(Color::Red)
                },
            ),
        ]),
        fact("image", image_name(&entry.image)),
        fact(
            "target",
            entry
                .target_image
                .as_deref()
                .map_or("no golden image".to_owned(), image_name),
        ),
        fact(
            "where",
            format!(
                "{} · account {} · {} · source {}",
                entry.cloud, entry.account, entry.region, entry.source
            ),
        ),
        fact("queued", date(entry.queued_at)),
    ]);
    lines
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        format!("{count} {word}")
    } else {
        format!("{count} {word}s")
    }
}

fn lineage_lines(data: &Data, l: LineageIdx) -> Vec<Line<'static>> {
    let inv = &data.inventory;
    let lineage = inv.lineage(l);
    let eval = data.eval.lineage_eval(l);
    let mut lines = vec![Line::from(lineage.name.clone()).bold()];
    lines.push(fact(
        "golden",
        match eval.golden {
            Some(g) => format!(
                "{}{}",
                data.image_named(&inv.image(g).image.key),
                if eval.pinned { " (pinned)" } else { "" }
            ),
            None => "none".to_owned(),
        },
    ));
    lines.push(fact(
        "instances",
        format!(
            "{} · {} not on the golden image, up to {} behind",
            eval.instances,
            eval.lagging_instances,
            plural(eval.max_behind_by as usize, "image")
        ),
    ));
    if let Some(since) = eval.lagging_since {
        lines.push(fact(
            "lagging",
            format!(
                "since {} ({} days)",
                date(since),
                crate::core::policy::days_between(since, data.now())
            ),
        ));
    }
    if let Some(warning) = &eval.warning {
        lines.push(Line::from(vec![
            label("warning"),
            Span::styled(warning.clone(), Style::new().fg(Color::Yellow)),
        ]));
    }
    lines.push(Line::from(""));
    // Newest first, as the Drift view lists them.
    for (n, &image) in lineage.images.iter().rev().enumerate() {
        let entry = inv.image(image);
        let ieval = data.image_eval(image);
        let mut spans = vec![
            label(if n == 0 { "images" } else { "" }),
            Span::raw(format!(
                "{} · {} · ",
                data.image_named(&entry.image.key),
                plural(entry.instances.len(), "instance")
            )),
        ];
        if eval.golden == Some(image) {
            spans.push(Span::styled("golden", Style::new().fg(Color::Green)));
        } else {
            spans.push(Span::styled(
                ieval.verdict.as_str(),
                verdict_style(ieval.verdict),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines
}

fn group_lines(app: &App, g: GroupIdx) -> Vec<Line<'static>> {
    let data = &app.data;
    let inv = &data.inventory;
    let entry = inv.group(g);
    let eval = data.eval.group_eval(g);
    let mut lines = vec![Line::from(entry.key.clone()).bold()];
    match &entry.group {
        Some(group) => {
            lines.push(fact(
                "group",
                format!("{} {}", group.kind.as_str(), group.name),
            ));
            lines.push(fact(
                "where",
                format!(
                    "{} · account {} · {}",
                    group.cloud, group.account, group.region
                ),
            ));
        }
        None => lines.push(fact("group", "not described by its source yet")),
    }
    lines.push(fact(
        "members",
        format!(
            "{} collected (the desired size is asked of the cloud when an apply plans)",
            plural(entry.members.len(), "member")
        ),
    ));
    lines.push(Line::from(""));
    let template = entry
        .group
        .as_ref()
        .and_then(|d| d.template.clone())
        .unwrap_or_else(|| "unknown".to_owned());
    lines.push(fact("template", template));
    let template_image = entry
        .group
        .as_ref()
        .and_then(|d| d.template_image.as_deref());
    let (launches, style) = match (&eval.template, template_image) {
        (TemplateStatus::Unresolved, _) | (TemplateStatus::Golden, None) => (
            "unknown: its image could not be resolved".to_owned(),
            Style::new().fg(Color::Yellow),
        ),
        (TemplateStatus::Golden, Some(key)) => (
            format!("{}: the golden image", data.image_named(key)),
            Style::new().fg(Color::Green),
        ),
        (TemplateStatus::Drift { points_at, .. }, _) => (
            format!(
                "{}: template drift, not the golden image",
                data.image_named(points_at)
            ),
            Style::new().fg(Color::Red),
        ),
    };
    lines.push(Line::from(vec![
        label("launches"),
        Span::styled(launches, style),
    ]));
    if let TemplateStatus::Drift { golden, .. } = &eval.template {
        lines.push(fact(
            "golden",
            golden
                .as_deref()
                .map_or("none known".to_owned(), |g| data.image_named(g)),
        ));
    }
    // Which images the members run, how many on each: more than one is version skew.
    if eval.skew() {
        lines.push(Line::from(vec![
            label("skew"),
            Span::styled(
                format!("its members run {} images", eval.images.len()),
                Style::new().fg(Color::Red),
            ),
        ]));
    }
    for (n, &image) in eval.images.iter().enumerate() {
        let on = entry
            .members
            .iter()
            .filter(|&&m| inv.image_of(m) == image)
            .count();
        let ieval = data.image_eval(image);
        let mut spans = vec![
            label(if n == 0 { "runs" } else { "" }),
            Span::raw(format!(
                "{} · {} · ",
                data.image_named(&inv.image(image).image.key),
                plural(on, "member")
            )),
        ];
        if ieval.golden == Some(image) {
            spans.push(Span::styled("golden", Style::new().fg(Color::Green)));
        } else {
            spans.push(Span::styled(
                ieval.verdict.as_str(),
                verdict_style(ieval.verdict),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    let apply = match &eval.template {
        TemplateStatus::Drift { points_at, golden } => {
            let golden = golden
                .as_deref()
                .map_or("the golden image", |g| data.image_label_of(g));
            if app.rollout.template_updates {
                format!(
                    "first points its template at {golden} (a template step), \
                     then replaces its queued members"
                )
            } else {
                format!(
                    "template updates are off: its queued members stay queued, since replacing \
                     them would launch {} again; point its template at {golden} first",
                    data.image_label_of(points_at)
                )
            }
        }
        TemplateStatus::Golden => {
            "replaces its queued members; no template step: the template launches the golden image"
                .to_owned()
        }
        TemplateStatus::Unresolved => {
            "replaces its queued members; no template step: what the template launches is unknown"
                .to_owned()
        }
    };
    lines.push(fact("an apply", apply));
    lines.push(fact(
        "",
        "R queues its members not on the golden image; Enter lists them",
    ));
    lines
}

/// The groups' section as the filter left it: those in template drift, then version skew.
fn groups_lines(app: &App) -> Vec<Line<'static>> {
    let data = &app.data;
    let inv = &data.inventory;
    let section = &app.browse.drift_groups;
    let mut lines = vec![
        Line::from(section.counts()).bold(),
        fact(
            "",
            "i on a group tells all about it; Enter lists its members",
        ),
        Line::from(""),
    ];
    for &g in &section.groups {
        let eval = data.eval.group_eval(g);
        let mut status = Vec::new();
        if let TemplateStatus::Drift { points_at, golden } = &eval.template {
            status.push(format!(
                "launches {}, golden is {}",
                data.image_label_of(points_at),
                golden
                    .as_deref()
                    .map_or("unknown", |k| data.image_label_of(k))
            ));
        }
        if eval.skew() {
            status.push(format!("members run {} images", eval.images.len()));
        }
        let entry = inv.group(g);
        let kind = entry.group.as_ref().map_or("group", |d| d.kind.as_str());
        lines.push(Line::from(vec![
            label(if eval.drift() { "drift" } else { "skew" }),
            Span::raw(format!(
                "{kind} {} ({}): {}",
                data.group_label(g),
                plural(entry.members.len(), "member"),
                status.join("; ")
            )),
        ]));
    }
    lines
}
