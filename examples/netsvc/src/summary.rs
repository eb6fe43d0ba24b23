//! What the run prints: a line a second while it runs, and at the end the generator's
//! counts beside the totals read back from the tree (`svc/`), which must be equal.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use statsfs::Source;

use crate::load::{Counts, LoadCounts};
use crate::tree::{Totals, ROOT};

/// `1234`, `12.3k`, `1.23M`.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// The once-a-second line: remembers the previous reading to turn counts into rates.
pub struct Progress<'a> {
    root: Option<Source>,
    load: Option<&'a LoadCounts>,
    start: Instant,
    last: Instant,
    prev_tree: Totals,
    prev_load: Counts,
}

impl<'a> Progress<'a> {
    /// Rates of the tree under `root` (statistics on) and of the generator's `load` (if
    /// it runs).
    pub fn new(root: Option<Source>, load: Option<&'a LoadCounts>) -> Self {
        let now = Instant::now();
        Progress {
            prev_tree: root.as_ref().map(Totals::read).unwrap_or_default(),
            prev_load: load.map(LoadCounts::snapshot).unwrap_or_default(),
            root,
            load,
            start: now,
            last: now,
        }
    }

    /// `[   3s] svc/ 812 conn/s, 8.12k req/s, 2 open, 2 queued; generator 812 conn/s`.
    pub fn line(&mut self) -> String {
        let now = Instant::now();
        let dt = now
            .duration_since(self.last)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        self.last = now;
        let mut line = format!("[{:>4.0}s]", now.duration_since(self.start).as_secs_f64());
        let rate = |now: u64, prev: u64| human(now.saturating_sub(prev) as f64 / dt);
        if let Some(root) = &self.root {
            let t = Totals::read(root);
            let _ = write!(
                line,
                " {ROOT}/ {} conn/s, {} req/s, {} open, {} queued;",
                rate(t.connections, self.prev_tree.connections),
                rate(t.requests, self.prev_tree.requests),
                t.active,
                t.queued
            );
            self.prev_tree = t;
        } else {
            line.push_str(" statistics off;");
        }
        match self.load {
            Some(load) => {
                let c = load.snapshot();
                let _ = write!(
                    line,
                    " generator {} conn/s, {} req/s",
                    rate(c.closed, self.prev_load.closed),
                    rate(c.requests, self.prev_load.requests)
                );
                self.prev_load = c;
            }
            None => line.push_str(" no generator"),
        }
        line
    }
}

/// One row of the final comparison: a generator count and the tree's total that must
/// equal it.
struct Row {
    what: &'static str,
    generator: u64,
    stat: &'static str,
    tree: u64,
}

/// Prints the summary of a run: the generator's counts over `elapsed`, and, with
/// statistics on, the tree's totals beside them. Returns whether they agree (true
/// without statistics or without a generator: nothing to compare).
pub fn report(load: Option<Counts>, elapsed: Duration, tree: Option<Totals>) -> bool {
    let secs = elapsed.as_secs_f64().max(1e-3);
    match load {
        Some(c) => println!(
            "generator: {:.2} s, {} connections opened, {} closed, {} requests, {} errors: \
             {:.1} connections/s, {:.1} requests/s",
            secs,
            c.opened,
            c.closed,
            c.requests,
            c.errors,
            c.closed as f64 / secs,
            c.requests as f64 / secs
        ),
        None => println!("generator: off"),
    }
    let Some(t) = tree else {
        println!("tree: none (--no-stats)");
        return true;
    };
    println!(
        "tree: {ROOT}/accepted {}, {ROOT}/connections {}, {ROOT}/requests {}, \
         {ROOT}/bytes_in {}, {ROOT}/bytes_out {}, {ROOT}/service_ns {} samples \
         (max {} ns), {ROOT}/refused {}, {ROOT}/errors {}, {ROOT}/active {}",
        t.accepted,
        t.connections,
        t.requests,
        t.bytes_in,
        t.bytes_out,
        t.service_samples,
        t.max_service_ns,
        t.refused,
        t.errors,
        t.active
    );
    let Some(c) = load else {
        return true;
    };
    let rows = [
        Row {
            what: "connections opened",
            generator: c.opened,
            stat: "accepted",
            tree: t.accepted,
        },
        Row {
            what: "connections closed",
            generator: c.closed,
            stat: "connections",
            tree: t.connections,
        },
        Row {
            what: "requests answered",
            generator: c.requests,
            stat: "requests",
            tree: t.requests,
        },
        Row {
            what: "requests timed",
            generator: c.requests,
            stat: "service_ns",
            tree: t.service_samples,
        },
        Row {
            what: "bytes to the server",
            generator: c.sent,
            stat: "bytes_in",
            tree: t.bytes_in,
        },
        Row {
            what: "bytes to the clients",
            generator: c.received,
            stat: "bytes_out",
            tree: t.bytes_out,
        },
        // Reported by the queue through the `metrics` facade.
        Row {
            what: "connections handed off",
            generator: c.opened,
            stat: "lib/handoff_items_total",
            tree: t.handed_off,
        },
        Row {
            what: "waits for a worker",
            generator: c.closed,
            stat: "lib/handoff_wait_seconds",
            tree: t.waited,
        },
    ];
    let mut ok = true;
    for r in &rows {
        let mark = if r.generator == r.tree {
            ""
        } else {
            ok = false;
            "  MISMATCH"
        };
        let stat = format!("{ROOT}/{}", r.stat);
        println!(
            "  {:<22} generator {:>10}   {stat:<28} {:>10}{mark}",
            r.what, r.generator, r.tree
        );
    }
    if ok {
        println!("verified: every total in the tree equals the generator's count");
    } else {
        println!("MISMATCH: the tree's totals differ from the generator's counts");
    }
    ok
}
