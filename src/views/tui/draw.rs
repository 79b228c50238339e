//! Drawing: reads the state, builds widgets for what fits on screen, and records where things
//! went for mouse clicks. Only the visible window of a list is turned into `Row`s.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::buffer::CellWidth;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, LineGauge, Paragraph, Row, Table, TableState, Wrap,
};

use super::action::View;
use super::app::{App, DriftRow};
use super::browse::Browse;
use super::dialog::Dialog;
use super::keymap;
use super::layout::{
    BRAND, DRIFT_COLUMNS, GUTTER, IMAGE_COLUMNS, INSTANCE_COLUMNS, Layout, QUEUE_COLUMNS, tab_label,
};
use super::marks::Marked;
use super::rollout_state::Ended;
use super::sources::{self, SourceCounts, SourceRow, Standing};
use super::style::{escaped, phase_style, verdict_style};
use super::table::{Column, Cut, ListState};
use crate::core::model::{Cloud, SourceState, SourceStatus};
use crate::core::policy::{TemplateStatus, Verdict};
use crate::query::data::{AGE_BUCKETS, Data, short_id};
use crate::queue::Strategy;
use crate::queue::rollout::{Plan, count, human_duration};
use crate::text::escape;

fn days(days: Option<i64>) -> String {
    days.map_or_else(|| "?".to_owned(), |d| format!("{d}d"))
}

/// Draws the app as it is, and returns where things went (and the scroll offset chosen), for
/// the app to take as a message: drawing changes nothing.
pub fn draw(frame: &mut Frame, app: &App) -> Layout {
    let [tabs, body, detail, footer] = Split::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(if app.browse.view == View::Overview {
            0
        } else {
            2
        }),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_tabs(frame, app, tabs);
    let (rows, offset) = match app.browse.view {
        View::Overview => draw_overview(frame, app, body),
        View::Images => draw_images(frame, app, body),
        View::Instances => draw_instances(frame, app, body),
        View::Drift => draw_drift(frame, app, body),
        View::Queue => draw_queue(frame, app, body),
    };
    if app.browse.view != View::Overview {
        draw_detail(frame, app, detail);
    }
    draw_footer(frame, app, footer);
    match app.dialog() {
        Some(Dialog::Help { scroll }) => draw_help(frame, app.browse.view, *scroll, frame.area()),
        Some(Dialog::Detail { scroll }) => super::detail::draw(frame, app, *scroll),
        Some(Dialog::Confirm(confirm)) => draw_confirm(
            frame,
            &confirm.plan,
            &confirm.phrase,
            &confirm.typed,
            confirm.changed.as_deref(),
        ),
        _ => {}
    }
    Layout { tabs, rows, offset }
}

/// The apply confirmation: the rollout plan (waves, strategies, time bound), and the phrase
/// to type.
fn draw_confirm(frame: &mut Frame, plan: &Plan, phrase: &str, typed: &str, changed: Option<&str>) {
    let mut strategies: Vec<(&str, usize)> = Vec::new();
    for planned in plan.waves.iter().flatten() {
        let label = planned.entry.strategy.label();
        match strategies.iter_mut().find(|(s, _)| *s == label) {
            Some((_, count)) => *count += 1,
            None => strategies.push((label, 1)),
        }
    }
    let screen = frame.area();
    let mut text = vec![
        Line::from(format!(
            "Rollout: {} in {}, at most {}.",
            count(plan.entries(), "replacement"),
            count(plan.waves.len(), "wave"),
            human_duration(plan.bound()),
        ))
        .bold(),
        Line::from("Each old instance is terminated once its replacement is healthy.").bold(),
        Line::from(""),
    ];
    if !plan.templates.is_empty() {
        // What every future instance of these groups launches changes: said before the rest.
        text.push(
            Line::from(format!(
                "First {}, each group's first member its canary; the old template stays:",
                count(plan.templates.len(), "template step")
            ))
            .yellow(),
        );
        let width = usize::from(frame.area().width.saturating_sub(6).min(76));
        let shown = plan.templates.len().min(3);
        for step in &plan.templates[..shown] {
            let line = format!("  {}", escape(&step.describe));
            text.push(Line::from(line.chars().take(width).collect::<String>()).yellow());
        }
        if plan.templates.len() > shown {
            text.push(Line::from(format!("  and {} more", plan.templates.len() - shown)).yellow());
        }
    }
    text.extend(
        strategies
            .iter()
            .map(|(label, count)| Line::from(format!("  {count:>5}  {label}"))),
    );
    // Left queued: those whose strategy is not executable, said as such, apart from those the
    // check found cannot go now (source not configured, template drift with updates off).
    let (not_executable, cannot_go): (Vec<_>, Vec<_>) = plan
        .left
        .iter()
        .partition(|(entry, _)| !entry.strategy.executable());
    // The phrase and its input line always show: groups get what room is left.
    let fixed = text.len()
        + 4
        + usize::from(!not_executable.is_empty())
        + usize::from(!cannot_go.is_empty())
        + usize::from(!plan.unchecked.is_empty())
        + usize::from(!plan.finished.is_empty())
        + usize::from(changed.is_some());
    let room = usize::from(screen.height.saturating_sub(2)).saturating_sub(fixed);
    let groups = plan.group_slots.len();
    let shown = if groups > room {
        room.saturating_sub(1)
    } else {
        groups
    };
    for (group, (slots, desired)) in plan.group_slots.iter().take(shown) {
        text.push(Line::from(format!("         {group}: {slots} of {desired} at once")).dim());
    }
    if groups > shown && room > 0 {
        text.push(Line::from(format!("         and {} more groups", groups - shown)).dim());
    }
    if let Some(first) = plan.waves.first() {
        text.push(Line::from(format!("  wave 1: {}", count(first.len(), "instance"))).dim());
    }
    if let Some((_, error)) = plan.unchecked.first() {
        let line = format!(
            "  {:>5}  could not be checked: {}",
            plan.unchecked.len(),
            escape(error)
        );
        let width = usize::from(screen.width.saturating_sub(6).min(76));
        text.push(Line::from(line.chars().take(width).collect::<String>()).red());
    }
    // One line each, so the input line below never scrolls away; the Queue view has the rest
    // (`/blocked` lists them).
    let width = usize::from(screen.width.saturating_sub(6).min(76));
    if let Some((entry, _)) = not_executable.first() {
        let why = match (&entry.strategy, not_executable.len()) {
            (Strategy::NotExecutable { why }, 1) => escape(why).into_owned(),
            _ => "/blocked in the Queue view".to_owned(),
        };
        let line = format!(
            "  {:>5}  not executable (blocked), left queued: {why}",
            not_executable.len()
        );
        text.push(Line::from(line.chars().take(width).collect::<String>()).yellow());
    }
    if let Some((_, why)) = cannot_go.first() {
        let line = format!(
            "  {:>5}  cannot go now, left queued: {}",
            cannot_go.len(),
            escape(why)
        );
        text.push(Line::from(line.chars().take(width).collect::<String>()).yellow());
    }
    if !plan.finished.is_empty() {
        text.push(
            Line::from(format!(
                "  {:>5}  already done by an earlier apply: they leave the queue",
                plan.finished.len()
            ))
            .dim(),
        );
    }
    if let Some(changed) = changed {
        text.push(Line::from(format!("  {changed}")).yellow());
    }
    text.push(Line::from(""));
    text.push(Line::from(vec![
        Span::raw("Type "),
        Span::styled(phrase.to_owned(), Style::new().fg(Color::Yellow).bold()),
        Span::raw(" and Enter to go on; Esc changes nothing."),
    ]));
    text.push(Line::from(vec![
        Span::styled("> ", Style::new().fg(Color::Cyan).bold()),
        Span::raw(typed.to_owned()),
        Span::styled("█", Style::new().fg(Color::Cyan)),
    ]));
    let width = screen.width.saturating_sub(4).min(78);
    let height = (text.len() as u16 + 2).min(screen.height);
    let area = Rect {
        x: screen.x + (screen.width - width) / 2,
        y: screen.y + (screen.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Apply the queue ").red()),
        area,
    );
}

/// DEMO, SNAPSHOT with its time and age, READ-ONLY, and a fixed NOW, each on its own colour.
fn badges(app: &App, long: bool) -> Vec<Span<'static>> {
    let badge = |text: String, color: Color| {
        [
            Span::styled(
                format!(" {text} "),
                Style::new().fg(Color::Black).bg(color).bold(),
            ),
            Span::raw(" "),
        ]
    };
    let mut spans = Vec::new();
    if app.queue_state().unsaved() {
        spans.extend(badge(
            if long { "QUEUE UNSAVED" } else { "UNSAVED" }.to_owned(),
            Color::Red,
        ));
    }
    if app.queue_state().disabled().is_some() {
        spans.extend(badge(
            if long { "QUEUE DISABLED" } else { "NO QUEUE" }.to_owned(),
            Color::Red,
        ));
    }
    let b = &app.badges;
    if b.demo {
        spans.extend(badge("DEMO".to_owned(), Color::Magenta));
    }
    if let Some(taken) = b.snapshot {
        let age = snapshot_age(taken, chrono::Utc::now());
        spans.extend(badge(
            if long {
                format!("SNAPSHOT {} · {age} old", taken.format("%Y-%m-%d %H:%M"))
            } else {
                format!("SNAP {age}")
            },
            Color::Yellow,
        ));
    }
    if app.rollout.read_only() {
        spans.extend(badge(
            if long { "READ-ONLY" } else { "RO" }.to_owned(),
            Color::Red,
        ));
    }
    // The clock beside it shows the time itself.
    if b.fixed_now.is_some() {
        spans.extend(badge(
            if long { "FIXED TIME" } else { "NOW" }.to_owned(),
            Color::Blue,
        ));
    }
    spans
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(BRAND, Style::new().bold().reversed())];
    for view in View::ALL {
        let label = tab_label(view);
        spans.push(if view == app.browse.view {
            Span::styled(label, Style::new().bold().fg(Color::Black).bg(Color::Cyan))
        } else {
            Span::raw(label)
        });
    }
    let tabs = Line::from(spans);
    let tabs_width = tabs.width() as u16;
    frame.render_widget(tabs, area);

    let sources = app.sources();
    let failed = sources
        .iter()
        .filter(|s| matches!(s.state, SourceState::Failed { .. }))
        .count();
    let incomplete = sources
        .iter()
        .filter(|s| matches!(s.state, SourceState::Incomplete { .. }))
        .count();
    // Badges first: what kind of fleet this is matters more than progress or the clock.
    let room = area.width.saturating_sub(tabs_width + 1);
    let long = badges(app, true);
    let mut right = if Line::from(long.clone()).width() as u16 <= room {
        long
    } else {
        badges(app, false)
    };
    if app.fleet.collecting() {
        let done = sources.iter().filter(|s| s.state.ended()).count();
        let verb = if app.fleet.refreshing() {
            "refreshing"
        } else {
            "collecting"
        };
        right.push(Span::styled(
            format!("{verb} {done}/{} sources ", sources.len()),
            Style::new().fg(Color::Yellow),
        ));
    }
    if failed > 0 {
        right.push(Span::styled(
            format!("{failed} failed "),
            Style::new().fg(Color::Red).bold(),
        ));
    }
    if incomplete > 0 {
        right.push(Span::styled(
            format!("{incomplete} incomplete "),
            Style::new().fg(Color::Red).bold(),
        ));
    }
    right.push(Span::styled(
        format!("{} ", app.data.now().format("%Y-%m-%d %H:%M UTC")),
        Style::new().dim(),
    ));
    // Progress and failures matter more than the clock: drop from the right end until it fits.
    while right.len() > 1 && Line::from(right.clone()).width() as u16 > room {
        right.pop();
    }
    let status = Line::from(right);
    if status.width() as u16 <= room {
        frame.render_widget(status.right_aligned(), area);
    }
}

