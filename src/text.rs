//! Text helpers shared by the UI, the composer and the CLI: making untrusted post text safe for a
//! terminal, measuring it by display width, and counting a post's length the way X does.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// X's limit for a post, in weighted characters (twitter-text config v3).
pub const MAX_POST_LENGTH: usize = 280;
/// X documents no DM limit for v2; v1.1 allowed 10,000 characters (CONTRACT.md §5).
pub const MAX_DM_LENGTH: usize = 10_000;

/// Removes everything that could drive the terminal: C0/C1 control characters (so ESC and every
/// escape sequence it would start), DEL, and bidi overrides that could reorder what is drawn.
/// Newlines and tabs become spaces when `single_line`, otherwise newlines are kept.
pub fn sanitize(text: &str, single_line: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' if !single_line => out.push('\n'),
            '\n' | '\t' | '\r' => {
                if !single_line && c == '\t' {
                    out.push_str("    ");
                } else if c != '\r' || single_line {
                    out.push(' ');
                }
            }
            c if c.is_control() => {}
            // Bidi embeddings/overrides/isolates: they can visually reorder the rest of the line.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {}
            // Emoji joiners, presentation selectors and skin-tone modifiers: terminals disagree
            // with each other (and with unicode-width) on how wide a joined sequence is, which
            // leaves stale cells on screen. Drawn unjoined, every emoji is two cells everywhere.
            '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Display width of a string in terminal cells (emoji and CJK are two cells).
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Cuts `text` to at most `max` cells, ending with `…` when it was cut. Never splits a grapheme.
pub fn truncate_to_width(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let w = width(g);
        if used + w > max - 1 {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.push('…');
    out
}

/// Pads (or cuts) `text` to exactly `cells` columns.
pub fn fit_width(text: &str, cells: usize) -> String {
    let mut s = truncate_to_width(text, cells);
    let w = width(&s);
    s.extend(std::iter::repeat_n(' ', cells.saturating_sub(w)));
    s
}

/// The weighted length of a post as X counts it: twitter-text v3 (URLs 23, CJK and emoji 2).
/// Uses the crate's External parser backend: the default one miscounts bare domains.
pub fn weighted_length(text: &str) -> usize {
    let result = twitter_text::parse_with_parser_backend(
        text,
        twitter_text_config::config_v3(),
        true,
        twitter_text::ParserBackend::External,
    );
    result.weighted_length.max(0) as usize
}

/// Why a draft cannot be sent, in words for the composer; `None` when it can.
pub fn check_post(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some("the reply is empty".to_string());
    }
    let n = weighted_length(text);
    if n > MAX_POST_LENGTH {
        return Some(format!(
            "{n}/{MAX_POST_LENGTH}: too long for a post by {}",
            n - MAX_POST_LENGTH
        ));
    }
    None
}

/// Why a DM cannot be sent; `None` when it can.
pub fn check_dm(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some("the message is empty".to_string());
    }
    let n = text.chars().count();
    if n > MAX_DM_LENGTH {
        return Some(format!(
            "{n}/{MAX_DM_LENGTH}: too long for a DM by {}",
            n - MAX_DM_LENGTH
        ));
    }
    None
}

/// Whether a post's text contains a URL, by the very parse that counts its length
/// ([`weighted_length`]: twitter-text v3, External backend), so a reply priced as "with a URL"
/// ($0.200) is exactly one whose link the length counter weighs as 23. Bare domains count.
pub fn contains_url(text: &str) -> bool {
    use twitter_text::extractor::{Extract, ValidatingExtractor};
    let mut extractor = ValidatingExtractor::with_parser_backend(
        twitter_text_config::config_v3(),
        twitter_text::ParserBackend::External,
    );
    let input = extractor.prep_input(text);
    !extractor
        .extract_urls_with_indices(input.as_str())
        .entities
        .is_empty()
}

/// Whether `text` @mentions `handle` (without `@`, any case), as twitter-text finds mentions
/// (so `me@nimbus.io` is not a mention of @nimbus).
pub fn mentions_handle(text: &str, handle: &str) -> bool {
    let handle = handle.trim().trim_start_matches('@');
    twitter_text::extractor::Extractor::with_parser_backend(twitter_text::ParserBackend::External)
        .extract_mentioned_screennames(text)
        .iter()
        .any(|m| m.eq_ignore_ascii_case(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escape_sequences_and_controls() {
        let evil = "hi\u{1b}[2J\u{1b}]0;pwned\u{7}there\u{9b}31m\u{202E}x";
        let clean = sanitize(evil, true);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(clean.starts_with("hi"));
        assert!(!clean.contains('\u{202E}'));
    }

    #[test]
    fn sanitize_unjoins_emoji_sequences_for_stable_widths() {
        // 👩🏾‍💻 is one glyph in some terminals and three in others: draw it unjoined.
        let clean = sanitize("dev 👩🏾\u{200D}💻 ❤\u{FE0F}", true);
        assert_eq!(clean, "dev 👩💻 ❤");
        assert_eq!(width(&clean), width("dev ") + 4 + 1 + 1);
    }

    #[test]
    fn sanitize_single_line_flattens_newlines() {
        assert_eq!(sanitize("a\nb\tc", true), "a b c");
        assert_eq!(sanitize("a\r\nb", false), "a\nb");
    }

    #[test]
    fn truncation_respects_wide_characters() {
        let s = truncate_to_width("日本語のテキスト", 7);
        assert!(width(&s) <= 7, "{s}");
        assert!(s.ends_with('…'));
        assert_eq!(width(&fit_width("🙂ab", 6)), 6);
    }

    /// Vectors from CONTRACT.md §8, verified there against twitter-text JS 3.1.0.
    #[test]
    fn weighted_length_matches_x() {
        let cases: &[(&str, usize)] = &[
            ("Hello, world! 👋", 16),
            ("café", 4),
            ("👨‍👩‍👧‍👦", 2),
            ("🙋🏽", 2),
            ("🇯🇵", 2),
            ("日本語", 6),
            ("https://example.com/very/long/path", 23),
            ("see example.com now", 31),
            ("x.co", 23),
            ("€", 2),
            ("ا", 1),
            ("क", 1),
        ];
        for (text, want) in cases {
            assert_eq!(weighted_length(text), *want, "{text}");
        }
        assert!(check_post(&"a".repeat(280)).is_none());
        assert!(check_post(&"a".repeat(281)).is_some());
        assert!(check_post(&"あ".repeat(141)).is_some());
        assert!(check_post("").is_some());
        assert!(check_post("   ").is_some());
    }
}
