//! Text from clouds, snapshots and command lines, made safe where a character could act
//! instead of show: a terminal (an escape sequence recolours, moves the cursor, retitles the
//! window; a bidi override reverses what follows) or a CSV cell. Such characters are shown as
//! visible escapes: `\x1b`, `\u{202e}`.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` would act rather than show: the C0 and C1 controls and DEL, and the
/// bidirectional marks, embeddings, overrides and isolates.
pub fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every character that would act shown as its escape. Clean text, nearly all of
/// it, is borrowed as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    // Printable ASCII, the common case, needs no look at characters.
    if text.bytes().all(|b| (b' '..b'\x7f').contains(&b)) {
        return Cow::Borrowed(text);
    }
    let Some(first) = text.find(acts) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !acts(c) {
            out.push(c);
        } else if c.is_ascii() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// `escape` for text that may already be owned: clean text keeps its allocation.
pub fn escape_cow(text: Cow<'_, str>) -> Cow<'_, str> {
    let escaped = match escape(&text) {
        Cow::Borrowed(_) => None,
        Cow::Owned(escaped) => Some(escaped),
    };
    escaped.map_or(text, Cow::Owned)
}

/// A markdown table cell: a line break is a space and a pipe no longer ends the cell, so the
/// row stays one row; anything else that would act is escaped.
pub fn table_cell(text: &str) -> Cow<'_, str> {
    if !text.contains(['|', '\n', '\r']) {
        return escape(text);
    }
    let flat = text.replace('|', "\\|").replace(['\n', '\r'], " ");
    Cow::Owned(escape(&flat).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        for clean in ["i-0abc", "web-1 (ünïcode, 日本, emoji 🚀)", ""] {
            assert!(matches!(escape(clean), Cow::Borrowed(_)), "{clean}");
        }
    }

    #[test]
    fn controls_and_bidi_are_shown_escaped() {
        let cases = [
            ("a\u{1b}[2Jb", r"a\x1b[2Jb"),
            ("nul\0", r"nul\x00"),
            ("line\nbreak\ttab\r", r"line\x0abreak\x09tab\x0d"),
            ("del\u{7f}", r"del\x7f"),
            ("c1 \u{9b}31m", r"c1 \u{9b}31m"),
            ("evil\u{202e}gpj.exe", r"evil\u{202e}gpj.exe"),
            (
                "\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}",
                r"\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}",
            ),
            ("日本\u{202a}", r"日本\u{202a}"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert!(!escape(raw).chars().any(acts));
        }
    }

    #[test]
    fn a_table_cell_keeps_its_pipes_inside() {
        assert_eq!(table_cell("a|b\u{1b}\nc"), r"a\|b\x1b c");
        assert!(matches!(table_cell("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn owned_clean_text_keeps_its_allocation() {
        let owned = String::from("clean");
        let pointer = owned.as_ptr();
        match escape_cow(Cow::Owned(owned)) {
            Cow::Owned(same) => assert_eq!(same.as_ptr(), pointer),
            Cow::Borrowed(_) => panic!("an owned string stays owned"),
        }
    }
}