// ---- lists ----------------------------------------------------------------------------------

/// How wide a column grows to its content before less important columns get theirs.
const SHARE: u16 = 24;

/// A cell's text and style, and how wide the text is, so columns can be sized by what they hold
/// before the text is cut to the width its column gets.
struct Text {
    content: Cow<'static, str>,
    style: Style,
    width: u16,
}

fn text(content: impl Into<Cow<'static, str>>) -> Text {
    let content = crate::text::escape_cow(content.into());
    Text {
        width: u16::try_from(display_width(&content)).unwrap_or(u16::MAX),
        content,
        style: Style::new(),
    }
}

impl Text {
    fn style(self, style: Style) -> Text {
        Text { style, ..self }
    }

    /// The cell in `width` columns, its text cut as the column says when it is wider.
    fn into_cell(self, width: u16, how: Cut) -> Cell<'static> {
        let content = if self.width <= width {
            self.content
        } else {
            match cut(&self.content, width, how) {
                Cow::Borrowed(_) => self.content,
                Cow::Owned(cut) => Cow::Owned(cut),
            }
        };
        Cell::from(content).style(self.style)
    }
}

/// How many terminal columns `text` takes, counted as the buffer counts them when it draws a
/// cell: grapheme by grapheme, with ratatui's own width (unicode-width underneath).
fn display_width(text: &str) -> usize {
    // Printable ASCII, nearly every cell, is one column a byte.
    if text.bytes().all(|b| (b' '..b'\x7f').contains(&b)) {
        return text.len();
    }
    Span::raw(text)
        .styled_graphemes(Style::new())
        .map(|g| usize::from(g.symbol.cell_width()))
        .sum()
}

/// `text` in at most `width` terminal columns. Text that fits comes back as it is; longer text
/// loses whole graphemes where `how` says, and an ellipsis `…` (one column) stands for them. In
/// the middle, the end keeps the odd column: it is what tells ids apart. A wide character that
/// would cross the limit goes too, so the result can be a column narrower than `width`.
fn cut(text: &str, width: u16, how: Cut) -> Cow<'_, str> {
    if display_width(text) <= usize::from(width) {
        return Cow::Borrowed(text);
    }
    if width == 0 {
        return Cow::Borrowed("");
    }
    // Printable ASCII, nearly every cell, is one column a byte: cut by bytes.
    if text.bytes().all(|b| (b' '..b'\x7f').contains(&b)) {
        let room = usize::from(width - 1);
        let head = match how {
            Cut::End => room,
            Cut::Middle => room / 2,
        };
        let tail = room - head;
        let mut out = String::with_capacity(usize::from(width) + 3);
        out.push_str(&text[..head]);
        out.push('…');
        out.push_str(&text[text.len() - tail..]);
        return Cow::Owned(out);
    }
    let span = Span::raw(text);
    let graphemes: Vec<(&str, u16)> = span
        .styled_graphemes(Style::new())
        .map(|g| (g.symbol, g.symbol.cell_width()))
        .collect();
    let room = width - 1;
    let head_room = match how {
        Cut::End => room,
        Cut::Middle => room / 2,
    };
    let (mut head, mut used) = (0, 0);
    for &(_, w) in &graphemes {
        if used + w > head_room {
            break;
        }
        used += w;
        head += 1;
    }
    // The end gets what the start left, a wide character's unused column included.
    let mut tail_room = match how {
        Cut::End => 0,
        Cut::Middle => room - used,
    };
    let mut tail = graphemes.len();
    while tail > head && graphemes[tail - 1].1 <= tail_room {
        tail_room -= graphemes[tail - 1].1;
        tail -= 1;
    }
    let mut out = String::with_capacity(text.len().min(usize::from(width) * 4) + 3);
    graphemes[..head].iter().for_each(|(g, _)| out.push_str(g));
    out.push('…');
    graphemes[tail..].iter().for_each(|(g, _)| out.push_str(g));
    Cow::Owned(out)
}

/// Which columns fit in `width`, and how wide each is. Columns are dropped, least important
/// first, while even their minimums do not fit; then each column, most important first, widens
/// to what its visible cells hold (`content`, headers included); what is left goes to the
/// filling columns.
///
/// A column whose visible cells are all `empty` (a GROUP column where no instance is in a
/// group) shrinks to its header and takes no share of what is left, so its room goes to columns
/// that have something to show. It stays, narrow, rather than disappearing: its header says the
/// column is there and empty, and the columns do not jump about as rows scroll by. It is still
/// dropped by its priority when even its header does not fit.
fn fit_columns(
    columns: &[Column],
    width: u16,
    content: &[u16],
    empty: &[bool],
) -> Vec<(usize, u16)> {
    let is_empty = |c: usize| empty.get(c).copied().unwrap_or(false);
    let min = |c: usize| {
        if is_empty(c) {
            columns[c].min.min(content.get(c).copied().unwrap_or(0))
        } else {
            columns[c].min
        }
    };
    let fills = |c: usize| columns[c].fill && !is_empty(c);
    let mut shown: Vec<usize> = (0..columns.len()).collect();
    let needed =
        |shown: &[usize]| -> u16 { shown.iter().map(|&c| min(c) + 1).sum::<u16>() + GUTTER };
    while needed(&shown) > width && shown.len() > 1 {
        let drop = shown
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| columns[**c].priority)
            .map(|(position, _)| position)
            .unwrap_or(0);
        shown.remove(drop);
    }
    let mut spare = width.saturating_sub(needed(&shown));
    let mut widths: Vec<u16> = shown.iter().map(|&c| min(c)).collect();
    let mut by_priority: Vec<usize> = (0..shown.len()).collect();
    by_priority.sort_by_key(|&s| std::cmp::Reverse(columns[shown[s]].priority));
    // Twice: first up to a modest width each, so one long value (an image shown by its whole
    // key) cannot starve the columns after it; then to the whole content.
    for cap in [SHARE, u16::MAX] {
        for &s in &by_priority {
            let wanted = content.get(shown[s]).copied().unwrap_or(0).min(cap);
            let extra = wanted.saturating_sub(widths[s]).min(spare);
            widths[s] += extra;
            spare -= extra;
        }
    }
    let fillers = shown.iter().filter(|&&c| fills(c)).count() as u16;
    // Equal shares of the rest; the first `spare % fillers` filling columns take one more.
    let mut filler = 0;
    shown
        .iter()
        .zip(widths)
        .map(|(&c, mut w)| {
            if fills(c) && fillers > 0 {
                w += spare / fillers + u16::from(filler < spare % fillers);
                filler += 1;
            }
            (c, w)
        })
        .collect()
}

