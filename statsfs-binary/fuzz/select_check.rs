//! What the selection fuzz target checks of one input, shared with the corpus replay
//! (`tests/binary/fuzz_corpus.rs`): the selection parser (what a reader writes to a bulk file)
//! must never panic on arbitrary bytes; whatever it accepts must print back to the same
//! patterns and match names exactly as a plain dynamic-programming matcher does. The
//! input is the selection, then optionally a 0xff byte and a name to match.

use statsfs_binary::Selection;

/// `*` any run of bytes, `?` any one byte, anything else itself: O(|p| x |s|).
fn reference(p: &[u8], s: &[u8]) -> bool {
    // can[j]: the pattern so far matches s[..j].
    let mut can = vec![false; s.len() + 1];
    can[0] = true;
    for &c in p {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match c {
                b'*' => can[j] || (j > 0 && next[j - 1]),
                b'?' => j > 0 && can[j - 1],
                c => j > 0 && can[j - 1] && s[j - 1] == c,
            };
        }
        can = next;
    }
    can[s.len()]
}

/// Checks one input; panics on a violation.
pub fn check(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (text, rest) = data.split_at(split);
    let Ok(sel) = Selection::parse_bytes(text) else {
        return;
    };
    let again = Selection::parse(&sel.to_string()).expect("a selection's own text parses");
    assert_eq!(again.patterns(), sel.patterns());
    assert!(sel.patterns().iter().all(|p| !p.is_empty()));
    let name = String::from_utf8_lossy(rest.get(1..).unwrap_or(&[]));
    let want = sel.is_all()
        || sel
            .patterns()
            .iter()
            .any(|p| reference(p.as_bytes(), name.as_bytes()));
    assert_eq!(sel.matches(&name), want, "{sel} against {name:?}");
}
