//! A storage engine's per-table statistics, declared with every form a statistic takes:
//! operations by kind (a family), latency with its sum, a value totalled two ways, a
//! dimension by index, one struct flattened twice, a part shared by two engine types and
//! totalled across them, and tables that are dropped without their counts leaving the
//! totals.
//!
//! ```text
//! sudo cargo run --example engine           # mounts at /run/statsfs-engine, then unmounts
//! cargo run --example engine                # without root: the same views, in process
//! ```
//!
//! It prints what the files show, what `/metrics` would serve, and the totals before and
//! after a table is dropped.

use std::sync::Arc;

use statsfs::cell::{Counter, Gauge, LogHistogram, WithSum};
use statsfs::openmetrics::{Encoder, Format};
use statsfs::{Family, Label, Source, Stats, ValueGroup};

/// What a table is asked to do: the label `op`.
#[derive(Clone, Copy, Label)]
#[label(name = "op")]
enum Op {
    Get,
    Put,
    Delete,
}

/// Bytes moved one way; flattened twice, as `read_*` and `write_*`.
#[derive(Stats)]
struct IoStat {
    /// Bytes moved
    #[stat(unit = bytes)]
    bytes: Counter,
}

/// What every engine counts, whatever its kind (the generic part, as KVM's).
#[derive(Stats)]
#[stats(name = "table")]
struct Common {
    /// Operations, by kind
    ops: Family<Op, Counter>,
    /// Time an operation took
    #[stat(unit = seconds, exponent = -9)]
    op_ns: LogHistogram<32, WithSum>,
    /// Keys in the table
    #[stat(aggregate = [sum, avg])]
    live_keys: Gauge<u64>,
    #[stat(flatten, prefix = "read_")]
    read: IoStat,
    #[stat(flatten, prefix = "write_")]
    write: IoStat,
}

/// A B-tree table.
#[derive(Stats)]
#[stats(name = "btree")]
struct BtreeStat {
    #[stat(flatten)]
    common: Common,
    /// Pages split
    splits: Counter,
}

/// A log-structured table.
#[derive(Stats)]
#[stats(name = "lsm")]
struct LsmStat {
    #[stat(flatten)]
    common: Common,
    /// Compactions waiting, by level
    #[stat(label = "level")]
    pending: [Gauge<u32>; 3],
}

/// Does `n` operations of each kind on `c`, as a table would.
fn work(c: &Common, n: u64, keys: u64) {
    for i in 0..n {
        c.ops[Op::Get].inc();
        c.op_ns.record(800 + i * 10);
        if i % 2 == 0 {
            c.ops[Op::Put].inc();
            c.op_ns.record(5_000 + i * 100);
            c.write.bytes.add(4096);
        }
        c.read.bytes.add(512);
    }
    c.ops[Op::Delete].inc();
    c.live_keys.set(keys);
}

fn show(root: &Source, names: &[&str]) {
    for n in names {
        println!(
            "  {}/{n} = {}",
            root.name(),
            root.get(n).map(|v| v.to_string()).unwrap_or_default()
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // db/ totals every table's common part, whatever its engine.
    let db = Source::new("db")?;
    db.add(ValueGroup::aggregates::<Common>())?;
    let users = Arc::new(BtreeStat::new());
    let events = Arc::new(LsmStat::new());
    let sessions = Arc::new(BtreeStat::new());
    for (name, stats) in [("users", &users), ("sessions", &sessions)] {
        let t = Source::new(name)?;
        t.add(Arc::clone(stats))?;
        db.add_subordinate(&t)?;
    }
    let ev = Source::new("events")?;
    ev.add(Arc::clone(&events))?;
    db.add_subordinate(&ev)?;

    work(&users.common, 100, 1000);
    users.splits.add(3);
    work(&events.common, 40, 200);
    events.pending[1].set(2);
    work(&sessions.common, 10, 30);

    let mounted = statsfs::vfs::mount(
        std::path::Path::new("/run/statsfs-engine"),
        std::slice::from_ref(&db),
        Default::default(),
    );
    match &mounted {
        Ok(m) => {
            println!("mounted at {}; db/users holds:", m.path().display());
            let mut names: Vec<String> = std::fs::read_dir(m.path().join("db/users"))?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()?;
            names.sort();
            println!("  {}", names.join(" "));
        }
        Err(e) => println!("not mounted ({e}); the same tree, in process:"),
    }

    println!("totals over every table (btree and lsm alike):");
    show(
        &db,
        &[
            "ops_get",
            "ops_put",
            "ops_delete",
            "op_ns_sum",
            "live_keys",
            "live_keys_avg",
            "read_bytes",
            "write_bytes",
        ],
    );

    println!("/metrics, the families with a label and the histogram's sum:");
    let mut enc = Encoder::new();
    let text = String::from_utf8_lossy(enc.encode(std::slice::from_ref(&db), Format::Prometheus))
        .into_owned();
    // Metric names start with the schema of the struct the values are in: a btree's
    // common part is `btree_...`, an lsm's `lsm_...`.
    for line in text.lines().filter(|l| {
        l.starts_with("btree_ops_total{path=\"db/users\"")
            || l.contains("_op_seconds_sum")
            || l.contains("_op_seconds_count")
            || l.starts_with("lsm_pending")
    }) {
        println!("  {line}");
    }

    // A table is dropped: it retires, and what it counted stays in db/.
    let gone = db.subordinate("sessions").ok_or("no sessions table")?;
    db.retire_subordinate(&gone)?;
    println!("after dropping `sessions` (retired): the totals that count keep counting");
    show(&db, &["ops_get", "op_ns_sum", "live_keys"]);

    drop(mounted);
    Ok(())
}
