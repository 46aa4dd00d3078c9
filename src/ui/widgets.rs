//! Small pieces the overlays share: word-wrapping a line of text, the key hints on a dialog's
//! bottom border, and a `label   value` field.

use ratatui::text::{Line, Span};

use crate::text;
use crate::ui::Theme;

/// Word-wraps `s` (one line, already sanitised) to lines of at most `width` cells; words longer
/// than a line are split.
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in s.split(' ') {
        let word_w = text::width(word);
        let current_w = text::width(&current);
        if !current.is_empty() && current_w + 1 + word_w <= width {
            current.push(' ');
            current.push_str(word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if word_w <= width {
            current.push_str(word);
        } else {
            for c in word.chars() {
                if text::width(&current) + text::width(&c.to_string()) > width {
                    lines.push(std::mem::take(&mut current));
                }
                current.push(c);
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// ` Esc close  P pause …` for a dialog's bottom border.
/// Keys with no binding (the user unbound them) are left out.
pub(crate) fn key_hints<'a>(keys: Vec<(String, &'a str)>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in keys {
        if key.is_empty() || key.starts_with("(unbound") {
            continue;
        }
        spans.push(Span::styled(key, theme.key));
        spans.push(Span::styled(format!(" {what}  "), theme.dim));
    }
    Line::from(spans)
}

/// `label   value` with the label in a fixed column.
pub(crate) fn field<'a>(label: &str, value: Vec<Span<'a>>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(
        format!(" {}", text::fit_width(label, 12)),
        theme.dim,
    )];
    spans.extend(value);
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
