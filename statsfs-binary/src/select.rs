//! Selections: which stats a bulk reader wants (`docs/BINARY.md#selections`): a reader
//! who wants only some stats gets only those, in the same well-formed structure.

use std::fmt;

/// The longest selection text accepted.
pub const MAX_SELECTION_LEN: usize = 64 * 1024;

/// A list of name patterns; a stat is selected when any pattern matches its name (for a
/// subtree view, its path-qualified name such as `vcpu0/exits`).
///
/// Patterns are separated by white space or commas; `*` matches any run of characters
/// (`/` included), `?` any one character; everything else matches itself.
///
/// ```
/// use statsfs_binary::Selection;
/// let s = Selection::parse("exits halt_*, */io_?xits").unwrap();
/// assert!(s.matches("exits"));
/// assert!(s.matches("halt_wait_ns"));
/// assert!(s.matches("vcpu0/io_exits"));
/// assert!(!s.matches("vcpu0/exits"));
/// assert!(Selection::all().matches("anything"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    patterns: Vec<String>,
}

/// Why a selection was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// The text is longer than [`MAX_SELECTION_LEN`].
    #[error("selection of {len} bytes is longer than {max}; select fewer patterns", max = MAX_SELECTION_LEN)]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The text is not UTF-8, or a pattern holds a control character.
    #[error("pattern {pattern:?} holds a control character or is not UTF-8; patterns are names with `*` and `?`")]
    BadCharacter {
        /// The offending pattern, lossily decoded.
        pattern: String,
    },
    /// No stat of the source matches any pattern.
    #[error("selection {selection:?} matches no stat of this source; list the directory to see the names")]
    NoMatch {
        /// The selection as given.
        selection: String,
    },
}

impl Selection {
    /// Every stat.
    pub fn all() -> Self {
        Selection::default()
    }

    /// Whether this selects every stat.
    pub fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Parses a selection; empty text selects every stat.
    pub fn parse(text: &str) -> Result<Self, SelectionError> {
        if text.len() > MAX_SELECTION_LEN {
            return Err(SelectionError::TooLong { len: text.len() });
        }
        let patterns: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = patterns.iter().find(|p| p.chars().any(char::is_control)) {
            return Err(SelectionError::BadCharacter {
                pattern: bad.clone(),
            });
        }
        Ok(Selection { patterns })
    }

    /// Parses a selection from bytes (as written to a bulk file).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, SelectionError> {
        if bytes.len() > MAX_SELECTION_LEN {
            return Err(SelectionError::TooLong { len: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SelectionError::BadCharacter {
            pattern: String::from_utf8_lossy(bytes).into_owned(),
        })?;
        Self::parse(text)
    }

    /// Whether `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }

    /// The patterns, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.patterns.join(" "))
    }
}

/// `*` and `?` matching without recursion (linear backtracking on the last `*`).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        for (p, s, want) in [
            ("exits", "exits", true),
            ("exits", "exit", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*/exits", "vcpu0/exits", true),
            ("vcpu?/e*", "vcpu1/exits", true),
            ("**a", "bba", true),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
        }
    }

    #[test]
    fn bad_selections_are_refused() {
        assert!(matches!(
            Selection::parse("ok\u{7}"),
            Err(SelectionError::BadCharacter { .. })
        ));
        assert!(matches!(
            Selection::parse_bytes(&[0xff, 0xfe]),
            Err(SelectionError::BadCharacter { .. })
        ));
        assert!(matches!(
            Selection::parse(&"a".repeat(MAX_SELECTION_LEN + 1)),
            Err(SelectionError::TooLong { .. })
        ));
        assert!(Selection::parse(" \n, ").unwrap().is_all());
    }
}