struct ListFrame {
    title: String,
    columns: &'static [Column],
    /// What an empty list with no filter says.
    empty: &'static str,
    sort: Option<(usize, bool)>,
    area: Rect,
}

/// Draws the block, header and visible rows of a list; returns where the rows are, and the
/// scroll offset that keeps the selection in view.
fn draw_list<T: Copy + PartialEq>(
    frame: &mut Frame,
    list: &ListState<T>,
    spec: ListFrame,
    mut cells: impl FnMut(T) -> (Vec<Text>, Style, &'static str),
) -> (Rect, usize) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Line::from(spec.title).bold());
    let inner = block.inner(spec.area);
    frame.render_widget(block, spec.area);
    let height = usize::from(inner.height.saturating_sub(1));
    let offset = list.offset_for(height);
    // The visible rows' cells first: their widths size the columns.
    let built: Vec<(Vec<Text>, Style, &'static str)> = list
        .window(offset, height)
        .to_vec()
        .into_iter()
        .map(&mut cells)
        .collect();
    // Each column's widest visible cell, and whether the visible rows leave it empty.
    let widest: Vec<u16> = (0..spec.columns.len())
        .map(|c| {
            built
                .iter()
                .filter_map(|(texts, _, _)| texts.get(c).map(|t| t.width))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let empty: Vec<bool> = widest
        .iter()
        .map(|&w| w == 0 && !built.is_empty())
        .collect();
    let content: Vec<u16> = spec
        .columns
        .iter()
        .enumerate()
        .map(|(c, column)| {
            // The sort arrow takes a column of its own after the sorted column's title.
            let arrow = u16::from(spec.sort.is_some_and(|(sorted, _)| sorted == c));
            let title = display_width(column.title) as u16 + arrow;
            widest[c].max(title)
        })
        .collect();
    let fitted = fit_columns(spec.columns, inner.width, &content, &empty);
    let header = Row::new(
        std::iter::once(Cell::from(""))
            .chain(fitted.iter().map(|&(c, _)| {
                let title = spec.columns[c].title;
                match spec.sort {
                    Some((sorted, descending)) if sorted == c => {
                        Cell::from(format!("{title}{}", if descending { "▼" } else { "▲" }))
                            .style(Style::new().fg(Color::Cyan))
                    }
                    _ => Cell::from(title),
                }
            }))
            .collect::<Vec<_>>(),
    )
    .style(Style::new().bold());
    let rows: Vec<Row> = built
        .into_iter()
        .map(|(all, style, gutter)| {
            let mut all: Vec<Option<Text>> = all.into_iter().map(Some).collect();
            // Only the visible rows' cells are cut, once each, to their column's width.
            let shown = fitted.iter().map(|&(c, w)| {
                all.get_mut(c)
                    .and_then(Option::take)
                    .map_or_else(Cell::default, |t| t.into_cell(w, spec.columns[c].cut))
            });
            Row::new(std::iter::once(Cell::from(gutter)).chain(shown)).style(style)
        })
        .collect();
    let widths: Vec<Constraint> = std::iter::once(Constraint::Length(GUTTER - 1))
        .chain(fitted.iter().map(|&(_, w)| Constraint::Length(w)))
        .collect();
    let empty = list.rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().reversed());
    let mut state =
        TableState::new().with_selected((!empty).then(|| list.selected.saturating_sub(offset)));
    frame.render_stateful_widget(table, inner, &mut state);
    if empty {
        let message = if list.applied().is_empty() {
            spec.empty
        } else {
            "nothing here: no rows match (Esc clears the filter)"
        };
        let message = Paragraph::new(message).dim();
        let below_header = Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        };
        frame.render_widget(message, below_header);
    }
    let rows = Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    };
    (rows, offset)
}

/// The list's name, scope, row count, the filter in force (not what is being typed) and the
/// marks, with how many of them the filter hides.
fn list_title(
    name: &str,
    scope: Option<String>,
    list_rows: usize,
    applied: &str,
    marks: Option<(usize, usize)>,
) -> String {
    let mut title = format!(" {name}");
    if let Some(scope) = scope {
        title.push(' ');
        title.push_str(&scope);
    }
    title.push_str(&format!(" ({list_rows})"));
    if !applied.is_empty() {
        title.push_str(&format!(" /{applied}"));
    }
    match marks {
        Some((marked, 0)) => title.push_str(&format!(" · {marked} marked")),
        Some((marked, hidden)) => {
            title.push_str(&format!(" · {marked} marked, {hidden} hidden"));
        }
        None => {}
    }
    title.push(' ');
    title
}

fn gutter(marked: bool, queued: bool) -> &'static str {
    match (marked, queued) {
        (true, true) => "◆",
        (true, false) => "●",
        (false, true) => "Q",
        (false, false) => " ",
    }
}

fn draw_instances(frame: &mut Frame, app: &App, area: Rect) -> (Rect, usize) {
    let title = list_title(
        "Instances",
        app.browse.instance_scope_label(&app.data),
        app.browse.instances.rows.len(),
        app.browse.instances.applied(),
        app.marks(),
    );
    let spec = ListFrame {
        title,
        columns: INSTANCE_COLUMNS,
        empty: "nothing here: no instances in this scope",
        sort: Some((app.browse.instances.sort, app.browse.instances.descending)),
        area,
    };
    let data = &app.data;
    draw_list(frame, &app.browse.instances, spec, |i| {
        let instance = data.instance(i);
        let image = data.inventory.image_of(i);
        let eval = data.image_eval(image);
        let cells = vec![
            text(short_id(&instance.id).into_owned()),
            text(instance.name.clone()),
            text(instance.cloud.as_str()),
            text(instance.account.clone()),
            text(instance.region.clone()),
            text(
                data.inventory
                    .group_of(i)
                    .map_or("", |g| data.group_label(g))
                    .to_owned(),
            ),
            text(data.image_label(image).to_owned()),
            text(days(eval.age_days)),
            text(days(Some(data.uptime_days(i)))),
            text(eval.verdict.as_str()).style(verdict_style(eval.verdict)),
        ];
        let is_marked = app.is_marked(Marked::Instances, &instance.id);
        let style = if is_marked {
            Style::new().bold()
        } else {
            Style::new()
        };
        (cells, style, gutter(is_marked, app.is_queued(&instance.id)))
    })
}

fn draw_images(frame: &mut Frame, app: &App, area: Rect) -> (Rect, usize) {
    let title = list_title(
        "Images",
        None,
        app.browse.images.rows.len(),
        app.browse.images.applied(),
        None,
    );
    let spec = ListFrame {
        title,
        columns: IMAGE_COLUMNS,
        empty: "nothing here: no images collected",
        sort: Some((app.browse.images.sort, app.browse.images.descending)),
        area,
    };
    let data = &app.data;
    let accounts = data.image_accounts();
    draw_list(frame, &app.browse.images, spec, |i| {
        let entry = data.inventory.image(i);
        let eval = data.image_eval(i);
        let golden = eval.golden == Some(i);
        let cells = vec![
            text(entry.image.cloud.as_str()),
            text(short_id(&entry.image.key).into_owned()),
            text(data.image_label(i).to_owned()),
            text(data.lineage_of_image(i).unwrap_or("").to_owned()),
            text(days(eval.age_days)),
            text(entry.instances.len().to_string()),
            text(accounts.count(i).to_string()),
            text(eval.verdict.as_str()).style(verdict_style(eval.verdict)),
        ];
        let style = if entry.instances.is_empty() {
            Style::new().dim()
        } else {
            Style::new()
        };
        (cells, style, if golden { "★" } else { " " })
    })
}

