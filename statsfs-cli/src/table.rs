//! What `top` shows, in every mode: the rows of one source (or of one stat across the
//! source's children), with totals, rates and shares, filtered and sorted. The terminal
//! view and the batch modes draw the same rows.

use regex::Regex;

use super::args::{Sort, ViewArgs};
use super::error::CliError;
use super::model::Model;
use statsfs_core::Kind;

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// The stat's name (`exits`), or in the children view the child's name (`vcpu0`); at
    /// the top of a mount, `<root>/<stat>`.
    pub name: String,
    /// The value now, less the baseline for counters after a reset.
    pub total: i128,
    /// Change per second since the previous refresh ([`rate`]); `None` for gauges,
    /// flags and peaks, and for a counter that went down since (a source left, a reset).
    pub rate: Option<f64>,
    /// Percent of the sum of the shown counters' totals of the same unit and scale
    /// (kvm_stat's `%Total`: counts are shared among counts, bytes among bytes); `None`
    /// for gauges and peaks, whose values do not add up to a total.
    pub share: Option<f64>,
    /// The stat in the model.
    pub stat: usize,
}

/// Where the view is and what it leaves out; the state the keys of `top` change.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The source shown.
    pub node: usize,
    /// Show this stat per child of `node` instead of `node`'s stats.
    pub children_of: Option<String>,
    /// The order of the rows.
    pub sort: Sort,
    /// Only rows whose name matches.
    pub filter: Option<Regex>,
    /// Leave out rows whose total and rate are 0.
    pub skip_zeros: bool,
    /// The data at the last reset: totals of counters are counted from it.
    pub baseline: Option<Vec<u64>>,
}

impl View {
    /// The view the command line asks for, over `model`.
    pub fn new(args: &ViewArgs, model: &Model, label: &str) -> Result<View, CliError> {
        let node = match &args.source {
            Some(path) => model.find(path).ok_or_else(|| CliError::NoSource {
                wanted: path.clone(),
                label: label.to_owned(),
                have: model
                    .sources
                    .iter()
                    .skip(1)
                    .take(8)
                    .map(|s| s.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
            None => start(model),
        };
        let filter = args.filter.as_deref().map(filter).transpose()?;
        Ok(View {
            node,
            children_of: args.children.clone(),
            sort: args.sort,
            filter,
            skip_zeros: args.skip_zeros,
            baseline: None,
        })
    }

    /// The stats the rows are made of, before filtering: `(row name, stat)`.
    pub fn stats(&self, model: &Model) -> Vec<(String, usize)> {
        let src = &model.sources[self.node];
        if let Some(name) = &self.children_of {
            return src
                .children
                .iter()
                .filter_map(|&c| {
                    let stat = model.stat(c, name)?;
                    Some((model.sources[c].name().to_owned(), stat))
                })
                .collect();
        }
        if src.stats.is_empty() && self.node == 0 {
            // The top of a mount: each root's own stats, named by root.
            return src
                .children
                .iter()
                .flat_map(|&c| {
                    let root = model.sources[c].name();
                    model.sources[c]
                        .stats
                        .iter()
                        .map(move |&i| (format!("{root}/{}", model.stats[i].name), i))
                })
                .collect();
        }
        src.stats
            .iter()
            .map(|&i| (model.stats[i].name.clone(), i))
            .collect()
    }

    /// [`stats`](Self::stats) whose row name the filter matches.
    pub fn matching(&self, model: &Model) -> Vec<(String, usize)> {
        let mut stats = self.stats(model);
        if let Some(re) = &self.filter {
            stats.retain(|(name, _)| re.is_match(name));
        }
        stats
    }

    /// The rows: values in `now`, rates against `prev` taken `dt` seconds earlier.
    pub fn rows(&self, model: &Model, now: &[u64], prev: &[u64], dt: f64) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .matching(model)
            .into_iter()
            .map(|(name, stat)| {
                let value = model.number(stat, now);
                let total = match &self.baseline {
                    Some(base)
                        if counts(model.stats[stat].desc.kind) && base.len() == now.len() =>
                    {
                        value.wrapping_sub(model.number(stat, base))
                    }
                    _ => value,
                };
                let rate = (prev.len() == now.len())
                    .then(|| rate(model, stat, now, prev, dt))
                    .flatten();
                Row {
                    name,
                    total,
                    rate,
                    share: None,
                    stat,
                }
            })
            .filter(|r| !(self.skip_zeros && r.total == 0 && r.rate.unwrap_or(0.0) == 0.0))
            .collect();
        // Shares within each unit and scale: adding bytes to counts means nothing.
        let measure = |r: &Row| {
            let d = &model.stats[r.stat].desc;
            counts(d.kind).then_some((d.unit, d.scale))
        };
        let sums: Vec<_> = rows
            .iter()
            .map(|r| {
                let m = measure(r)?;
                Some(
                    rows.iter()
                        .filter(|o| measure(o) == Some(m))
                        .map(|o| o.total.max(0) as f64)
                        .sum::<f64>(),
                )
            })
            .collect();
        for (r, sum) in rows.iter_mut().zip(sums) {
            r.share = sum.map(|sum| {
                if sum > 0.0 {
                    r.total.max(0) as f64 * 100.0 / sum
                } else {
                    0.0
                }
            });
        }
        match self.sort {
            Sort::Total => rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name))),
            Sort::Rate => rows.sort_by(|a, b| {
                let rate = |r: &Row| r.rate.unwrap_or(f64::NEG_INFINITY);
                rate(b)
                    .total_cmp(&rate(a))
                    .then(b.total.cmp(&a.total))
                    .then(a.name.cmp(&b.name))
            }),
        }
        rows
    }

    /// The heading: where the view is.
    pub fn title(&self, model: &Model) -> String {
        let path = &model.sources[self.node].path;
        let path = if path.is_empty() { "/" } else { path };
        match &self.children_of {
            Some(stat) => format!("{path}: {stat} per child"),
            None => path.to_owned(),
        }
    }
}

