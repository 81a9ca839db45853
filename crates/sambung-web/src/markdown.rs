//! Markdown to safe HTML: pulldown-cmark parses (CommonMark with tables, strikethrough and
//! task lists), ammonia keeps only an allow-list of tags and attributes. A message can never
//! inject script, styles, event handlers, frames or forms; links keep `http`, `https` and
//! `mailto` only and open with `rel="noopener noreferrer nofollow"`; images are dropped
//! (nothing is fetched from another site), their alt text kept.
//!
//! Parsing and sanitising cost grows with the square of how deeply blocks nest, so what is
//! rendered is bounded first: block containers nest at most [`MAX_NESTING`] deep (a deeper
//! quote or list marker is shown as text), and only the first [`MAX_MARKDOWN_BYTES`] of a
//! message are Markdown (the rest is shown as plain text).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::highlight::{self, CLASS_PREFIX};
use crate::math;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "p",
        "br",
        "hr",
        "em",
        "strong",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "input",
        "sup",
        "span",
    ]
    .into_iter()
    .chain(math::MATHML_TAGS.iter().copied())
    .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .tags(tags)
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("ol", ["start"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("th", ["align"])
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("span", ["class"])
        // `class` only as `language-NAME` on code (what a code block's fence says), and the
        // highlighter's own classes on spans.
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("span", "class") => value
                .split(' ')
                .all(|class| {
                    class.strip_prefix(CLASS_PREFIX).is_some_and(|rest| {
                        !rest.is_empty()
                            && rest
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
                    })
                })
                .then(|| value.into()),
            ("code", "class") => value
                .strip_prefix("language-")
                .filter(|name| {
                    (1..=30).contains(&name.len())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+#_-".contains(c))
                })
                .map(|_| value.into()),
            _ => Some(value.into()),
        });
    for tag in math::MATHML_TAGS {
        builder.add_tag_attributes(tag, math::MATHML_ATTRIBUTES.iter().copied());
    }
    builder
});

/// Deepest nesting of block containers (quotes, list items) rendered as such; a deeper marker
/// is shown as text.
pub const MAX_NESTING: usize = 16;
/// How much of a message is rendered as Markdown; what follows is shown as plain text.
pub const MAX_MARKDOWN_BYTES: usize = 256 * 1024;

/// `text` (a message, Markdown) as sanitised HTML, in time and memory bounded by its length.
pub fn to_html(text: &str) -> String {
    let (markdown, rest) = split_at_budget(text);
    let mut html = render(&bound_nesting(markdown));
    if !rest.is_empty() {
        html.push_str("<pre class=\"overflow\">");
        html.push_str(&crate::escape(rest));
        html.push_str("</pre>\n");
    }
    html
}

/// The first [`MAX_MARKDOWN_BYTES`] of `text`, cut after a line when there is one, and the rest.
fn split_at_budget(text: &str) -> (&str, &str) {
    if text.len() <= MAX_MARKDOWN_BYTES {
        return (text, "");
    }
    let mut cut = MAX_MARKDOWN_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |newline| newline + 1);
    text.split_at(cut)
}

/// The length of the block-container marker at the start of `line` (`>`, a bullet, or an
/// ordered item's `1.`/`1)`), and where its delimiter is, when there is one.
fn container_marker(line: &[u8]) -> Option<(usize, usize)> {
    let ends_marker = |at: usize| line.get(at).is_none_or(|b| matches!(b, b' ' | b'\t'));
    match line.first()? {
        b'>' => Some((1, 0)),
        b'-' | b'+' | b'*' if ends_marker(1) => Some((1, 0)),
        b'0'..=b'9' => {
            let digits = line
                .iter()
                .take(10)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let delimiter = matches!(line.get(digits), Some(b'.' | b')'));
            (digits <= 9 && delimiter && ends_marker(digits + 1)).then_some((digits + 1, digits))
        }
        _ => None,
    }
}

