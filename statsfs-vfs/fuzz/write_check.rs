//! What the write fuzz target checks of one input, shared with the corpus replay
//! (`statsfs-vfs/tests/mount/fuzz_write.rs`): arbitrary writes to the value files and bulk files
//! of a small tree, interleaved with reads at arbitrary offsets and with increments,
//! through the functions the mount's `write` and `read` requests call
//! (`statsfs_vfs::fuzzing`). After every step:
//!
//! * a value write is accepted only if it is exactly `0` or `0\n` (the rule, restated
//!   here independently of the code) and the value is clearable, and then the value and
//!   every value it folds read 0; a refused one is `EINVAL` (bad text) or `EACCES`
//!   (read-only) and changes no value of the tree;
//! * a selection write is accepted only if it parses, and then every stat of the bulk
//!   file matches it; a refused one is `EINVAL` and the previous selection stays;
//! * every read of a bulk file from offset 0 is a well-formed blob whose values are the
//!   tree's; a read at any offset returns at most what was asked;
//! * the aggregates stay the sums of their members.
//!
//! Input: a sequence of steps, each an opcode byte and its operands (see [`check`]).

use std::sync::Arc;

use statsfs_binary::{Blob, Selection};
use statsfs_core::cell::{Counter, Gauge, LogHistogram};
use statsfs_core::{Scope, Source, ValueGroup};
use statsfs_derive::Stats;
use statsfs_vfs::fuzzing::{write_value, Bulk};

#[derive(Stats, Default)]
#[stats(crate = statsfs_core, name = "w")]
struct W {
    /// Exits
    exits: Counter,
    /// Halts
    halts: Counter,
    /// Queue depth (an instant value: read-only)
    depth: Gauge<u32>,
    /// Latency
    lat: LogHistogram<4>,
}

const NAMES: [&str; 4] = ["exits", "halts", "depth", "lat"];
const EINVAL: i32 = 22;
const EACCES: i32 = 13;

struct Tree {
    /// root (aggregates), root/vm (aggregates), root/vm/vcpu0, root/vm/vcpu1.
    sources: Vec<Source>,
    stats: Vec<Arc<W>>,
}

fn tree() -> Tree {
    let root = Source::new("root").unwrap();
    root.add(ValueGroup::aggregates::<W>()).unwrap();
    let vm = Source::new("vm").unwrap();
    vm.add(ValueGroup::aggregates::<W>()).unwrap();
    root.add_subordinate(&vm).unwrap();
    let mut sources = vec![root, vm.clone()];
    let mut stats = Vec::new();
    for i in 0..2u64 {
        let w = Arc::new(W::default());
        w.exits.add(10 + i);
        w.halts.add(5);
        w.depth.set(3);
        w.lat.record(100 * (i + 1));
        let s = Source::new(format!("vcpu{i}")).unwrap();
        s.add(w.clone()).unwrap();
        vm.add_subordinate(&s).unwrap();
        sources.push(s);
        stats.push(w);
    }
    Tree { sources, stats }
}

/// Every value of every source, as words.
fn snapshot(t: &Tree) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for s in &t.sources {
        for n in NAMES {
            out.push(s.get(n).unwrap().words().to_vec());
        }
    }
    out
}

fn sources_below(s: usize) -> Vec<usize> {
    match s {
        0 => vec![0, 1, 2, 3],
        1 => vec![1, 2, 3],
        i => vec![i],
    }
}

fn aggregates_are_sums(t: &Tree) {
    for n in ["exits", "halts"] {
        let v = |i: usize| t.sources[i].get(n).unwrap().as_u64();
        let members = v(2) + v(3);
        assert_eq!(v(1), members, "vm/{n} is not the sum of its vCPUs");
        assert_eq!(v(0), members, "root/{n} is not the sum of its vCPUs");
    }
}

/// An open bulk file and the selection it should have.
struct Open {
    bulk: Bulk,
    source: usize,
    scope: Scope,
    selection: Option<Selection>,
}

fn check_blob(t: &Tree, o: &mut Open) {
    let bytes = o.bulk.read(0, 1 << 20);
    let blob = Blob::decode(&bytes).expect("a read from offset 0 is a well-formed blob");
    let source = &t.sources[o.source];
    for d in blob.schema().descriptors() {
        if let Some(sel) = &o.selection {
            assert!(
                sel.matches(&d.name),
                "{} is not in the selection {sel}",
                d.name
            );
        }
        if o.scope == Scope::Source && d.size == 1 {
            let want = source.get(&d.name).unwrap().words()[0];
            assert_eq!(blob.value(&d.name), Some(want), "{}", d.name);
        }
    }
    if o.selection.is_none() {
        let want = match o.scope {
            Scope::Source => NAMES.len(),
            Scope::Subtree => NAMES.len() * sources_below(o.source).len(),
        };
        assert_eq!(blob.schema().descriptors().len(), want);
    }
}

