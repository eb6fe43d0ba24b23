//! The tree: sources (directories) holding value groups and subordinates, aggregates
//! folding over subtrees, and the public doors readers go through.
//!
//! The files know each other; nothing outside this module knows their insides:
//!
//! * `raw`: the tree's only unsafe code, reading and clearing a value inside a live
//!   instance, and the invariant that makes it sound (an instance carries its schema).
//! * `block`: [`BlockSource`], where runtime values come from.
//! * `aggregate`: folding a value over an aggregate's members, and the members' cache,
//!   which every change of membership updates by what it adds or removes.
//! * `children`: a source's subordinates, found, removed and listed in O(1).
//! * `hashing`: how the tree's hash maps hash names and group ids.
//! * `group`: [`ValueGroup`], a schema bound to an instance, a block, or nothing.
//! * `source`: [`Source`], the tree itself, and the one function that reads a group.
//! * `plan`: [`ReadPlan`], a fixed set of values re-read into a caller's buffer.
//! * `walk`: [`walk`], a visit of a subtree.
//! * `inspect`: [`Inspect`], the one door to a source's structure for views that show
//!   structure rather than values (listings, groups, versions).
//!
//! Imports go one way: `raw`, `block` ← `aggregate` ← `group` ← `source` ← `plan`,
//! `walk`; `hashing` ← `children`, which is generic over what it holds, ← `source`;
//! `hashing` ← `aggregate`; `group` ← `inspect`, which `source` hands out.

mod aggregate;
mod block;
mod children;
mod group;
mod hashing;
mod inspect;
#[cfg(test)]
mod membership_tests;
mod plan;
mod raw;
mod source;
mod walk;

pub use block::BlockSource;
pub use group::{GroupInfo, GroupKind, ValueGroup};
pub use inspect::Inspect;
pub use plan::{PlanOptions, PlannedSource, PlannedValue, ReadPlan, Scope};
pub use raw::Placed;
pub use source::{Change, Source, Subscription};
pub use walk::{walk, Place, Visitor, WalkOptions};
