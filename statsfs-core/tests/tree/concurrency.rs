//! Writers never wait; readers, tree changes and clears from other threads are safe; the
//! final sums are exact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use statsfs::cell::{Counter, ShardedCounter};
use statsfs::{Source, Stats, ValueGroup};

#[derive(Stats, Default)]
struct Shared {
    /// Incremented by every writer (shared path)
    hits: Counter,
    /// Incremented by every writer on its own shard
    sharded: ShardedCounter,
    /// Incremented by one writer each (owner path)
    own: Counter,
}

const WRITERS: usize = 4;
const INCREMENTS: u64 = 1_000_000;

#[test]
fn writers_readers_and_tree_changes_at_once() {
    let root = Source::new("root").unwrap();
    root.add(ValueGroup::aggregates::<Shared>()).unwrap();
    let shared = Arc::new(Shared::default());
    let shared_src = Source::new("shared").unwrap();
    shared_src.add(shared.clone()).unwrap();
    root.add_subordinate(&shared_src).unwrap();
    // One stats struct per writer for the owner path, each in its own source.
    let owned: Vec<Arc<Shared>> = (0..WRITERS).map(|_| Arc::new(Shared::default())).collect();
    let owned_srcs: Vec<Source> = owned
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let s = Source::new(format!("w{i}")).unwrap();
            s.add(o.clone()).unwrap();
            root.add_subordinate(&s).unwrap();
            s
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));

    thread::scope(|scope| {
        let writers: Vec<_> = owned
            .iter()
            .map(|mine| {
                let shared = &shared;
                scope.spawn(move || {
                    for _ in 0..INCREMENTS {
                        shared.hits.inc();
                        shared.sharded.inc();
                        mine.own.inc_local();
                    }
                })
            })
            .collect();
        // A reader: aggregates only grow while writers run (no source is cleared).
        let reader = scope.spawn(|| {
            let mut last = 0;
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let v = root.get("hits").unwrap().as_u64();
                assert!(v >= last, "aggregate went backwards: {v} < {last}");
                last = v;
                reads += 1;
            }
            reads
        });
        // A tree changer: removes and re-adds subordinates, adds and drops extra ones.
        let changer = scope.spawn(|| {
            let mut changes = 0u64;
            while !done.load(Ordering::Relaxed) {
                for s in &owned_srcs {
                    root.remove_subordinate(s).unwrap();
                    let extra = Source::new("extra").unwrap();
                    extra.add(Arc::new(Shared::default())).unwrap();
                    root.add_subordinate(&extra).unwrap();
                    root.add_subordinate(s).unwrap();
                    root.remove_subordinate(&extra).unwrap();
                    changes += 1;
                }
            }
            changes
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert!(changer.join().unwrap() > 0);
    });

    let total = WRITERS as u64 * INCREMENTS;
    assert_eq!(root.get("hits").unwrap().as_u64(), total);
    assert_eq!(root.get("sharded").unwrap().as_u64(), total);
    assert_eq!(root.get("own").unwrap().as_u64(), total);
    assert_eq!(root.subordinates().len(), WRITERS + 1);
}

#[test]
fn a_source_held_by_a_reader_outlives_its_removal() {
    let root = Source::new("root").unwrap();
    let child = Source::new("child").unwrap();
    let stats = Arc::new(Shared::default());
    stats.hits.add(5);
    child.add(stats).unwrap();
    root.add_subordinate(&child).unwrap();
    let held = root.subordinate("child").unwrap();
    root.remove_subordinate(&child).unwrap();
    drop(child);
    drop(root);
    assert_eq!(held.get("hits").unwrap().as_u64(), 5);
    assert!(held.parent().is_none());
}

#[test]
fn clears_race_with_writers_and_the_last_clear_wins() {
    let root = Source::new("root").unwrap();
    let s = Arc::new(Shared::default());
    root.add(s.clone()).unwrap();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                s.hits.inc();
            }
        });
        for _ in 0..1000 {
            root.clear("hits").unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    root.clear("hits").unwrap();
    assert_eq!(s.hits.get(), 0);
}
