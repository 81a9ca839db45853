//! TeX math in messages, rendered on the server to MathML Core (which Chromium, Firefox and
//! Safari draw natively, so the page loads no math script or font). pulldown-cmark finds
//! `$…$` and `$$…$$` (its rules keep currency such as `$5 and $10` text); [`tex_delimiters`]
//! first turns LaTeX's own `\(…\)` and `\[…\]` into those, outside code. A formula the TeX
//! parser does not accept, or one too long or too deeply grouped to render cheaply, is shown
//! as code: a reader sees what was written, never an error.

use std::borrow::Cow;
use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use pulldown_latex::config::DisplayMode;
use pulldown_latex::{push_mathml, RenderConfig, Storage};

/// The longest formula rendered as math; a longer one is shown as code.
pub const MAX_FORMULA_BYTES: usize = 8 * 1024;
/// The deepest grouping (`{`, `\left`) rendered as math; a deeper formula is shown as code.
pub const MAX_FORMULA_DEPTH: usize = 32;
/// The most MathML one formula may become; a formula that grows past it is shown as code.
pub const MAX_MATHML_BYTES: usize = 64 * 1024;
/// The most formulas of one message rendered as math; the rest are shown as code.
pub const MAX_FORMULAS: usize = 256;
/// Control words that define macros: a few bytes of them expand to megabytes (the parser's
/// only bound is a megabyte of expansion per formula), so a formula using one is code.
const MACRO_DEFINERS: &[&str] = &[
    "def",
    "edef",
    "gdef",
    "xdef",
    "let",
    "futurelet",
    "newcommand",
    "renewcommand",
    "providecommand",
    "DeclareMathOperator",
];

/// The MathML elements and attributes [`to_mathml`] writes: the sanitiser's allow-list grows
/// by these and nothing else.
pub const MATHML_TAGS: &[&str] = &[
    "math",
    "semantics",
    "annotation",
    "mrow",
    "mi",
    "mn",
    "mo",
    "mtext",
    "mspace",
    "mfrac",
    "msqrt",
    "mroot",
    "msub",
    "msup",
    "msubsup",
    "munder",
    "mover",
    "munderover",
    "mtable",
    "mtr",
    "mtd",
    "mpadded",
    "mphantom",
    "mstyle",
    "merror",
];
pub const MATHML_ATTRIBUTES: &[&str] = &[
    "display",
    "displaystyle",
    "scriptlevel",
    "mathvariant",
    "stretchy",
    "symmetric",
    "largeop",
    "movablelimits",
    "minsize",
    "maxsize",
    "linethickness",
    "width",
    "height",
    "depth",
    "encoding",
];

/// A formula as MathML (`display` for a block of its own), or as code when it cannot be
/// rendered.
pub fn to_mathml(tex: &str, display: bool) -> String {
    if renderable(tex) {
        let storage = Storage::new();
        let events: Result<Vec<_>, _> = pulldown_latex::Parser::new(tex, &storage).collect();
        if let Ok(events) = events {
            // The renderer writes the annotation as it is given: escaped here.
            let source = crate::escape(tex);
            let config = RenderConfig {
                display_mode: if display {
                    DisplayMode::Block
                } else {
                    DisplayMode::Inline
                },
                annotation: Some(&source),
                ..RenderConfig::default()
            };
            let mut mathml = String::new();
            let rendered = push_mathml(
                &mut mathml,
                events.into_iter().map(Ok::<_, std::convert::Infallible>),
                config,
            );
            if rendered.is_ok() && mathml.len() <= MAX_MATHML_BYTES {
                return mathml;
            }
        }
    }
    as_code(tex, display)
}

/// A formula shown as what was written.
pub fn as_code(tex: &str, display: bool) -> String {
    let code = format!("<code class=\"language-tex\">{}</code>", crate::escape(tex));
    if display {
        format!("<pre>{code}</pre>")
    } else {
        code
    }
}

