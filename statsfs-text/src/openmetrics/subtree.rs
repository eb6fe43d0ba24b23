//! One subtree of an exposition: the series of the sources at or below a path, with their
//! families' metadata, from the text an [`Encoder`](super::Encoder) wrote.

use statsfs_core::Source;

/// The part of `exposition` (text an [`Encoder`](super::Encoder) wrote, in either format)
/// that describes the sources at or below `under` (a path from the roots,
/// `kvm/1234-5`; `""` keeps everything): each series whose path label (the first label,
/// as the encoder writes it) is `under` or starts with `under/`, each kept family's
/// `# HELP`, `# TYPE` and `# UNIT` lines before its series, and `# EOF` where the text
/// has it. What it keeps is byte for byte what the encoder wrote, so the dump of a
/// directory of a mount is the lines of `/metrics` that belong to it.
///
/// A line this function cannot read as the encoder's (no labels, an unterminated label
/// value) belongs to no subtree and is left out.
///
/// ```
/// use statsfs_text::openmetrics::subtree;
///
/// let text = b"# TYPE a gauge\na{path=\"kvm/vm1\"} 1\na{path=\"kvm/vm10\"} 2\n\
///              # TYPE b gauge\nb{path=\"kvm/vm2\"} 3\n";
/// assert_eq!(subtree(text, "kvm/vm1"), b"# TYPE a gauge\na{path=\"kvm/vm1\"} 1\n");
/// ```
pub fn subtree(exposition: &[u8], under: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(if under.is_empty() {
        exposition.len()
    } else {
        0
    });
    // The current family's metadata lines, written before its first kept series.
    let mut metadata: Vec<&[u8]> = Vec::new();
    let mut written = false;
    let mut in_series = false;
    for line in exposition.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"#") {
            if line.trim_ascii_end() == b"# EOF" {
                out.extend_from_slice(line);
                continue;
            }
            if in_series {
                // Metadata after series: the next family begins.
                metadata.clear();
                written = false;
                in_series = false;
            }
            metadata.push(line);
            continue;
        }
        in_series = true;
        if path_label(line).is_some_and(|p| Source::path_within(&p, under)) {
            if !written {
                metadata.iter().for_each(|m| out.extend_from_slice(m));
                written = true;
            }
            out.extend_from_slice(line);
        }
    }
    out
}

/// The value of a series line's first label (the encoder writes the path label first),
/// unescaped (`\\`, `\"`, `\n`).
fn path_label(line: &[u8]) -> Option<String> {
    let open = line.iter().position(|&b| b == b'{')?;
    let rest = &line[open + 1..];
    let eq = rest.iter().position(|&b| b == b'=')?;
    let value = rest[eq + 1..].strip_prefix(b"\"")?;
    let mut out = Vec::new();
    let mut bytes = value.iter();
    loop {
        match *bytes.next()? {
            b'"' => return String::from_utf8(out).ok(),
            b'\\' => out.push(match *bytes.next()? {
                b'n' => b'\n',
                other => other,
            }),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP vm_pages Pages
# TYPE vm_pages gauge
vm_pages{path=\"kvm/vm1\",vm=\"a\"} 1
vm_pages{path=\"kvm/vm1x\"} 2
vm_pages{path=\"kvm/vm2\"} 3
# HELP vcpu_exits_total Exits
# TYPE vcpu_exits_total counter
vcpu_exits_total{path=\"kvm/vm2/vcpu0\"} 4
# TYPE lat_seconds histogram
lat_seconds_bucket{path=\"kvm/vm1/vcpu0\",le=\"1\"} 5
lat_seconds_bucket{path=\"kvm/vm1/vcpu0\",le=\"+Inf\"} 6
lat_seconds_count{path=\"kvm/vm1/vcpu0\"} 6
# EOF
";

    fn sub(under: &str) -> String {
        String::from_utf8(subtree(TEXT.as_bytes(), under)).unwrap()
    }

    #[test]
    fn everything_under_the_empty_path() {
        assert_eq!(sub(""), TEXT);
    }

    #[test]
    fn a_subtree_keeps_its_series_and_their_families_metadata_only() {
        assert_eq!(
            sub("kvm/vm1"),
            "\
# HELP vm_pages Pages
# TYPE vm_pages gauge
vm_pages{path=\"kvm/vm1\",vm=\"a\"} 1
# TYPE lat_seconds histogram
lat_seconds_bucket{path=\"kvm/vm1/vcpu0\",le=\"1\"} 5
lat_seconds_bucket{path=\"kvm/vm1/vcpu0\",le=\"+Inf\"} 6
lat_seconds_count{path=\"kvm/vm1/vcpu0\"} 6
# EOF
"
        );
        assert_eq!(sub("kvm/vm3"), "# EOF\n");
    }

    #[test]
    fn escaped_paths_are_compared_unescaped() {
        let text = "# TYPE a gauge\na{path=\"k\\\"v\\\\m/x\\ny\"} 1\na{path=\"k\"} 2\n";
        let kept = subtree(text.as_bytes(), "k\"v\\m");
        assert_eq!(kept, b"# TYPE a gauge\na{path=\"k\\\"v\\\\m/x\\ny\"} 1\n");
    }

    #[test]
    fn lines_that_are_not_the_encoders_are_left_out() {
        for text in ["a 1\n", "a{path=\"kvm 1\n", "a{path=kvm} 1\n", "a{\n", "{"] {
            assert!(subtree(text.as_bytes(), "kvm").is_empty(), "{text:?}");
        }
    }
}