fn draw_drift(frame: &mut Frame, app: &App, area: Rect) -> (Rect, usize) {
    let section = &app.browse.drift_groups;
    let mut title = list_title(
        "Drift",
        None,
        app.browse.drift.rows.len(),
        app.browse.drift.applied(),
        None,
    );
    // The groups' counts, where they can be read without scrolling to their section.
    if !section.groups.is_empty() {
        title.push_str(&format!("· groups: {} ", section.counts()));
    }
    let spec = ListFrame {
        title,
        columns: DRIFT_COLUMNS,
        empty: "nothing drifts: every lineage runs its golden image",
        sort: None,
        area,
    };
    let data = &app.data;
    let inv = &data.inventory;
    draw_list(frame, &app.browse.drift, spec, |row| match row {
        DriftRow::Lineage(l) => {
            let lineage = inv.lineage(l);
            let eval = data.eval.lineage_eval(l);
            let cloud = lineage
                .images
                .first()
                .map_or("", |&i| inv.image(i).image.cloud.as_str());
            let status = if eval.lagging_instances == 0 {
                "all on golden".to_owned()
            } else {
                let since = eval
                    .lagging_since
                    .map(|s| {
                        format!(
                            ", lagging {}",
                            days(Some(crate::core::policy::days_between(s, data.now())))
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{} lagging, up to {} behind{since}",
                    eval.lagging_instances, eval.max_behind_by
                )
            };
            let marker = if app.browse.is_folded(l) {
                "▸"
            } else {
                "▾"
            };
            let cells = vec![
                text(format!("{marker} {}", lineage.name)),
                text(cloud),
                text(""),
                text(eval.instances.to_string()),
                text(status).style(if eval.lagging_instances > 0 {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new().fg(Color::Green)
                }),
            ];
            (cells, Style::new().bold(), " ")
        }
        DriftRow::Image(i) => {
            let entry = inv.image(i);
            let eval = data.image_eval(i);
            let golden = eval.golden == Some(i);
            let status = if golden {
                "golden".to_owned()
            } else if eval.behind_by > 0 {
                format!("{} · {} behind", eval.verdict, eval.behind_by)
            } else {
                eval.verdict.to_string()
            };
            let cells = vec![
                text(format!("    {}", data.image_label(i))),
                text(entry.image.cloud.as_str()),
                text(days(eval.age_days)),
                text(entry.instances.len().to_string()),
                text(status).style(verdict_style(eval.verdict)),
            ];
            let style = if entry.instances.is_empty() && !golden {
                Style::new().dim()
            } else {
                Style::new()
            };
            (cells, style, if golden { "★" } else { " " })
        }
        DriftRow::Groups => {
            let cells = vec![
                text(format!(
                    "{} Groups ({})",
                    if app.browse.groups_folded() {
                        "▸"
                    } else {
                        "▾"
                    },
                    section.groups.len()
                )),
                text(""),
                text(""),
                text(section.members.to_string()),
                text(section.counts()).style(Style::new().fg(Color::Red)),
            ];
            (cells, Style::new().bold(), " ")
        }
        DriftRow::Group(g) => {
            let entry = inv.group(g);
            let eval = data.eval.group_eval(g);
            let kind = entry.group.as_ref().map_or("group", |d| d.kind.as_str());
            let cloud = entry.group.as_ref().map_or("", |d| d.cloud.as_str());
            let mut status = Vec::new();
            if eval.skew() {
                status.push(format!("version skew: {} images", eval.images.len()));
            }
            if let TemplateStatus::Drift { points_at, .. } = &eval.template {
                status.push(format!(
                    "template drift: launches {}{}",
                    image_short(data, points_at),
                    if app.rollout.template_updates {
                        "; an apply's template step fixes it"
                    } else {
                        ""
                    }
                ));
            }
            let cells = vec![
                text(format!("  ⚑ {kind} {}", data.group_label(g))),
                text(cloud),
                text(""),
                text(entry.members.len().to_string()),
                text(status.join("; ")).style(Style::new().fg(Color::Red)),
            ];
            (cells, Style::new(), " ")
        }
    })
}

/// An image a row names by key, for a narrow column: its name when known, else the key cut to
/// what tells it apart.
fn image_short<'a>(data: &'a Data, key: &'a str) -> Cow<'a, str> {
    match data.image_label_of(key) {
        label if label == key => short_id(key),
        label => Cow::Borrowed(label),
    }
}

fn draw_queue(frame: &mut Frame, app: &App, area: Rect) -> (Rect, usize) {
    let area = match app.rollout.outcome() {
        Some(outcome) => {
            let [top, rest] =
                Split::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
            frame.render_widget(outcome_line(outcome, top.width), top);
            rest
        }
        None => area,
    };
    // The apply's template steps, each on its own line with its live step, above the entries.
    let steps = app.rollout.template_steps();
    let area = if steps.is_empty() {
        area
    } else {
        let shown = steps.len().min(3);
        let [top, rest] = Split::vertical([
            Constraint::Length(shown as u16 + u16::from(steps.len() > shown)),
            Constraint::Min(0),
        ])
        .areas(area);
        let mut lines: Vec<Line> = steps[..shown]
            .iter()
            .map(|step| {
                let phase = app
                    .rollout
                    .phase(&crate::queue::journal::template_id(&step.group));
                let (label, style) = match phase {
                    Some(phase) => (phase.label(), phase_style(phase)),
                    None => ("ready", Style::new().fg(Color::Green)),
                };
                Line::from(vec![
                    Span::styled(format!(" {label:<11} "), style),
                    Span::raw(format!("template step: {}", escape(&step.describe))),
                ])
            })
            .collect();
        if steps.len() > shown {
            lines.push(
                Line::from(format!(" and {} more template steps", steps.len() - shown)).dim(),
            );
        }
        frame.render_widget(Paragraph::new(lines), top);
        rest
    };
    let executable = app
        .queue()
        .entries
        .iter()
        .filter(|e| e.strategy.executable())
        .count();
    let rollout = match app.rollout.wave() {
        Some((wave, of)) if app.rollout.applying() => format!(" · applying: wave {wave} of {of}"),
        _ => String::new(),
    };
    // Failed entries are counted where the eye goes first; `/failed` lists them.
    let failed = app
        .queue()
        .entries
        .iter()
        .filter(|e| app.rollout.last_failure(&e.instance_id).is_some())
        .count();
    let failed = if failed > 0 {
        format!(", {failed} failed")
    } else {
        String::new()
    };
    let scope = Some(format!(
        "· {executable} executable, {} not{failed}{rollout}",
        app.queue().entries.len() - executable
    ));
    let title = list_title(
        "Queue",
        scope,
        app.browse.queue_rows.rows.len(),
        app.browse.queue_rows.applied(),
        app.marks(),
    );
    let spec = ListFrame {
        title,
        columns: QUEUE_COLUMNS,
        empty: "the queue is empty: r queues the selected or marked instances, R everything not current on an image, lineage or group",
        sort: Some((app.browse.queue_rows.sort, app.browse.queue_rows.descending)),
        area,
    };
    let entries = &app.queue().entries;
    draw_list(frame, &app.browse.queue_rows, spec, |e| {
        let entry = &entries[e];
        let executable = entry.strategy.executable();
        let failure = app.rollout.last_failure(&entry.instance_id);
        let step = match (app.rollout.phase(&entry.instance_id), failure) {
            (Some(phase), _) => text(phase.label()).style(phase_style(phase)),
            // An earlier apply's failure, as the journal tells it.
            (None, Some(_)) => text("failed").style(Style::new().fg(Color::Red).bold()),
            (None, None) => {
                text(if executable { "ready" } else { "blocked" }).style(if executable {
                    Style::new().fg(Color::Green)
                } else {
                    Style::new().fg(Color::Red)
                })
            }
        };
        let cells = vec![
            text(short_id(&entry.instance_id).into_owned()),
            text(entry.name.clone()),
            text(entry.cloud.as_str()),
            text(entry.verdict.as_str()).style(verdict_style(entry.verdict)),
            text(entry.strategy.label()),
            step,
            text(
                entry
                    .target_image
                    .as_deref()
                    .map_or(Cow::Borrowed("-"), short_id)
                    .into_owned(),
            ),
            // Why it cannot go, or why it failed, before why it was queued.
            match (&entry.strategy, failure) {
                (_, Some(failure)) => {
                    text(format!("failed: {}", failure.error())).style(Style::new().fg(Color::Red))
                }
                (Strategy::NotExecutable { why }, _) => {
                    text(format!("blocked: {why}")).style(Style::new().fg(Color::Red))
                }
                _ => text(entry.reason.clone()),
            },
        ];
        let is_marked = app.is_marked(Marked::Entries, &entry.instance_id);
        (
            cells,
            if is_marked {
                Style::new().bold()
            } else {
                Style::new()
            },
            if is_marked { "●" } else { " " },
        )
    })
}

/// How the last apply ended, on one line above the Queue view's list until Esc dismisses it:
/// green when it ran to its end, red when it could not.
fn outcome_line(outcome: &Result<Ended, String>, width: u16) -> Line<'static> {
    const DISMISS: &str = " · Esc dismisses";
    let (said, style) = match outcome {
        Ok(ended) => (
            format!(" last apply: {}", ended.summary),
            // Failures or a stop want a look; a clean end does not.
            Style::new().fg(if ended.clean {
                Color::Green
            } else {
                Color::Yellow
            }),
        ),
        Err(error) => (
            format!(" last apply failed: {error}"),
            Style::new().fg(Color::Red).bold(),
        ),
    };
    // The summary gives way before the way to dismiss it does.
    let room = width.saturating_sub(display_width(DISMISS) as u16);
    let said = cut(&escape(&said), room, Cut::End).into_owned();
    Line::from(vec![Span::styled(said, style), Span::raw(DISMISS).dim()])
}

/// Two lines about the selected row: everything the table had no room for.
fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let data = &app.data;
    let inv = &data.inventory;
    let lines: Vec<Line> = match app.browse.view {
        View::Overview => Vec::new(),
        View::Instances => app
            .browse
            .instances
            .selected_row()
            .map_or_else(Vec::new, |i| {
                let instance = data.instance(i);
                let image = inv.image_of(i);
                let eval = data.image_eval(image);
                let mut first = vec![
                    Span::styled(instance.id.clone(), Style::new().bold()),
                    Span::raw(format!(
                        "  {} {} {} · launched {} ago · image {}",
                        instance.state,
                        instance.instance_type,
                        instance.zone,
                        days(Some(data.uptime_days(i))),
                        inv.image(image).image.key
                    )),
                ];
                if data.eval.long_lived[i as usize] {
                    first.push(Span::styled(
                        " · long-lived",
                        Style::new().fg(Color::Yellow),
                    ));
                }
                if app.is_queued(&instance.id) {
                    first.push(Span::styled(" · queued", Style::new().fg(Color::Cyan)));
                }
                // The verdict's reasons come first, the exposure after them: neither pushes the
                // other out, and Enter shows everything.
                let mut reasons = reasons_line(eval.verdict, &eval.reasons);
                if !instance.exposure.is_empty() {
                    reasons.push_span(Span::styled(
                        format!(" · exposed: {}", instance.exposure.join(", ")),
                        Style::new().fg(Color::Red),
                    ));
                }
                if eval.untrusted_source {
                    reasons.push_span(Span::styled(
                        " · untrusted-source",
                        Style::new().fg(Color::Red),
                    ));
                }
                vec![reasons, Line::from(first)]
            }),
        View::Images => app.browse.images.selected_row().map_or_else(Vec::new, |i| {
            let entry = inv.image(i);
            let eval = data.image_eval(i);
            let created = entry
                .image
                .created
                .map_or("unknown".to_owned(), |c| c.format("%Y-%m-%d").to_string());
            let golden = eval
                .golden
                .map_or("none".to_owned(), |g| data.image_label(g).to_owned());
            vec![
                Line::from(vec![
                    Span::styled(entry.image.key.clone(), Style::new().bold()),
                    Span::raw(format!(
                        "  created {created} · owner {} · golden {golden}",
                        if entry.image.owner.is_empty() {
                            "?"
                        } else {
                            &entry.image.owner
                        }
                    )),
                ]),
                reasons_line(eval.verdict, &eval.reasons),
            ]
        }),
        View::Drift => match app.browse.drift.selected_row() {
            None => Vec::new(),
            Some(DriftRow::Lineage(l)) => {
                let eval = data.eval.lineage_eval(l);
                let golden = eval.golden.map_or("none".to_owned(), |g| {
                    format!("{} ({})", data.image_label(g), inv.image(g).image.key)
                });
                vec![
                    Line::from(format!(
                        "lineage {} · golden {golden}{}",
                        inv.lineage(l).name,
                        if eval.pinned { " (pinned)" } else { "" }
                    )),
                    Line::from(eval.warning.clone().unwrap_or_default())
                        .style(Style::new().fg(Color::Yellow)),
                ]
            }
            Some(DriftRow::Image(i)) => {
                let eval = data.image_eval(i);
                vec![
                    Line::from(data.image_named(&inv.image(i).image.key)).bold(),
                    reasons_line(eval.verdict, &eval.reasons),
                ]
            }
            Some(DriftRow::Groups) => {
                let section = &app.browse.drift_groups;
                vec![
                    Line::from(format!(
                        "{} ({} {}, {} members)",
                        section.counts(),
                        section.groups.len(),
                        if section.groups.len() == 1 {
                            "group"
                        } else {
                            "groups"
                        },
                        section.members
                    ))
                    .bold(),
                    Line::from("i lists them; Enter on a group lists its members, R queues them"),
                ]
            }
            Some(DriftRow::Group(g)) => {
                let entry = inv.group(g);
                let eval = data.eval.group_eval(g);
                let template = entry
                    .group
                    .as_ref()
                    .and_then(|d| d.template.clone())
                    .unwrap_or_else(|| "unknown template".to_owned());
                let status = match &eval.template {
                    TemplateStatus::Unresolved => "its image could not be resolved".to_owned(),
                    TemplateStatus::Golden => "points at the golden image".to_owned(),
                    TemplateStatus::Drift { points_at, golden } => format!(
                        "launches {}, golden is {}: {}",
                        data.image_named(points_at),
                        golden
                            .as_deref()
                            .map_or("unknown".to_owned(), |g| data.image_named(g)),
                        if app.rollout.template_updates {
                            "an apply of its members first points it at the golden image (a template step), then rolls them"
                        } else {
                            "replacing members brings the old image back (template updates are off)"
                        }
                    ),
                };
                vec![
                    Line::from(entry.key.clone()).bold(),
                    Line::from(format!("template {template}: {status}")),
                ]
            }
        },
        View::Queue => app
            .browse
            .queue_rows
            .selected_row()
            .map_or_else(Vec::new, |e| {
                let entry = &app.queue().entries[e];
                vec![
                    Line::from(vec![
                        Span::styled(entry.instance_id.clone(), Style::new().bold()),
                        Span::raw(format!(
                            "  {} {} · {} -> {}",
                            entry.account,
                            entry.region,
                            entry.image,
                            entry.target_image.as_deref().unwrap_or("no golden image")
                        )),
                    ]),
                    match app.rollout.last_failure(&entry.instance_id) {
                        Some(failure) => Line::from(format!(
                            "last attempt failed: {} (i: all of it)",
                            failure.error()
                        ))
                        .style(Style::new().fg(Color::Red)),
                        None => Line::from(entry.strategy.describe()).style(
                            if entry.strategy.executable() {
                                Style::new().fg(Color::Green)
                            } else {
                                Style::new().fg(Color::Red)
                            },
                        ),
                    },
                ]
            }),
    };
    frame.render_widget(
        Paragraph::new(escaped(lines)).wrap(Wrap { trim: true }),
        area,
    );
}

