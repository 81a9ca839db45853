//! Code blocks highlighted on the server with syntect (Sublime Text's grammars): the code
//! becomes nested `<span class="hl-…">` elements, coloured by one stylesheet made from a
//! light and a dark theme, so the page needs no highlighter of its own.

use std::sync::LazyLock;

use syntect::highlighting::ThemeSet;
use syntect::html::{css_for_theme_with_class_style, ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Every class the highlighter writes starts with this (the sanitiser lets only those by).
pub const CLASS_PREFIX: &str = "hl-";
const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// The longest code block highlighted; a longer one is shown plain (highlighting costs time
/// in proportion, and a message may hold a megabyte).
const MAX_HIGHLIGHTED_BYTES: usize = 64 * 1024;

/// `code` as highlighted HTML when `language` (a fence's word: `rust`, `py`, `sql`...) names
/// a known grammar; `None` otherwise.
pub fn highlight(code: &str, language: &str) -> Option<String> {
    if code.len() > MAX_HIGHLIGHTED_BYTES {
        return None;
    }
    let syntax = SYNTAXES.find_syntax_by_token(language)?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, &SYNTAXES, STYLE);
    for line in LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    Some(generator.finalize())
}

/// The background code is shown on (`--code` in `app.css`), light and dark: every colour of
/// the highlighter is made to read on it.
pub const CODE_BACKGROUND: (&str, &str) = ("#f0f1f3", "#23272c");
/// WCAG AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// The colours of highlighted code, a light theme's and a dark one's. Each theme's rules set a
/// variable of their own (`--hl-light`, `--hl-dark`) and every span takes its colour from
/// `light-dark()` of the two: a rule of one theme never colours the other (which left dark
/// grey on dark), and the page's theme (the system's, or the user's choice through
/// `color-scheme`) picks between them. Colours too faint for their background are darkened
/// (light) or lightened (dark) until they pass [`MIN_CONTRAST`].
pub static STYLESHEET: LazyLock<String> = LazyLock::new(|| {
    let themes = ThemeSet::load_defaults();
    let rules = |name: &str, variable: &str, background: &str, fonts: bool| {
        let css = themes
            .themes
            .get(name)
            .and_then(|theme| css_for_theme_with_class_style(theme, STYLE).ok())
            .unwrap_or_default();
        theme_rules(&css, variable, background, fonts)
    };
    format!(
        "[class^=\"hl-\"], [class*=\" hl-\"] {{ color: light-dark(var(--hl-light), var(--hl-dark)); }}\n{}{}",
        rules("InspiredGitHub", "--hl-light", CODE_BACKGROUND.0, true),
        rules("base16-ocean.dark", "--hl-dark", CODE_BACKGROUND.1, false)
    )
});

/// One theme's stylesheet (as syntect writes it) as rules that set `variable`: colours made
/// readable on `background`, backgrounds left out (code has one background), the font's
/// style and weight kept when `fonts`. The theme's defaults (`.hl-code`) go on the root.
fn theme_rules(css: &str, variable: &str, background: &str, fonts: bool) -> String {
    let mut out = String::with_capacity(css.len());
    for line in css.lines() {
        let declaration = line.trim();
        if let Some(colour) = declaration
            .strip_prefix("color:")
            .map(|c| c.trim().trim_end_matches(';'))
        {
            let readable = rgb(colour)
                .zip(rgb(background))
                .map(|(colour, background)| hex(readable_on(colour, background)))
                .unwrap_or_else(|| colour.to_owned());
            out.push_str(&format!(" {variable}: {readable};\n"));
        } else if declaration.starts_with("background")
            || (!fonts && declaration.starts_with("font-"))
        {
            continue;
        } else if declaration.starts_with(".hl-code {") {
            out.push_str(":root {\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

type Rgb = [u8; 3];

fn rgb(hex: &str) -> Option<Rgb> {
    let digits = hex.strip_prefix('#')?;
    let byte = |at: usize| u8::from_str_radix(digits.get(at..at + 2)?, 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn hex([r, g, b]: Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// WCAG's relative luminance.
fn luminance(colour: Rgb) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(colour[0]) + 0.7152 * channel(colour[1]) + 0.0722 * channel(colour[2])
}

/// WCAG's contrast ratio of two colours (1 to 21).
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// `colour`, moved toward black on a light background or white on a dark one until it
/// reads on `background`.
fn readable_on(colour: Rgb, background: Rgb) -> Rgb {
    let toward: f64 = if luminance(background) > 0.5 {
        0.0
    } else {
        255.0
    };
    let mut mixed = colour;
    for step in 0..=50 {
        let share = f64::from(step) / 50.0;
        mixed = colour.map(|c| (f64::from(c) * (1.0 - share) + toward * share).round() as u8);
        if contrast(mixed, background) >= MIN_CONTRAST + 0.05 {
            break;
        }
    }
    mixed
}

#[cfg(test)]
mod tests {
    use super::{contrast, rgb, CODE_BACKGROUND, MIN_CONTRAST, STYLESHEET};

    /// Dark grey on dark (1.2:1) hid code in the dark theme: every colour of either theme
    /// reads on its background, and no rule of one theme colours the other.
    #[test]
    fn every_highlight_colour_passes_wcag_aa_in_both_themes() {
        let mut seen = [0, 0];
        for line in STYLESHEET.lines() {
            let line = line.trim();
            for (at, (variable, background)) in [
                ("--hl-light:", CODE_BACKGROUND.0),
                ("--hl-dark:", CODE_BACKGROUND.1),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(colour) = line.strip_prefix(variable) {
                    let colour = colour.trim().trim_end_matches(';');
                    let ratio = contrast(rgb(colour).unwrap(), rgb(background).unwrap());
                    assert!(
                        ratio >= MIN_CONTRAST,
                        "{colour} on {background}: {ratio:.2}"
                    );
                    seen[at] += 1;
                }
            }
            assert!(
                !line.starts_with("color:") && !line.starts_with("background"),
                "a colour outside the themes' variables: {line}"
            );
        }
        assert!(seen[0] > 20 && seen[1] > 20, "{seen:?}");
    }

    #[test]
    fn the_page_shows_code_on_the_background_the_colours_are_made_for() {
        let css = crate::assets::asset("app.css").unwrap().body;
        let wanted = format!(
            "--code: light-dark({}, {})",
            CODE_BACKGROUND.0, CODE_BACKGROUND.1
        );
        assert!(css.contains(&wanted), "app.css lacks {wanted}");
    }
}
