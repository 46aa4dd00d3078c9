//! The account badge on each feed row (`@nimbusnotes`), fitted to its column so that no two
//! accounts ever read the same. Cutting the end off (`@nimbus…`) is tried first; when two
//! accounts would then look alike, the badge keeps the start and the end of the handle
//! (`@nim…notes`, `@nim…_help`), and as a last resort a number. Colour is never the only
//! difference (NO_COLOR users see none).

use crate::text;

/// A badge for each handle (given without `@`), in the same order, each at most `width` cells
/// and all different from each other (handles are distinct, compared without case).
pub fn badges(handles: &[String], width: usize) -> Vec<String> {
    let full: Vec<String> = handles.iter().map(|h| format!("@{h}")).collect();
    let cut: Vec<String> = full
        .iter()
        .map(|h| text::truncate_to_width(h, width))
        .collect();
    let mut out = Vec::with_capacity(full.len());
    for (i, h) in full.iter().enumerate() {
        let clashes = |candidate: &str, others: &[String]| {
            others
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && o.eq_ignore_ascii_case(candidate))
        };
        if !clashes(&cut[i], &cut) {
            out.push(cut[i].clone());
            continue;
        }
        // Start and end of the handle, the end as long as it must be to tell it apart.
        let found = (1..width.saturating_sub(2))
            .map(|tail| middle_cut(h, width, tail))
            .find(|candidate| {
                !full
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && middle_cut_of_other(o, candidate, width))
            });
        out.push(found.unwrap_or_else(|| numbered(h, width, i)));
    }
    out
}

/// `@nim…notes`: the start and the last `tail` characters around `…`, `width` cells at most.
fn middle_cut(handle: &str, width: usize, tail: usize) -> String {
    if text::width(handle) <= width {
        return handle.to_string();
    }
    let chars: Vec<char> = handle.chars().collect();
    let tail = tail.min(chars.len());
    let end: String = chars[chars.len() - tail..].iter().collect();
    let room = width.saturating_sub(text::width(&end) + 1);
    let start = text::truncate_to_width(handle, room + 1);
    let start = start.strip_suffix('…').unwrap_or(&start).to_string();
    format!("{start}…{end}")
}

/// Would `other` show as `candidate` with any tail length?
fn middle_cut_of_other(other: &str, candidate: &str, width: usize) -> bool {
    (0..width).any(|tail| middle_cut(other, width, tail).eq_ignore_ascii_case(candidate))
        || text::truncate_to_width(other, width).eq_ignore_ascii_case(candidate)
}

/// `@nimb…2`: the account's place in the list, when nothing else tells them apart.
fn numbered(handle: &str, width: usize, i: usize) -> String {
    let n = (i + 1).to_string();
    let start = text::truncate_to_width(handle, width.saturating_sub(n.len()));
    format!("{start}{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(handles: &[&str]) -> Vec<String> {
        handles.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn handles_that_fit_are_shown_whole() {
        assert_eq!(badges(&owned(&["acme", "bee"]), 8), ["@acme", "@bee"]);
    }

    /// Repro of issue 9 item 9: at 80x24, @nimbusnotes and @nimbus_help both read `@nimbus…`.
    #[test]
    fn accounts_that_would_truncate_alike_stay_distinct() {
        let handles = owned(&["mara_quill", "nimbus_help", "nimbusnotes"]);
        for width in 4..14 {
            let b = badges(&handles, width);
            for (i, x) in b.iter().enumerate() {
                assert!(text::width(x) <= width, "{width}: {x}");
                for y in &b[i + 1..] {
                    assert_ne!(x, y, "{width}: {b:?}");
                }
            }
        }
        let b = badges(&handles, 8);
        assert_eq!(b[0], "@mara_q…");
        assert!(b[1].ends_with('p') && b[2].ends_with('s'), "{b:?}");
    }
}
