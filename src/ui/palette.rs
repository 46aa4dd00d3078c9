//! Colours as light: the RGB a terminal shows for a ratatui colour (assuming xterm's default
//! palette), and WCAG 2's relative luminance and contrast ratio. The contrast test of the shipped
//! themes and the `auto` theme's choice of dark or light both use these.

use ratatui::style::Color;

/// An sRGB colour, 8 bits a channel.
pub type Rgb = (u8, u8, u8);

/// xterm's default 16-colour palette (xterm's `charproc.c` / XTerm-col.ad): other terminals
/// differ a little, so contrast figures computed with it are estimates for palette colours and
/// exact for indexed 16-255 and RGB colours.
const XTERM_16: [Rgb; 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x00, 0x00),
    (0x00, 0xcd, 0x00),
    (0xcd, 0xcd, 0x00),
    (0x00, 0x00, 0xee),
    (0xcd, 0x00, 0xcd),
    (0x00, 0xcd, 0xcd),
    (0xe5, 0xe5, 0xe5),
    (0x7f, 0x7f, 0x7f),
    (0xff, 0x00, 0x00),
    (0x00, 0xff, 0x00),
    (0xff, 0xff, 0x00),
    (0x5c, 0x5c, 0xff),
    (0xff, 0x00, 0xff),
    (0x00, 0xff, 0xff),
    (0xff, 0xff, 0xff),
];

/// The RGB of palette entry `index` in xterm's 256 colours: the 16 above, the 6x6x6 cube, then
/// 24 greys.
pub fn xterm_256(index: u8) -> Rgb {
    match index {
        0..=15 => XTERM_16[usize::from(index)],
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        232..=255 => {
            let v = 8 + 10 * (index - 232);
            (v, v, v)
        }
    }
}

/// The RGB a terminal with xterm's palette shows for `colour`; `default` for `Color::Reset` (the
/// terminal's own foreground or background, which perch cannot know).
pub fn rgb_of(colour: Color, default: Rgb) -> Rgb {
    match colour {
        Color::Reset => default,
        Color::Black => xterm_256(0),
        Color::Red => xterm_256(1),
        Color::Green => xterm_256(2),
        Color::Yellow => xterm_256(3),
        Color::Blue => xterm_256(4),
        Color::Magenta => xterm_256(5),
        Color::Cyan => xterm_256(6),
        Color::Gray => xterm_256(7),
        Color::DarkGray => xterm_256(8),
        Color::LightRed => xterm_256(9),
        Color::LightGreen => xterm_256(10),
        Color::LightYellow => xterm_256(11),
        Color::LightBlue => xterm_256(12),
        Color::LightMagenta => xterm_256(13),
        Color::LightCyan => xterm_256(14),
        Color::White => xterm_256(15),
        Color::Indexed(i) => xterm_256(i),
        Color::Rgb(r, g, b) => (r, g, b),
    }
}

/// WCAG 2's relative luminance: 0 for black, 1 for white.
pub fn relative_luminance((r, g, b): Rgb) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// WCAG 2's contrast ratio, from 1 (none) to 21 (black on white). 4.5 is the minimum for text.
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    let (light, dark) = if la > lb { (la, lb) } else { (lb, la) };
    (light + 0.05) / (dark + 0.05)
}

/// Whether a background is light: black text on it has more contrast than white text (its
/// relative luminance is above about 0.18, the point where the two are equal).
pub fn is_light_background(background: Rgb) -> bool {
    contrast_ratio(background, (0, 0, 0)) > contrast_ratio(background, (255, 255, 255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_256_colour_cube_and_greys_are_xterms() {
        assert_eq!(xterm_256(16), (0, 0, 0));
        assert_eq!(xterm_256(25), (0x00, 0x5f, 0xaf));
        assert_eq!(xterm_256(231), (0xff, 0xff, 0xff));
        assert_eq!(xterm_256(232), (8, 8, 8));
        assert_eq!(xterm_256(255), (0xee, 0xee, 0xee));
        assert_eq!(rgb_of(Color::Reset, (1, 2, 3)), (1, 2, 3));
    }

    #[test]
    fn contrast_matches_wcag_reference_values() {
        assert!((contrast_ratio((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio((9, 9, 9), (9, 9, 9)) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic "just passes 4.5".
        let grey = contrast_ratio((0x76, 0x76, 0x76), (255, 255, 255));
        assert!((4.5..4.6).contains(&grey), "{grey}");
    }

    #[test]
    fn light_and_dark_backgrounds_are_told_apart() {
        assert!(is_light_background((255, 255, 255)));
        assert!(is_light_background((0xfd, 0xf6, 0xe3))); // solarized light
        assert!(!is_light_background((0, 0, 0)));
        assert!(!is_light_background((0x00, 0x2b, 0x36))); // solarized dark
        assert!(!is_light_background((0x28, 0x2c, 0x34)));
    }
}
