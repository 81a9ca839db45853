//! Studio: the self-contained web GUI of `sambung db studio`. It browses tables (keyset pages,
//! sorts, filters, foreign keys as links), edits rows with optimistic checks, runs SQL, draws
//! the schema and exports views, behind a per-run token. Its page is embedded in the binary.

mod assets;
pub mod browse;
mod catalog;
pub mod console;
mod edit;
mod error;
mod guard;
mod server;

pub use error::ApiError;
pub use server::{Studio, StudioError, StudioSettings};
