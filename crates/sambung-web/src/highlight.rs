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

/// The colours of highlighted code: a light theme, and a dark one when the system is dark.
pub static STYLESHEET: LazyLock<String> = LazyLock::new(|| {
    let themes = ThemeSet::load_defaults();
    let css = |name: &str| {
        themes
            .themes
            .get(name)
            .and_then(|theme| css_for_theme_with_class_style(theme, STYLE).ok())
            .unwrap_or_default()
    };
    format!(
        "{}\n@media (prefers-color-scheme: dark) {{\n{}\n}}\n",
        css("InspiredGitHub"),
        css("base16-ocean.dark")
    )
});
