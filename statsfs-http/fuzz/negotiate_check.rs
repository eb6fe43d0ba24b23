//! What the negotiation fuzz target checks of one input, shared with the corpus replay
//! (`tests/http/fuzz_corpus.rs`): the parsers of the two request headers the `/metrics`
//! endpoint reads (`Accept`: [`negotiate::format`], `Accept-Encoding`:
//! [`ContentCoding::negotiate`]) never panic on any text, and choose OpenMetrics or gzip
//! only when the header names them (gzip also by `*`). The input is the `Accept` text,
//! then optionally a 0xff byte and the `Accept-Encoding` text.

use statsfs_http::negotiate::{self, ContentCoding};
use statsfs_text::openmetrics::Format;

/// Checks one input; panics on a violation.
pub fn check(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (accept, rest) = data.split_at(split);
    let accept = String::from_utf8_lossy(accept);
    let encoding = String::from_utf8_lossy(rest.get(1..).unwrap_or(&[]));
    let (a, e) = (accept.to_ascii_lowercase(), encoding.to_ascii_lowercase());
    if negotiate::format(Some(&accept)) == Format::OpenMetrics {
        assert!(
            a.contains("application/openmetrics-text"),
            "OpenMetrics for {accept:?}"
        );
    }
    if ContentCoding::negotiate(Some(&encoding)) == ContentCoding::Gzip {
        assert!(
            e.contains("gzip") || e.contains('*'),
            "gzip for {encoding:?}"
        );
    }
    // A header of one plain coding is taken at its word.
    if !encoding.contains([',', ';']) {
        let want = match encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" | "*" => ContentCoding::Gzip,
            _ => ContentCoding::Identity,
        };
        assert_eq!(
            ContentCoding::negotiate(Some(&encoding)),
            want,
            "{encoding:?}"
        );
    }
}
