//! The Overview's sources at estate scale (an organization's accounts, a management group's
//! subscriptions, a folder's projects: 200 of them): counted by where they stand, and listed
//! by cloud, each cloud under a header with its counts, failures first. Plain functions of the
//! sources' statuses, run per frame over a few hundred rows; nothing is kept.

use crate::core::model::{Cloud, SourceState, SourceStatus};

/// Where a source stands, in the order the list shows them: what needs a look first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    Failed,
    Incomplete,
    /// Collecting now.
    InProgress,
    Waiting,
    Done,
    Skipped,
}

impl Standing {
    pub const ALL: [Standing; 6] = [
        Standing::Failed,
        Standing::Incomplete,
        Standing::InProgress,
        Standing::Waiting,
        Standing::Done,
        Standing::Skipped,
    ];

    pub fn of(state: &SourceState) -> Standing {
        match state {
            SourceState::Failed { .. } => Standing::Failed,
            SourceState::Incomplete { .. } => Standing::Incomplete,
            SourceState::Collecting => Standing::InProgress,
            SourceState::Waiting => Standing::Waiting,
            SourceState::Done => Standing::Done,
            SourceState::Skipped { .. } => Standing::Skipped,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Standing::Failed => "failed",
            Standing::Incomplete => "incomplete",
            Standing::InProgress => "in progress",
            Standing::Waiting => "waiting",
            Standing::Done => "done",
            Standing::Skipped => "skipped",
        }
    }

    /// Whether the source has come to an end, whichever.
    pub fn ended(self) -> bool {
        !matches!(self, Standing::InProgress | Standing::Waiting)
    }
}

/// How many sources stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts([usize; Standing::ALL.len()]);

impl SourceCounts {
    pub fn of<'a>(sources: impl IntoIterator<Item = &'a SourceStatus>) -> SourceCounts {
        let mut counts = SourceCounts::default();
        for source in sources {
            counts.0[Standing::of(&source.state) as usize] += 1;
        }
        counts
    }

    pub fn get(&self, standing: Standing) -> usize {
        self.0[standing as usize]
    }

    pub fn total(&self) -> usize {
        self.0.iter().sum()
    }

    /// Failed, incomplete, done or skipped: what a progress bar counts as finished.
    pub fn ended(&self) -> usize {
        Standing::ALL
            .iter()
            .filter(|s| s.ended())
            .map(|&s| self.get(s))
            .sum()
    }

    /// The counts that are not zero, in the list's order: `[(Failed, 3), (Done, 190), …]`.
    pub fn present(&self) -> impl Iterator<Item = (Standing, usize)> + '_ {
        Standing::ALL
            .into_iter()
            .map(|s| (s, self.get(s)))
            .filter(|&(_, n)| n > 0)
    }
}

/// A line of the Overview's source list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRow {
    /// A cloud's header, with its sources' counts; only when more than one cloud is listed.
    Cloud(Cloud, SourceCounts),
    /// A source, by its position in the sources as the inventory keeps them (by name).
    Source(usize),
}

/// The list's lines: the sources by cloud, and within a cloud failed, incomplete, in progress,
/// waiting, done, skipped, each by name; a header over each cloud when there are several.
pub fn rows(sources: &[SourceStatus]) -> Vec<SourceRow> {
    let order = order(sources);
    let clouds = order
        .windows(2)
        .filter(|pair| sources[pair[0]].cloud != sources[pair[1]].cloud)
        .count()
        + 1;
    let mut rows = Vec::with_capacity(order.len() + if clouds > 1 { clouds } else { 0 });
    let mut start = 0;
    while start < order.len() {
        let cloud = sources[order[start]].cloud;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&s| sources[s].cloud == cloud)
                .count();
        if clouds > 1 {
            let counts = SourceCounts::of(order[start..end].iter().map(|&s| &sources[s]));
            rows.push(SourceRow::Cloud(cloud, counts));
        }
        rows.extend(order[start..end].iter().map(|&s| SourceRow::Source(s)));
        start = end;
    }
    rows
}

