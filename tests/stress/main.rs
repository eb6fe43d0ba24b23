//! Everything at once, under churn: writers on a shared source (the atomic path) and on
//! sources of their own (the owner path), a churn thread that creates, adds, hides,
//! revokes, removes and drops sources, and readers through the API, the mount (value
//! files, bulk files, subtree bulk files, selections, listings) and `/metrics`.
//!
//! At the end: totals on the shared and owned counters are exact, no thread panicked,
//! no thread stalled (a watchdog fails the test and prints what each thread was doing),
//! every source the churn dropped is freed (no leaked source), the process's descriptor
//! count and RSS are back near where they were, and the mount is gone once its handle is
//! dropped.
//!
//! Bounded: 60 s by default; `STATSFS_STRESS_SECS=600` runs it longer. Needs a FUSE mount
//! (root and /dev/fuse); skipped otherwise (`SKIPPED: <test>: <reason>`). A test binary of
//! its own, with feature `http`: the memory and descriptors it measures are the process's,
//! and no other test may move them.
#![cfg(feature = "http")]

use statsfs_testkit as common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use statsfs::binary::Blob;
use statsfs::cell::{Counter, Gauge};
use statsfs::vfs::{is_mounted, mount, MountOptions};
use statsfs::{Source, Stats, ValueGroup};

/// A connection's statistics.
#[derive(Stats, Default)]
#[stats(name = "conn")]
struct ConnStat {
    /// Requests served (written by many threads on the shared source)
    requests: Counter,
    /// Bytes moved (written by its one owner, the owner path)
    bytes: Counter,
    /// Requests in flight
    inflight: Gauge<i64>,
}

const WRITERS: usize = 2;
/// A thread that has not moved for this long is stalled.
const STALL: Duration = Duration::from_secs(20);

/// What a thread is doing now, and how many steps it has made: the watchdog's view.
struct Beat {
    name: &'static str,
    doing: Mutex<&'static str>,
    steps: AtomicU64,
}

impl Beat {
    fn new(name: &'static str) -> Arc<Beat> {
        Arc::new(Beat {
            name,
            doing: Mutex::new("starting"),
            steps: AtomicU64::new(0),
        })
    }
    fn doing(&self, what: &'static str) {
        *self.doing.lock().unwrap() = what;
        self.steps.fetch_add(1, Ordering::Relaxed);
    }
}

/// The threads of the run, each with its beat.
#[derive(Default)]
struct Crew {
    beats: Vec<Arc<Beat>>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

impl Crew {
    fn spawn(&mut self, name: &'static str, f: impl FnOnce(&Beat) + Send + 'static) {
        let beat = Beat::new(name);
        self.beats.push(beat.clone());
        self.threads
            .push((name, std::thread::spawn(move || f(&beat))));
    }
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn duration() -> Duration {
    let secs = std::env::var("STATSFS_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn value_file(p: &Path) -> Option<u64> {
    // A source removed between the listing and the read is ENOENT: not an error here.
    fs::read_to_string(p).ok()?.trim_end().parse().ok()
}

fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nAccept-Encoding: identity\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(not a string)".to_owned())
}

#[derive(Default)]
struct Counts {
    churn: [u64; 6],
    api_reads: u64,
    file_reads: u64,
    bulk_reads: u64,
    tree_bulk_reads: u64,
    selections: u64,
    listings: u64,
    scrapes: u64,
}

const CHURN_KINDS: [&str; 6] = [
    "created+added",
    "hidden",
    "revoked",
    "removed",
    "nested",
    "dropped",
];

#[test]
fn everything_at_once_under_churn_for_a_minute() {
    if !common::can_mount("everything_at_once_under_churn_for_a_minute") {
        return;
    }
    let run = duration();
    let fds_before = open_fds();
    let root = Source::new("svc").unwrap();
    root.add(ValueGroup::aggregates::<ConnStat>()).unwrap();
    let pool = Source::new("pool").unwrap();
    pool.add(ValueGroup::aggregates::<ConnStat>()).unwrap();
    root.add_subordinate(&pool).unwrap();
    let shared_stats = Arc::new(ConnStat::default());
    let shared = Source::new("shared").unwrap();
    shared.add(shared_stats.clone()).unwrap();
    root.add_subordinate(&shared).unwrap();

    let dir = tempfile::TempDir::new().unwrap();
    let m = mount(
        dir.path(),
        std::slice::from_ref(&root),
        MountOptions::default(),
    )
    .unwrap();
    let at: PathBuf = m.path().join("svc");
    let server = statsfs::http::serve(
        std::slice::from_ref(&root),
        "127.0.0.1:0",
        Default::default(),
    )
    .unwrap();
    let addr = server.local_addr();

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut crew = Crew::default();

    // Writers: each adds to the shared source and to one of its own.
    let mut owned = Vec::new();
    let writer_totals: Arc<Vec<AtomicU64>> =
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    for w in 0..WRITERS {
        let mine = Arc::new(ConnStat::default());
        let s = Source::new(format!("writer{w}")).unwrap();
        s.add(mine.clone()).unwrap();
        root.add_subordinate(&s).unwrap();
        owned.push((s, mine.clone()));
        let (shared_stats, stop, totals) =
            (shared_stats.clone(), stop.clone(), writer_totals.clone());
        crew.spawn(["writer0", "writer1"][w], move |beat| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                beat.doing("writing");
                for _ in 0..1000 {
                    shared_stats.requests.inc();
                    mine.bytes.add_local(3);
                    mine.requests.inc_local();
                }
                n += 1000;
                std::thread::yield_now();
            }
            totals[w].store(n, Ordering::Relaxed);
        });
    }

