//! Applying and rolling back migrations: each in its own transaction, under an advisory lock
//! so that two migrators never interleave, with every applied migration recorded (version,
//! name, checksum, time, duration) in [`MIGRATIONS_TABLE`].
//!
//! Queries here are checked at run time (`sqlx::query_as`), not by sqlx's macros: the
//! migrations table is created by this module itself, after the macros' prepare step would run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::Migration;
use sambung_sql::split::{char_position_to_offset, line_and_column, split_statements};

/// The bookkeeping table, in the migrated schema.
pub const MIGRATIONS_TABLE: &str = "_sambung_migrations";

/// The first-line comment that makes a script run statement by statement, outside a
/// transaction: for what PostgreSQL refuses inside one, like `CREATE INDEX CONCURRENTLY`.
pub const NO_TRANSACTION: &str = "-- sambung:no-transaction";

/// Whether `script` runs in one transaction: unless its leading comments hold
/// [`NO_TRANSACTION`].
pub fn runs_in_transaction(script: &str) -> bool {
    !script
        .lines()
        .map(str::trim)
        .take_while(|line| line.is_empty() || line.starts_with("--"))
        .any(|line| line == NO_TRANSACTION)
}

/// The advisory lock every migrator takes ("SAMBUNG" in ASCII).
const LOCK_KEY: i64 = 0x53_41_4d_42_55_4e_47;

/// Why migrating or rolling back stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("applied migration {name} has been modified since it was applied (checksum {applied} in the database, {current} in this binary)")]
    Modified {
        name: String,
        applied: String,
        current: String,
    },
    #[error(
        "the database has migration {version} ({name}) applied, which this sambung does not know"
    )]
    Unknown { version: i64, name: String },
    #[error("{name} failed in statement {statement} at line {line}, column {column}: {message}")]
    Failed {
        name: String,
        statement: usize,
        line: usize,
        column: usize,
        message: String,
        /// The failing statement, for the hint.
        sql: String,
        /// Whether the script ran in a transaction (so that nothing of it was applied).
        transactional: bool,
    },
    #[error("{name} waited more than {seconds} s for a lock (statement {statement} at line {line}): another session holds the table")]
    LockTimeout {
        name: String,
        statement: usize,
        line: usize,
        seconds: u64,
    },
    #[error("two migrations have version {0}")]
    DuplicateVersion(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl sambung_config::Hint for MigrateError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            MigrateError::Modified { .. } => "an applied migration must never change: restore its file and put the change in a new migration (`sambung db status` lists what differs)".into(),
            MigrateError::Unknown { .. } => "this database was migrated by a newer sambung; run that version, or roll back with it".into(),
            MigrateError::Failed { message, transactional: true, .. }
                if message.contains("cannot run inside a transaction block") =>
            {
                format!("nothing of this migration was applied; put `{NO_TRANSACTION}` on the first line of the script to run it statement by statement, outside a transaction")
            }
            MigrateError::Failed { sql, transactional: true, .. } => {
                let first_line = sql.lines().next().unwrap_or_default();
                format!("nothing of this migration was applied; the failing statement begins: {first_line}")
            }
            MigrateError::Failed { .. } => "the statements before it were applied and the migration is not recorded (it runs outside a transaction): make its statements safe to run again (IF NOT EXISTS; a failed CREATE INDEX CONCURRENTLY leaves an INVALID index to drop), then migrate again".into(),
            MigrateError::LockTimeout { .. } => "nothing of this migration was applied; find the long transaction in pg_stat_activity, then run it again".into(),
            MigrateError::DuplicateVersion(_) | MigrateError::Database(_) => return None,
        })
    }
}

/// A migration that was applied or rolled back, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRun {
    pub version: i64,
    pub name: String,
    pub duration: Duration,
}

/// Where a migration stands against a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but its up script changed since.
    Modified,
    /// Applied, but not in this binary.
    Unknown,
}

/// One line of `sambung db status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub state: MigrationState,
    pub applied_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
struct AppliedRow {
    version: i64,
    name: String,
    checksum: String,
    applied_at: DateTime<Utc>,
    duration_ms: i64,
}

/// Applies, rolls back and reports a list of migrations.
#[derive(Debug, Clone)]
pub struct Migrator {
    migrations: Vec<Migration>,
    lock_timeout: Duration,
}

impl Migrator {
    /// The migrations embedded in this binary.
    pub fn embedded() -> Self {
        Self::new(Migration::embedded()).expect("embedded migrations have unique versions")
    }

