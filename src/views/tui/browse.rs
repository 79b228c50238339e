//! Browsing: the view on screen, each list view's rows (sorted once, filtered per keystroke),
//! the Instances view's drill-down scope with the crumbs back, the Drift view's folds, and the
//! Overview's selected source (by name, so it stays on the source as the list regroups). It is handed the evaluated fleet and the queue (and which
//! entries failed), and knows
//! nothing of marks, dialogs or the app.

use std::collections::HashSet;

use super::action::View;
use super::command;
use super::layout::Layout;
use super::sources::{self, SourceRow};
use super::table::{Column, ListState};
use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, LineageIdx};
use crate::core::model::SourceStatus;
use crate::query::data::{self, Data};
use crate::query::filter::Field;
use crate::query::subject::{
    DRIFT_FIELDS, DriftRow, DriftSubject, IMAGE_FIELDS, INSTANCE_FIELDS, ImageSubject,
    InstanceFilter, QUEUE_FIELDS, QueueSubject,
};
use crate::queue::Queue;

/// Which instances the Instances view lists: all, or those under what was drilled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceScope {
    All,
    Image(ImageIdx),
    Lineage(LineageIdx),
    Group(GroupIdx),
}

/// What `R` would queue: the instances, what they are in words, and the group when it is one.
pub struct Replaceable {
    pub instances: Vec<InstanceIdx>,
    pub what: String,
    pub group: Option<GroupIdx>,
}

/// The Drift view's section of groups with version skew or template drift: those the filter
/// keeps, template drift first, and how many of them are in each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSection {
    pub groups: Vec<GroupIdx>,
    /// How many are in template drift: their template launches a non-golden image.
    pub drift: usize,
    /// How many have version skew: their members run more than one image.
    pub skew: usize,
    /// Their members, all told.
    pub members: usize,
}

impl GroupSection {
    /// "3 in template drift, 2 with version skew": what the header row and the title say.
    pub fn counts(&self) -> String {
        let mut parts = Vec::new();
        if self.drift > 0 {
            parts.push(format!("{} in template drift", self.drift));
        }
        if self.skew > 0 {
            parts.push(format!("{} with version skew", self.skew));
        }
        parts.join(", ")
    }
}

/// Where the Instances view was before a drill-down, so Esc can go back.
#[derive(Debug, Clone)]
struct Crumb {
    view: View,
    scope: InstanceScope,
    input: String,
    selected: usize,
}

pub struct Browse {
    pub view: View,
    pub images: ListState<ImageIdx>,
    pub instances: ListState<InstanceIdx>,
    pub instance_scope: InstanceScope,
    pub drift: ListState<DriftRow>,
    /// The Drift view's groups, under their header row.
    pub drift_groups: GroupSection,
    /// The Drift view's lineages whose images are folded away.
    folded_lineages: HashSet<LineageIdx>,
    /// Whether the Drift view's groups are folded away under their header.
    groups_folded: bool,
    pub queue_rows: ListState<usize>,
    /// The queued instances whose last attempt failed, for the Queue view's `failed`.
    failed: HashSet<String>,
    /// The Overview's selected source, by name: it moves with its source as the list
    /// regroups (a failure goes to the top of its cloud). `None`: the list's first.
    selected_source: Option<String>,
    /// The first line shown of the Overview's source list, which each frame sets.
    pub source_offset: usize,
    crumbs: Vec<Crumb>,
}

impl Default for Browse {
    fn default() -> Browse {
        Browse {
            view: View::Overview,
            images: ListState::new(data::IMAGE_VERDICT, true),
            instances: ListState::new(data::INSTANCE_VERDICT, true),
            instance_scope: InstanceScope::All,
            drift: ListState::new(0, false),
            drift_groups: GroupSection::default(),
            folded_lineages: HashSet::new(),
            groups_folded: false,
            queue_rows: ListState::new(0, false),
            failed: HashSet::new(),
            selected_source: None,
            source_offset: 0,
            crumbs: Vec::new(),
        }
    }
}

