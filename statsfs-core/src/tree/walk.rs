//! Visiting a subtree as (path, labels, value), for views that read once per visit (a
//! scrape, a dump); views that re-read the same values use a
//! [`ReadPlan`](super::ReadPlan). Both read each group through the same function.

use super::source::{merge_labels, Source};
use crate::value::ValueRef;

/// What a walk visits.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalkOptions {
    /// Visit hidden sources (and their subtrees) and hidden values too.
    pub hidden: bool,
}

/// Where a walk is: the source, its path from the walk's root (the root's own name
/// first, `/` between names), and its labels in effect.
#[derive(Debug)]
pub struct Place<'a> {
    /// The source.
    pub source: &'a Source,
    /// `root/child/grandchild`.
    pub path: &'a str,
    /// Own labels first, then the ancestors' nearest first (`docs/MODEL.md#labels`).
    pub labels: &'a [(String, String)],
    /// How deep: 0 for the root.
    pub depth: usize,
}

/// Receives a walk. Every method but [`value`](Self::value) has a default.
pub trait Visitor {
    /// Called when the walk enters a source, before its values; return `false` to skip
    /// its values and subtree.
    fn enter(&mut self, place: &Place<'_>) -> bool {
        let _ = place;
        true
    }

    /// Called for each value of the source, in one pass over the source.
    fn value(&mut self, place: &Place<'_>, value: &ValueRef<'_>);

    /// Called, after the source's subtree, for each value the source keeps of its
    /// retired subordinates ([`Source::for_each_retained`]); by default nothing. Read
    /// after the subtree, a subordinate that retires during the walk is seen (twice,
    /// at worst), never missed.
    fn retained(&mut self, place: &Place<'_>, value: &ValueRef<'_>) {
        let _ = (place, value);
    }

    /// Called after the source's values and subtree.
    fn leave(&mut self, place: &Place<'_>) {
        let _ = place;
    }
}

/// Walks `root` and its subtree depth-first, subordinates in the order they were added.
///
/// The values of one source come from one pass over that source
/// ([`Source::for_each_value`]); different sources are read one after the other, so a
/// walk is not one atomic snapshot of the whole tree.
///
/// ```
/// use statsfs_core::{walk, Place, Source, ValueRef, Visitor, WalkOptions};
/// struct Paths(Vec<String>);
/// impl Visitor for Paths {
///     fn value(&mut self, p: &Place<'_>, v: &ValueRef<'_>) {
///         self.0.push(format!("{}/{}", p.path, v.descriptor.name));
///     }
/// }
/// let root = Source::new("root").unwrap();
/// let mut paths = Paths(Vec::new());
/// walk(&root, WalkOptions::default(), &mut paths);
/// assert!(paths.0.is_empty());
/// ```
pub fn walk(root: &Source, options: WalkOptions, visitor: &mut impl Visitor) {
    if root.is_hidden() && !options.hidden {
        return;
    }
    let mut path = root.name().to_owned();
    let labels = root.labels();
    walk_at(root, &mut path, &labels, 0, options, visitor);
}

fn walk_at(
    source: &Source,
    path: &mut String,
    labels: &[(String, String)],
    depth: usize,
    options: WalkOptions,
    visitor: &mut impl Visitor,
) {
    let place = Place {
        source,
        path,
        labels,
        depth,
    };
    if !visitor.enter(&place) {
        return;
    }
    // The subordinates are listed under the lock the values are read under, with
    // whether the source kept values of retired ones: a subordinate that retires after it
    // is walked (and its values may then also be in the retained ones: twice at worst),
    // one that retired before is in the retained values. Never neither.
    let mut children = Vec::new();
    let retained = source.values_then(
        |v| {
            if options.hidden || v.visible() {
                visitor.value(&place, &v);
            }
        },
        Some(&mut children),
    );
    for child in children {
        if child.is_hidden() && !options.hidden {
            continue;
        }
        let mut child_labels = child.own_labels();
        merge_labels(&mut child_labels, labels);
        let len = path.len();
        path.push('/');
        path.push_str(child.name());
        walk_at(&child, path, &child_labels, depth + 1, options, visitor);
        path.truncate(len);
    }
    let place = Place {
        source,
        path,
        labels,
        depth,
    };
    if retained {
        source.for_each_retained(|v| {
            if options.hidden || v.visible() {
                visitor.retained(&place, &v)
            }
        });
    }
    visitor.leave(&place);
}
