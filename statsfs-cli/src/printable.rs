//! Text from outside, made safe for a terminal: the one function every output of the tool
//! passes foreign text through.
//!
//! Names in blobs and regions, process names, paths in error messages come from other
//! processes and files; a control character among them would reach the terminal as a
//! command (`ESC ]0;` sets the title, `ESC [8m` hides what follows, OSC 52 writes the
//! clipboard). [`printable`] writes each one as an escape instead.

use std::borrow::Cow;

/// `text` with every control character written as a visible escape: C0 (including
/// newline and tab) and DEL as `\xHH`, C1 (U+0080 to U+009F) as `\u{HH}`. Text without
/// any is returned as it is. (Invalid UTF-8 never gets here: foreign bytes are decoded
/// lossily, so it is U+FFFD.)
///
/// ```
/// use statsfs_cli::printable;
/// assert_eq!(printable("exits"), "exits");
/// assert_eq!(printable("a\x1b]0;PWNED\x07b"), "a\\x1b]0;PWNED\\x07b");
/// assert_eq!(printable("two\nlines\u{9b}"), "two\\x0alines\\u{9b}");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn every_control_character_is_escaped_and_nothing_else() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = c.to_string();
            let p = printable(&s);
            assert!(!p.chars().any(char::is_control), "{c:?}");
            assert_eq!(p == s, !c.is_control(), "{c:?}");
        }
    }
}
