//! What a scraper asks for: the exposition format from its `Accept` header and the
//! body's coding from its `Accept-Encoding` header. Both parse outside input: anything
//! they do not understand falls back to the plain answer (the Prometheus text format,
//! identity), and nothing panics (`fuzz/`: the `negotiate` target).

use statsfs_text::openmetrics::Format;

/// The format a client asks for with this `Accept` header: OpenMetrics when it accepts
/// `application/openmetrics-text` (version 1.0.0, 0.0.1 or unspecified) with a quality
/// at least as high as any text format it accepts, else the Prometheus text format
/// (also for a missing, empty or unparsable header).
///
/// ```
/// use statsfs_http::negotiate::format;
/// use statsfs_text::openmetrics::Format;
/// // What Prometheus 2.x sends.
/// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(format(Some(prom)), Format::OpenMetrics);
/// assert_eq!(format(Some("text/plain")), Format::Prometheus);
/// assert_eq!(format(None), Format::Prometheus);
/// ```
pub fn format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Prometheus;
    };
    let (mut om, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let (mut q, mut version) = (1.0f32, None);
        for (k, v) in parts.filter_map(parameter) {
            if k.eq_ignore_ascii_case("q") {
                q = quality(v);
            } else if k.eq_ignore_ascii_case("version") {
                version = Some(v);
            }
        }
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                om = om.max(q);
            }
        } else if media.eq_ignore_ascii_case("text/plain") {
            if matches!(version, None | Some("0.0.4")) {
                text = text.max(q);
            }
        } else if media == "*/*" || media.eq_ignore_ascii_case("text/*") {
            text = text.max(q);
        }
    }
    if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

/// One `key=value` parameter of a header element (`q=0.5`, `version="1.0.0"`): the key
/// and the value, trimmed and unquoted; `None` for a parameter without `=`.
fn parameter(p: &str) -> Option<(&str, &str)> {
    let (k, v) = p.split_once('=')?;
    Some((k.trim(), v.trim().trim_matches('"')))
}

/// A quality value (`q=` in `Accept` and `Accept-Encoding`): a number in 0..=1; anything
/// unparsable counts as 0, "not acceptable".
fn quality(v: &str) -> f32 {
    v.parse::<f32>()
        .ok()
        .filter(|q| q.is_finite())
        .unwrap_or(0.0)
        .clamp(0.0, 1.0)
}

/// How a response body is encoded on the wire (HTTP's content coding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// As it is.
    #[default]
    Identity,
    /// gzip (RFC 1952), which Prometheus asks for on every scrape.
    Gzip,
}

impl ContentCoding {
    /// The coding a client asks for with this `Accept-Encoding` header (several headers
    /// joined with `,`): gzip when it names `gzip` (or `x-gzip`) with a quality above 0,
    /// or names no gzip but accepts `*`, unless it names `identity` with a higher
    /// quality; identity otherwise, also for a missing, empty or unparsable header.
    ///
    /// ```
    /// use statsfs_http::negotiate::ContentCoding;
    /// assert_eq!(ContentCoding::negotiate(Some("gzip")), ContentCoding::Gzip);
    /// assert_eq!(ContentCoding::negotiate(Some("br, gzip;q=0")), ContentCoding::Identity);
    /// assert_eq!(ContentCoding::negotiate(Some("*;q=0.5")), ContentCoding::Gzip);
    /// assert_eq!(ContentCoding::negotiate(Some("gzip;q=0.1, identity")), ContentCoding::Identity);
    /// assert_eq!(ContentCoding::negotiate(None), ContentCoding::Identity);
    /// ```
    pub fn negotiate(accept_encoding: Option<&str>) -> ContentCoding {
        let Some(header) = accept_encoding else {
            return ContentCoding::Identity;
        };
        let (mut gzip, mut any, mut identity) = (None::<f32>, 0.0f32, 0.0f32);
        for item in header.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(parameter)
                .find(|(k, _)| k.eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| quality(v));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(gzip.map_or(q, |g| g.max(q)));
            } else if coding == "*" {
                any = any.max(q);
            } else if coding.eq_ignore_ascii_case("identity") {
                identity = identity.max(q);
            }
        }
        let gzip = gzip.unwrap_or(any);
        if gzip > 0.0 && gzip >= identity {
            ContentCoding::Gzip
        } else {
            ContentCoding::Identity
        }
    }

    /// The `Content-Encoding` header's value, `None` for identity.
    pub const fn header(self) -> Option<&'static str> {
        match self {
            ContentCoding::Identity => None,
            ContentCoding::Gzip => Some("gzip"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let f = |s| format(Some(s));
        assert_eq!(f("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(
            f("application/openmetrics-text;q=0.4,text/plain;q=0.5"),
            Format::Prometheus
        );
        assert_eq!(
            f("application/openmetrics-text;version=2.0.0"),
            Format::Prometheus
        );
        assert_eq!(f("application/openmetrics-text;q=0"), Format::Prometheus);
        assert_eq!(f("*/*"), Format::Prometheus);
        assert_eq!(f(";;,=,q=x"), Format::Prometheus);
    }
}
