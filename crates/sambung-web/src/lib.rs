//! The chat web UI (SPEC section 9): the application's page, script and style compiled into
//! the binary (`assets`), Markdown rendered on the server to HTML that can carry no markup or
//! script of its own (`markdown`) with code blocks highlighted (`highlight`), and the public
//! read-only page of a shared chat (`share`), and charts drawn as SVG (`chart`).
//! The HTTP server mounts them; this crate knows nothing of HTTP or the database.

pub mod assets;
pub mod chart;
pub mod highlight;
pub mod markdown;
pub mod math;
pub mod share;

/// Escape text for HTML (element content and quoted attribute values: `< > & " '`), as
/// pulldown-cmark's own escaper does.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut escaped, text);
    escaped
}