    /// Any list of migrations (sorted here by version).
    pub fn new(mut migrations: Vec<Migration>) -> Result<Self, MigrateError> {
        migrations.sort_by_key(|m| m.version);
        if let Some(pair) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
            return Err(MigrateError::DuplicateVersion(pair[0].version));
        }
        Ok(Migrator {
            migrations,
            lock_timeout: Duration::from_secs(10),
        })
    }

    /// How long a migration's statement may wait for a table lock before failing
    /// (default 10 s), so that a migration never hangs behind a long transaction.
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The version of the newest migration: the schema this binary builds (0 for none).
    pub fn latest_version(&self) -> i64 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The version of the newest migration applied to the database `conn` is in; `None` when
    /// none was (or it has no migrations table).
    pub async fn applied_version(
        conn: &mut sqlx::PgConnection,
    ) -> Result<Option<i64>, sqlx::Error> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(MIGRATIONS_TABLE)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar(&format!("SELECT max(version) FROM {MIGRATIONS_TABLE}"))
            .fetch_one(conn)
            .await
    }

    /// Apply every pending migration in order. Refuses to start when an applied migration was
    /// modified or is unknown to this binary. Returns what it applied.
    pub async fn migrate(&self, pool: &PgPool) -> Result<Vec<MigrationRun>, MigrateError> {
        let mut conn = locked_connection(pool).await?;
        let result = self.migrate_locked(&mut conn).await;
        unlock(&mut conn).await;
        result
    }

    async fn migrate_locked(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<MigrationRun>, MigrateError> {
        ensure_migrations_table(conn).await?;
        let applied = applied_rows(conn).await?;
        let known: HashMap<i64, &Migration> =
            self.migrations.iter().map(|m| (m.version, m)).collect();
        for row in applied.values() {
            match known.get(&row.version) {
                None => {
                    return Err(MigrateError::Unknown {
                        version: row.version,
                        name: row.name.clone(),
                    })
                }
                Some(m) if m.checksum() != row.checksum => {
                    return Err(MigrateError::Modified {
                        name: m.name.clone(),
                        applied: row.checksum.clone(),
                        current: m.checksum(),
                    })
                }
                Some(_) => {}
            }
        }
        let mut runs = Vec::new();
        for migration in self
            .migrations
            .iter()
            .filter(|m| !applied.contains_key(&m.version))
        {
            let started = Instant::now();
            let name = format!("migration {}", migration.name);
            let record = format!(
                "INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)"
            );
            let checksum = migration.checksum();
            apply(conn, &name, &migration.up, self.lock_timeout, || {
                sqlx::query(&record)
                    .bind(migration.version)
                    .bind(&migration.name)
                    .bind(&checksum)
                    .bind(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
            })
            .await?;
            let duration = started.elapsed();
            tracing::info!(migration = %migration.name, ?duration, "applied");
            runs.push(MigrationRun {
                version: migration.version,
                name: migration.name.clone(),
                duration,
            });
        }
        Ok(runs)
    }

    /// Run the down scripts of the last `steps` applied migrations, newest first, each in its
    /// own transaction. Returns what it rolled back (nothing when nothing is applied).
    pub async fn rollback(
        &self,
        pool: &PgPool,
        steps: usize,
    ) -> Result<Vec<MigrationRun>, MigrateError> {
        let mut conn = locked_connection(pool).await?;
        let result = self.rollback_locked(&mut conn, steps).await;
        unlock(&mut conn).await;
        result
    }

    async fn rollback_locked(
        &self,
        conn: &mut PgConnection,
        steps: usize,
    ) -> Result<Vec<MigrationRun>, MigrateError> {
        ensure_migrations_table(conn).await?;
        let applied = applied_rows(conn).await?;
        let mut versions: Vec<i64> = applied.keys().copied().collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut runs = Vec::new();
        for version in versions.into_iter().take(steps) {
            let Some(migration) = self.migrations.iter().find(|m| m.version == version) else {
                return Err(MigrateError::Unknown {
                    version,
                    name: applied[&version].name.clone(),
                });
            };
            let started = Instant::now();
            let name = format!("migration {} (down)", migration.name);
            let forget = format!("DELETE FROM {MIGRATIONS_TABLE} WHERE version = $1");
            apply(conn, &name, &migration.down, self.lock_timeout, || {
                sqlx::query(&forget).bind(version)
            })
            .await?;
            tracing::info!(migration = %migration.name, "rolled back");
            runs.push(MigrationRun {
                version,
                name: migration.name.clone(),
                duration: started.elapsed(),
            });
        }
        Ok(runs)
    }

    /// Every migration of this binary and of the database, by version.
    pub async fn status(&self, pool: &PgPool) -> Result<Vec<MigrationStatus>, MigrateError> {
        let mut conn = pool.acquire().await?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(MIGRATIONS_TABLE)
            .fetch_one(&mut *conn)
            .await?;
        let mut applied = if exists {
            applied_rows(&mut conn).await?
        } else {
            HashMap::new()
        };
        let mut status: Vec<MigrationStatus> = self
            .migrations
            .iter()
            .map(|m| match applied.remove(&m.version) {
                None => MigrationStatus {
                    version: m.version,
                    name: m.name.clone(),
                    state: MigrationState::Pending,
                    applied_at: None,
                    duration_ms: None,
                },
                Some(row) => MigrationStatus {
                    version: m.version,
                    name: m.name.clone(),
                    state: if row.checksum == m.checksum() {
                        MigrationState::Applied
                    } else {
                        MigrationState::Modified
                    },
                    applied_at: Some(row.applied_at),
                    duration_ms: Some(row.duration_ms),
                },
            })
            .collect();
        status.extend(applied.into_values().map(|row| MigrationStatus {
            version: row.version,
            name: row.name,
            state: MigrationState::Unknown,
            applied_at: Some(row.applied_at),
            duration_ms: Some(row.duration_ms),
        }));
        status.sort_by_key(|s| s.version);
        Ok(status)
    }
}

/// A connection holding the migrators' advisory lock (waiting for it as long as it takes:
/// the other migrator is making progress). It asks again and again rather than waiting inside
/// one statement: a statement waiting is a transaction that `CREATE INDEX CONCURRENTLY` in the
/// other migrator's migration would wait for in turn, a deadlock.
async fn locked_connection(pool: &PgPool) -> Result<PoolConnection<Postgres>, MigrateError> {
    let mut conn = pool.acquire().await?;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if locked {
            return Ok(conn);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn unlock(conn: &mut PoolConnection<Postgres>) {
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut **conn)
        .await;
    if let Err(e) = unlocked {
        // A session lock goes with its connection: never hand this one back to the pool.
        tracing::warn!("cannot release the migration lock: {e}");
        conn.close_on_drop();
    }
}

async fn ensure_migrations_table(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
            version     bigint      PRIMARY KEY,
            name        text        NOT NULL,
            checksum    text        NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            duration_ms bigint      NOT NULL
        )"
    ))
    .execute(conn)
    .await?;
    Ok(())
}

