//! Word wrapping by grapheme cluster and display width. ratatui's own wrapper can let a line end
//! with a wide character one column past the area (over the pane's border), which leaves the
//! buffer and the terminal disagreeing about that column; this one never makes a line wider than
//! asked. Text reaching it has been through `text::for_screen`, so every cluster's width is the
//! one the terminal uses.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;

use crate::text;

/// Wraps each line to at most `width` cells: at the last space that fits, else (a word longer
/// than the line) between clusters. Spaces are kept where they fall, as `Wrap { trim: false }`.
pub fn wrap(lines: &[Line<'_>], width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    let mut out = Vec::new();
    for line in lines {
        let mut rows: Vec<Vec<(String, Style)>> = vec![Vec::new()];
        let mut used = 0;
        for span in &line.spans {
            let style = line.style.patch(span.style);
            for g in span.content.graphemes(true) {
                let w = text::width(g);
                if w == 0 {
                    continue;
                }
                if used + w > width && g == " " {
                    // The line ends just before a space: the space is the break.
                    rows.push(Vec::new());
                    used = 0;
                    continue;
                }
                if used + w > width {
                    let row = rows.last_mut().expect("rows is never empty");
                    // Break after the last space, if the row has one past its start.
                    let carried = match row.iter().rposition(|(g, _)| g == " ") {
                        Some(i) if i > 0 && i + 1 < row.len() => row.split_off(i + 1),
                        _ => Vec::new(),
                    };
                    used = carried.iter().map(|(g, _)| text::width(g)).sum();
                    rows.push(carried);
                }
                rows.last_mut()
                    .expect("rows is never empty")
                    .push((g.to_string(), style));
                used += w;
            }
        }
        for row in rows {
            out.push(to_line(row, line.alignment));
        }
    }
    out
}

/// Clusters back into spans, one per run of the same style.
fn to_line(
    row: Vec<(String, Style)>,
    alignment: Option<ratatui::layout::Alignment>,
) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    for (g, style) in row {
        match spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push_str(&g),
            _ => spans.push(Span::styled(g, style)),
        }
    }
    let mut line = Line::from(spans);
    line.alignment = alignment;
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wide_characters_never_pass_the_edge() {
        let line = Line::from("@acme 注文した商品がまだ届きません 한국어 텍스트 ｆｕｌｌ");
        for width in 10..60u16 {
            for l in wrap(std::slice::from_ref(&line), width) {
                assert!(l.width() <= usize::from(width), "{width}: {l}");
            }
        }
        let wrapped = wrap(std::slice::from_ref(&line), 56);
        assert_eq!(
            texts(&wrapped),
            [
                "@acme 注文した商品がまだ届きません 한국어 텍스트 ",
                "ｆｕｌｌ"
            ]
        );
    }

    #[test]
    fn breaks_at_spaces_and_splits_long_words() {
        let lines = [Line::from(vec![
            Span::raw("hello "),
            Span::raw("wonderful world"),
        ])];
        assert_eq!(texts(&wrap(&lines, 11)), ["hello ", "wonderful ", "world"]);
        let long = [Line::from("abcdefghij")];
        assert_eq!(texts(&wrap(&long, 4)), ["abcd", "efgh", "ij"]);
        assert_eq!(texts(&wrap(&[Line::from("")], 4)), [""]);
        // A word that ends exactly at the edge stays; the space after it is the break.
        assert_eq!(
            texts(&wrap(&[Line::from("is that ok")], 7)),
            ["is that", "ok"]
        );
    }
}