fn reasons_line(verdict: Verdict, reasons: &[String]) -> Line<'static> {
    let text = if reasons.is_empty() {
        "on the golden image, within the age limit".to_owned()
    } else {
        reasons.join("; ")
    };
    Line::from(vec![
        Span::styled(format!("{verdict}: "), verdict_style(verdict)),
        Span::raw(text),
    ])
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let line = match app.dialog() {
        Some(Dialog::Filter { .. }) => {
            let input = match app.browse.view {
                View::Images => &app.browse.images.input,
                View::Instances => &app.browse.instances.input,
                View::Drift => &app.browse.drift.input,
                View::Queue => &app.browse.queue_rows.input,
                View::Overview => "",
            };
            let mut spans = vec![
                Span::styled("/", Style::new().fg(Color::Cyan).bold()),
                Span::raw(input.to_owned()),
                Span::styled("█", Style::new().fg(Color::Cyan)),
            ];
            if let Some(error) = app.browse.filter_error() {
                spans.push(Span::styled(
                    format!("  {error}"),
                    Style::new().fg(Color::Red),
                ));
            }
            Line::from(spans)
        }
        Some(Dialog::Command { line }) => Line::from(vec![
            Span::styled(":", Style::new().fg(Color::Cyan).bold()),
            Span::raw(line.clone()),
            Span::styled("█", Style::new().fg(Color::Cyan)),
            Span::styled(
                app.status
                    .as_ref()
                    .map_or(String::new(), |s| format!("  {}", s.text)),
                Style::new().dim(),
            ),
        ]),
        Some(Dialog::Confirm(_)) => {
            Line::from("Confirming an apply: type the phrase, or Esc").dim()
        }
        _ => match &app.status {
            Some(status) => {
                Line::from(crate::text::escape(&status.text).into_owned()).style(if status.error {
                    Style::new().fg(Color::Red).bold()
                } else {
                    Style::new().fg(Color::Cyan)
                })
            }
            None => {
                let mut spans = Vec::new();
                for (key, hint) in keymap::hints_for(app.browse.view) {
                    spans.push(Span::styled(
                        format!(" {key}"),
                        Style::new().fg(Color::Cyan).bold(),
                    ));
                    spans.push(Span::raw(format!(" {hint}")));
                }
                Line::from(spans)
            }
        },
    };
    frame.render_widget(line, area);
}

