//! Typed errors. Every message says what went wrong and what to do about it.

use std::fmt;

/// What can go wrong when changing or reading a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No visible or hidden value of that name in the source (subordinates are not
    /// searched).
    NotFound {
        /// The source searched.
        source: String,
        /// The name looked up.
        name: String,
    },
    /// The same schema bound to the same instance (or the same schema as aggregates) is
    /// already in the source.
    AlreadyExists {
        /// The source.
        source: String,
        /// The schema's name.
        schema: String,
    },
    /// The value may not be cleared: it is instant, or its descriptor says read-only, or
    /// its values come from a runtime block that cannot be written.
    ReadOnly {
        /// The source.
        source: String,
        /// The value's name.
        name: String,
    },
    /// The subordinate already has a parent; remove it there first.
    AlreadyAttached {
        /// The subordinate.
        child: String,
        /// Its present parent.
        parent: String,
    },
    /// Adding the subordinate would make a source its own ancestor.
    WouldCycle {
        /// The would-be parent.
        parent: String,
        /// The would-be subordinate.
        child: String,
    },
    /// The source is not a subordinate of that parent.
    NotASubordinate {
        /// The parent.
        parent: String,
        /// The source that was to be removed.
        child: String,
    },
    /// A source name that cannot be a directory name.
    InvalidName {
        /// The name.
        name: String,
    },
    /// A label key that Prometheus would not accept.
    InvalidLabel {
        /// The key.
        key: String,
    },
    /// A label value with a control character.
    InvalidLabelValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// The source was retired ([`Source::retire_subordinate`](crate::Source::retire_subordinate)):
    /// its parent's totals hold what it counted, so adding it again would count it twice.
    Retired {
        /// The source.
        child: String,
    },
    /// A subordinate of that name is already there: sibling names are unique, so that a
    /// path names one source (`docs/MODEL.md#names`).
    NameTaken {
        /// The parent.
        parent: String,
        /// The name.
        name: String,
    },
    /// The group would shadow a value of another group in the source (another schema's,
    /// or another instance of the same): two values of one name, of which a lookup, a
    /// file and an exposition would show only the newer (`docs/MODEL.md#lookup`). Refused unless the group is made
    /// [`shadowing`](crate::ValueGroup::shadowing).
    Shadows {
        /// The source.
        source: String,
        /// The first name both offer.
        name: String,
        /// The new group's schema.
        schema: String,
        /// The schema of the group that has the name already.
        other: String,
    },
    /// A runtime schema broke a descriptor rule.
    InvalidSchema {
        /// The schema.
        schema: String,
        /// Which rule, for which stat.
        problem: SchemaProblem,
    },
}

/// What is wrong with a runtime schema ([`Error::InvalidSchema`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaProblem {
    /// A stat breaks a descriptor rule.
    Rule {
        /// The stat's index.
        stat: usize,
        /// Its name.
        name: String,
        /// The rule it breaks.
        rule: crate::desc::Rule,
    },
    /// A stat's block offset is not a multiple of 8.
    Offset {
        /// The stat's index.
        stat: usize,
        /// Its name.
        name: String,
        /// The offset.
        offset: usize,
    },
    /// Two stats share a name.
    Duplicate {
        /// The name.
        name: String,
    },
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaProblem::Rule { stat, name, rule } => write!(f, "stat {stat} `{name}`: {rule}"),
            SchemaProblem::Offset { stat, name, offset } => {
                write!(
                    f,
                    "stat {stat} `{name}`: offset {offset} is not a multiple of 8"
                )
            }
            SchemaProblem::Duplicate { name } => write!(f, "stat name `{name}` appears twice"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { source, name } => write!(
                f,
                "no value `{name}` in source `{source}` (lookups search the source itself, not its subordinates)"
            ),
            Error::AlreadyExists { source, schema } => write!(
                f,
                "source `{source}` already has schema `{schema}` bound to this instance (or as aggregates); add it once"
            ),
            Error::ReadOnly { source, name } => write!(
                f,
                "value `{name}` in source `{source}` is read-only: instant values and values marked read-only cannot be cleared"
            ),
            Error::AlreadyAttached { child, parent } => write!(
                f,
                "source `{child}` is already a subordinate of `{parent}`; remove it from there first"
            ),
            Error::WouldCycle { parent, child } => write!(
                f,
                "adding `{child}` under `{parent}` would make a source its own ancestor"
            ),
            Error::NotASubordinate { parent, child } => {
                write!(f, "source `{child}` is not a subordinate of `{parent}`")
            }
            Error::InvalidName { name } => write!(
                f,
                "{name:?} cannot be a source name: it must be a file name (not empty, not `.` or `..`, no `/` or control character)"
            ),
            Error::InvalidLabel { key } => write!(
                f,
                "{key:?} cannot be a label key: use letters, digits and `_`, not starting with a digit or `__`"
            ),
            Error::InvalidLabelValue { key, value } => write!(
                f,
                "{value:?} cannot be the value of label `{key}`: it holds a control character (C0, DEL or C1), which would reach terminals as a command; leave it out or replace it"
            ),
            Error::Retired { child } => write!(
                f,
                "source `{child}` was retired: what it counted stays in its former parent's totals, so it cannot be added again; make a new source"
            ),
            Error::NameTaken { parent, name } => write!(
                f,
                "`{parent}` already has a subordinate named `{name}`: sibling names are unique; remove (or retire) that one first, or choose another name"
            ),
            Error::Shadows {
                source,
                name,
                schema,
                other,
            } => write!(
                f,
                "schema `{schema}` would shadow value `{name}` of schema `{other}` in source `{source}` (only the newer would be shown); rename one, put them in different sources, or add the group with ValueGroup::shadowing() if the newer should win"
            ),
            Error::InvalidSchema { schema, problem } => {
                write!(f, "runtime schema `{schema}` is invalid: {problem}")
            }
        }
    }
}

impl std::error::Error for Error {}