/// Runs the steps of `data`; panics on a violation. Steps: `0 s v len bytes…` writes
/// `bytes` to value `v` of source `s`; `1 f len_hi len_lo bytes…` writes a selection to
/// open bulk file `f`; `2 f off_hi off_lo size_hi size_lo` reads it at an offset;
/// `3 s k` adds `k` to vCPU `s`'s counters. Operands wrap around their ranges.
pub fn check(data: &[u8]) {
    let t = tree();
    let mut open: Vec<Open> = [
        (0usize, Scope::Subtree),
        (2, Scope::Source),
        (1, Scope::Source),
    ]
    .into_iter()
    .map(|(source, scope)| Open {
        bulk: Bulk::open(t.sources[source].clone(), scope).expect("open a bulk file"),
        source,
        scope,
        selection: None,
    })
    .collect();
    let mut input = data.iter().copied();
    let mut next = || input.next();
    let mut steps = 0;
    while let Some(op) = next() {
        steps += 1;
        if steps > 64 {
            break;
        }
        match op % 4 {
            0 => {
                let (Some(s), Some(v), Some(len)) = (next(), next(), next()) else {
                    break;
                };
                let (s, name) = (
                    s as usize % t.sources.len(),
                    NAMES[v as usize % NAMES.len()],
                );
                let bytes: Vec<u8> = (0..len).map_while(|_| next()).collect();
                let before = snapshot(&t);
                let r = write_value(&t.sources[s], name, &bytes);
                let text_ok = bytes == b"0" || bytes == b"0\n";
                let want = if !text_ok {
                    Err(EINVAL)
                } else if name == "depth" {
                    Err(EACCES)
                } else {
                    Ok(())
                };
                assert_eq!(r, want, "write {bytes:?} to {name}");
                if r.is_ok() {
                    for i in sources_below(s) {
                        let w = t.sources[i].get(name).unwrap();
                        assert!(
                            w.words().iter().all(|&x| x == 0),
                            "{name} of source {i} not cleared"
                        );
                    }
                    // Values of other names are untouched.
                    let after = snapshot(&t);
                    for (k, (b, a)) in before.iter().zip(&after).enumerate() {
                        if NAMES[k % NAMES.len()] != name {
                            assert_eq!(b, a, "clearing {name} changed value {k}");
                        }
                    }
                } else {
                    assert_eq!(snapshot(&t), before, "a refused write changed a value");
                }
            }
            1 => {
                let (Some(f), Some(hi), Some(lo)) = (next(), next(), next()) else {
                    break;
                };
                let f = f as usize % open.len();
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let mut bytes: Vec<u8> = (0..len.min(256)).map_while(|_| next()).collect();
                // Lengths past 256 repeat what was read: selections near and over the
                // 64 KiB limit.
                if len > 256 && !bytes.is_empty() {
                    bytes = bytes.iter().copied().cycle().take(len).collect();
                }
                let before = snapshot(&t);
                let r = open[f].bulk.write(&bytes);
                match r {
                    Ok(()) => {
                        let sel =
                            Selection::parse_bytes(&bytes).expect("an accepted selection parses");
                        open[f].selection = (!sel.is_all()).then_some(sel);
                    }
                    Err(e) => assert_eq!(e, EINVAL, "a refused selection is EINVAL"),
                }
                assert_eq!(snapshot(&t), before, "a selection changed a value");
            }
            2 => {
                let (Some(f), Some(a), Some(b), Some(c), Some(d)) =
                    (next(), next(), next(), next(), next())
                else {
                    break;
                };
                let f = f as usize % open.len();
                let offset = u64::from(u16::from_be_bytes([a, b]));
                let size = u32::from(u16::from_be_bytes([c, d]));
                let got = open[f].bulk.read(offset, size);
                assert!(got.len() <= size as usize);
            }
            _ => {
                let (Some(s), Some(k)) = (next(), next()) else {
                    break;
                };
                let w = &t.stats[s as usize % t.stats.len()];
                w.exits.add(u64::from(k));
                w.halts.add(u64::from(k) * 2);
                w.depth.set(u32::from(k));
                w.lat.record(u64::from(k) << (k % 20));
            }
        }
        aggregates_are_sums(&t);
        for o in &mut open {
            check_blob(&t, o);
        }
    }
}
