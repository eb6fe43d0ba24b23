//! The text formats against their readers: the OpenMetrics encoder through promtool and prometheus-client's parsers.
//!
//! One test binary for the crate: each module is a file beside this one.

use statsfs_testkit as common;

mod openmetrics;
