//! Block sources: where the values of a runtime schema come from.

use std::io;

/// Where the values of a runtime schema come from: something that fills a block of u64
/// words laid out as the schema's descriptors say (for instance a `pread` of a kernel
/// stats file's data block).
///
/// Closures `Fn(&mut [u64]) -> io::Result<()>` are block sources. A group holds its
/// source in an `Arc`, and that `Arc` is the group's identity: the same `Arc` added twice
/// to one source is [`Error::AlreadyExists`](crate::Error::AlreadyExists).
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// let schema = Schema::new_runtime("mirror", vec![
///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative).with_clearable(false),
/// ]).unwrap();
/// let vcpu = Source::new("vcpu0").unwrap();
/// let block = Arc::new(|out: &mut [u64]| { out[0] = 42; Ok(()) });
/// vcpu.add(ValueGroup::block(schema.clone(), block.clone())).unwrap();
/// assert_eq!(vcpu.get("exits").unwrap().as_u64(), 42);
/// assert!(vcpu.add(ValueGroup::block(schema, block)).is_err(), "the same block twice");
/// ```
pub trait BlockSource: Send + Sync {
    /// Fills `out` (exactly [`Schema::block_words`](crate::Schema::block_words) long)
    /// with the current values. An error leaves the group's values out of this read:
    /// walks skip them, fixed layouts (read plans, `get`) read them as empty.
    ///
    /// It runs while readers hold the tree's locks (an aggregate's cache among them): it
    /// must not read or change the tree. (Its `Drop` may: the tree drops a block source
    /// after it released every lock.)
    fn read_block(&self, out: &mut [u64]) -> io::Result<()>;
}

impl<F> BlockSource for F
where
    F: Fn(&mut [u64]) -> io::Result<()> + Send + Sync,
{
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        self(out)
    }
}