impl Browse {
    /// Every list again, for a fleet evaluated anew; `replaced` when it is a new inventory,
    /// whose indices mean nothing to the old scope and crumbs.
    pub fn rebuild_all(&mut self, data: &Data, queue: &Queue, replaced: bool) {
        if replaced {
            self.instance_scope = InstanceScope::All;
            self.crumbs.clear();
            self.folded_lineages.clear();
        }
        self.resort_images(data);
        self.resort_instances(data);
        self.rebuild_drift(data);
        self.rebuild_queue_rows(data, queue);
    }

    fn resort_images(&mut self, data: &Data) {
        let all = (0..data.inventory.images().len() as ImageIdx).collect();
        let column = self.images.sort;
        self.images
            .resort(all, |a, b| data.compare_images(column, a, b));
        self.refilter_images(data);
    }

    fn refilter_images(&mut self, data: &Data) {
        let query = self.images.query().clone();
        self.images
            .refilter(|i| query.is_empty() || query.matches(&ImageSubject { data, image: i }));
    }

    fn scoped_instances(&self, data: &Data) -> Vec<InstanceIdx> {
        let inv = &data.inventory;
        match self.instance_scope {
            InstanceScope::All => (0..inv.instances().len() as InstanceIdx).collect(),
            InstanceScope::Image(i) => inv.image(i).instances.clone(),
            InstanceScope::Lineage(l) => data.instances_in_lineage(l),
            InstanceScope::Group(g) => inv.group(g).members.clone(),
        }
    }

    fn resort_instances(&mut self, data: &Data) {
        let order = data.instance_order(self.instances.sort);
        let sorted = if self.instance_scope == InstanceScope::All {
            order.to_vec()
        } else {
            // A drill-down keeps the whole fleet's order: one pass, no sort.
            let mut in_scope = vec![false; order.len()];
            for i in self.scoped_instances(data) {
                in_scope[i as usize] = true;
            }
            order
                .iter()
                .copied()
                .filter(|&i| in_scope[i as usize])
                .collect()
        };
        self.instances.set_sorted(sorted);
        self.refilter_instances(data);
    }

    fn refilter_instances(&mut self, data: &Data) {
        // No filter: every row in scope, copied without a question per row (a sort or a
        // drill-down at a million instances).
        if self.instances.query().is_empty() {
            return self.instances.refilter(|_| true);
        }
        let filter = InstanceFilter::new(data, self.instances.query());
        let images = data.inventory.images_of_instances();
        self.instances
            .refilter(|i| filter.keep_on(data, i, images[i as usize]));
    }

    fn rebuild_drift(&mut self, data: &Data) {
        let inv = &data.inventory;
        let query = self.drift.query().clone();
        let mut rows = Vec::new();
        for &lineage in &data.lineages_by_lag {
            if !query.matches(&DriftSubject {
                data,
                row: DriftRow::Lineage(lineage),
            }) {
                continue;
            }
            rows.push(DriftRow::Lineage(lineage));
            if self.folded_lineages.contains(&lineage) {
                continue;
            }
            rows.extend(
                inv.lineage(lineage)
                    .images
                    .iter()
                    .rev()
                    .map(|&i| DriftRow::Image(i)),
            );
        }
        let mut groups: Vec<GroupIdx> = (0..inv.groups().len() as GroupIdx)
            .filter(|&g| {
                let eval = data.eval.group_eval(g);
                eval.skew() || eval.drift()
            })
            .filter(|&g| {
                query.matches(&DriftSubject {
                    data,
                    row: DriftRow::Group(g),
                })
            })
            .collect();
        // Template drift first (an apply's template step is theirs), then version skew.
        let eval = &data.eval;
        groups.sort_by(|&a, &b| {
            eval.group_eval(b)
                .drift()
                .cmp(&eval.group_eval(a).drift())
                .then_with(|| inv.group(a).key.cmp(&inv.group(b).key))
        });
        if !groups.is_empty() {
            rows.push(DriftRow::Groups);
            if !self.groups_folded {
                rows.extend(groups.iter().map(|&g| DriftRow::Group(g)));
            }
        }
        self.drift_groups = GroupSection {
            drift: groups
                .iter()
                .filter(|&&g| eval.group_eval(g).drift())
                .count(),
            skew: groups
                .iter()
                .filter(|&&g| eval.group_eval(g).skew())
                .count(),
            members: groups.iter().map(|&g| inv.group(g).members.len()).sum(),
            groups,
        };
        self.drift.set_rows(rows);
    }

