//! A list view's state: the rows in scope sorted once, the filtered index vector drawn from them,
//! the selection and the scroll offset. Rows are indices; nothing is cloned or formatted here.

use std::cmp::Ordering;

use crate::query::filter::{Field, Query};

/// Lists at least this long are filtered on two cores.
const PARALLEL_FROM: usize = 200_000;

/// A column of a list view.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    /// Narrowest useful width.
    pub min: u16,
    /// Takes a share of spare width (names, ids) rather than exactly `min`.
    pub fill: bool,
    /// Columns of lower priority are dropped first when the terminal is narrow.
    pub priority: u8,
    /// Where a value too wide for the column loses characters.
    pub cut: Cut,
}

/// Where a cell too wide for its column is cut; an ellipsis `…` marks the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Keep the start: prose (a status, a reason), read from the left.
    End,
    /// Keep the start and the end: identifiers (ids, names, images, regions), which often
    /// share a long prefix and differ only at the end.
    Middle,
}

/// A column whose values are cut at the end.
pub const fn column(title: &'static str, min: u16, fill: bool, priority: u8) -> Column {
    Column {
        title,
        min,
        fill,
        priority,
        cut: Cut::End,
    }
}

impl Column {
    /// The column with its values cut as `cut` says.
    pub const fn cut(self, cut: Cut) -> Column {
        Column { cut, ..self }
    }
}

#[derive(Debug, Clone)]
pub struct ListState<T> {
    /// The filter as typed.
    pub input: String,
    /// The last filter that parsed; it stays in force while the input has an error.
    query: Query,
    /// The text of `query`: what the title shows, since it is what is applied.
    applied: String,
    pub input_error: Option<String>,
    pub sort: usize,
    pub descending: bool,
    /// Everything in scope, in sort order; re-sorted only when the data or the sort changes.
    sorted: Vec<T>,
    /// `sorted` narrowed by the filter: what is on screen, by position.
    pub rows: Vec<T>,
    pub selected: usize,
    pub offset: usize,
}

impl<T: Copy + PartialEq> ListState<T> {
    pub fn new(sort: usize, descending: bool) -> ListState<T> {
        ListState {
            input: String::new(),
            query: Query::default(),
            applied: String::new(),
            input_error: None,
            sort,
            descending,
            sorted: Vec::new(),
            rows: Vec::new(),
            selected: 0,
            offset: 0,
        }
    }

