//! Values from manifests and servers as they may be shown to a person: text with control and
//! bidirectional-override characters made visible, URLs without credentials or query strings,
//! and Markdown code fences no value can close; and the colours (`anstyle`) of what is shown.
//!
//! Manifests come from pull requests and replies come from servers: neither may move a
//! terminal's cursor, hide text, reorder a line or break out of a rendered code block.

use std::borrow::Cow;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

/// `error:` labels.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// `warning:` labels.
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
/// `hint:` labels.
pub const HINT: Style = AnsiColor::Cyan.on_default().bold();
/// Headings and `Caused by:`.
pub const BOLD: Style = Style::new().bold();

/// `text` in `style` when `color` is on, else `text` as it is.
pub fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// Whether `c` must not reach a terminal or a rendered comment raw: C0/C1 controls (ESC, CR,
/// NUL, DEL …) and the Unicode format characters that reorder or hide text (bidi embeddings,
/// overrides and isolates, zero-width characters, the BOM).
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with every character [`is_hidden_or_control`] finds replaced by a visible escape
/// (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`); a backslash is doubled only when escapes were
/// needed, so ordinary text is returned unchanged and unambiguous text stays readable.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden_or_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hidden_or_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`visible`], but keeps line breaks and tabs: for multi-line text shown line by line
/// (a diff of a description). Carriage returns are still escaped: a bare CR rewrites the line.
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    let needs = |c: char| c != '\n' && c != '\t' && is_hidden_or_control(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A URL as it may be printed: scheme, host, port and path, without `user:password@`, query
/// string or fragment, with hidden characters made visible. Works on any text, URL or not.
pub fn url(text: &str) -> String {
    let without_query = text.split(['?', '#']).next().unwrap_or(text);
    let shown = match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => without_query
            .rsplit_once('@')
            .map_or(without_query, |(_, h)| h)
            .to_string(),
    };
    visible(&shown).into_owned()
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A Markdown code fence longer than any run of backticks in `body`, so nothing in the body
/// can close it (CommonMark: a fence is closed only by one at least as long).
pub fn fence_for(body: &str) -> String {
    "`".repeat((longest_backtick_run(body) + 1).max(3))
}

/// A Markdown code span of `text` (made visible) that nothing in it can close: delimited by
/// more backticks than its longest run, padded with spaces when it starts or ends with one.
pub fn markdown_code(text: &str) -> String {
    let text = visible(text);
    let delimiter = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{delimiter}{pad}{text}{pad}{delimiter}")
}

/// Text placed in Markdown outside a code block: visible, with every character Markdown or
/// HTML could interpret backslash-escaped, so a value reads as itself and never as markup.
pub fn markdown_inline(text: &str) -> String {
    let text = visible(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_unchanged() {
        assert!(matches!(visible("Check disk usage é"), Cow::Borrowed(_)));
        assert_eq!(visible(r"C:\path"), r"C:\path");
    }

    #[test]
    fn controls_and_bidi_overrides_are_shown() {
        assert_eq!(
            visible("a\nb\r\u{1b}[2J\u{202e}x\\"),
            r"a\nb\r\u{1b}[2J\u{202e}x\\"
        );
        assert_eq!(visible_lines("a\nb\rc\u{2066}"), "a\nb\\rc\\u{2066}");
    }

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        assert_eq!(
            url("https://user:pa@ss@vc.example.com:8443/api/x?token=1#f"),
            "https://vc.example.com:8443/api/x"
        );
        assert_eq!(url("http://h"), "http://h");
        assert_eq!(url("not a url?x=1"), "not a url");
    }

    #[test]
    fn fences_outgrow_every_backtick_run() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("``````"), "```````");
    }

    #[test]
    fn code_spans_cannot_be_closed_from_inside() {
        assert_eq!(markdown_code("SaltJob/web"), "`SaltJob/web`");
        assert_eq!(markdown_code("a`b"), "``a`b``");
        assert_eq!(markdown_code("`x"), "`` `x ``");
        assert_eq!(markdown_code("a\n```"), "```` a\\n``` ````");
    }

    #[test]
    fn inline_markdown_is_inert() {
        assert_eq!(
            markdown_inline("**All checks passed**\n<img>"),
            r"\*\*All checks passed\*\*\\n&lt;img&gt;"
        );
    }
}
