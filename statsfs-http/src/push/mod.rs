//! Pushing the tree past one machine: OTLP/HTTP (protobuf) and Prometheus remote write
//! 1.0 (snappy-compressed protobuf), on a fixed interval (`docs/PUSH.md`).
//!
//! [`push`] starts a sender for some roots and one receiver; it encodes the same series
//! `/metrics` serves (leaves only, the same names and labels), keeps at most
//! [`PushOptions::queue`] payloads while the receiver is slow or down (dropping the
//! oldest, and counting them), sends one at a time with a timeout, retries with backoff
//! and jitter, and on [`Pusher::shutdown`] sends once more within a deadline and then
//! gives up. Its own statistics are a source ([`Pusher::source`]) to attach to the tree.
//!
//! ```no_run
//! use statsfs_core::Source;
//! use statsfs_http::push::{push, PushOptions, Target};
//! let root = Source::new("svc")?;
//! let pusher = push(&[root.clone()], Target::otlp("http://127.0.0.1:4318")?, PushOptions::default())?;
//! root.add_subordinate(pusher.source())?; // the sender's own statistics
//! // ... later:
//! let stopped = pusher.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The encoders stand alone too: [`OtlpEncoder`] and [`RemoteWriteEncoder`] turn roots
//! into payloads for a transport of your own.

mod otlp;
mod proto;
mod remote_write;
mod sender;

pub use otlp::{ucum, OtlpEncoder};
pub use remote_write::RemoteWriteEncoder;
pub use sender::{push, push_each, PushError, PushOptions, Pusher, Stopped, Target, TargetError};

/// The value of a resource attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
}

/// What an OTLP payload says about where it comes from: resource attributes in
/// OpenTelemetry's semantic conventions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// `(key, value)` pairs: `service.name`, `host.name`, `process.pid`, ...
    pub attributes: Vec<(String, Attribute)>,
}

impl Resource {
    /// This process as `service`: `service.name`, `host.name` (the kernel's host name)
    /// and `process.pid`.
    pub fn of_process(service: &str) -> Resource {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let mut attributes = vec![(
            "service.name".to_owned(),
            Attribute::String(service.to_owned()),
        )];
        if !host.is_empty() {
            attributes.push(("host.name".to_owned(), Attribute::String(host)));
        }
        attributes.push((
            "process.pid".to_owned(),
            Attribute::Int(i64::from(std::process::id())),
        ));
        Resource { attributes }
    }
}
