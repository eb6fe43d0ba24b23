//! What each request gets: `/metrics` in the negotiated format and coding, `/schema`,
//! `/`, and the errors (`docs/HARDENING.md#http-requests`).

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use statsfs_text::openmetrics::Encoder;

use crate::negotiate::{self, ContentCoding};
use statsfs_core::Source;

/// What every connection shares: the roots served, one encoder and the options.
pub(super) struct App {
    pub(super) roots: Vec<Source>,
    /// One encoder for the endpoint, so a scrape allocates nothing per series once the
    /// tree has been seen. Locked only while encoding, never across an `.await`: the
    /// runtime has one thread, so it is never contended.
    pub(super) encoder: Mutex<Encoder>,
    /// The last body made for each format and coding, with when its encoding started.
    pub(super) latest: Mutex<Vec<Latest>>,
    pub(super) gzip: bool,
}

/// A `/metrics` body and when its encoding started: it answers any request that arrived
/// before that, since its values were read after the request came.
pub(super) struct Latest {
    format: statsfs_text::openmetrics::Format,
    coding: ContentCoding,
    started: Instant,
    body: Bytes,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The one value of header `name`, if it is there once and is text; `Accept` and
/// `Accept-Encoding` sent several times are joined with `,` as HTTP defines.
fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let mut joined: Option<String> = None;
    for v in headers.get_all(name) {
        let v = v.to_str().ok()?;
        match &mut joined {
            Some(j) => {
                j.push(',');
                j.push_str(v);
            }
            None => joined = Some(v.to_owned()),
        }
    }
    joined
}

/// The answer to one request, which arrived at `arrived`. Request bodies are never read.
pub(super) fn answer<B>(
    app: &App,
    request: &Request<B>,
    arrived: Instant,
) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut r = response(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match request.uri().path() {
        "/metrics" => metrics(app, request.headers(), arrived),
        "/schema" => {
            // Every stat the binary can produce, before any instance exists.
            let mut text = String::new();
            let _ = statsfs_text::catalogue::write(&mut text);
            response(StatusCode::OK, TEXT, text)
        }
        "/" => response(
            StatusCode::OK,
            TEXT,
            "statsfs: metrics are at /metrics, the catalogue of every stat at /schema\n",
        ),
        _ => response(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: metrics are at /metrics\n",
        ),
    }
}

/// The exposition for a request that arrived at `arrived`: the body made last for its
/// format and coding if that one started after the request arrived (its values are as
/// fresh as a new one's), else a new one. So any number of scrapers waiting together
/// cost one encoding between them, not one each.
fn metrics(app: &App, headers: &HeaderMap, arrived: Instant) -> Response<Full<Bytes>> {
    let format = negotiate::format(header_text(headers, header::ACCEPT).as_deref());
    let coding = if app.gzip {
        ContentCoding::negotiate(header_text(headers, header::ACCEPT_ENCODING).as_deref())
    } else {
        ContentCoding::Identity
    };
    let body = {
        let mut latest = app.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = latest
            .iter()
            .find(|l| l.format == format && l.coding == coding && l.started >= arrived);
        match fresh {
            Some(l) => l.body.clone(),
            None => {
                let started = Instant::now();
                let mut encoder = app.encoder.lock().unwrap_or_else(PoisonError::into_inner);
                let text = encoder.encode(&app.roots, format);
                let body = match coding {
                    ContentCoding::Gzip => gzip(text),
                    _ => Bytes::copy_from_slice(text),
                };
                latest.retain(|l| l.format != format || l.coding != coding);
                latest.push(Latest {
                    format,
                    coding,
                    started,
                    body: body.clone(),
                });
                body
            }
        }
    };
    let mut r = response(StatusCode::OK, format.content_type(), body);
    if let Some(value) = coding.header() {
        let h = r.headers_mut();
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(value));
    }
    // The body depends on `Accept` (the format) and, with gzip on, `Accept-Encoding`.
    let vary = if app.gzip {
        "Accept, Accept-Encoding"
    } else {
        "Accept"
    };
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static(vary));
    r
}

/// `text` compressed with gzip at the fastest level: text exposition compresses about
/// tenfold even so, and a scrape should cost the host little.
fn gzip(text: &[u8]) -> Bytes {
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = z.write_all(text);
    Bytes::from(z.finish().unwrap_or_default())
}
