//! Markdown to safe HTML: pulldown-cmark parses (CommonMark with tables, strikethrough and
//! task lists), ammonia keeps only an allow-list of tags and attributes. A message can never
//! inject script, styles, event handlers, frames or forms; links keep `http`, `https` and
//! `mailto` only and open with `rel="noopener noreferrer nofollow"`; images are dropped
//! (nothing is fetched from another site), their alt text kept.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

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
        // `class` only as `language-NAME` on code (what a code block's fence says).
        .attribute_filter(|element, attribute, value| match (element, attribute) {
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
    builder
});

/// `text` (a message, Markdown) as sanitised HTML.
pub fn to_html(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut in_image = false;
    // Images become their alt text: the page fetches nothing from elsewhere.
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Start(Tag::Image { .. }) => {
            in_image = true;
            None
        }
        Event::End(TagEnd::Image) => {
            in_image = false;
            None
        }
        // Raw HTML in a message is shown as text, not interpreted (then sanitised anyway).
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        other if in_image => match other {
            Event::Text(_) | Event::Code(_) => Some(other),
            _ => None,
        },
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    CLEANER.clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use super::to_html;

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
        assert_eq!(
            block,
            "<pre><code class=\"language-rust\">fn main() {}\n</code></pre>\n"
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
    }
}
