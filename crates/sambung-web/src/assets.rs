//! The page, its script and its style, compiled into the binary: the UI fetches nothing from
//! another site, and building it needs no Node toolchain.

/// One file of the UI.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The application's page, served for `/` (its routes live after `#`).
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
};

/// The UI's files under `/assets/`, by name.
pub fn asset(name: &str) -> Option<Asset> {
    match name {
        "app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/app.js"),
        }),
        "ui.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/ui.js"),
        }),
        "admin.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/admin.js"),
        }),
        "app.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../assets/app.css"),
        }),
        "highlight.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: crate::highlight::STYLESHEET.as_str(),
        }),
        _ => None,
    }
}

/// What the UI's pages may load: only this server's own script, style and API; no inline
/// script, no frames, no plugins, no form posts elsewhere. A message rendered in the page is
/// sanitised already; this is the second wall.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