    /// Whether the Drift view shows this lineage folded (its images hidden).
    pub fn is_folded(&self, lineage: LineageIdx) -> bool {
        self.folded_lineages.contains(&lineage)
    }

    pub fn groups_folded(&self) -> bool {
        self.groups_folded
    }

    /// `z` in the Drift view: folds or unfolds the selected lineage's images (from the lineage
    /// or one of its images), or the groups (from their header or a group); what was folded
    /// stays selected.
    pub fn fold(&mut self, data: &Data) {
        if self.view != View::Drift {
            return;
        }
        let folded = match self.drift.selected_row() {
            Some(DriftRow::Lineage(l)) => {
                if !self.folded_lineages.remove(&l) {
                    self.folded_lineages.insert(l);
                }
                DriftRow::Lineage(l)
            }
            Some(DriftRow::Image(i)) => match data.inventory.image(i).lineage {
                Some(l) => {
                    self.folded_lineages.insert(l);
                    DriftRow::Lineage(l)
                }
                None => return,
            },
            Some(DriftRow::Groups | DriftRow::Group(_)) => {
                self.groups_folded = !self.groups_folded;
                DriftRow::Groups
            }
            None => return,
        };
        self.rebuild_drift(data);
        self.select_drift_row(folded);
    }

    /// `Z` in the Drift view: folds every lineage, or opens them all when all are folded; the
    /// groups are then a page away.
    pub fn fold_all(&mut self, data: &Data) {
        if self.view != View::Drift {
            return;
        }
        if data
            .lineages_by_lag
            .iter()
            .all(|l| self.folded_lineages.contains(l))
        {
            self.folded_lineages.clear();
        } else {
            self.folded_lineages
                .extend(data.lineages_by_lag.iter().copied());
        }
        let selected = self.drift.selected_row();
        self.rebuild_drift(data);
        // An image folded away gives the selection to its lineage.
        if let Some(DriftRow::Image(i)) = selected
            && let Some(l) = data.inventory.image(i).lineage
            && self.folded_lineages.contains(&l)
        {
            self.select_drift_row(DriftRow::Lineage(l));
        }
    }

    fn select_drift_row(&mut self, row: DriftRow) {
        if let Some(position) = self.drift.rows.iter().position(|&r| r == row) {
            self.drift.select(position);
        }
    }

    pub fn rebuild_queue_rows(&mut self, data: &Data, queue: &Queue) {
        let entries = &queue.entries;
        let query = self.queue_rows.query().clone();
        let mut rows: Vec<usize> = (0..entries.len())
            .filter(|&e| {
                query.is_empty()
                    || query.matches(&QueueSubject {
                        data,
                        entry: &entries[e],
                        failed: self.failed.contains(&entries[e].instance_id),
                    })
            })
            .collect();
        let column = self.queue_rows.sort;
        rows.sort_by(|&a, &b| {
            let (ea, eb) = (&entries[a], &entries[b]);
            let primary = match column {
                0 => std::cmp::Ordering::Equal,
                1 => ea.name.cmp(&eb.name),
                2 => ea.cloud.cmp(&eb.cloud),
                3 => ea.verdict.cmp(&eb.verdict),
                4 => ea.strategy.label().cmp(eb.strategy.label()),
                5 => eb.strategy.executable().cmp(&ea.strategy.executable()),
                6 => ea.target_image.cmp(&eb.target_image),
                _ => ea.reason.cmp(&eb.reason),
            };
            let order = primary.then_with(|| ea.instance_id.cmp(&eb.instance_id));
            if self.queue_rows.descending {
                order.reverse()
            } else {
                order
            }
        });
        self.queue_rows.set_rows(rows);
    }

