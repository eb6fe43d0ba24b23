//! The one-line-per-second summary: exits per second of every VM and in total, read
//! from the tree the way any reader would (`Source::get`), not from the VMM's internals.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use statsfs::Source;

/// Remembers the previous reading to turn counters into rates.
pub struct Summary {
    root: Source,
    vms: Vec<Source>,
    kernel: Option<Source>,
    start: Instant,
    last: Instant,
    prev_vms: Vec<u64>,
    prev_total: u64,
    prev_kernel: u64,
}

/// `exits` of `source`, 0 if it has none.
fn exits(source: &Source) -> u64 {
    source.get("exits").map_or(0, |v| v.as_u64())
}

/// `1234`, `12.3k`, `1.23M`.
/// The rate of a counter that went from `prev` to `now` in `dt` seconds. A counter that
/// went down was cleared (`echo 0 >` its file) in between: it counts from 0 again, so the
/// rate is what it counted since (never a wrapped-around 18446930277.02G/s).
pub fn rate(now: u64, prev: u64, dt: f64) -> String {
    human(now.checked_sub(prev).unwrap_or(now) as f64 / dt)
}

pub fn human(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

impl Summary {
    /// A summary of the VMs `vms` under `root`; `kernel` is the top-level `kernel/`
    /// directory, when the kernel's stats are mirrored.
    pub fn new(root: Source, vms: Vec<Source>, kernel: Option<Source>) -> Self {
        let now = Instant::now();
        let mut s = Summary {
            prev_vms: vec![0; vms.len()],
            root,
            vms,
            kernel,
            start: now,
            last: now,
            prev_total: 0,
            prev_kernel: 0,
        };
        s.prev_vms = s.vms.iter().map(exits).collect();
        s.prev_total = exits(&s.root);
        s.prev_kernel = s.kernel.as_ref().map_or(0, exits);
        s
    }

    /// The line for the time since the previous one:
    /// `[  3s] 1234-5 241.3k/s  1234-6 239.8k/s  total 481.1k exits/s (kernel 502.2k/s), 1.42M exits`.
    pub fn line(&mut self) -> String {
        let now = Instant::now();
        let dt = now
            .duration_since(self.last)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        self.last = now;
        let mut line = format!("[{:>4.0}s]", now.duration_since(self.start).as_secs_f64());
        for (vm, prev) in self.vms.iter().zip(&mut self.prev_vms) {
            let n = exits(vm);
            let _ = write!(line, " {} {}/s ", vm.name(), rate(n, *prev, dt));
            *prev = n;
        }
        let total = exits(&self.root);
        let _ = write!(line, " total {} exits/s", rate(total, self.prev_total, dt));
        self.prev_total = total;
        if let Some(k) = &self.kernel {
            let n = exits(k);
            let _ = write!(line, " (kernel {}/s)", rate(n, self.prev_kernel, dt));
            self.prev_kernel = n;
        }
        let _ = write!(line, ", {} exits", human(total as f64));
        line
    }
}
