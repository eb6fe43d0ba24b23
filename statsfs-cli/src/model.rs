//! What the tool reads, whatever it reads it from: sources (a tree of `/`-separated
//! paths) holding stats, every stat a range of words in one data vector that each
//! refresh fills. Stats that no file holds (the sums over VMs of `statsfs kvm`) are
//! *folds*, computed after each refresh by the tree's aggregation rules.

use std::collections::HashMap;
use std::ops::Range;

use super::printable::printable;
use statsfs_binary::descriptor_of;
use statsfs_binary::StatDesc;
use statsfs_core::{value, Aggregation, Descriptor, ValueType};

/// One stat of one source.
#[derive(Debug, Clone)]
pub(crate) struct Stat {
    /// Index of its source in [`Model::sources`].
    pub source: usize,
    /// Its name within the source (`exits`).
    pub name: String,
    /// As the file describes it (the offset is the file's).
    pub desc: StatDesc,
    /// The statsfs descriptor of the same stat: how it reads as one number, how it folds.
    pub number: Descriptor,
    /// Its words in the data vector.
    pub words: Range<usize>,
    /// Computed by the tool from other stats, not read from a file.
    pub folded: bool,
}

/// One source: a directory of the tree.
#[derive(Debug, Clone)]
pub(crate) struct SourceInfo {
    /// The path from the top (`kvm/1234-5/vcpu0`); `""` for the top itself, which holds
    /// the roots (a mount) or the one file's sources.
    pub path: String,
    /// Its parent, `None` for the top.
    pub parent: Option<usize>,
    /// Its subordinates, in the order they were met.
    pub children: Vec<usize>,
    /// Its stats, in file order.
    pub stats: Vec<usize>,
}

impl SourceInfo {
    /// The last component of the path (`vcpu0`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

/// A fold computed after each refresh: `target`'s words from `inputs`' words.
#[derive(Debug, Clone)]
struct Fold {
    target: usize,
    inputs: Vec<usize>,
    aggregation: Aggregation,
}

/// The sources and stats of what is read, and where each stat's words are.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Every source; index 0 is the top (`""`).
    pub sources: Vec<SourceInfo>,
    /// Every stat.
    pub stats: Vec<Stat>,
    by_path: HashMap<String, usize>,
    folds: Vec<Fold>,
    words: usize,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            sources: vec![SourceInfo {
                path: String::new(),
                parent: None,
                children: Vec::new(),
                stats: Vec::new(),
            }],
            stats: Vec::new(),
            by_path: HashMap::from([(String::new(), 0)]),
            folds: Vec::new(),
            words: 0,
        }
    }
}

impl Model {
    /// The source at `path`, made (with its ancestors) if new. A path from a file or a
    /// region is foreign: it is kept [`printable`], as every output shows it.
    pub fn source(&mut self, path: &str) -> usize {
        let path = printable(path.trim_matches('/'));
        let path = path.as_ref();
        if let Some(&i) = self.by_path.get(path) {
            return i;
        }
        let parent = match path.rfind('/') {
            Some(cut) => self.source(&path[..cut]),
            None => 0,
        };
        let i = self.sources.len();
        self.sources.push(SourceInfo {
            path: path.to_owned(),
            parent: Some(parent),
            children: Vec::new(),
            stats: Vec::new(),
        });
        self.sources[parent].children.push(i);
        self.by_path.insert(path.to_owned(), i);
        i
    }

