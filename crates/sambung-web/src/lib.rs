//! The chat web UI (SPEC section 9): the application's page, script and style compiled into
//! the binary (`assets`), Markdown rendered on the server to HTML that can carry no markup or
//! script of its own (`markdown`), and the public read-only page of a shared chat (`share`).
//! The HTTP server mounts them; this crate knows nothing of HTTP or the database.

pub mod assets;
pub mod markdown;
pub mod share;