/// The change per second of stat `stat` from `prev` to `now`, `dt` seconds apart: only
/// for what counts (counters, histograms' sample counts), and only when it did not go
/// down. A counter that went down did not count backwards: a source folded into it left,
/// or it was reset; that interval has no rate rather than a negative one. Gauges, flags
/// and peaks have none: a rate of a level is not what the column means.
pub(crate) fn rate(model: &Model, stat: usize, now: &[u64], prev: &[u64], dt: f64) -> Option<f64> {
    if dt.is_nan() || dt <= 0.0 || !counts(model.stats[stat].desc.kind) {
        return None;
    }
    let delta = model
        .number(stat, now)
        .checked_sub(model.number(stat, prev))?;
    (delta >= 0).then(|| delta as f64 / dt)
}

/// Counters and histograms count from a reset's baseline; gauges and peaks show what
/// they are (a baseline means nothing for them).
fn counts(kind: Kind) -> bool {
    matches!(kind, Kind::Cumulative) || kind.is_histogram()
}

/// Where a view starts: the source that was asked for. Read through a source's
/// `.tree.stats`, its ancestors are in the model too (its id is its whole path) but hold
/// nothing: the view starts below every source that holds no stats and has one child.
pub(crate) fn start(model: &Model) -> usize {
    let mut n = 0;
    loop {
        match model.sources[n].children.as_slice() {
            [one] if model.sources[n].stats.is_empty() => n = *one,
            _ => return n,
        }
    }
}

/// The `--filter` (or `f` key) regular expression, or an error of one line.
pub(crate) fn filter(text: &str) -> Result<Regex, CliError> {
    Regex::new(text).map_err(|source| CliError::Filter {
        pattern: text.to_owned(),
        source,
    })
}

/// A share as the table prints it (empty for gauges).
pub(crate) fn fmt_share(share: Option<f64>) -> String {
    share.map(|s| format!("{s:.1}")).unwrap_or_default()
}

