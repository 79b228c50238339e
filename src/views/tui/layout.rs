//! The screen's geometry: each view's columns (titles, widths, which give way first) and the
//! tab bar's, shared by drawing and by the app (sorting by column name, mouse clicks on tabs).

use super::action::View;
use super::table::{Column, Cut, column};

/// Screen regions from the last frame, for mouse clicks and page sizes, and the scroll offset
/// the frame chose to keep the selection in view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub tabs: ratatui::layout::Rect,
    /// Where table rows start (below the header) and how many fit.
    pub rows: ratatui::layout::Rect,
    /// The first row shown of the current view's list.
    pub offset: usize,
}

pub const INSTANCE_COLUMNS: &[Column] = &[
    column("ID", 19, true, 9).cut(Cut::Middle),
    column("NAME", 12, true, 6).cut(Cut::Middle),
    column("CLOUD", 5, false, 7),
    column("ACCOUNT", 12, false, 2).cut(Cut::Middle),
    column("REGION", 10, false, 5).cut(Cut::Middle),
    column("GROUP", 12, true, 1).cut(Cut::Middle),
    column("IMAGE", 16, true, 8).cut(Cut::Middle),
    column("AGE", 5, false, 9),
    column("UPTIME", 6, false, 4),
    column("VERDICT", 8, false, 10),
];
pub const IMAGE_COLUMNS: &[Column] = &[
    column("CLOUD", 5, false, 6),
    column("ID", 21, true, 5).cut(Cut::Middle),
    column("NAME", 20, true, 9).cut(Cut::Middle),
    column("LINEAGE", 14, true, 7).cut(Cut::Middle),
    column("AGE", 5, false, 8),
    column("INSTANCES", 9, false, 8),
    // How many accounts (subscriptions, projects) run it: a shared image's spread.
    column("ACCOUNTS", 8, false, 4),
    column("VERDICT", 8, false, 10),
];
pub const DRIFT_COLUMNS: &[Column] = &[
    column("LINEAGE / IMAGE", 26, true, 10).cut(Cut::Middle),
    column("CLOUD", 5, false, 5),
    column("AGE", 5, false, 8),
    column("INSTANCES", 9, false, 9),
    column("STATUS", 24, true, 10),
];
pub const QUEUE_COLUMNS: &[Column] = &[
    column("INSTANCE", 19, true, 10).cut(Cut::Middle),
    column("NAME", 12, true, 6).cut(Cut::Middle),
    column("CLOUD", 5, false, 5),
    column("VERDICT", 8, false, 7),
    column("STRATEGY", 27, false, 9),
    // Executable or not; during and after a rollout, the entry's live step.
    column("STEP", 11, false, 8),
    column("TARGET", 16, true, 4).cut(Cut::Middle),
    column("REASON", 20, true, 3),
];

pub fn columns_of(view: View) -> &'static [Column] {
    match view {
        View::Overview => &[],
        View::Images => IMAGE_COLUMNS,
        View::Instances => INSTANCE_COLUMNS,
        View::Drift => DRIFT_COLUMNS,
        View::Queue => QUEUE_COLUMNS,
    }
}

pub const BRAND: &str = " fleetscope ";
/// Width of the mark/queued gutter before the first column.
pub const GUTTER: u16 = 2;

pub fn tab_label(view: View) -> String {
    let number = View::ALL.iter().position(|v| *v == view).unwrap_or(0) + 1;
    format!(" {number} {} ", view.title())
}

/// The view whose tab is at `x` columns from the left of the tab bar.
pub fn tab_at(x: u16) -> Option<View> {
    let mut start = BRAND.chars().count() as u16;
    for view in View::ALL {
        let width = tab_label(view).chars().count() as u16;
        if x >= start && x < start + width {
            return Some(view);
        }
        start += width;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_are_found_where_they_are_drawn() {
        let brand = BRAND.chars().count() as u16;
        assert_eq!(tab_at(0), None);
        assert_eq!(tab_at(brand), Some(View::Overview));
        let images_start = brand + tab_label(View::Overview).chars().count() as u16;
        assert_eq!(tab_at(images_start), Some(View::Images));
        assert_eq!(tab_at(500), None);
    }
}
