//! The declarative workflow on top of the diff: `db generate` (a verified migration from the
//! schema files), `db push` (the schema files straight onto a database) and `db check` (the
//! migrations and the schema files agree). Both sides are applied to scratch databases and
//! compared through the catalog, which is exact for PostgreSQL (Prisma's and Atlas's approach).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgPool};

use crate::diff::{diff, differences, Hazard, Lint, Renames, Step};
use crate::introspect::{introspect, Schema};
use crate::migrator::execute_script;
use crate::shadow::{ScratchDb, ScratchError};
use crate::{MigrateError, Migration, MigrationState, MigrationStatus, Migrator};

/// Migrations and pushes may wait this long for a table lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// What can stop generate, push or check.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("cannot read {}: {reason}", path.display())]
    Source { path: PathBuf, reason: String },
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    #[error(transparent)]
    Apply(#[from] MigrateError),
    #[error("the generated {direction} migration does not reproduce the target schema exactly; refusing to write it:\n{}", differences.join("\n"))]
    NotVerified {
        direction: &'static str,
        differences: Vec<String>,
    },
    #[error("{0}")]
    DriftUnchecked(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl sambung_config::Hint for WorkflowError {
    fn hint(&self) -> Option<String> {
        match self {
            WorkflowError::Source { .. } => Some("run from the repository root, or pass --schema-dir and --migrations-dir".into()),
            WorkflowError::Scratch(_) => Some("generate, push and check apply both sides to scratch databases: the database user needs CREATEDB".into()),
            WorkflowError::Apply(source) => source.hint(),
            WorkflowError::NotVerified { .. } => Some("write this migration by hand (and report the case: the diff should cover it)".into()),
            WorkflowError::DriftUnchecked(_) | WorkflowError::Database(_) => None,
        }
    }
}

/// Where the schema files and the migrations of a source tree are.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub schema_dir: PathBuf,
    pub migrations_dir: PathBuf,
}

impl SourceTree {
    /// The repository layout, relative to `root`.
    pub fn at(root: &Path) -> SourceTree {
        SourceTree {
            schema_dir: root.join("crates/sambung-schema/schema"),
            migrations_dir: root.join("crates/sambung-schema/migrations"),
        }
    }

    /// Every `*.sql` of the schema directory, in name order.
    pub fn schema_files(&self) -> Result<Vec<(String, String)>, WorkflowError> {
        let mut files = Vec::new();
        for name in sorted_entries(&self.schema_dir)? {
            if name.ends_with(".sql") {
                let path = self.schema_dir.join(&name);
                files.push((name, read(&path)?));
            }
        }
        Ok(files)
    }

    /// Every `NNNN_name/{up,down}.sql` of the migrations directory.
    pub fn migrations(&self) -> Result<Vec<Migration>, WorkflowError> {
        let mut migrations = Vec::new();
        for name in sorted_entries(&self.migrations_dir)? {
            let dir = self.migrations_dir.join(&name);
            if !dir.is_dir() {
                continue;
            }
            let migration = Migration::new(
                &name,
                &read(&dir.join("up.sql"))?,
                &read(&dir.join("down.sql"))?,
            )
            .map_err(|reason| WorkflowError::Source {
                path: dir.clone(),
                reason,
            })?;
            migrations.push(migration);
        }
        Ok(migrations)
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<String>, WorkflowError> {
    let error = |e: std::io::Error| WorkflowError::Source {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(error)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

fn read(path: &Path) -> Result<String, WorkflowError> {
    std::fs::read_to_string(path).map_err(|e| WorkflowError::Source {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Apply the schema files to `pool`'s database in one transaction.
pub async fn apply_schema_files(
    pool: &PgPool,
    files: &[(String, String)],
) -> Result<(), WorkflowError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    for (name, sql) in files {
        execute_script(&mut tx, &format!("schema file {name}"), sql, LOCK_TIMEOUT).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn schema_of(pool: &PgPool) -> Result<Schema, sqlx::Error> {
    introspect(&mut *pool.acquire().await?).await
}

/// A scratch database holding every migration, and one holding the schema files.
pub struct Shadows {
    pub migrated: ScratchDb,
    pub declared: ScratchDb,
    pub migrated_schema: Schema,
    pub declared_schema: Schema,
}

/// The schema that `files` declare, read from a scratch database they were applied to (and
/// which is gone again).
pub async fn declared_schema(
    admin: &PgConnectOptions,
    files: &[(String, String)],
) -> Result<Schema, WorkflowError> {
    let scratch = ScratchDb::create(admin, "push").await?;
    let schema = match apply_schema_files(scratch.pool(), files).await {
        Ok(()) => schema_of(scratch.pool()).await.map_err(WorkflowError::from),
        Err(e) => Err(e),
    };
    scratch.remove().await?;
    schema
}

impl Shadows {
    /// Build both sides on the server `admin` connects to.
    pub async fn build(
        admin: &PgConnectOptions,
        tree: &SourceTree,
    ) -> Result<Shadows, WorkflowError> {
        let migrations = tree.migrations()?;
        let files = tree.schema_files()?;
        let migrated = ScratchDb::create(admin, "migrations").await?;
        let declared = ScratchDb::create(admin, "schema").await?;
        Migrator::new(migrations)?.migrate(migrated.pool()).await?;
        apply_schema_files(declared.pool(), &files).await?;
        let migrated_schema = schema_of(migrated.pool()).await?;
        let declared_schema = schema_of(declared.pool()).await?;
        Ok(Shadows {
            migrated,
            declared,
            migrated_schema,
            declared_schema,
        })
    }

    /// Remove both scratch databases.
    pub async fn remove(self) -> Result<(), sqlx::Error> {
        self.migrated.remove().await?;
        self.declared.remove().await
    }
}

/// A migration ready to be written.
#[derive(Debug, Clone)]
pub struct GeneratedMigration {
    /// `NNNN_name`
    pub name: String,
    pub up: String,
    pub down: String,
    /// What the up migration may destroy or refuse.
    pub hazards: Vec<Hazard>,
    pub lints: Vec<Lint>,
}

/// The next migration from the shadows, verified: its up script turns the migrated scratch
/// database into exactly the declared schema, and its down script brings it back.
/// `None` when there is nothing to change.
pub async fn generate(
    shadows: &Shadows,
    existing: &[Migration],
    name: &str,
    renames: &Renames,
) -> Result<Option<GeneratedMigration>, WorkflowError> {
    let up_steps = diff(&shadows.migrated_schema, &shadows.declared_schema, renames);
    if up_steps.is_empty() {
        return Ok(None);
    }
    let down_steps = diff(
        &shadows.declared_schema,
        &shadows.migrated_schema,
        &renames.inverted(),
    );
    let version = existing.iter().map(|m| m.version).max().unwrap_or(0) + 1;
    let name = format!("{version:04}_{}", slug(name));
    let hazards: Vec<Hazard> = up_steps.iter().filter_map(|s| s.hazard.clone()).collect();
    let lints: Vec<Lint> = up_steps.iter().flat_map(|s| s.lints.clone()).collect();
    let up = render_script(
        &format!("{name}: generated by `sambung db generate`"),
        &up_steps,
        &hazards,
        &lints,
    );
    let down = render_script(
        &format!("{name} (down): generated by `sambung db generate`"),
        &down_steps,
        &[],
        &[],
    );

    // Run both scripts, as written, on the migrated scratch database.
    let pool = shadows.migrated.pool();
    run_in_transaction(pool, &format!("generated {name}/up.sql"), &up).await?;
    let after_up = differences(&schema_of(pool).await?, &shadows.declared_schema);
    if !after_up.is_empty() {
        return Err(WorkflowError::NotVerified {
            direction: "up",
            differences: after_up,
        });
    }
    run_in_transaction(pool, &format!("generated {name}/down.sql"), &down).await?;
    let after_down = differences(&schema_of(pool).await?, &shadows.migrated_schema);
    if !after_down.is_empty() {
        return Err(WorkflowError::NotVerified {
            direction: "down",
            differences: after_down,
        });
    }
    Ok(Some(GeneratedMigration {
        name,
        up,
        down,
        hazards,
        lints,
    }))
}

/// Write a generated migration's directory; returns it.
pub fn write_migration(
    tree: &SourceTree,
    migration: &GeneratedMigration,
) -> Result<PathBuf, WorkflowError> {
    let dir = tree.migrations_dir.join(&migration.name);
    let error = |e: std::io::Error| WorkflowError::Source {
        path: dir.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir(&dir).map_err(error)?;
    std::fs::write(dir.join("up.sql"), &migration.up).map_err(error)?;
    std::fs::write(dir.join("down.sql"), &migration.down).map_err(error)?;
    Ok(dir)
}

async fn run_in_transaction(pool: &PgPool, name: &str, script: &str) -> Result<(), WorkflowError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    execute_script(&mut tx, name, script, LOCK_TIMEOUT).await?;
    tx.commit().await?;
    Ok(())
}

/// The SQL file: a header (with any data-loss warning and lint), then the statements.
pub fn render_script(title: &str, steps: &[Step], hazards: &[Hazard], lints: &[Lint]) -> String {
    let mut out = format!("-- {title}\n");
    if !hazards.is_empty() {
        out.push_str("--\n-- WARNING: this migration can lose data or fail on existing rows:\n");
        for hazard in hazards {
            out.push_str(&format!("--   * {}\n", hazard.description));
        }
    }
    if !lints.is_empty() {
        out.push_str("--\n-- Lint (squawk rules), for large or busy tables:\n");
        for lint in lints {
            out.push_str(&format!("--   * {}: {}\n", lint.rule, lint.message));
        }
    }
    for step in steps {
        out.push('\n');
        out.push_str(step.sql.trim_end());
        out.push_str(";\n");
    }
    out
}

/// What `push` would do to a live database, with the rows each hazard concerns.
#[derive(Debug, Clone)]
pub struct PushPlan {
    pub steps: Vec<Step>,
    /// Hazards with the number of rows concerned, counted on the live database.
    pub hazards: Vec<(Hazard, i64)>,
}

impl PushPlan {
    /// Whether applying it would destroy data or fail on existing rows.
    pub fn loses_data(&self) -> bool {
        self.hazards.iter().any(|(_, rows)| *rows > 0)
    }

    pub fn script(&self) -> String {
        render_script("generated by `sambung db push`", &self.steps, &[], &[])
    }
}

/// Plan `push`: diff the live database against the declared schema and count what each
/// hazard concerns.
pub async fn plan_push(
    live: &PgPool,
    declared: &Schema,
    renames: &Renames,
) -> Result<PushPlan, WorkflowError> {
    let current = schema_of(live).await?;
    let steps = diff(&current, declared, renames);
    let mut hazards = Vec::new();
    for hazard in steps.iter().filter_map(|s| s.hazard.clone()) {
        let rows: i64 = sqlx::query_scalar(&hazard.count_sql)
            .fetch_one(live)
            .await?;
        hazards.push((hazard, rows));
    }
    Ok(PushPlan { steps, hazards })
}

/// The live schema, as introspected.
pub async fn live_schema(pool: &PgPool) -> Result<Schema, WorkflowError> {
    Ok(schema_of(pool).await?)
}

/// Apply a push plan in one transaction.
pub async fn apply_push(live: &PgPool, plan: &PushPlan) -> Result<(), WorkflowError> {
    run_in_transaction(live, "push", &plan.script()).await
}

/// Drift: how the live schema differs from what `applied` (the migrations the database
/// records as applied) build on a scratch database. Empty when there is none.
pub async fn drift(
    live: &PgPool,
    admin: &PgConnectOptions,
    migrator: &Migrator,
    status: &[MigrationStatus],
) -> Result<Vec<String>, WorkflowError> {
    if status.iter().any(|s| s.state == MigrationState::Unknown) {
        return Err(WorkflowError::DriftUnchecked(
            "the database has migrations this sambung does not know",
        ));
    }
    // What the database says it applied (a modified one counts: its old text is not kept).
    let applied: Vec<Migration> = migrator
        .migrations()
        .iter()
        .filter(|m| {
            status
                .iter()
                .any(|s| s.version == m.version && s.state != MigrationState::Pending)
        })
        .cloned()
        .collect();
    let scratch = ScratchDb::create(admin, "drift").await?;
    Migrator::new(applied)?.migrate(scratch.pool()).await?;
    let expected = schema_of(scratch.pool()).await?;
    scratch.remove().await?;
    Ok(differences(&expected, &schema_of(live).await?))
}

/// A migration name made safe for a directory: lower case, `a-z0-9_`.
fn slug(name: &str) -> String {
    let slug: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let slug = slug.trim_matches('_').to_owned();
    if slug.is_empty() {
        "schema_change".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_names_become_slugs() {
        assert_eq!(slug("Add user nickname!"), "add_user_nickname");
        assert_eq!(slug("  "), "schema_change");
    }
}
