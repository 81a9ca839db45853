//! SambungChat's schema and the tooling around it.
//!
//! - The declarative schema files (`schema/*.sql`, one per domain): the source of truth.
//! - The versioned migrations (`migrations/NNNN_name/{up,down}.sql`), embedded in the binary,
//!   and the [`Migrator`] that applies and rolls them back.
//! - Catalog [`introspect`]ion of a live schema, rendered as text or Mermaid, and
//!   [`drop_all`].

mod drop;
mod introspect;
mod migration;
mod migrator;
mod render;
pub mod sql;

pub use drop::{drop_all, objects_to_drop, SchemaObject};
pub use introspect::{
    introspect, Column, Constraint, Extension, ForeignKey, Function, Index, Schema, Table, Trigger,
};
pub use migration::Migration;
pub use migrator::{
    MigrateError, MigrationRun, MigrationState, MigrationStatus, Migrator, MIGRATIONS_TABLE,
};
pub use render::{to_mermaid, to_text};

/// The declarative schema files, `(file name, SQL)`, in the order they apply.
pub fn schema_files() -> &'static [(&'static str, &'static str)] {
    migration::SCHEMA_FILES
}
