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

/// Text for the screen: [`sanitize`]d, then laid out by grapheme cluster so that every cluster
/// takes the same number of cells in ratatui's buffer as in the terminal. Terminals disagree with
/// each other, and with `unicode-width`, on clusters that join several visible characters, so a
/// cluster whose width is uncertain is replaced by a safe stand-in rather than left to put stray
/// glyphs on screen (the post's own text is untouched in the store, and `o` opens it on X):
///
/// - a flag (a pair of regional indicators) becomes its letters in brackets: 🇯🇵 → `[JP]`;
/// - spacing combining marks (Devanagari ि, Tamil ொ, Thai ำ...) and enclosing marks (the keycap
///   ⃣) are dropped and the base letter stays: they take one cell in some terminals, none in
///   others;
/// - variation selectors, joiners (ZWJ, ZWNJ), emoji modifiers, tag characters, the soft hyphen
///   and other invisible format characters are dropped (joined emoji are drawn one by one);
/// - non-spacing marks (é as e + ◌́, Thai and Arabic vowel marks, virama) stay on their base,
///   at most [`MAX_MARKS`] per cluster (beyond that, "zalgo" text piles up past what a terminal
///   cell holds);
/// - a cluster that still has no visible base (a mark on its own) is dropped.
///
/// Every cluster that remains is exactly as wide as the sum of its characters' widths, which is
/// how a terminal advances its cursor, and what ratatui reserves for it.
pub fn for_screen(text: &str, single_line: bool) -> String {
    let clean = sanitize(text, single_line);
    if clean.is_ascii() {
        return clean;
    }
    // Thai and Lao AM are a spacing mark; written as the two characters they stand for (a
    // non-spacing nikhahit and a letter of its own) they look the same and measure the same
    // everywhere.
    let clean = clean
        .replace('\u{0E33}', "\u{0E4D}\u{0E32}")
        .replace('\u{0EB3}', "\u{0ECD}\u{0EB2}");
    let mut out = String::with_capacity(clean.len());
    for g in clean.graphemes(true) {
        push_cluster(&mut out, g);
    }
    out
}

/// Non-spacing marks kept on one base character.
pub const MAX_MARKS: usize = 3;

fn regional_letter(c: char) -> Option<char> {
    let n = u32::from(c).checked_sub(0x1F1E6)?;
    (n < 26).then(|| char::from(b'A' + n as u8))
}

/// Characters drawn as nothing, or as nothing in some terminals: they only change how their
/// neighbours join or look.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0000}'..='\u{E0FFF}'
        // Prepended format characters (Arabic number signs...): they join the next cluster.
        | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{08E2}' | '\u{110BD}' | '\u{110CD}'
        // Enclosing marks: the keycap, circles, squares.
        | '\u{0488}' | '\u{0489}' | '\u{1ABE}' | '\u{20DD}'..='\u{20E0}' | '\u{20E2}'..='\u{20E4}'
        | '\u{A670}'..='\u{A672}')
}

/// A visible character that joins the cluster of the letter before it: a spacing combining
/// mark (or Thai ำ, Lao ຳ), which one terminal gives a cell and another does not.
fn is_spacing_mark(c: char) -> bool {
    let mut probe = String::from('\u{0915}');
    probe.push(c);
    probe.graphemes(true).count() == 1
}

fn push_cluster(out: &mut String, g: &str) {
    use unicode_width::UnicodeWidthChar as _;
    if g.len() == 1 {
        out.push_str(g);
        return;
    }
    let letters: String = g.chars().filter_map(regional_letter).collect();
    if !letters.is_empty() {
        out.push('[');
        out.push_str(&letters);
        out.push(']');
        return;
    }
    // The cluster as pieces of one visible character each, with its non-spacing marks.
    let mut pieces: Vec<String> = Vec::new();
    let mut marks = 0;
    for c in g.chars() {
        if is_invisible_format(c) {
            continue;
        }
        match (c.width(), pieces.last_mut()) {
            (Some(0) | None, Some(piece)) => {
                if marks < MAX_MARKS {
                    piece.push(c);
                    marks += 1;
                }
            }
            // A mark with nothing visible before it.
            (Some(0) | None, None) => {}
            (Some(_), Some(_)) if is_spacing_mark(c) => {}
            (Some(_), _) => {
                pieces.push(c.to_string());
                marks = 0;
            }
        }
    }
    // One visible character: as wide as that character, in every terminal.
    if pieces.len() <= 1 {
        out.extend(pieces);
        return;
    }
    // Several (a conjunct such as क्ष, joined by a virama): ratatui would give the whole
    // cluster one cell of two columns, which terminals that measure by cluster do not agree
    // on. A zero-width non-joiner after each piece keeps them apart, and asks the font for the
    // explicit-virama form, which is what it is.
    let joined = pieces.join("\u{200C}");
    if joined.graphemes(true).count() == pieces.len() {
        out.push_str(&joined);
    } else {
        // They still join: keep the first, whose place the rest would have shared.
        out.push_str(&pieces[0]);
    }
}

/// "1 account", "2 accounts": a count with its noun in the right number.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
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

    #[test]
    fn for_screen_replaces_clusters_of_uncertain_width() {
        use unicode_width::UnicodeWidthChar as _;
        // Flags read as their letters; a lone regional indicator too.
        assert_eq!(
            for_screen("4.3\u{1F1F7}beta \u{1F1EF}\u{1F1F5}!", true),
            "4.3[R]beta [JP]!"
        );
        // Devanagari: the vowel sign ि (a spacing mark) goes, anusvara ं (non-spacing) stays.
        assert_eq!(
            for_screen("\u{0938}\u{093F}\u{0902}\u{0915}", true),
            "\u{0938}\u{0902}\u{0915}"
        );
        // A conjunct keeps its letters, drawn apart (explicit virama).
        assert_eq!(
            for_screen("\u{0915}\u{094D}\u{0937}", true),
            "\u{0915}\u{094D}\u{200C}\u{0937}"
        );
        // Thai AM becomes its two parts.
        assert_eq!(
            for_screen("\u{0E01}\u{0E33}", true),
            "\u{0E01}\u{0E4D}\u{0E32}"
        );
        // Keycaps, variation selectors, skin tones and joiners go.
        assert_eq!(
            for_screen("1\u{FE0F}\u{20E3} \u{1F44D}\u{1F3FD} a\u{200C}b", true),
            "1 \u{1F44D} ab"
        );
        // Combining accents and Arabic marks stay on their letter; a mark alone goes; zalgo is
        // cut to a few marks.
        assert_eq!(for_screen("e\u{301}", true), "e\u{301}");
        assert_eq!(for_screen("\u{301}x", true), "x");
        let zalgo = for_screen(&format!("Z{}", "\u{300}".repeat(40)), true);
        assert_eq!(zalgo.chars().count(), 1 + MAX_MARKS);
        // Whatever is left, each cluster has one visible character (its width is that one's).
        let corpus = "👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇦 नमस्ते दुनिया ไม่ได้ مَرْحَبًا 日本語 ﷽ கொ ❤️ ☺︎ Z͑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍";
        for g in for_screen(corpus, true).graphemes(true) {
            let visible: Vec<usize> = g
                .chars()
                .filter_map(|c| c.width())
                .filter(|w| *w > 0)
                .collect();
            assert_eq!(visible.len(), 1, "{g:?}");
            assert_eq!(width(g), visible[0], "{g:?}");
        }
    }
}