async fn applied_rows(conn: &mut PgConnection) -> Result<HashMap<i64, AppliedRow>, sqlx::Error> {
    let rows: Vec<AppliedRow> = sqlx::query_as(&format!(
        "SELECT version, name, checksum, applied_at, duration_ms FROM {MIGRATIONS_TABLE}"
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.version, r)).collect())
}

/// Run a migration script and then its bookkeeping statement: together in one transaction,
/// or, for a script marked [`NO_TRANSACTION`], each on its own.
async fn apply<'q>(
    conn: &mut PgConnection,
    name: &str,
    script: &str,
    lock_timeout: Duration,
    bookkeeping: impl FnOnce() -> sqlx::query::Query<'q, Postgres, PgArguments>,
) -> Result<(), MigrateError> {
    if runs_in_transaction(script) {
        let mut tx = conn.begin().await?;
        execute_script(&mut tx, name, script, lock_timeout).await?;
        bookkeeping().execute(&mut *tx).await?;
        tx.commit().await?;
    } else {
        let ran = execute_statements(conn, name, script, lock_timeout, false).await;
        // The setting would outlive the migration on this pooled connection.
        sqlx::query("RESET lock_timeout")
            .execute(&mut *conn)
            .await?;
        ran?;
        bookkeeping().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Run `script` statement by statement on `conn` (inside the caller's transaction), with
/// `lock_timeout`, naming the failing statement, its line and column.
pub(crate) async fn execute_script(
    conn: &mut PgConnection,
    name: &str,
    script: &str,
    lock_timeout: Duration,
) -> Result<(), MigrateError> {
    execute_statements(conn, name, script, lock_timeout, true).await
}

async fn execute_statements(
    conn: &mut PgConnection,
    name: &str,
    script: &str,
    lock_timeout: Duration,
    transactional: bool,
) -> Result<(), MigrateError> {
    let scope = if transactional { "LOCAL " } else { "" };
    sqlx::query(&format!(
        "SET {scope}lock_timeout = {}",
        lock_timeout.as_millis()
    ))
    .execute(&mut *conn)
    .await?;
    for (index, statement) in split_statements(script).into_iter().enumerate() {
        let Err(error) = sqlx::raw_sql(statement.text).execute(&mut *conn).await else {
            continue;
        };
        let Some(db_error) = error
            .as_database_error()
            .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        else {
            return Err(error.into());
        };
        let offset_in_statement = match db_error.position() {
            Some(PgErrorPosition::Original(position)) => {
                char_position_to_offset(statement.text, position)
            }
            _ => 0,
        };
        let (line, column) = line_and_column(script, statement.offset + offset_in_statement);
        if db_error.code() == "55P03" {
            return Err(MigrateError::LockTimeout {
                name: name.to_owned(),
                statement: index + 1,
                line,
                seconds: lock_timeout.as_secs(),
            });
        }
        return Err(MigrateError::Failed {
            name: name.to_owned(),
            statement: index + 1,
            line,
            column,
            message: db_error.message().to_owned(),
            sql: statement.text.to_owned(),
            transactional,
        });
    }
    Ok(())
}