    // Churn: sources come and go under `pool`; a sample of them is watched for leaks.
    let watched: Arc<Mutex<Vec<Weak<ConnStat>>>> = Arc::default();
    {
        let (pool, stop, counts, watched) =
            (pool.clone(), stop.clone(), counts.clone(), watched.clone());
        crew.spawn("churn", move |beat| {
            let mut live: std::collections::VecDeque<(Source, Arc<ConnStat>)> = Default::default();
            let mut n = 0u64;
            let mut c = [0u64; 6];
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                beat.doing("create and add");
                let stats = Arc::new(ConnStat::default());
                stats.requests.add(n % 7);
                stats.bytes.add(n);
                let s = Source::new(format!("c{n}")).unwrap();
                s.set_label("conn", n.to_string()).unwrap();
                s.add(stats.clone()).unwrap();
                if n % 5 == 0 {
                    // A nested one: a source with a child of its own.
                    beat.doing("nest");
                    let child = Source::new("sub").unwrap();
                    child.add(Arc::new(ConnStat::default())).unwrap();
                    s.add_subordinate(&child).unwrap();
                    c[4] += 1;
                }
                pool.add_subordinate(&s).unwrap();
                c[0] += 1;
                if n % 16 == 0 {
                    watched.lock().unwrap().push(Arc::downgrade(&stats));
                }
                live.push_back((s, stats));
                if n % 3 == 0 {
                    if let Some((s, _)) = live.get(live.len() / 2) {
                        beat.doing("hide");
                        s.set_hidden(n % 6 == 0);
                        c[1] += 1;
                    }
                }
                while live.len() > 200 {
                    let (s, stats) = live.pop_front().unwrap();
                    if n % 4 == 0 {
                        // The owner's way out: revoke (no reader touches the instance
                        // again), then remove.
                        beat.doing("revoke");
                        s.revoke();
                        c[2] += 1;
                    }
                    beat.doing("remove");
                    pool.remove_subordinate(&s).unwrap();
                    c[3] += 1;
                    beat.doing("drop");
                    drop((s, stats));
                    c[5] += 1;
                }
            }
            beat.doing("removing the rest");
            for (s, _) in live.drain(..) {
                pool.remove_subordinate(&s).unwrap();
                c[3] += 1;
                c[5] += 1;
            }
            counts.lock().unwrap().churn = c;
        });
    }

    // API reader: the shared total only grows; aggregates read without error.
    {
        let (root, shared, stop, counts) =
            (root.clone(), shared.clone(), stop.clone(), counts.clone());
        crew.spawn("api reader", move |beat| {
            let (mut last, mut n) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                beat.doing("reading the shared total");
                let v = shared.get("requests").unwrap().as_u64();
                assert!(v >= last, "the shared total went back from {last} to {v}");
                last = v;
                beat.doing("reading aggregates");
                root.get("requests").unwrap();
                root.get("bytes").unwrap();
                n += 3;
            }
            counts.lock().unwrap().api_reads = n;
        });
    }

    // Mount readers: value files, bulk files, subtree bulk files, listings.
    {
        let (at, stop, counts) = (at.clone(), stop.clone(), counts.clone());
        crew.spawn("file reader", move |beat| {
            let (mut files, mut bulks, mut trees, mut listings) = (0, 0, 0, 0);
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                beat.doing("reading svc/shared/requests");
                let v = value_file(&at.join("shared/requests")).expect("the shared value file");
                assert!(v >= last, "the file went back from {last} to {v}");
                last = v;
                files += 1;
                beat.doing("listing svc/pool");
                let names: Vec<_> = fs::read_dir(at.join("pool"))
                    .expect("list pool")
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect();
                listings += 1;
                beat.doing("reading pool members");
                for name in names.iter().take(20) {
                    let p = at.join("pool").join(name);
                    if p.is_dir() {
                        let _ = value_file(&p.join("bytes"));
                        files += 1;
                    }
                }
                beat.doing("reading svc/.stats");
                let blob = fs::read(at.join(".stats")).expect("read svc/.stats");
                let b = Blob::decode(&blob).expect("a well-formed blob");
                assert!(b.value("requests").is_some());
                bulks += 1;
                beat.doing("reading svc/pool/.tree.stats");
                if let Ok(blob) = fs::read(at.join("pool/.tree.stats")) {
                    Blob::decode(&blob).expect("a well-formed subtree blob");
                    trees += 1;
                }
            }
            let mut c = counts.lock().unwrap();
            (c.file_reads, c.bulk_reads, c.tree_bulk_reads, c.listings) =
                (files, bulks, trees, listings);
        });
    }

    // A selection on an open bulk file, refreshed with pread.
    {
        let (at, stop, counts) = (at.clone(), stop.clone(), counts.clone());
        crew.spawn("selection reader", move |beat| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                beat.doing("opening svc/.tree.stats");
                let mut f: File = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(at.join(".tree.stats"))
                    .expect("open the subtree bulk file");
                beat.doing("selecting");
                f.write_all(b"shared/requests writer*/bytes")
                    .expect("a valid selection");
                for _ in 0..50 {
                    beat.doing("reading the selection");
                    let b = Blob::read(&f).expect("a well-formed selected blob");
                    assert_eq!(b.schema().descriptors().len(), 1 + WRITERS);
                    n += 1;
                }
                beat.doing("a bad selection");
                assert!(f.write_all(b"no_such_stat").is_err());
                let mut buf = vec![0u8; 1 << 16];
                let _ = f.read_at(&mut buf, 0).expect("the old selection stays");
            }
            counts.lock().unwrap().selections = n;
        });
    }

    // Scrapes.
    {
        let (stop, counts) = (stop.clone(), counts.clone());
        crew.spawn("scraper", move |beat| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                beat.doing("scraping /metrics");
                let body = scrape(addr).expect("a scrape");
                assert!(
                    body.starts_with("HTTP/1.0 200"),
                    "{}",
                    &body[..body.len().min(100)]
                );
                assert!(body.contains("conn_requests_total{path=\"svc/shared\"}"));
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            counts.lock().unwrap().scrapes = n;
        });
    }

    // The watchdog: run for `run`, sampling the RSS after a warm-up; fail if any thread
    // stops moving or dies.
    let start = Instant::now();
    let Crew { beats, threads } = crew;
    let mut seen: Vec<(u64, Instant)> = beats.iter().map(|_| (0, start)).collect();
    let mut rss_warm = None;
    while start.elapsed() < run {
        std::thread::sleep(Duration::from_millis(250));
        if rss_warm.is_none() && start.elapsed() > run / 6 {
            rss_warm = Some(rss_kib());
        }
        for (i, b) in beats.iter().enumerate() {
            let steps = b.steps.load(Ordering::Relaxed);
            if steps != seen[i].0 {
                seen[i] = (steps, Instant::now());
            }
        }
        let dead = threads.iter().find(|(_, t)| t.is_finished());
        let stalled = seen.iter().position(|(_, at)| at.elapsed() > STALL);
        if dead.is_some() || stalled.is_some() {
            stop.store(true, Ordering::Relaxed);
            let report: Vec<String> = beats
                .iter()
                .map(|b| {
                    format!(
                        "  {}: {} ({} steps)",
                        b.name,
                        b.doing.lock().unwrap(),
                        b.steps.load(Ordering::Relaxed)
                    )
                })
                .collect();
            let why = match (dead, stalled) {
                (Some((name, _)), _) => format!("{name} ended early (panicked?)"),
                (_, Some(i)) => format!("{} made no step for {STALL:?}", beats[i].name),
                _ => unreachable!(),
            };
            // Join what ended, to show its panic.
            for (name, t) in threads {
                if t.is_finished() {
                    if let Err(e) = t.join() {
                        eprintln!("{name} panicked: {}", panic_message(&*e));
                    }
                }
            }
            panic!("{why}; every thread:\n{}", report.join("\n"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let joined_by = Instant::now() + STALL;
    for (name, t) in threads {
        while !t.is_finished() {
            assert!(
                Instant::now() < joined_by,
                "{name} did not stop within {STALL:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Err(e) = t.join() {
            panic!("{name} panicked: {}", panic_message(&*e));
        }
    }
    let elapsed = start.elapsed();

    // Exact totals.
    let per_writer: Vec<u64> = writer_totals
        .iter()
        .map(|t| t.load(Ordering::Relaxed))
        .collect();
    let total: u64 = per_writer.iter().sum();
    assert_eq!(
        shared_stats.requests.get(),
        total,
        "the shared counter lost increments"
    );
    assert_eq!(shared.get("requests").unwrap().as_u64(), total);
    for ((s, mine), n) in owned.iter().zip(&per_writer) {
        assert_eq!(s.get("requests").unwrap().as_u64(), *n);
        assert_eq!(s.get("bytes").unwrap().as_u64(), 3 * n);
        assert_eq!(mine.bytes.get(), 3 * n);
    }
    // The churn left nothing under pool, so the root's aggregate is exact too.
    assert_eq!(pool.subordinate_count(), 0);
    assert_eq!(pool.get("requests").unwrap().as_u64(), 0);
    assert_eq!(root.get("requests").unwrap().as_u64(), 2 * total);
    assert_eq!(
        value_file(&at.join("requests")).unwrap(),
        2 * total,
        "the mount's aggregate"
    );

    // Stop the readers' views: the mount goes when its handle drops.
    let watched = std::mem::take(&mut *watched.lock().unwrap());
    let held_while_mounted = watched.iter().filter(|w| w.strong_count() > 0).count();
    let stopped = server.shutdown();
    let mount_path = m.path().to_owned();
    drop(m);
    assert!(
        !is_mounted(&mount_path).unwrap(),
        "still mounted after the drop"
    );
    // Nothing the churn dropped is still held: not by the tree, the mount or the server.
    let leaked = watched.iter().filter(|w| w.strong_count() > 0).count();
    assert_eq!(
        leaked,
        0,
        "{leaked} of {} watched sources are still alive",
        watched.len()
    );
    let fds_after = open_fds();
    let rss_end = rss_kib();
    let rss_warm = rss_warm.unwrap_or(rss_end);
    assert!(
        fds_after <= fds_before + 4,
        "descriptors: {fds_before} before, {fds_after} after"
    );
    assert!(
        rss_end <= rss_warm + 64 * 1024,
        "RSS grew from {rss_warm} KiB (after warm-up) to {rss_end} KiB"
    );

    let c = counts.lock().unwrap();
    let churn: Vec<String> = CHURN_KINDS
        .iter()
        .zip(c.churn)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "stress: {} threads for {:.1} s; writes {} shared + {} owned; churn: {}; reads: api {}, files {}, bulk {}, subtree bulk {}, selections {}, listings {}, scrapes {}; watched sources {} ({} still held while mounted, 0 after); descriptors {} -> {}; RSS {} KiB after warm-up -> {} KiB; http cut {}",
        WRITERS + 5,
        elapsed.as_secs_f64(),
        total,
        2 * total,
        churn.join(", "),
        c.api_reads,
        c.file_reads,
        c.bulk_reads,
        c.tree_bulk_reads,
        c.selections,
        c.listings,
        c.scrapes,
        watched.len(),
        held_while_mounted,
        fds_before,
        fds_after,
        rss_warm,
        rss_end,
        stopped.cut,
    );
}
