//! Text from outside edgefail (topology values, journal fields, DNS and
//! XMPP peers' answers, PowerShell's stderr) made safe for a terminal:
//! control characters (and so every ANSI escape sequence, which starts
//! with one), and the bidirectional overrides and isolates that can make a
//! line read differently from what it holds, are shown as `\u{..}` escapes.
//! Used at the human output edge only; JSON output carries the exact text.

use std::borrow::Cow;

/// Characters that change how the rest of a line is displayed: the bidi
/// embeddings and overrides (U+202A..U+202E), isolates (U+2066..U+2069) and
/// the invisible direction marks (U+200E, U+200F, U+061C).
fn reorders(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn unsafe_char(c: char) -> bool {
    c.is_control() || reorders(c)
}

/// `text` as a terminal may show it: unchanged when it is harmless (the
/// usual case, without copying), else with each unsafe character escaped
/// (`\n`, `\t`, `\u{1b}`, `\u{202e}`). Newlines are escaped too: one value
/// never makes two lines.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`terminal`], but keeps line breaks (for multi-line text such as an
/// error's chain or a peer's several lines): each line is escaped alone.
pub fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| terminal(line.strip_suffix('\r').unwrap_or(line)).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_text_is_untouched() {
        assert!(matches!(
            terminal("EdgePool2 -> 203.0.113.20 (café, 東京)"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_and_controls_are_shown_escaped() {
        let hostile = "pool\x1b[2J\x1b]0;owned\x07\rX\u{9b}31m";
        let shown = terminal(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(shown, r"pool\u{1b}[2J\u{1b}]0;owned\u{7}\rX\u{9b}31m");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_shown_escaped() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let text = format!("a{c}b");
            let shown = terminal(&text);
            assert!(!shown.contains(c), "{c:?} left raw");
            assert!(
                shown.starts_with("a\\u{") && shown.ends_with("}b"),
                "{shown}"
            );
        }
    }

    #[test]
    fn lines_keep_their_breaks_but_nothing_else() {
        assert_eq!(terminal_lines("one\x1b[31m\r\ntwo"), "one\\u{1b}[31m\ntwo");
        assert_eq!(terminal("one\ntwo"), "one\\ntwo");
    }
}