fn draw_help(frame: &mut Frame, view: View, scroll: u16, screen: Rect) {
    let lines = keymap::help_for(view);
    let key_width = lines
        .iter()
        .map(|l| l.keys.chars().count())
        .max()
        .unwrap_or(0);
    let mut text: Vec<Line> = Vec::new();
    let mut scope = "";
    for line in &lines {
        if line.scope != scope {
            scope = line.scope;
            text.push(Line::from(scope).bold().underlined());
        }
        text.push(Line::from(vec![
            Span::styled(
                format!("{:>key_width$}  ", line.keys),
                Style::new().fg(Color::Cyan).bold(),
            ),
            Span::raw(line.help),
        ]));
    }
    // The filter fields this view takes, each with a term that matches rows of the demo.
    let fields = Browse::fields_of(view);
    if !fields.is_empty() {
        text.push(
            Line::from("Filter fields (/): terms are ANDed, ! negates, a,b is either")
                .bold()
                .underlined(),
        );
        let example_width = fields
            .iter()
            .map(|f| Browse::filter_example(view, *f).chars().count())
            .max()
            .unwrap_or(0);
        for &field in fields {
            text.push(Line::from(vec![
                Span::styled(
                    format!("{:>example_width$}  ", Browse::filter_example(view, field)),
                    Style::new().fg(Color::Cyan),
                ),
                Span::raw(field.meaning()),
            ]));
        }
    }
    let width = screen.width.saturating_sub(4).min(100);
    let height = screen.height.saturating_sub(2).min(text.len() as u16 + 2);
    let area = Rect {
        x: screen.x + (screen.width - width) / 2,
        y: screen.y + (screen.height - height) / 2,
        width,
        height,
    };
    let max_scroll = (text.len() as u16).saturating_sub(height.saturating_sub(2));
    let block =
        Block::bordered().title(format!(" Keys: {} (j/k scroll, Esc closes) ", view.title()));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .scroll((scroll.min(max_scroll), 0)),
        area,
    );
}

// ---- overview -------------------------------------------------------------------------------

/// Returns where the source list's lines went and its scroll offset.
fn draw_overview(frame: &mut Frame, app: &App, area: Rect) -> (Rect, usize) {
    let data = &app.data;
    let clouds: Vec<Cloud> = data.eval.by_cloud.keys().copied().collect();
    let note = stale_note(app.policy().max_image_age_days);
    // The counts need 66 columns at most: what a wide screen has beyond goes to the sources.
    let fleet_columns = (area.width * 55 / 100).min(66);
    let split = Split::horizontal([Constraint::Length(fleet_columns), Constraint::Min(0)]);
    // The box's inner width, to know how many lines the note wraps to.
    let [fleet_width, _] = split.areas(area);
    let note_lines = wrapped_lines(&note, fleet_width.width.saturating_sub(2));
    let rows = sources::rows(app.sources());
    let counts = SourceCounts::of(app.sources());
    // Tall enough for every source (with its cloud's header, the summary and the progress
    // bar) and the note, within half the screen; past that the sources scroll.
    let progress = usize::from(app.fleet.collecting());
    let wanted = (clouds.len() + 4 + note_lines).max(rows.len() + 3 + progress) as u16;
    let [top, bottom] = Split::vertical([
        Constraint::Length(wanted.min(area.height / 2)),
        Constraint::Min(4),
    ])
    .areas(area);
    let [fleet, sources_area] = split.areas(top);
    let [ages, lineages] =
        Split::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    draw_fleet_totals(frame, data, &clouds, &note, fleet);
    let listed = draw_sources(frame, app, &rows, counts, sources_area);
    draw_age_histogram(frame, data, ages);
    draw_lagging_lineages(frame, data, lineages);
    listed
}

/// What the STALE column counts, said under it: a verdict, one per instance and the most
/// severe wins, so it counts fewer instances than the filter on image age does.
fn stale_note(max_age: u32) -> String {
    format!(
        "STALE = verdict: older than {max_age}d, not outdated/flagged/unknown; \
         age:>{max_age} counts every image older than {max_age}d"
    )
}

/// How many lines `text` (single spaces between words) takes wrapped at word boundaries in
/// `width` columns, as the paragraph drawing it wraps.
fn wrapped_lines(text: &str, width: u16) -> usize {
    let width = usize::from(width.max(1));
    let (mut lines, mut used) = (0, 0);
    for word in text.split(' ') {
        let w = display_width(word);
        if used > 0 && used + 1 + w <= width {
            used += 1 + w;
        } else {
            lines += 1 + (w.max(1) - 1) / width;
            used = match w % width {
                0 if w > 0 => width,
                rest => rest,
            };
        }
    }
    lines
}

