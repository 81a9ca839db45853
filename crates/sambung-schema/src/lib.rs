//! SambungChat's schema and the tooling around it.
//!
//! - The declarative schema files (`schema/*.sql`, one per domain): the source of truth.
//! - The versioned migrations (`migrations/NNNN_name/{up,down}.sql`), embedded in the binary,
//!   and the [`Migrator`] that applies and rolls them back.
//! - Catalog [`introspect`]ion of a live schema, rendered as text or Mermaid, and
//!   [`drop_all`].
//! - The [`diff`] of two schemas as ordered DDL with data-loss hazards and lint, and the
//!   declarative workflow on scratch databases: [`generate`], [`plan_push`], [`Shadows`].

mod diff;
mod drop;
mod introspect;
mod migration;
mod migrator;
mod render;
mod shadow;
mod workflow;

pub use diff::{ambiguities, diff, differences, Ambiguity, Hazard, Lint, Renames, Step};
pub use drop::{drop_all, objects_to_drop, SchemaObject};
pub use introspect::{
    introspect, Column, Constraint, EnumType, Extension, ForeignKey, Function, Index, Schema,
    Table, Trigger, View,
};
pub use migration::Migration;
pub use migrator::{
    runs_in_transaction, MigrateError, MigrationRun, MigrationState, MigrationStatus, Migrator,
    MIGRATIONS_TABLE, NO_TRANSACTION,
};
pub use render::{to_mermaid, to_text};
pub use shadow::{
    drop_database_blocking, leftover_scratch_databases, ScratchDb, ScratchError, SCRATCH_PREFIX,
};
pub use workflow::{
    apply_push, apply_schema_files, declared_schema, drift, generate, live_schema, plan_push,
    render_script, write_migration, GeneratedMigration, PushPlan, Shadows, SourceTree,
    WorkflowError,
};

/// The declarative schema files, `(file name, SQL)`, in the order they apply.
pub fn schema_files() -> &'static [(&'static str, &'static str)] {
    migration::SCHEMA_FILES
}