/// The sources in the list's order, without the headers: what the selection moves through.
pub fn order(sources: &[SourceStatus]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    // Stable: the inventory keeps them by name, and so does each group.
    order.sort_by_key(|&s| (sources[s].cloud, Standing::of(&sources[s].state)));
    order
}

/// The scroll offset that keeps row `selected` of `rows` in a window of `height` rows, moving
/// as little as it can from `offset`; a source at the top of its cloud brings its header in.
pub fn offset_for(rows: &[SourceRow], selected: usize, offset: usize, height: usize) -> usize {
    if height == 0 {
        return offset;
    }
    let max_offset = rows.len().saturating_sub(height);
    let top = match selected.checked_sub(1).map(|above| rows[above]) {
        Some(SourceRow::Cloud(..)) if height > 1 => selected - 1,
        _ => selected,
    };
    let offset = if top < offset {
        top
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    };
    offset.min(max_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, cloud: Cloud, state: SourceState) -> SourceStatus {
        SourceStatus {
            name: name.into(),
            cloud,
            account: None,
            state,
            pages: 0,
            instances: 0,
            expected_pages: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn clouds_in_order_failures_first_then_by_name() {
        let failed = || SourceState::Failed { error: "x".into() };
        let sources = vec![
            source("a", Cloud::Gcp, SourceState::Done),
            source("b", Cloud::Aws, SourceState::Done),
            source("c", Cloud::Aws, SourceState::Collecting),
            source("d", Cloud::Gcp, failed()),
            source("e", Cloud::Aws, SourceState::Waiting),
            source("f", Cloud::Aws, failed()),
            source(
                "g",
                Cloud::Aws,
                SourceState::Incomplete { error: "y".into() },
            ),
            source(
                "h",
                Cloud::Aws,
                SourceState::Skipped {
                    reason: "suspended".into(),
                },
            ),
        ];
        let names: Vec<String> = rows(&sources)
            .into_iter()
            .map(|row| match row {
                SourceRow::Cloud(cloud, counts) => format!("[{cloud} {}]", counts.total()),
                SourceRow::Source(s) => sources[s].name.clone(),
            })
            .collect();
        assert_eq!(
            names,
            ["[aws 6]", "f", "g", "c", "e", "b", "h", "[gcp 2]", "d", "a"]
        );
        let counts = SourceCounts::of(&sources);
        assert_eq!(counts.total(), 8);
        assert_eq!(counts.ended(), 6);
        assert_eq!(
            counts.present().collect::<Vec<_>>(),
            [
                (Standing::Failed, 2),
                (Standing::Incomplete, 1),
                (Standing::InProgress, 1),
                (Standing::Waiting, 1),
                (Standing::Done, 2),
                (Standing::Skipped, 1),
            ]
        );
        // One cloud: no header.
        let one = &sources[1..3];
        assert_eq!(rows(one), [SourceRow::Source(1), SourceRow::Source(0)]);
    }

    #[test]
    fn the_offset_keeps_the_selection_and_its_header_in_view() {
        let counts = SourceCounts::default();
        let mut rows = vec![SourceRow::Cloud(Cloud::Aws, counts)];
        rows.extend((0..10).map(SourceRow::Source));
        rows.push(SourceRow::Cloud(Cloud::Gcp, counts));
        rows.extend((10..20).map(SourceRow::Source));
        // 22 rows, 5 visible.
        assert_eq!(offset_for(&rows, 1, 0, 5), 0);
        assert_eq!(offset_for(&rows, 5, 0, 5), 1);
        assert_eq!(offset_for(&rows, 21, 0, 5), 17);
        assert_eq!(
            offset_for(&rows, 12, 17, 5),
            11,
            "the gcp header comes along"
        );
        assert_eq!(offset_for(&rows, 13, 17, 5), 13);
        assert_eq!(offset_for(&rows, 12, 0, 5), 8);
        assert_eq!(offset_for(&rows, 1, 10, 5), 0);
        assert_eq!(offset_for(&rows, 21, 50, 5), 17, "never past the end");
    }
}