fn draw_fleet_totals(frame: &mut Frame, data: &Data, clouds: &[Cloud], note: &str, area: Rect) {
    // Full headers need 62 columns; narrower, verdicts are cut to four letters, columns to 5.
    let narrow = area.width < 64;
    let label = |text: &str| -> String {
        if narrow {
            text.chars().take(4).collect()
        } else {
            text.to_owned()
        }
    };
    let header =
        Row::new(
            ["CLOUD", "TOTAL"]
                .into_iter()
                .map(Cell::from)
                .chain(Verdict::BY_SEVERITY.iter().map(|v| {
                    Cell::from(label(&v.as_str().to_uppercase())).style(verdict_style(*v))
                }))
                .chain(std::iter::once(Cell::from(label("LONG-LIVED")))),
        )
        .bold();
    let row = |label: String, counts: &crate::core::policy::VerdictCounts| {
        Row::new(
            [label, counts.total().to_string()]
                .into_iter()
                .map(Cell::from)
                .chain(
                    Verdict::BY_SEVERITY
                        .iter()
                        .map(|v| Cell::from(counts.get(*v).to_string())),
                )
                .chain(std::iter::once(Cell::from(counts.long_lived.to_string()))),
        )
    };
    let mut rows: Vec<Row> = clouds
        .iter()
        .map(|c| row(c.as_str().to_owned(), &data.eval.by_cloud[c]))
        .collect();
    rows.push(row("all".to_owned(), &data.eval.total).bold());
    let widths: Vec<Constraint> = if narrow {
        vec![Constraint::Length(5); 8]
    } else {
        [5, 7, 7, 7, 8, 6, 7, 10]
            .into_iter()
            .map(Constraint::Length)
            .collect()
    };
    let block = Block::bordered().title(if narrow {
        " Fleet by verdict "
    } else {
        " Fleet by verdict (one per instance, most severe wins) "
    });
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table, below] = Split::vertical([
        Constraint::Length(clouds.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Table::new(rows, widths).header(header), table);
    frame.render_widget(
        Paragraph::new(note.to_owned())
            .dim()
            .wrap(Wrap { trim: true }),
        below,
    );
}

/// The sources: how many stand where (and while collecting, a bar of those ended), then the
/// list by cloud, each under a header with its counts, failures first, scrolled to keep the
/// selected source in view. Returns where the list's lines went and the offset chosen.
fn draw_sources(
    frame: &mut Frame,
    app: &App,
    rows: &[SourceRow],
    counts: SourceCounts,
    area: Rect,
) -> (Rect, usize) {
    let block = Block::bordered().title(" Sources (j/k, Enter: all of it) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let sources = app.sources();
    if sources.is_empty() {
        frame.render_widget(Paragraph::new("no sources yet").dim(), inner);
        return (Rect::default(), 0);
    }
    let mut summary = vec![Span::styled(
        format!("{}: ", count(counts.total(), "source")),
        Style::new().bold(),
    )];
    summary.extend(count_spans(counts));
    let summary = Line::from(summary);
    let summary_height = wrapped_lines(&summary.to_string(), inner.width) as u16;
    let collecting = app.fleet.collecting();
    let [summary_area, progress_area, list_area] = Split::vertical([
        Constraint::Length(summary_height),
        Constraint::Length(u16::from(collecting)),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(summary).wrap(Wrap { trim: true }),
        summary_area,
    );
    if collecting {
        let (ended, total) = (counts.ended(), counts.total());
        frame.render_widget(
            LineGauge::default()
                .ratio(ended as f64 / total.max(1) as f64)
                .label(format!("{ended}/{total} ended "))
                .filled_symbol(symbols::line::THICK_HORIZONTAL)
                .filled_style(Style::new().fg(Color::Yellow))
                .unfilled_style(Style::new().dim()),
            progress_area,
        );
    }
    let selected = app.browse.selected_source(sources);
    let selected_row = rows
        .iter()
        .position(|&row| selected.is_some_and(|s| row == SourceRow::Source(s)))
        .unwrap_or(0);
    let height = usize::from(list_area.height);
    let offset = sources::offset_for(rows, selected_row, app.browse.source_offset, height);
    // Each cloud's names and ids are sized apart: a header separates them, and an AWS account
    // id need not make room for an Azure subscription id.
    let widths = Cloud::ALL
        .map(|cloud| SourceWidths::of(sources.iter().filter(|s| s.cloud == cloud), inner.width));
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(at, &row)| match row {
            SourceRow::Cloud(cloud, counts) => {
                let mut spans = vec![
                    Span::styled(cloud.as_str(), Style::new().bold().fg(Color::Cyan)),
                    Span::styled(
                        format!(" · {}: ", count(counts.total(), "source")),
                        Style::new().bold(),
                    ),
                ];
                spans.extend(count_spans(counts));
                Line::from(spans)
            }
            SourceRow::Source(s) => {
                let source = &sources[s];
                let line = source_line(source, widths[source.cloud as usize]);
                if at == selected_row {
                    line.reversed()
                } else {
                    line
                }
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(escaped(lines)), list_area);
    (list_area, offset)
}

/// "3 failed, 190 done": the counts that are not zero, each in its colour.
fn count_spans(counts: SourceCounts) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (standing, n) in counts.present() {
        if !spans.is_empty() {
            spans.push(Span::raw(", "));
        }
        spans.push(Span::styled(
            format!("{n} {}", standing.label()),
            standing_style(standing),
        ));
    }
    spans
}

fn standing_style(standing: Standing) -> Style {
    match standing {
        Standing::Failed | Standing::Incomplete => Style::new().fg(Color::Red),
        Standing::InProgress => Style::new().fg(Color::Yellow),
        Standing::Waiting => Style::new().fg(Color::DarkGray),
        Standing::Done => Style::new().fg(Color::Green),
        Standing::Skipped => Style::new().dim(),
    }
}

/// How wide a cloud's names and account ids are in the source list: as wide as the widest of
/// the cloud's (all of them, so the columns hold still while the list scrolls), the name up to
/// half the line, the account (an Azure subscription id is 36 columns) only in what leaves the
/// state 16 (Enter shows the whole of it).
#[derive(Debug, Clone, Copy)]
struct SourceWidths {
    name: usize,
    /// Zero: no account is shown.
    account: usize,
}

impl SourceWidths {
    /// Instances: a space and seven digits, then a space before the state.
    const INSTANCES: usize = 9;
    const STATE: usize = 16;

    fn of<'a>(sources: impl Iterator<Item = &'a SourceStatus>, width: u16) -> SourceWidths {
        let width = usize::from(width);
        let (name, account) = sources.fold((0, 0), |(name, account), s| {
            (
                display_width(&s.name).max(name),
                s.account.as_deref().map_or(0, display_width).max(account),
            )
        });
        let name = name.clamp(14, (width / 2).max(14));
        let room = width.saturating_sub(name + 1 + Self::INSTANCES + Self::STATE);
        let account = account.min(room);
        SourceWidths {
            name,
            // A few characters of an id tell nothing: then none.
            account: if account < 6 { 0 } else { account },
        }
    }
}

/// A source's line: its name and, when the name is not it, its account (subscription,
/// project) id, its instances, and where it stands or what went wrong.
fn source_line(s: &SourceStatus, widths: SourceWidths) -> Line<'static> {
    let pad = |text: Cow<'_, str>, width: usize| {
        let gap = width.saturating_sub(display_width(&text));
        format!("{text}{:gap$}", "")
    };
    let column = |width: usize| u16::try_from(width).unwrap_or(u16::MAX);
    let mut spans = vec![Span::raw(pad(
        cut(&s.name, column(widths.name), Cut::Middle),
        widths.name,
    ))];
    if widths.account > 0 {
        let account = s.account.as_deref().unwrap_or("");
        spans.push(Span::styled(
            format!(
                " {}",
                pad(
                    cut(account, column(widths.account), Cut::Middle),
                    widths.account
                )
            ),
            Style::new().dim(),
        ));
    }
    let (state, style) = match &s.state {
        SourceState::Collecting => (
            match s.expected_pages {
                Some(total) => format!("collecting {}/{total} pages", s.pages),
                None => format!("collecting, {} pages", s.pages),
            },
            Style::new().fg(Color::Yellow),
        ),
        SourceState::Done if !s.warnings.is_empty() => (
            format!("done, {}", s.warnings.join("; ")),
            Style::new().fg(Color::Yellow),
        ),
        SourceState::Skipped { reason } => (format!("skipped: {reason}"), Style::new().dim()),
        SourceState::Incomplete { error } => {
            (format!("incomplete: {error}"), Style::new().fg(Color::Red))
        }
        SourceState::Failed { error } => (format!("failed: {error}"), Style::new().fg(Color::Red)),
        state => {
            let standing = Standing::of(state);
            (standing.label().to_owned(), standing_style(standing))
        }
    };
    spans.push(Span::raw(format!(" {:>7} ", s.instances)));
    spans.push(Span::styled(state, style));
    Line::from(spans)
}

