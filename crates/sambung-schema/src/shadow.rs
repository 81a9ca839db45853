//! Scratch ("shadow") databases: made on the configured server to apply migrations or schema
//! files and read the resulting catalog, and always removed afterwards, also when the work
//! fails or is interrupted (their `Drop` removes them if `remove` was never reached).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use sambung_sql::quote_ident;

/// Every scratch database's name starts with this, so a leftover is recognisable.
pub const SCRATCH_PREFIX: &str = "sambung_scratch_";

/// Why a scratch database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("cannot create a scratch database on the server: {0}")]
    CannotCreate(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A scratch database and a small pool on it.
pub struct ScratchDb {
    name: String,
    admin: PgConnectOptions,
    pool: PgPool,
    removed: bool,
}

impl ScratchDb {
    /// Create an empty scratch database next to the one `admin` connects to.
    pub async fn create(
        admin: &PgConnectOptions,
        purpose: &str,
    ) -> Result<ScratchDb, ScratchError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{SCRATCH_PREFIX}{}_{}_{purpose}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect_with(admin).await?;
        // The guard exists before the database does: an interrupted CREATE is cleaned up too.
        let mut guard = ScratchDb {
            pool: PgPoolOptions::new()
                .max_connections(2)
                .connect_lazy_with(admin.clone().database(&name)),
            name,
            admin: admin.clone(),
            removed: false,
        };
        match conn
            .execute(format!("CREATE DATABASE {}", quote_ident(&guard.name)).as_str())
            .await
        {
            Ok(_) => {}
            // insufficient_privilege
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                guard.removed = true;
                return Err(ScratchError::CannotCreate(format!(
                    "{} (the user needs the CREATEDB privilege: ALTER ROLE … CREATEDB)",
                    e.message()
                )));
            }
            Err(e) => {
                guard.removed = true;
                return Err(e.into());
            }
        }
        let _ = conn.close().await;
        Ok(guard)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop the database now.
    pub async fn remove(mut self) -> Result<(), sqlx::Error> {
        self.removed = true;
        self.pool.close().await;
        drop_database(&self.admin, &self.name).await
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // Not removed on the normal path (an error, Ctrl-C).
        if !drop_database_blocking(&self.admin, &self.name) {
            tracing::warn!(database = %self.name, "could not remove a scratch database");
        }
    }
}

/// Drop a database from synchronous code (a `Drop`), on a thread with its own runtime, since
/// the caller may be inside an async runtime that is shutting down. Returns whether it worked.
pub fn drop_database_blocking(admin: &PgConnectOptions, name: &str) -> bool {
    let (admin, name) = (admin.clone(), name.to_owned());
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(drop_database(&admin, &name))
            .map_err(std::io::Error::other)
    })
    .join();
    matches!(dropped, Ok(Ok(())))
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(admin).await?;
    // Interrupted during its CREATE DATABASE, the server finishes creating it anyway: wait for
    // that before dropping, or the drop comes first and the database outlives us.
    for _ in 0..200 {
        let creating: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE pid <> pg_backend_pid() AND state = 'active'
                               AND query ILIKE 'CREATE DATABASE%' AND strpos(query, $1) > 0)",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
        if !creating {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)).as_str())
        .await?;
    conn.close().await
}

/// Scratch databases left by this server's earlier runs (for tests and diagnostics).
pub async fn leftover_scratch_databases(
    conn: &mut PgConnection,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1",
    )
    .bind(SCRATCH_PREFIX)
    .fetch_all(conn)
    .await
}