    /// The source at `path`, if there is one.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.by_path.get(path.trim_matches('/')).copied()
    }

    /// The number of data words, read and folded.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Adds a stat read from a file whose data block starts at word `base` of the data
    /// vector: a descriptor named `a/b/exits` goes into the source `<prefix>/a/b` as
    /// `exits`, its words where its descriptor's offset says (a file may leave gaps and
    /// order its stats as it likes). Returns their range.
    pub fn add_read(&mut self, prefix: &str, base: usize, desc: &StatDesc) -> Range<usize> {
        let (dir, name) = match desc.name.rfind('/') {
            Some(cut) => (&desc.name[..cut], &desc.name[cut + 1..]),
            None => ("", desc.name.as_str()),
        };
        let path = match (prefix.is_empty(), dir.is_empty()) {
            (_, true) => prefix.to_owned(),
            (true, false) => dir.to_owned(),
            (false, false) => format!("{prefix}/{dir}"),
        };
        let source = self.source(&path);
        let r = desc.words();
        self.push(
            source,
            name,
            desc.clone(),
            base + r.start..base + r.end,
            false,
        )
    }

    /// Makes room for a file's whole data block, `words` long from `base`: the next
    /// file's (or fold's) words come after it.
    pub fn reserve(&mut self, base: usize, words: usize) {
        self.words = self.words.max(base + words);
    }

    fn push(
        &mut self,
        source: usize,
        name: &str,
        desc: StatDesc,
        words: Range<usize>,
        folded: bool,
    ) -> Range<usize> {
        self.words = self.words.max(words.end);
        let name = printable(name);
        let name = name.as_ref();
        let mut basename = desc.clone();
        basename.name = name.to_owned();
        let number = descriptor_of(&basename);
        self.sources[source].stats.push(self.stats.len());
        self.stats.push(Stat {
            source,
            name: name.to_owned(),
            desc,
            number,
            words: words.clone(),
            folded,
        });
        words
    }

    /// Gives each stat the type `ty_of` says its name has (from a catalogue), where it
    /// says one: how its word reads as a number (a signed gauge reads negative).
    pub fn set_types(&mut self, ty_of: impl Fn(&str) -> Option<ValueType>) {
        for st in &mut self.stats {
            if let Some(ty) = ty_of(&st.name) {
                if !st.number.kind.is_histogram() {
                    st.number.ty = ty;
                }
            }
        }
    }

    /// The stat `name` of `source`, if it has one.
    pub fn stat(&self, source: usize, name: &str) -> Option<usize> {
        self.sources[source]
            .stats
            .iter()
            .copied()
            .find(|&i| self.stats[i].name == name)
    }

    /// Gives `source` the fold of every stat of its subtree, by name, that it does not
    /// hold itself: what an aggregate group of the tree would show
    /// ([`descriptor_of`] picks the rule: `max` for peaks, `sum` otherwise). Stats whose
    /// layouts differ (kind, unit, scale, size) are not folded together: the first one
    /// met decides.
    pub fn add_folds(&mut self, source: usize) {
        let mut order: Vec<String> = Vec::new();
        let mut inputs: HashMap<String, (StatDesc, Vec<usize>)> = HashMap::new();
        let mut stack: Vec<usize> = self.sources[source].children.clone();
        stack.reverse();
        while let Some(s) = stack.pop() {
            for &i in &self.sources[s].stats {
                let st = &self.stats[i];
                if st.folded {
                    continue;
                }
                let entry = inputs.entry(st.name.clone()).or_insert_with(|| {
                    order.push(st.name.clone());
                    (st.desc.clone(), Vec::new())
                });
                let d = &entry.0;
                if (d.kind, d.unit, d.scale, d.size)
                    == (st.desc.kind, st.desc.unit, st.desc.scale, st.desc.size)
                {
                    entry.1.push(i);
                }
            }
            stack.extend(self.sources[s].children.iter().rev());
        }
        for name in order {
            if self.stat(source, &name).is_some() {
                continue;
            }
            let (mut desc, ins) = inputs.remove(&name).expect("collected above");
            desc.name = name.clone();
            let aggregation = descriptor_of(&desc).aggregation;
            let words = self.words..self.words + usize::from(desc.size);
            let ty = self.stats[ins[0]].number.ty;
            self.push(source, &name, desc, words, true);
            let last = self.stats.len() - 1;
            self.stats[last].number.ty = ty;
            self.folds.push(Fold {
                target: self.stats.len() - 1,
                inputs: ins,
                aggregation,
            });
        }
    }

    /// Computes every fold into `data` (after the files' words are in).
    pub fn fold(&self, data: &mut [u64]) {
        for f in &self.folds {
            let out = self.stats[f.target].words.clone();
            for w in 0..out.len() {
                // Compared as the stat's type reads: a signed word as i64.
                let signed = self.stats[f.target].number.ty.is_signed();
                let key = |v: u64| if signed { v as i64 as i128 } else { v as i128 };
                let (mut acc, mut best, mut n) = (0u64, None::<u64>, 0u64);
                for &i in &f.inputs {
                    let v = data[self.stats[i].words.start + w];
                    n += 1;
                    match f.aggregation {
                        Aggregation::Max | Aggregation::Min => {
                            let better = |b: u64| match f.aggregation {
                                Aggregation::Max => key(v) > key(b),
                                _ => key(v) < key(b),
                            };
                            if best.is_none_or(better) {
                                best = Some(v);
                            }
                        }
                        Aggregation::CountZero => acc += u64::from(v == 0),
                        Aggregation::Sum | Aggregation::Avg | Aggregation::None => {
                            acc = acc.wrapping_add(v)
                        }
                    }
                }
                let word = match f.aggregation {
                    // Over no values, as the tree's empty aggregates read.
                    Aggregation::Max => best.unwrap_or(if signed { i64::MIN as u64 } else { 0 }),
                    Aggregation::Min => {
                        best.unwrap_or(if signed { i64::MAX as u64 } else { u64::MAX })
                    }
                    Aggregation::Avg if n > 0 && signed => (acc as i64 / n as i64) as u64,
                    Aggregation::Avg if n > 0 => acc / n,
                    _ => acc,
                };
                data[out.start + w] = word;
            }
        }
    }

    /// The one number stat `i` reads as, in `data` (a histogram's sample count), as the
    /// mount's value file shows it ([`value::number`]).
    pub fn number(&self, i: usize, data: &[u64]) -> i128 {
        let st = &self.stats[i];
        value::number(&st.number, &data[st.words.clone()])
    }

    /// `source`'s path and `name` for every stat: the key that survives a re-read of the
    /// layout.
    pub fn key(&self, i: usize) -> (&str, &str) {
        let st = &self.stats[i];
        (&self.sources[st.source].path, &st.name)
    }

    /// `old`'s words (laid out as `before` said) moved to where this model keeps the same
    /// stats (same source path, name and size); the words of every other stat are taken
    /// from `fallback` (laid out as this model).
    pub fn remap(&self, before: &Model, old: &[u64], fallback: &[u64]) -> Vec<u64> {
        let mut out = fallback.to_vec();
        out.resize(self.words, 0);
        let index: HashMap<(&str, &str), usize> = (0..before.stats.len())
            .map(|i| (before.key(i), i))
            .collect();
        for (i, st) in self.stats.iter().enumerate() {
            if let Some(&j) = index.get(&self.key(i)) {
                let from = &before.stats[j].words;
                if from.len() == st.words.len() && from.end <= old.len() {
                    out[st.words.clone()].copy_from_slice(&old[from.clone()]);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statsfs_core::{Kind, Scale, Unit};

    fn peak(name: &str) -> StatDesc {
        StatDesc::new(name, Kind::Peak, Unit::None, Scale::ONE, 1)
    }

    #[test]
    fn names_with_slashes_make_sources_and_folds_follow_the_tree_rules() {
        let mut m = Model::default();
        let descs = [
            StatDesc::counter("exits"),
            StatDesc::counter("vm1/vcpu0/exits"),
            peak("vm1/vcpu0/max_run"),
            StatDesc::counter("vm1/vcpu1/exits"),
            peak("vm1/vcpu1/max_run"),
        ];
        for (k, d) in descs.into_iter().enumerate() {
            m.add_read("kvm", 0, &d.at(8 * k as u32));
        }
        let paths: Vec<&str> = m.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["", "kvm", "kvm/vm1", "kvm/vm1/vcpu0", "kvm/vm1/vcpu1"]
        );
        let vm = m.find("kvm/vm1").unwrap();
        m.add_folds(vm);
        let mut data = vec![0u64; m.words()];
        data[0] = 99; // kvm/exits: read, not folded
        for (path, exits, max) in [("kvm/vm1/vcpu0", 3, 7), ("kvm/vm1/vcpu1", 4, 5)] {
            let s = m.find(path).unwrap();
            data[m.stats[m.stat(s, "exits").unwrap()].words.start] = exits;
            data[m.stats[m.stat(s, "max_run").unwrap()].words.start] = max;
        }
        m.fold(&mut data);
        assert_eq!(m.number(m.stat(vm, "exits").unwrap(), &data), 7, "sum");
        assert_eq!(
            m.number(m.stat(vm, "max_run").unwrap(), &data),
            7,
            "max of a peak"
        );
        assert_eq!(m.number(m.stat(1, "exits").unwrap(), &data), 99);
        assert!(m.stats[m.stat(vm, "exits").unwrap()].folded);
    }

    #[test]
    fn words_are_where_the_offsets_say_gaps_and_order_included() {
        let mut m = Model::default();
        // A file whose data block is 4 words: y at word 3, x at word 0, a gap between.
        m.add_read("r", 0, &StatDesc::counter("y").at(24));
        m.add_read("r", 0, &StatDesc::counter("x"));
        m.reserve(0, 4);
        let r = m.add_read("s", 4, &StatDesc::counter("z").at(8));
        assert_eq!(
            r,
            5..6,
            "the second file's words come after the first's block"
        );
        let data = [1, 0, 0, 3, 0, 7];
        let get =
            |path: &str, name: &str| m.number(m.stat(m.find(path).unwrap(), name).unwrap(), &data);
        assert_eq!((get("r", "x"), get("r", "y"), get("s", "z")), (1, 3, 7));
        assert_eq!(m.words(), 6);
    }

    #[test]
    fn signed_folds_compare_as_signed() {
        let mut m = Model::default();
        m.add_read("t", 0, &peak("a/low"));
        m.add_read("t", 0, &peak("b/low").at(8));
        m.set_types(|_| Some(ValueType::I64));
        let t = m.find("t").unwrap();
        m.add_folds(t);
        let mut data = vec![(-5i64) as u64, 3, 0];
        m.fold(&mut data);
        assert_eq!(
            m.number(m.stat(t, "low").unwrap(), &data),
            3,
            "max of -5 and 3"
        );
    }

    #[test]
    fn remap_moves_values_by_path_and_name() {
        let mut a = Model::default();
        a.add_read("r", 0, &StatDesc::counter("x"));
        a.add_read("r", 0, &StatDesc::counter("y").at(8));
        let mut b = Model::default();
        b.add_read("r", 0, &StatDesc::counter("z"));
        b.add_read("r", 0, &StatDesc::counter("y").at(8));
        assert_eq!(b.remap(&a, &[1, 2], &[]), [0, 2]);
        assert_eq!(
            b.remap(&a, &[1, 2], &[9, 9]),
            [9, 2],
            "the rest from the fallback"
        );
    }
}