fn draw_age_histogram(frame: &mut Frame, data: &Data, area: Rect) {
    let block = Block::bordered().title(" Image age of running instances ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let max = data.age_histogram.iter().copied().max().unwrap_or(0).max(1);
    let labels = AGE_BUCKETS.iter().map(|(_, l)| *l).chain(["unknown"]);
    let bar_room = inner.width.saturating_sub(8 + 8) as u64;
    let lines: Vec<Line> = labels
        .zip(data.age_histogram)
        .enumerate()
        .map(|(bucket, (label, count))| {
            let bar = "█".repeat((count * bar_room).div_ceil(max) as usize);
            let style = match bucket {
                0 | 1 => Style::new().fg(Color::Green),
                _ if bucket == AGE_BUCKETS.len() => Style::new().fg(Color::Magenta),
                2..=3 => Style::new().fg(Color::Yellow),
                _ => Style::new().fg(Color::Red),
            };
            Line::from(vec![
                Span::raw(format!("{label:>7} ")),
                Span::styled(bar, style),
                Span::raw(format!(" {count}")),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_lagging_lineages(frame: &mut Frame, data: &Data, area: Rect) {
    let inv = &data.inventory;
    let rows: Vec<Row> = data
        .lineages_by_lag
        .iter()
        .take(usize::from(area.height.saturating_sub(3)))
        .map(|&l| {
            let eval = data.eval.lineage_eval(l);
            let golden: Cow<str> = eval.golden.map_or(Cow::Borrowed("none"), |g| {
                Cow::Owned(data.image_label(g).to_owned())
            });
            Row::new([
                Cell::from(crate::text::escape(&inv.lineage(l).name).into_owned()),
                Cell::from(format!("{}/{}", eval.lagging_instances, eval.instances)),
                Cell::from(eval.max_behind_by.to_string()),
                Cell::from(
                    eval.lagging_since
                        .map(|s| days(Some(crate::core::policy::days_between(s, data.now()))))
                        .unwrap_or_default(),
                ),
                Cell::from(crate::text::escape_cow(golden).into_owned()),
            ])
            .style(if eval.lagging_instances > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            })
        })
        .collect();
    let header = Row::new(["LINEAGE", "LAGGING", "BEHIND", "SINCE", "GOLDEN"]).bold();
    // Narrow, the lineage name matters more than its golden image's.
    let golden_width = if area.width < 70 {
        Constraint::Length(0)
    } else {
        Constraint::Fill(2)
    };
    let widths = [
        Constraint::Fill(3),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(5),
        golden_width,
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" Most lagging lineages ")),
        area,
    );
}

/// A snapshot's age as its badge shows it: minutes for one a `serve` took this hour, hours
/// for today's, days after that.
fn snapshot_age(
    taken: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let minutes = (now - taken).num_minutes().max(0);
    match minutes {
        0..60 => format!("{minutes}m"),
        60..2880 => format!("{}h", minutes / 60),
        _ => format!("{}d", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_badge_shows_minutes_hours_or_days() {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-01T12:00:00Z".parse().unwrap();
        let ago = |minutes| snapshot_age(now - chrono::Duration::minutes(minutes), now);
        assert_eq!(ago(0), "0m");
        assert_eq!(ago(14), "14m");
        assert_eq!(ago(90), "1h");
        assert_eq!(ago(47 * 60), "47h");
        assert_eq!(ago(3 * 1440), "3d");
        assert_eq!(snapshot_age(now + chrono::Duration::minutes(5), now), "0m");
    }

    #[test]
    fn columns_fit_any_width_by_dropping_the_least_important() {
        let none = [0; 10];
        let full = [false; 10];
        let wide = fit_columns(INSTANCE_COLUMNS, 200, &none, &full);
        assert_eq!(wide.len(), INSTANCE_COLUMNS.len());
        assert_eq!(
            wide.iter().map(|(_, w)| w + 1).sum::<u16>() + GUTTER,
            200,
            "spare width goes to filling columns"
        );
        let narrow = fit_columns(INSTANCE_COLUMNS, 78, &none, &full);
        assert!(narrow.iter().map(|(_, w)| w + 1).sum::<u16>() + GUTTER <= 78);
        let kept: Vec<&str> = narrow
            .iter()
            .map(|(c, _)| INSTANCE_COLUMNS[*c].title)
            .collect();
        assert!(
            kept.contains(&"VERDICT") && kept.contains(&"ID"),
            "{kept:?}"
        );
        assert!(!kept.contains(&"GROUP"), "{kept:?}");
        assert_eq!(fit_columns(INSTANCE_COLUMNS, 3, &none, &full).len(), 1);
    }

    #[test]
    fn columns_widen_to_their_content_most_important_first() {
        // REGION holds "europe-west1" (12) and IMAGE a 30-character name.
        let mut content = [0u16; 10];
        content[4] = 12;
        content[6] = 30;
        let roomy = fit_columns(INSTANCE_COLUMNS, 300, &content, &[false; 10]);
        let width_of = |fitted: &[(usize, u16)], title: &str| {
            fitted
                .iter()
                .find(|(c, _)| INSTANCE_COLUMNS[*c].title == title)
                .map(|(_, w)| *w)
        };
        assert_eq!(
            width_of(&roomy, "REGION"),
            Some(12),
            "never cut when space exists"
        );
        assert!(width_of(&roomy, "IMAGE") >= Some(30));
        // Tight: the minimums plus 14 spare columns. IMAGE (more important) widens first, to
        // its share; then REGION to its whole content; then IMAGE takes what is left.
        let minimums: u16 = INSTANCE_COLUMNS.iter().map(|c| c.min + 1).sum::<u16>() + GUTTER;
        let tight = fit_columns(INSTANCE_COLUMNS, minimums + 14, &content, &[false; 10]);
        assert_eq!(width_of(&tight, "IMAGE"), Some(28));
        assert_eq!(width_of(&tight, "REGION"), Some(12));
        let tighter = fit_columns(INSTANCE_COLUMNS, minimums + 6, &content, &[false; 10]);
        assert_eq!(width_of(&tighter, "IMAGE"), Some(22));
        assert_eq!(width_of(&tighter, "REGION"), Some(10));
    }

    #[test]
    fn an_empty_column_gives_its_room_to_the_others() {
        // Every column holds its header, NAME 30 columns more; GROUP's visible cells are empty.
        let mut content: Vec<u16> = INSTANCE_COLUMNS
            .iter()
            .map(|c| c.title.len() as u16)
            .collect();
        content[1] = 30;
        let mut empty = [false; 10];
        empty[5] = true;
        let minimums: u16 = INSTANCE_COLUMNS.iter().map(|c| c.min + 1).sum::<u16>() + GUTTER;
        let width_of = |fitted: &[(usize, u16)], title: &str| {
            fitted
                .iter()
                .find(|(c, _)| INSTANCE_COLUMNS[*c].title == title)
                .map(|(_, w)| *w)
        };
        // Room for every minimum and 10 more: as full, GROUP keeps 12 and NAME gets 22.
        let full = fit_columns(INSTANCE_COLUMNS, minimums + 10, &content, &[false; 10]);
        assert_eq!(width_of(&full, "GROUP"), Some(12));
        assert_eq!(width_of(&full, "NAME"), Some(22));
        // Empty, GROUP is as wide as its header and NAME takes the 7 columns it gave up.
        let fitted = fit_columns(INSTANCE_COLUMNS, minimums + 10, &content, &empty);
        assert_eq!(width_of(&fitted, "GROUP"), Some(5));
        assert_eq!(width_of(&fitted, "NAME"), Some(29));
        // With room to spare, the filling columns share it and the empty one stays narrow.
        let roomy = fit_columns(INSTANCE_COLUMNS, 300, &content, &empty);
        assert_eq!(width_of(&roomy, "GROUP"), Some(5));
        assert_eq!(roomy.iter().map(|(_, w)| w + 1).sum::<u16>() + GUTTER, 300);
        // Narrow, it is still the first to go.
        let narrow = fit_columns(INSTANCE_COLUMNS, 78, &content, &empty);
        assert_eq!(width_of(&narrow, "GROUP"), None);
    }

    #[test]
    fn cutting_in_the_middle_keeps_what_tells_ids_apart() {
        let ids = [
            "frontend-prd-northeurope_12",
            "frontend-prd-northeurope_13",
            "frontend-prd-northeurope_7",
        ];
        let cut_ids: Vec<Cow<str>> = ids.iter().map(|id| cut(id, 16, Cut::Middle)).collect();
        assert_eq!(cut_ids[0], "fronten…urope_12");
        assert_eq!(cut_ids[1], "fronten…urope_13");
        assert_eq!(cut_ids[2], "fronten…europe_7");
        assert!(cut_ids.iter().all(|id| display_width(id) == 16));
        // At the end, as before but marked, they would all read the same.
        assert_eq!(cut(ids[0], 16, Cut::End), "frontend-prd-no…");
        assert_eq!(cut(ids[0], 16, Cut::End), cut(ids[1], 16, Cut::End));
    }

    #[test]
    fn cutting_leaves_text_that_fits_alone() {
        for how in [Cut::End, Cut::Middle] {
            assert!(matches!(cut("db-1", 4, how), Cow::Borrowed("db-1")));
            assert!(matches!(cut("db-1", 40, how), Cow::Borrowed("db-1")));
            assert!(matches!(cut("", 0, how), Cow::Borrowed("")));
        }
    }

    #[test]
    fn cutting_to_nothing_or_one_column() {
        for how in [Cut::End, Cut::Middle] {
            assert_eq!(cut("db-1", 0, how), "");
            assert_eq!(cut("db-1", 1, how), "…");
            assert_eq!(cut("db", 1, how), "…");
            assert_eq!(cut("d", 1, how), "d");
        }
        assert_eq!(
            cut("db-1", 2, Cut::Middle),
            "…1",
            "the end keeps the odd column"
        );
        assert_eq!(cut("db-1", 2, Cut::End), "d…");
        assert_eq!(cut("db-1", 3, Cut::Middle), "d…1");
    }

    #[test]
    fn cutting_counts_display_columns_not_characters() {
        // Each of these takes two columns: eight characters, sixteen columns.
        let wide = "東京大阪名古屋福";
        assert_eq!(display_width(wide), 16);
        assert!(matches!(cut(wide, 16, Cut::Middle), Cow::Borrowed(_)));
        assert_eq!(cut(wide, 9, Cut::Middle), "東京…屋福");
        assert_eq!(cut(wide, 9, Cut::End), "東京大阪…");
        // A wide character never straddles the limit: one column stays empty instead.
        assert_eq!(cut(wide, 8, Cut::Middle), "東…屋福");
        assert_eq!(display_width(&cut(wide, 8, Cut::Middle)), 7);
        assert_eq!(cut(wide, 8, Cut::End), "東京大…");
        assert_eq!(cut(wide, 2, Cut::Middle), "…");
        // Combining marks stay with their letter: "é" here is e and U+0301, one column.
        let accented = "cafe\u{301}-prd-e\u{301}te\u{301}";
        assert_eq!(display_width(accented), 12);
        assert_eq!(cut(accented, 7, Cut::Middle), "caf…e\u{301}te\u{301}");
        assert_eq!(cut(accented, 5, Cut::End), "cafe\u{301}…");
    }
}