/// `text` with every block-container marker nested deeper than [`MAX_NESTING`] on its line
/// escaped (`\>`, `\-`, `1\.`), so that it is text; lines inside fenced code are left alone.
fn bound_nesting(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut fence: Option<(u8, usize)> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let bytes = line.as_bytes();
        let (mut at, mut depth, mut escape_at) = (0, 0, None);
        loop {
            at += bytes[at..]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            let Some((length, delimiter)) = container_marker(&bytes[at..]) else {
                break;
            };
            depth += 1;
            if depth > MAX_NESTING {
                escape_at = Some(at + delimiter);
                break;
            }
            at += length;
        }
        let rest = &bytes[at..];
        let fence_run = |c: u8| rest.iter().take_while(|b| **b == c).count();
        match fence {
            Some((c, n)) if fence_run(c) >= n => fence = None,
            Some(_) => escape_at = None,
            None => {
                for c in [b'`', b'~'] {
                    if fence_run(c) >= 3 {
                        fence = Some((c, fence_run(c)));
                    }
                }
            }
        }
        if let Some(escape_at) = escape_at.filter(|_| fence.is_none()) {
            let out = out.get_or_insert_with(|| text[..start].to_owned());
            out.push_str(&line[..escape_at]);
            out.push('\\');
            out.push_str(&line[escape_at..]);
        } else if let Some(out) = out.as_mut() {
            out.push_str(line);
        }
        start += line.len();
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Markdown to sanitised HTML, unbounded: [`to_html`] bounds its input first.
fn render(text: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH;
    let text = math::tex_delimiters(text, options);
    let mut events = Vec::new();
    let mut formulas = 0;
    let mut in_image = false;
    // A fenced code block being collected: its language and its text so far.
    let mut code: Option<(CowStr<'_>, String)> = None;
    for event in Parser::new_ext(&text, options) {
        match event {
            // Images become their alt text: the page fetches nothing from elsewhere.
            Event::Start(Tag::Image { .. }) => in_image = true,
            Event::End(TagEnd::Image) => in_image = false,
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(language)))
                if !language.is_empty() =>
            {
                code = Some((language, String::new()));
            }
            Event::Text(piece) if code.is_some() => {
                if let Some((_, collected)) = code.as_mut() {
                    collected.push_str(&piece);
                }
            }
            Event::End(TagEnd::CodeBlock) if code.is_some() => {
                if let Some((language, collected)) = code.take() {
                    events.push(code_block(&language, &collected));
                }
            }
            Event::InlineMath(tex) => events.push(Event::InlineHtml(
                formula(&tex, false, &mut formulas).into(),
            )),
            Event::DisplayMath(tex) => {
                events.push(Event::Html(formula(&tex, true, &mut formulas).into()))
            }
            // A message's headings sit under the page's own (its title is an h2): `#` is an h3.
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => events.push(Event::Start(Tag::Heading {
                level: demoted(level),
                id,
                classes,
                attrs,
            })),
            Event::End(TagEnd::Heading(level)) => {
                events.push(Event::End(TagEnd::Heading(demoted(level))))
            }
            // Raw HTML in a message is shown as text, not interpreted (then sanitised anyway).
            Event::Html(html) | Event::InlineHtml(html) => events.push(Event::Text(html)),
            Event::Text(_) | Event::Code(_) if in_image => events.push(event),
            _ if in_image => {}
            other => events.push(other),
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    CLEANER.clean(&html).to_string()
}

/// The next formula of a message: MathML for the first [`math::MAX_FORMULAS`], code after.
fn formula(tex: &str, display: bool, count: &mut usize) -> String {
    *count += 1;
    if *count > math::MAX_FORMULAS {
        math::as_code(tex, display)
    } else {
        math::to_mathml(tex, display)
    }
}

/// A heading two levels down (at most an h6).
fn demoted(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// A fenced block: highlighted when its language is known, else escaped as it is.
fn code_block(language: &str, code: &str) -> Event<'static> {
    let word = language.split_whitespace().next().unwrap_or_default();
    let body = highlight::highlight(code, word).unwrap_or_else(|| crate::escape(code));
    // The class is checked by the sanitiser: an odd fence word loses it.
    Event::Html(
        format!(
            "<pre><code class=\"language-{}\">{body}</code></pre>\n",
            crate::escape(word)
        )
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::{to_html, MAX_MARKDOWN_BYTES, MAX_NESTING};

    #[test]
    fn markdown_renders() {
        assert_eq!(
            to_html("**bold** and `code`"),
            "<p><strong>bold</strong> and <code>code</code></p>\n"
        );
        let table = to_html("| a | b |\n|---|---|\n| 1 | 2 |");
        assert!(
            table.contains("<table>") && table.contains("<td>1</td>"),
            "{table}"
        );
        let block = to_html("```rust\nfn main() {}\n```");
        assert!(
            block.starts_with(
                "<pre><code class=\"language-rust\"><span class=\"hl-source hl-rust\">"
            ),
            "{block}"
        );
        assert!(
            block.contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
            "{block}"
        );
        let unknown = to_html("```klingon\nqapla' <b>\n```");
        assert_eq!(
            unknown, "<pre><code class=\"language-klingon\">qapla' &lt;b&gt;\n</code></pre>\n",
            "an unknown language is shown plain"
        );
        // Headings sit under the page's own: two levels down.
        assert_eq!(
            to_html("# Title\n## Part\n#### Deep"),
            "<h3>Title</h3>\n<h4>Part</h4>\n<h6>Deep</h6>\n"
        );
        let link = to_html("[docs](https://example.com/a?b=1)");
        assert_eq!(
            link,
            "<p><a href=\"https://example.com/a?b=1\" rel=\"noopener noreferrer nofollow\">docs</a></p>\n"
        );
    }

    #[test]
    fn a_message_cannot_inject_markup_or_script() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<style>body{display:none}</style>",
            "<div onclick=\"alert(1)\">x</div>",
        ] {
            let html = to_html(hostile);
            assert!(html.contains("&lt;"), "raw HTML is shown as text: {html}");
            for tag in ["<script", "<img", "<a ", "<iframe", "<style", "<div"] {
                assert!(!html.contains(tag), "{hostile} gave {html}");
            }
        }
        // Markdown's own ways to a link or an image.
        let html = to_html("[x](javascript:alert(1)) [y](data:text/html,hi) <javascript:alert(1)>");
        assert!(
            !html.contains("javascript:alert(1)\"") && !html.contains("href=\"data:"),
            "{html}"
        );
        let html = to_html("![a cat](https://tracker.example/cat.png)");
        assert_eq!(html, "<p>a cat</p>\n", "images become their alt text");
        let html = to_html("```x\" onmouseover=\"alert(1)\nboom\n```");
        assert!(!html.contains("onmouseover=\""), "{html}");
        assert!(
            !html.contains("class="),
            "an odd fence gives no class: {html}"
        );
        // Code that looks like markup stays text inside the highlighter's spans.
        let html = to_html("```html\n<script>alert(1)</script><img src=x onerror=alert(1)>\n```");
        assert!(
            html.contains("hl-") && !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
    }

    /// Nesting costs the square of its depth to parse and sanitise: 100,000 quote markers
    /// took minutes. Past the bound, markers are text.
    #[test]
    fn nesting_is_bounded_and_the_rest_is_text() {
        let html = to_html(&(">".repeat(100_000) + " deep"));
        assert_eq!(
            html.matches("<blockquote>").count(),
            MAX_NESTING,
            "{}",
            &html[..300]
        );
        assert!(html.contains(&format!(
            "{}&gt; deep",
            "&gt;".repeat(100_000 - MAX_NESTING - 1)
        )));
        let html = to_html(&("- ".repeat(8_000) + "x"));
        assert_eq!(html.matches("<ul>").count(), MAX_NESTING);
        let html = to_html(&("1. ".repeat(100) + "x"));
        assert_eq!(html.matches("<ol>").count(), MAX_NESTING);
        assert!(html.contains("1. 1. 1."), "{html}");
        // Within the bound nothing changes, and code keeps its markers.
        assert_eq!(
            to_html("> > a"),
            "<blockquote>\n<blockquote>\n<p>a</p>\n</blockquote>\n</blockquote>\n"
        );
        let code = format!("```\n{}\n```", "> ".repeat(40));
        assert!(!to_html(&code).contains('\\'), "{}", to_html(&code));
    }

    #[test]
    fn math_renders_as_mathml_through_the_sanitiser() {
        let html = to_html("Energy: $E=mc^2$, and\n\n$$\\int_0^1 x^2\\,dx$$\n");
        assert!(html.contains("<math"), "{html}");
        assert!(html.contains("<msup>"), "{html}");
        assert!(html.contains("display=\"block\""), "{html}");
        // TeX's escapes reach the formula: the thin space is kept in its source.
        assert!(html.contains("x^2\\,dx</annotation>"), "{html}");
        let html = to_html("between \\(a+b\\) and \\[c\\]");
        assert_eq!(html.matches("<math").count(), 2, "{html}");
        // A message renders at most MAX_FORMULAS formulas; the rest are code.
        let many = to_html(&"$x$ ".repeat(crate::math::MAX_FORMULAS + 44));
        assert_eq!(many.matches("<math").count(), crate::math::MAX_FORMULAS);
        assert_eq!(many.matches("language-tex").count(), 44);
        // Currency is not math.
        assert_eq!(
            to_html("It costs $5 and $10."),
            "<p>It costs $5 and $10.</p>\n"
        );
        // Invalid TeX is code, never an error.
        assert_eq!(
            to_html("$x^^2 \\frac{1}$"),
            "<p><code class=\"language-tex\">x^^2 \\frac{1}</code></p>\n"
        );
        // Math cannot carry markup or script; raw MathML is text.
        for hostile in [
            "$\\text{<script>alert(1)</script>}$",
            "$\\href{javascript:alert(1)}{x}$",
            "<math><mtext><img src=x onerror=alert(1)></mtext></math>",
            "$\\color{red}{x} \\style{background:url(x)}{y}$",
        ] {
            let html = to_html(hostile);
            for bad in ["<script", "<img", "href=", "style=", "onerror=\""] {
                assert!(!html.contains(bad), "{hostile} gave {html}");
            }
        }
    }

    #[test]
    fn only_the_first_part_of_a_huge_message_is_markdown() {
        let line = "**bold** <b> text\n";
        let text = line.repeat(MAX_MARKDOWN_BYTES / line.len() + 100);
        let html = to_html(&text);
        let (markdown, rest) = html.split_once("<pre class=\"overflow\">").unwrap();
        assert!(markdown.ends_with("</p>\n"), "cut after a whole line");
        assert_eq!(rest.matches("**bold** &lt;b&gt; text").count(), 100);
        assert!(!rest.contains("<strong>"));
    }
}