    /// Which entries failed changed: a filter on it lists them anew.
    pub fn set_failed(&mut self, failed: HashSet<String>, data: &Data, queue: &Queue) {
        self.failed = failed;
        if !self.queue_rows.query().is_empty() {
            self.rebuild_queue_rows(data, queue);
        }
    }

    /// The scroll offset of the current view's list, which each frame sets.
    pub fn list_offset_mut(&mut self) -> Option<&mut usize> {
        match self.view {
            View::Overview => Some(&mut self.source_offset),
            View::Images => Some(&mut self.images.offset),
            View::Instances => Some(&mut self.instances.offset),
            View::Drift => Some(&mut self.drift.offset),
            View::Queue => Some(&mut self.queue_rows.offset),
        }
    }

    pub fn move_selection(&mut self, delta: isize, sources: &[SourceStatus]) {
        match self.view {
            View::Overview => {
                let order = sources::order(sources);
                let at = self
                    .selected_source(sources)
                    .and_then(|s| order.iter().position(|&o| o == s))
                    .unwrap_or(0);
                let to = at
                    .saturating_add_signed(delta)
                    .min(order.len().saturating_sub(1));
                self.selected_source = order.get(to).map(|&s| sources[s].name.clone());
            }
            View::Images => self.images.move_by(delta),
            View::Instances => self.instances.move_by(delta),
            View::Drift => self.drift.move_by(delta),
            View::Queue => self.queue_rows.move_by(delta),
        }
    }