/// Whether a formula is short, shallow and macro-free enough to render cheaply.
fn renderable(tex: &str) -> bool {
    if tex.len() > MAX_FORMULA_BYTES {
        return false;
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = tex.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '\\' => {
                // A control word: the letters after the backslash (`\leftarrow` is one word,
                // not `\left`).
                let start = at + 1;
                let mut end = start;
                while let Some(&(next, letter)) = chars.peek() {
                    if !letter.is_ascii_alphabetic() {
                        break;
                    }
                    end = next + 1;
                    chars.next();
                }
                match &tex[start..end] {
                    "left" => depth += 1,
                    "right" => depth = depth.saturating_sub(1),
                    word if MACRO_DEFINERS.contains(&word) => return false,
                    "" => {
                        chars.next(); // `\{`, `\\` and the like: one escaped character
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    deepest <= MAX_FORMULA_DEPTH
}

/// `text` with `\(…\)` as `$…$` and `\[…\]` as `$$…$$`, outside code spans and code blocks
/// (where they stay as written). A delimiter whose backslash is itself escaped is left alone.
pub fn tex_delimiters(text: &str, options: Options) -> Cow<'_, str> {
    if !text.contains("\\(") && !text.contains("\\[") {
        return Cow::Borrowed(text);
    }
    // The ranges come in document order: a binary search finds the one that could hold `at`.
    let code = code_ranges(text, options);
    let in_code = |at: usize| {
        let after = code.partition_point(|range| range.start <= at);
        after > 0 && code[after - 1].contains(&at)
    };
    let bytes = text.as_bytes();
    let escaped = |at: usize| {
        bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count()
            % 2
            == 1
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find('\\') {
        let open = at + found;
        let (close, dollars) = match bytes.get(open + 1) {
            Some(b'(') => ("\\)", "$"),
            Some(b'[') => ("\\]", "$$"),
            _ => {
                at = open + 1;
                continue;
            }
        };
        if escaped(open) || in_code(open) {
            at = open + 2;
            continue;
        }
        let body_start = open + 2;
        let Some(length) = text[body_start..].find(close) else {
            break;
        };
        let body = &text[body_start..body_start + length];
        let end = body_start + length + 2;
        // Inline math stays on its paragraph; `$` inside would end it early.
        let fits = !body.trim().is_empty()
            && !body.contains('$')
            && (dollars == "$$" || !body.contains("\n\n"))
            && !in_code(end - 1);
        if fits {
            out.push_str(&text[copied..open]);
            out.push_str(dollars);
            out.push_str(body.trim());
            out.push_str(dollars);
            copied = end;
        }
        at = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where `text`'s code spans and code blocks are.
fn code_ranges(text: &str, options: Options) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut block_start = None;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Code(_) => ranges.push(range),
            Event::Start(Tag::CodeBlock(_)) => block_start = Some(range.start),
            Event::End(TagEnd::CodeBlock) => {
                if let Some(start) = block_start.take() {
                    ranges.push(start..range.end);
                }
            }
            _ => {}
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use pulldown_cmark::Options;

    use super::{tex_delimiters, to_mathml, MAX_FORMULA_DEPTH};

    #[test]
    fn a_formula_becomes_mathml_and_keeps_its_source() {
        let inline = to_mathml("E=mc^2", false);
        assert!(inline.starts_with("<math"), "{inline}");
        assert!(inline.contains("<msup>"), "{inline}");
        assert!(
            inline.contains("<annotation encoding=\"application/x-tex\">E=mc^2</annotation>"),
            "{inline}"
        );
        let block = to_mathml("\\int_0^1 x^2\\,dx", true);
        assert!(block.contains("display=\"block\""), "{block}");
        assert!(block.contains("∫"), "{block}");
    }

    #[test]
    fn what_cannot_render_is_shown_as_code() {
        assert_eq!(
            to_mathml("\\frac{1}{", false),
            "<code class=\"language-tex\">\\frac{1}{</code>"
        );
        let deep = format!(
            "{}x{}",
            "{".repeat(MAX_FORMULA_DEPTH + 1),
            "}".repeat(MAX_FORMULA_DEPTH + 1)
        );
        assert!(to_mathml(&deep, true).starts_with("<pre><code"));
        // Arrows are not groups: many of them still render.
        let arrows = "a \\leftarrow b ".repeat(MAX_FORMULA_DEPTH + 5);
        assert!(to_mathml(&arrows, false).starts_with("<math"));
        // Macros can expand a few bytes to megabytes: a formula defining one is code.
        let bomb = "\\def\\a{xxxxxxxxxx}\\def\\b{\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a}\\def\\c{\\b\\b\\b\\b\\b\\b\\b\\b\\b\\b}\\c\\c";
        let shown = to_mathml(bomb, false);
        assert!(shown.starts_with("<code") && shown.len() < 1000, "{shown}");
        assert!(to_mathml("\\newcommand{\\x}{y} \\x", false).starts_with("<code"));
        let escaped = to_mathml("\\text{<b>}", false);
        assert!(
            !escaped.contains("<b>") && escaped.contains("\\text{&lt;b&gt;}</annotation>"),
            "{escaped}"
        );
    }

    #[test]
    fn latex_delimiters_become_dollars_outside_code() {
        let options = Options::ENABLE_MATH;
        assert_eq!(
            tex_delimiters("so \\( a+b \\) and \\[x^2\\]", options),
            "so $a+b$ and $$x^2$$"
        );
        let code = "`\\(kept\\)` and\n\n```\n\\[kept\\]\n```\n";
        assert_eq!(tex_delimiters(code, options), code);
        assert_eq!(
            tex_delimiters("\\\\(not math\\)", options),
            "\\\\(not math\\)"
        );
        assert_eq!(
            tex_delimiters("an open \\( only", options),
            "an open \\( only"
        );
    }
}