/// A rate as the table prints it: an integer when it is one, else one decimal; empty
/// when there is none ([`rate`]).
pub(crate) fn fmt_rate(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r.fract() == 0.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statsfs_binary::StatDesc;

    fn model() -> Model {
        let mut m = Model::default();
        for (k, name) in ["exits", "halts", "vm1/exits", "vm2/exits"]
            .iter()
            .enumerate()
        {
            m.add_read("kvm", 0, &StatDesc::counter(*name).at(8 * k as u32));
        }
        m
    }

    fn view(m: &Model) -> View {
        View {
            node: start(m),
            children_of: None,
            sort: Sort::Total,
            filter: None,
            skip_zeros: false,
            baseline: None,
        }
    }

    #[test]
    fn totals_rates_shares_sort_filter_and_reset() {
        let m = model();
        let mut v = view(&m);
        let (prev, now) = ([10, 0, 4, 6], [30, 10, 14, 16]);
        let rows = v.rows(&m, &now, &prev, 2.0);
        let got: Vec<(&str, i128, Option<f64>)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.total, r.rate))
            .collect();
        assert_eq!(got, [("exits", 30, Some(10.0)), ("halts", 10, Some(5.0))]);
        assert_eq!(rows[0].share, Some(75.0));
        v.sort = Sort::Rate;
        v.filter = Some(Regex::new("^h").unwrap());
        assert_eq!(v.rows(&m, &now, &prev, 2.0)[0].name, "halts");
        v.filter = None;
        v.baseline = Some(prev.to_vec());
        let rows = v.rows(&m, &now, &prev, 2.0);
        assert_eq!((rows[0].name.as_str(), rows[0].total), ("exits", 20));
        v.skip_zeros = true;
        assert_eq!(
            v.rows(&m, &prev, &prev, 2.0).len(),
            0,
            "all zero after reset"
        );
    }

    /// A counter that went down (a folded source left, a rescan dropped a VM) has no rate
    /// for that interval, and levels (gauges, flags, peaks) have none at all: no
    /// negative rate is ever shown.
    #[test]
    fn no_negative_rates_and_no_rates_of_levels() {
        use statsfs_binary::StatDesc;
        use statsfs_core::{Kind, Scale, Unit};
        let mut m = Model::default();
        m.add_read("kvm", 0, &StatDesc::counter("exits"));
        let flag = StatDesc::new("running", Kind::Instant, Unit::Boolean, Scale::ONE, 1);
        m.add_read("kvm", 0, &flag.at(8));
        let v = view(&m);
        let rows = v.rows(&m, &[5, 0], &[9, 1], 1.0);
        assert!(rows.iter().all(|r| r.rate.is_none()), "{rows:?}");
        assert_eq!(fmt_rate(rows[0].rate), "");
        let rows = v.rows(&m, &[9, 1], &[5, 0], 1.0);
        let exits = rows.iter().find(|r| r.name == "exits").unwrap();
        let running = rows.iter().find(|r| r.name == "running").unwrap();
        assert_eq!((exits.rate, running.rate), (Some(4.0), None));
    }

    /// `%total` adds counts to counts and bytes to bytes, never one to the other.
    #[test]
    fn shares_are_within_one_unit() {
        use statsfs_binary::StatDesc;
        use statsfs_core::{Kind, Scale, Unit};
        let mut m = Model::default();
        m.add_read("io", 0, &StatDesc::counter("reads"));
        m.add_read("io", 0, &StatDesc::counter("writes").at(8));
        let bytes = StatDesc::new("read_bytes", Kind::Cumulative, Unit::Bytes, Scale::ONE, 1);
        m.add_read("io", 0, &bytes.at(16));
        let rows = view(&m).rows(&m, &[1, 3, 1 << 20], &[], 0.0);
        let share = |n: &str| rows.iter().find(|r| r.name == n).unwrap().share;
        assert_eq!(share("reads"), Some(25.0));
        assert_eq!(share("writes"), Some(75.0));
        assert_eq!(share("read_bytes"), Some(100.0));
    }

    #[test]
    fn a_stat_per_child() {
        let m = model();
        let mut v = view(&m);
        v.children_of = Some("exits".into());
        let rows = v.rows(&m, &[30, 10, 14, 16], &[], 0.0);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["vm2", "vm1"]);
        assert_eq!(v.title(&m), "kvm: exits per child");
    }
}
