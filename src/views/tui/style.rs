//! The colours that carry meaning: verdicts and rollout phases, the same in every view and
//! pane; and the escaping every line quoting a cloud's text goes through.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use crate::core::policy::Verdict;
use crate::queue::rollout::Phase;

pub fn verdict_style(verdict: Verdict) -> Style {
    match verdict {
        Verdict::Flagged => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Verdict::Unknown => Style::new().fg(Color::Magenta),
        Verdict::Outdated => Style::new().fg(Color::Yellow),
        Verdict::Stale => Style::new().fg(Color::Cyan),
        Verdict::Current => Style::new().fg(Color::Green),
    }
}

/// A rollout phase's colour: green done, red failed, yellow in flight.
pub fn phase_style(phase: &Phase) -> Style {
    match phase {
        Phase::Replaced | Phase::WouldSucceed | Phase::Healthy => Style::new().fg(Color::Green),
        Phase::Failed(_) => Style::new().fg(Color::Red).bold(),
        Phase::NotStarted(_) | Phase::Skipped(_) | Phase::Waiting => Style::new().dim(),
        _ => Style::new().fg(Color::Yellow),
    }
}

/// Lines with every span's text escaped: they quote names, tags and errors from clouds.
pub fn escaped(mut lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    for line in &mut lines {
        for span in &mut line.spans {
            span.content = crate::text::escape_cow(std::mem::take(&mut span.content));
        }
    }
    lines
}
