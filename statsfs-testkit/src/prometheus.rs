//! A real Prometheus server for the tests, on 127.0.0.1 with a free port and a data
//! directory of its own (both gone when it drops), and its query API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running `prometheus`; killed, and its directory removed, when dropped.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

/// A free TCP port on 127.0.0.1 (free when asked: bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// `s` with every byte but `[A-Za-z0-9_.-]` written `%XX`, for a query string.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `v` as the inside of a PromQL string literal.
pub fn promql_string(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Prometheus {
    /// Starts `prometheus` with `config` (the YAML of `prometheus.yml`) and `flags`, and
    /// waits (at most 60 s) until it answers queries. `None` (the test `test` skipped, see
    /// [`crate::skip`]) when `prometheus` is not on PATH.
    pub fn start(test: &str, config: &str, flags: &[&str]) -> Option<Prometheus> {
        let bin = crate::tool(test, "prometheus")?;
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("statsfs-prom-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for prometheus");
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let end = Instant::now() + Duration::from_secs(60);
        while p.query("1").is_none() {
            assert!(
                Instant::now() < end,
                "prometheus did not answer in 60 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(p)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The `result` of an instant query, as JSON text (`[]` when nothing matches yet);
    /// `None` when it does not answer.
    pub fn query(&self, promql: &str) -> Option<String> {
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let body = raw.split_once("\r\n\r\n")?.1;
        let at = body.find("\"result\":")?;
        Some(body[at + "\"result\":".len()..].to_owned())
    }

    /// The value of an instant query whose result is exactly one series.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql)?;
        if result.matches("\"metric\"").count() != 1 {
            return None;
        }
        let at = result.find("\"value\":[")?;
        result[at..].split('"').nth(3)?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