    pub fn columns_of(view: View) -> &'static [Column] {
        super::layout::columns_of(view)
    }

    /// Sorts by the next (or previous) column; `Err` says why this view does not.
    pub fn change_sort(&mut self, step: isize, data: &Data, queue: &Queue) -> Result<(), String> {
        let count = Browse::columns_of(self.view).len();
        let list_sort = match self.view {
            View::Images => &mut self.images.sort,
            View::Instances => &mut self.instances.sort,
            View::Queue => &mut self.queue_rows.sort,
            View::Overview | View::Drift => {
                return Err("this view keeps its own order: most lagging lineage first".to_owned());
            }
        };
        *list_sort = (*list_sort as isize + step).rem_euclid(count as isize) as usize;
        self.apply_sort(data, queue);
        Ok(())
    }

    pub fn reverse_sort(&mut self, data: &Data, queue: &Queue) {
        match self.view {
            View::Images => self.images.descending = !self.images.descending,
            View::Instances => self.instances.descending = !self.instances.descending,
            View::Queue => self.queue_rows.descending = !self.queue_rows.descending,
            View::Overview | View::Drift => return,
        }
        self.apply_sort(data, queue);
    }

    fn apply_sort(&mut self, data: &Data, queue: &Queue) {
        match self.view {
            View::Images => self.resort_images(data),
            View::Instances => self.resort_instances(data),
            View::Queue => self.rebuild_queue_rows(data, queue),
            View::Overview | View::Drift => {}
        }
    }

    /// `:sort <column> [asc|desc]`.
    pub fn sort_by_name(
        &mut self,
        name: &str,
        direction: Option<&str>,
        data: &Data,
        queue: &Queue,
    ) -> Result<(), String> {
        let columns = Browse::columns_of(self.view);
        let position = columns
            .iter()
            .position(|c| c.title.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<String> = columns.iter().map(|c| c.title.to_lowercase()).collect();
                format!("no column {name:?} here; try {}", names.join(", "))
            })?;
        let descending = match direction {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("{other:?}: say asc or desc")),
        };
        match self.view {
            View::Images => (self.images.sort, self.images.descending) = (position, descending),
            View::Instances => {
                (self.instances.sort, self.instances.descending) = (position, descending)
            }
            View::Queue => {
                (self.queue_rows.sort, self.queue_rows.descending) = (position, descending)
            }
            View::Overview | View::Drift => return Err("this view does not sort".to_owned()),
        }
        self.apply_sort(data, queue);
        Ok(())
    }

    // ---- filter -----------------------------------------------------------------------------

    pub fn filter_input(&self) -> Option<&str> {
        match self.view {
            View::Overview => None,
            View::Images => Some(&self.images.input),
            View::Instances => Some(&self.instances.input),
            View::Drift => Some(&self.drift.input),
            View::Queue => Some(&self.queue_rows.input),
        }
    }

    pub fn filter_error(&self) -> Option<&str> {
        match self.view {
            View::Overview => None,
            View::Images => self.images.input_error.as_deref(),
            View::Instances => self.instances.input_error.as_deref(),
            View::Drift => self.drift.input_error.as_deref(),
            View::Queue => self.queue_rows.input_error.as_deref(),
        }
    }

    /// Sets the current view's filter and narrows its rows: this is the per-keystroke path.
    pub fn set_filter(&mut self, text: String, data: &Data, queue: &Queue) {
        match self.view {
            View::Overview => {}
            View::Images => {
                self.images.set_input(text, IMAGE_FIELDS);
                self.refilter_images(data);
            }
            View::Instances => {
                self.instances.set_input(text, INSTANCE_FIELDS);
                self.refilter_instances(data);
            }
            View::Drift => {
                self.drift.set_input(text, DRIFT_FIELDS);
                self.rebuild_drift(data);
            }
            View::Queue => {
                self.queue_rows.set_input(text, QUEUE_FIELDS);
                self.rebuild_queue_rows(data, queue);
            }
        }
    }

    /// A committed filter that does not parse gives way to the one committed before it, and
    /// the status says why: what is applied is always what the title shows.
    pub fn keep_previous_on_error(
        &mut self,
        previous: String,
        data: &Data,
        queue: &Queue,
    ) -> Result<(), String> {
        let Some(error) = self.filter_error().map(str::to_owned) else {
            return Ok(());
        };
        self.set_filter(previous, data, queue);
        let kept = match self.filter_input() {
            Some(text) if !text.is_empty() => format!("kept /{text}"),
            _ => "no filter applied".to_owned(),
        };
        Err(format!("filter: {error}; {kept}"))
    }

    /// The example `?` shows for a field in a view: the field's own, unless that view's rows
    /// would not match it.
    pub fn filter_example(view: View, field: Field) -> &'static str {
        match (view, field) {
            (View::Images, Field::Tag) => "tag:build",
            _ => field.example(),
        }
    }

    pub fn fields_of(view: View) -> &'static [Field] {
        match view {
            View::Overview => &[],
            View::Images => IMAGE_FIELDS,
            View::Instances => INSTANCE_FIELDS,
            View::Drift => DRIFT_FIELDS,
            View::Queue => QUEUE_FIELDS,
        }
    }

    /// Tab in the filter completes a field name of the last word; returns the candidates to
    /// show when several remain.
    pub fn complete_filter_field(&mut self, data: &Data, queue: &Queue) -> Option<String> {
        let text = self.filter_input()?.to_owned();
        let start = text.rfind(' ').map_or(0, |p| p + 1);
        let word = &text[start..];
        let (bang, stem) = word
            .strip_prefix('!')
            .map_or(("", word), |rest| ("!", rest));
        if stem.contains(':') {
            return None;
        }
        let fields: Vec<Field> = Browse::fields_of(self.view)
            .iter()
            .copied()
            .filter(|f| f.as_str().starts_with(stem))
            .collect();
        let names: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
        match fields.as_slice() {
            [] => None,
            [one] => {
                // A bare word takes no value.
                let colon = if one.is_flag() { "" } else { ":" };
                let name = one.as_str();
                self.set_filter(
                    format!("{}{bang}{name}{colon}", &text[..start]),
                    data,
                    queue,
                );
                None
            }
            _ => {
                let many = names.as_slice();
                let common = command::common_prefix(many);
                self.set_filter(format!("{}{bang}{common}", &text[..start]), data, queue);
                Some(format!("fields: {}", many.join(" ")))
            }
        }
    }

    pub fn drill_down(&mut self, data: &Data) {
        let scope = match self.view {
            View::Images => self.images.selected_row().map(InstanceScope::Image),
            View::Drift => self.drift.selected_row().and_then(|row| match row {
                DriftRow::Lineage(l) => Some(InstanceScope::Lineage(l)),
                DriftRow::Image(i) => Some(InstanceScope::Image(i)),
                DriftRow::Groups => None,
                DriftRow::Group(g) => Some(InstanceScope::Group(g)),
            }),
            _ => None,
        };
        let Some(scope) = scope else {
            return;
        };
        self.crumbs.push(Crumb {
            view: self.view,
            scope: self.instance_scope,
            input: self.instances.input.clone(),
            selected: self.instances.selected,
        });
        self.view = View::Instances;
        self.instance_scope = scope;
        self.instances.set_input(String::new(), INSTANCE_FIELDS);
        self.instances.selected = 0;
        self.instances.offset = 0;
        self.resort_instances(data);
    }

    /// Esc: back out of a drill-down, else clear the filter; `false` when neither was there
    /// (the app then clears the marks).
    pub fn back(&mut self, data: &Data, queue: &Queue) -> bool {
        if self.view == View::Instances
            && let Some(crumb) = self.crumbs.pop()
        {
            self.instance_scope = crumb.scope;
            self.instances.set_input(crumb.input, INSTANCE_FIELDS);
            self.resort_instances(data);
            self.instances.select(crumb.selected);
            self.view = crumb.view;
            return true;
        }
        if self.filter_input().is_some_and(|f| !f.is_empty()) {
            self.set_filter(String::new(), data, queue);
            return true;
        }
        false
    }

    /// What `y` copies: the full id of the selected row.
    pub fn selected_id(&self, data: &Data, queue: &Queue) -> Option<String> {
        match self.view {
            View::Overview => None,
            View::Images => self
                .images
                .selected_row()
                .map(|i| data.inventory.image(i).image.key.clone()),
            View::Instances => self
                .instances
                .selected_row()
                .map(|i| data.instance(i).id.to_string()),
            View::Drift => self.drift.selected_row().and_then(|row| match row {
                DriftRow::Lineage(l) => Some(data.inventory.lineage(l).name.clone()),
                DriftRow::Image(i) => Some(data.inventory.image(i).image.key.clone()),
                DriftRow::Groups => None,
                DriftRow::Group(g) => Some(data.inventory.group(g).key.clone()),
            }),
            View::Queue => self
                .queue_rows
                .selected_row()
                .map(|e| queue.entries[e].instance_id.clone()),
        }
    }

    /// The Overview's selected source, as a position in `sources`: the one selected by name,
    /// else (none yet, or it is gone) the first the list shows.
    pub fn selected_source(&self, sources: &[SourceStatus]) -> Option<usize> {
        self.selected_source
            .as_deref()
            .and_then(|name| sources.iter().position(|s| s.name == name))
            .or_else(|| sources::order(sources).first().copied())
    }

    pub fn click(&mut self, layout: &Layout, column: u16, row: u16, sources: &[SourceStatus]) {
        let tabs = layout.tabs;
        if row == tabs.y && column >= tabs.x && column < tabs.x + tabs.width {
            if let Some(view) = super::layout::tab_at(column - tabs.x) {
                self.view = view;
            }
            return;
        }
        let rows = layout.rows;
        if row < rows.y || row >= rows.y + rows.height || column < rows.x {
            return;
        }
        let position = usize::from(row - rows.y);
        match self.view {
            View::Overview => {
                // A cloud's header selects nothing.
                if let Some(&SourceRow::Source(s)) =
                    sources::rows(sources).get(self.source_offset + position)
                {
                    self.selected_source = Some(sources[s].name.clone());
                }
            }
            View::Images => self.images.select(self.images.offset + position),
            View::Instances => self.instances.select(self.instances.offset + position),
            View::Drift => self.drift.select(self.drift.offset + position),
            View::Queue => self.queue_rows.select(self.queue_rows.offset + position),
        }
    }

    /// Whether the selected row has a detail pane.
    pub fn has_detail(&self, sources: &[SourceStatus]) -> bool {
        match self.view {
            View::Overview => self.selected_source(sources).is_some(),
            View::Images => self.images.selected_row().is_some(),
            View::Instances => self.instances.selected_row().is_some(),
            View::Drift => self.drift.selected_row().is_some(),
            View::Queue => self.queue_rows.selected_row().is_some(),
        }
    }

    pub fn instance_scope_label(&self, data: &Data) -> Option<String> {
        match self.instance_scope {
            InstanceScope::All => None,
            InstanceScope::Image(i) => Some(format!("on image {}", data.image_label(i))),
            InstanceScope::Lineage(l) => {
                Some(format!("in lineage {}", data.inventory.lineage(l).name))
            }
            InstanceScope::Group(g) => Some(format!("in group {}", data.group_label(g))),
        }
    }

    /// Everything worth replacing under the selected image, lineage or group (the image of the
    /// selected instance).
    pub fn replaceable_under_selection(&self, data: &Data) -> Option<Replaceable> {
        let mut group = None;
        let (targets, what) = match self.view {
            View::Images => match self.images.selected_row() {
                Some(i) => (
                    data.replaceable_on_image(i).collect(),
                    format!("image {}", data.image_label(i)),
                ),
                None => return None,
            },
            View::Instances => match self.instances.selected_row() {
                Some(i) => {
                    let image = data.inventory.image_of(i);
                    (
                        data.replaceable_on_image(image).collect(),
                        format!("image {}", data.image_label(image)),
                    )
                }
                None => return None,
            },
            View::Drift => match self.drift.selected_row() {
                Some(DriftRow::Lineage(l)) => (
                    data.inventory
                        .lineage(l)
                        .images
                        .iter()
                        .flat_map(|&i| data.replaceable_on_image(i))
                        .collect(),
                    format!("lineage {}", data.inventory.lineage(l).name),
                ),
                Some(DriftRow::Image(i)) => (
                    data.replaceable_on_image(i).collect(),
                    format!("image {}", data.image_label(i)),
                ),
                Some(DriftRow::Group(g)) => {
                    group = Some(g);
                    let members = &data.inventory.group(g).members;
                    let mut images: Vec<ImageIdx> = members
                        .iter()
                        .map(|&m| data.inventory.image_of(m))
                        .collect();
                    images.sort_unstable();
                    images.dedup();
                    (
                        images
                            .into_iter()
                            .flat_map(|i| data.replaceable_on_image(i))
                            .filter(|m| data.inventory.group_of(*m) == Some(g))
                            .collect(),
                        format!("group {}", data.group_label(g)),
                    )
                }
                Some(DriftRow::Groups) | None => return None,
            },
            View::Overview | View::Queue => return None,
        };
        Some(Replaceable {
            instances: targets,
            what,
            group,
        })
    }
}
