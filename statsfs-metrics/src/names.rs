//! How the facade's names become the tree's, one function a rule: metric names become
//! value names, label keys label names, label values label values, and a label set the
//! name of its source. The facade checks none of them, so each accepts any text and
//! returns something the tree's own checks accept (`docs/GUIDE.md#the-metrics-facade`).

use std::borrow::Cow;
use std::fmt::Write;
use std::hash::{Hash, Hasher};

use statsfs_core::desc::{has_control, valid_label_name, valid_name};

/// The longest value or source name made here, in bytes: file names stay under the
/// 255 bytes every file system takes, with room for `_sum`.
pub(crate) const MAX_NAME: usize = 200;

/// The label of the series that holds a metric's samples past its cardinality limit.
pub(crate) const OVERFLOW_LABEL: &str = "statsfs_overflow";

/// The source of the overflow series: a name no label set has (they all hold `=`).
pub(crate) const OVERFLOW_SET: &str = "{overflow}";

/// The source of an unlabelled series of a metric whose total already has its name in
/// the recorder's source (`docs/GUIDE.md#the-metrics-facade`).
pub(crate) const UNLABELLED: &str = "{}";

/// The value name of a metric: its name with `/` and control characters as `_`; `None`
/// when that is no file name or longer than [`MAX_NAME`].
pub(crate) fn value_name(metric: &str) -> Option<String> {
    let name: String = metric
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    (name.len() <= MAX_NAME && valid_name(&name)).then_some(name)
}

/// A label key as a label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`): other
/// characters become `_` (`http.method` is `http_method`, as Prometheus exporters write
/// it), a leading digit gets a `_` before it, and leading `__` shrinks to one `_`.
pub(crate) fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    while name.starts_with("__") {
        name.remove(0);
    }
    debug_assert!(valid_label_name(&name), "{name:?}");
    name
}

/// A label value the tree takes: control characters become U+FFFD.
pub(crate) fn label_value(value: &str) -> Cow<'_, str> {
    if !has_control(value) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// The name of the source of a label set (sorted by name, as [`canonical`] gives it):
/// `method=GET,status=200`. Values keep every character but `%`, `/`, `,`, `=`, `~` and
/// space, which are written `%XX` (so two sets never share a name; the values have no
/// control characters left, see [`canonical`]). A name past [`MAX_NAME`] is cut and ends
/// in `~` and a hash of the whole, which no value can forge.
pub(crate) fn set_name(labels: &[(String, String)]) -> String {
    let mut name = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            name.push(',');
        }
        name.push_str(k);
        name.push('=');
        for c in v.chars() {
            if matches!(c, '%' | '/' | ',' | '=' | '~' | ' ') || c.is_control() {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(name, "%{b:02X}");
                }
            } else {
                name.push(c);
            }
        }
    }
    if name.len() > MAX_NAME {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let mut cut = MAX_NAME - 17;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        let _ = write!(name, "~{:016x}", h.finish());
    }
    debug_assert!(valid_name(&name), "{name:?}");
    name
}

/// A key's labels as the tree keeps them: names and values made valid, sorted by name,
/// the first of two labels with one name kept.
pub(crate) fn canonical<'k>(
    labels: impl Iterator<Item = (&'k str, &'k str)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in labels {
        let k = label_name(k);
        if !out.iter().any(|(o, _)| *o == k) {
            out.push((k, label_value(v).into_owned()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_become_file_names() {
        assert_eq!(
            value_name("http_requests_total").as_deref(),
            Some("http_requests_total")
        );
        assert_eq!(
            value_name("http.server.duration").as_deref(),
            Some("http.server.duration")
        );
        assert_eq!(value_name("a/b\u{1b}[31m").as_deref(), Some("a_b_[31m"));
        assert_eq!(value_name(""), None);
        assert_eq!(value_name(".."), None);
        assert_eq!(value_name(&"x".repeat(MAX_NAME + 1)), None);
    }

    #[test]
    fn label_keys_become_label_names() {
        for (key, want) in [
            ("method", "method"),
            ("http.method", "http_method"),
            ("5xx", "_5xx"),
            ("", "_"),
            ("__name__", "_name__"),
            ("ünï", "_n_"),
        ] {
            assert_eq!(label_name(key), want, "{key}");
        }
    }

    #[test]
    fn label_sets_name_sources_and_never_share_one() {
        let set = |l: &[(&str, &str)]| set_name(&canonical(l.iter().copied()));
        assert_eq!(
            set(&[("status", "200"), ("method", "GET")]),
            "method=GET,status=200"
        );
        assert_eq!(
            set(&[("path", "/a,b=c d%~")]),
            "path=%2Fa%2Cb%3Dc%20d%25%7E"
        );
        assert_eq!(set(&[("k", "\n\u{9b}")]), "k=\u{fffd}\u{fffd}");
        assert_ne!(set(&[("a", "1,b=2")]), set(&[("a", "1"), ("b", "2")]));
        assert_eq!(set(&[("a", "1"), ("a", "2")]), "a=1");
        let long = set(&[("k", &"é".repeat(300))]);
        assert!(long.len() <= MAX_NAME && long.contains('~'), "{long}");
        assert_ne!(long, set(&[("k", &"é".repeat(301))]));
        assert_eq!(label_value("a\tb"), "a\u{fffd}b");
    }
}
