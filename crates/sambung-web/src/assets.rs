//! The page, its script and its style, compiled into the binary: the UI fetches nothing from
//! another site, and building it needs no Node toolchain.

/// One file of the UI.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
    /// A library vendored at a pinned version (it changes only with the binary's release).
    pub vendored: bool,
}

/// The application's page, served for `/` (its routes live after `#`).
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
    vendored: false,
};

/// The installable app's manifest, served at `/manifest.webmanifest`.
pub const MANIFEST: Asset = Asset {
    content_type: "application/manifest+json",
    body: include_str!("../assets/manifest.webmanifest"),
    vendored: false,
};

/// The service worker, served at `/sw.js` (its scope is the whole site): it keeps the
/// application's shell for the installed app, never an API answer.
pub const SERVICE_WORKER: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../assets/sw.js"),
    vendored: false,
};

/// The UI's files under `/assets/`, by name.
pub fn asset(name: &str) -> Option<Asset> {
    match name {
        "app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/app.js"),
            vendored: false,
        }),
        "ui.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/ui.js"),
            vendored: false,
        }),
        "admin.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/admin.js"),
            vendored: false,
        }),
        "app.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../assets/app.css"),
            vendored: false,
        }),
        // Mermaid, vendored from its npm package (scripts/refresh-mermaid; MIT, its licence
        // beside it): loaded by the page only when a message holds a diagram.
        "mermaid.min.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/vendor/mermaid/mermaid.min.js"),
            vendored: true,
        }),
        "icon.svg" => Some(Asset {
            content_type: "image/svg+xml",
            body: include_str!("../assets/icon.svg"),
            vendored: false,
        }),
        "highlight.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: crate::highlight::STYLESHEET.as_str(),
            vendored: false,
        }),
        _ => None,
    }
}

/// What the UI's pages may load: only this server's own script, style and API; no inline
/// script, no frames, no plugins, no form posts elsewhere. A message rendered in the page is
/// sanitised already; this is the second wall.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";
