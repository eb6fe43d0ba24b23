//! An OTLP/HTTP metrics receiver for the tests: `otlp_receiver.py` beside this crate,
//! which decodes every request with the OpenTelemetry project's own protobuf classes
//! (PyPI `opentelemetry-proto`) and prints it, one line a data point.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

/// The receiver, running on 127.0.0.1; stopped when dropped.
pub struct OtlpReceiver {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    /// Each request it took: its lines (`REQUEST`, `RESOURCE`, `SCOPE`, `POINT`s).
    pub requests: Receiver<Vec<String>>,
}

impl OtlpReceiver {
    /// Starts it with `args` (`--status CODE --times N`: answer CODE to the first N
    /// requests). `None` (the test `test` skipped, see [`crate::skip`]) without python3 or
    /// its `opentelemetry.proto`.
    pub fn start(test: &str, args: &[&str]) -> Option<OtlpReceiver> {
        let py = crate::tool(test, "python3")?;
        let ok = Command::new(&py)
            .args(["-c", "import opentelemetry.proto"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            crate::skip(
                test,
                "python3 cannot import opentelemetry.proto (pip install opentelemetry-proto, or bash .ci/setup)",
            );
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("otlp_receiver.py");
        let mut child = Command::new(py)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start otlp_receiver.py");
        let stdin = child.stdin.take().expect("its stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .expect("otlp_receiver.py says where it listens");
        let (tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            let mut block = Vec::new();
            for line in lines.map_while(Result::ok) {
                if line == "END" {
                    if tx.send(std::mem::take(&mut block)).is_err() {
                        return;
                    }
                } else {
                    block.push(line);
                }
            }
        });
        Some(OtlpReceiver {
            child,
            _stdin: stdin,
            port,
            requests,
        })
    }

    /// Its URL: `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