    pub fn selected_row(&self) -> Option<T> {
        self.rows.get(self.selected).copied()
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The filter in force, as typed when it parsed.
    pub fn applied(&self) -> &str {
        &self.applied
    }

    /// Parses the typed filter with the view's fields; on error the previous query stays.
    pub fn set_input(&mut self, input: String, fields: &[Field]) {
        match Query::parse(&input, fields) {
            Ok(query) => {
                self.query = query;
                self.applied = input.trim().to_owned();
                self.input_error = None;
            }
            Err(error) => self.input_error = Some(error),
        }
        self.input = input;
    }

    /// Sorts the rows in scope; `compare` is the view's order for the current column, ascending.
    pub fn resort(&mut self, mut rows: Vec<T>, compare: impl Fn(T, T) -> Ordering) {
        if self.descending {
            rows.sort_by(|&a, &b| compare(b, a));
        } else {
            rows.sort_by(|&a, &b| compare(a, b));
        }
        self.sorted = rows;
    }

    /// Re-applies the filter to the sorted rows, keeping the selected row selected if it stays.
    pub fn refilter(&mut self, keep: impl Fn(T) -> bool + Sync)
    where
        T: Send + Sync,
    {
        let selected = self.selected_row();
        let mut rows = std::mem::take(&mut self.rows);
        rows.clear();
        // A million rows are halved between two cores: the first half here, the second beside
        // it, joined in order.
        let half = self.sorted.len() / 2;
        if half >= PARALLEL_FROM / 2 {
            let (first, second) = self.sorted.split_at(half);
            let keep = &keep;
            let later = std::thread::scope(|scope| {
                let later = scope.spawn(move || {
                    second
                        .iter()
                        .copied()
                        .filter(|&row| keep(row))
                        .collect::<Vec<T>>()
                });
                rows.extend(first.iter().copied().filter(|&row| keep(row)));
                later.join()
            });
            match later {
                Ok(later) => rows.extend(later),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        } else {
            rows.extend(self.sorted.iter().copied().filter(|&row| keep(row)));
        }
        self.rows = rows;
        // A row the filter took away gives the selection back to the top, as a new list would.
        self.selected = selected
            .and_then(|s| self.rows.iter().position(|&r| r == s))
            .unwrap_or(0);
    }

    /// Replaces the rows outright (views whose rows are built, not filtered).
    pub fn set_rows(&mut self, rows: Vec<T>) {
        let selected = self.selected_row();
        self.rows = rows;
        self.selected = selected
            .and_then(|s| self.rows.iter().position(|&r| r == s))
            .unwrap_or(self.selected)
            .min(self.rows.len().saturating_sub(1));
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.rows.is_empty() {
            self.selected = 0;
            return;
        }
        let last = self.rows.len() - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    pub fn select(&mut self, position: usize) {
        self.selected = position.min(self.rows.len().saturating_sub(1));
    }

    /// The offset that scrolls just enough to keep the selection in a window of `height`
    /// rows; the frame that uses it reports it back.
    pub fn offset_for(&self, height: usize) -> usize {
        if height == 0 {
            return self.offset;
        }
        let max_offset = self.rows.len().saturating_sub(height);
        let offset = if self.selected < self.offset {
            self.selected
        } else if self.selected >= self.offset + height {
            self.selected + 1 - height
        } else {
            self.offset
        };
        offset.min(max_offset)
    }

    /// The rows on screen from `offset`: `offset..offset + height`.
    pub fn window(&self, offset: usize, height: usize) -> &[T] {
        let end = (offset + height).min(self.rows.len());
        &self.rows[offset.min(end)..end]
    }
}

impl ListState<u32> {
    /// Takes rows already in the column's ascending order (ties broken, so every row has one
    /// place): descending is that order read backwards.
    pub fn set_sorted(&mut self, mut ascending: Vec<u32>) {
        if self.descending {
            ascending.reverse();
        }
        self.sorted = ascending;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[u32]) -> ListState<u32> {
        let mut list = ListState::new(0, false);
        list.resort(values.to_vec(), |a, b| a.cmp(&b));
        list.refilter(|_| true);
        list
    }

    #[test]
    fn sorts_both_ways() {
        let mut l = list(&[3, 1, 2]);
        assert_eq!(l.rows, [1, 2, 3]);
        l.descending = true;
        l.resort(vec![3, 1, 2], |a, b| a.cmp(&b));
        l.refilter(|_| true);
        assert_eq!(l.rows, [3, 2, 1]);
    }

    #[test]
    fn sorted_rows_both_ways() {
        let mut l: ListState<u32> = ListState::new(0, false);
        l.set_sorted(vec![1, 2, 0]);
        l.refilter(|_| true);
        assert_eq!(l.rows, [1, 2, 0]);
        l.descending = true;
        l.set_sorted(vec![1, 2, 0]);
        l.refilter(|_| true);
        assert_eq!(l.rows, [0, 2, 1]);
    }

    #[test]
    fn filtering_keeps_the_selected_row_when_it_stays() {
        let mut l = list(&[1, 2, 3, 4, 5]);
        l.select(3); // 4
        l.refilter(|r| r % 2 == 0);
        assert_eq!(l.rows, [2, 4]);
        assert_eq!(l.selected_row(), Some(4));
        l.refilter(|r| r == 1 || r == 5);
        assert_eq!(l.selected_row(), Some(1), "back to the top when it goes");
        l.refilter(|_| false);
        assert_eq!(l.selected_row(), None);
        l.move_by(1);
        assert_eq!(l.selected, 0);
    }

    #[test]
    fn moving_stops_at_the_ends_and_the_window_follows() {
        let mut l = list(&(0..100).collect::<Vec<_>>());
        l.move_by(-5);
        assert_eq!(l.selected, 0);
        l.move_by(1_000);
        assert_eq!(l.selected, 99);
        l.offset = l.offset_for(10);
        assert_eq!(l.offset, 90);
        assert_eq!(l.window(l.offset, 10), &(90..100).collect::<Vec<_>>()[..]);
        l.select(5);
        l.offset = l.offset_for(10);
        assert_eq!(l.offset, 5);
        l.refilter(|r| r < 3);
        assert_eq!(l.offset_for(10), 0, "offset shrinks with the rows");
    }
}
