//! Logical backups (`pg_dump`) and their atomic, verified restore.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sambung_sql::quote_ident;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgPool};

use crate::script::{self, Item, ReadError, ScriptReader};
use crate::tools::Tools;
use crate::{io_error, BackupError};

/// The two formats `pg_dump` writes for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// pg_dump's compressed archive (`.dump`), restored with pg_restore.
    Custom,
    /// Plain SQL (`.sql`), readable and restorable with psql.
    Sql,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Custom => "dump",
            Format::Sql => "sql",
        }
    }
}

/// Stored beside a backup as `<file>.manifest.json`: what the backup must restore to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub created_at: DateTime<Utc>,
    pub database: String,
    pub server_version: String,
    pub format: Format,
    /// The newest applied migration's version, if the database was migrated.
    pub schema_version: Option<i64>,
    /// Row count of every table of the schema, from the dump's own snapshot.
    pub tables: BTreeMap<String, i64>,
}

impl Manifest {
    pub fn path_for(backup: &Path) -> PathBuf {
        let mut name = backup.as_os_str().to_owned();
        name.push(".manifest.json");
        PathBuf::from(name)
    }

    pub fn read(backup: &Path) -> Result<Option<Manifest>, BackupError> {
        let path = Self::path_for(backup);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| BackupError::Damaged {
                    path,
                    detail: format!("unreadable manifest: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", path)(e)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    pub manifest: Manifest,
}

/// `backups/sambungchat-YYYYMMDD-HHMMSS.dump` (or `.sql`) under `dir`.
pub fn default_backup_path(dir: &Path, format: Format) -> PathBuf {
    dir.join("backups").join(format!(
        "sambungchat-{}.{}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        format.extension()
    ))
}

/// The major version of the server `pool` talks to.
pub async fn server_major(pool: &PgPool) -> Result<u32, BackupError> {
    let num: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(pool)
        .await?;
    Ok((num / 10_000) as u32)
}

/// The tables of the current schema, by name.
async fn table_names(conn: &mut sqlx::PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(conn)
    .await
}

/// Dump the database to `path`: written to a temporary file, verified, then renamed into place
/// with its manifest. `progress` hears the bytes written so far.
pub async fn backup(
    pool: &PgPool,
    tools: &Tools,
    path: &Path,
    format: Format,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let temp = tempfile::Builder::new()
        .prefix(".sambung-backup-")
        .tempfile_in(dir)
        .map_err(io_error("create a file in", dir))?;

    // The manifest and the dump see the same snapshot: counts match the dump exactly.
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *tx)
        .await?;
    let mut tables = BTreeMap::new();
    for table in table_names(&mut tx).await? {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}",
            sambung_sql::quote_ident(&table)
        ))
        .fetch_one(&mut *tx)
        .await?;
        tables.insert(table, rows);
    }
    let schema_version = sambung_schema::Migrator::applied_version(&mut tx).await?;
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *tx)
        .await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *tx)
        .await?;

    let format_flag = match format {
        Format::Custom => "--format=custom",
        Format::Sql => "--format=plain",
    };
    let mut child = tools
        .command("pg_dump")
        .args([
            format_flag,
            "--no-owner",
            "--no-privileges",
            "--no-comments",
            "--snapshot",
        ])
        .arg(&snapshot)
        .arg("--file")
        .arg(temp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| BackupError::Tool {
            tool: "pg_dump".into(),
            detail: e.to_string(),
        })?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(|e| BackupError::Tool { tool: "pg_dump".into(), detail: e.to_string() })?,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                progress(temp.path().metadata().map_or(0, |m| m.len()));
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    tx.rollback().await?;
    if !status.success() {
        return Err(BackupError::Tool {
            tool: "pg_dump".into(),
            detail: stderr.trim().to_owned(),
        });
    }
    temp.as_file()
        .sync_all()
        .map_err(io_error("write", temp.path()))?;
    verify_dump(tools, temp.path(), format).await?;

    let manifest = Manifest {
        created_at: Utc::now(),
        database,
        server_version,
        format,
        schema_version,
        tables,
    };
    let manifest_path = Manifest::path_for(path);
    let mut manifest_temp = tempfile::Builder::new()
        .prefix(".sambung-manifest-")
        .tempfile_in(dir)
        .map_err(io_error("create a file in", dir))?;
    manifest_temp
        .write_all(
            serde_json::to_string_pretty(&manifest)
                .expect("a manifest serialises")
                .as_bytes(),
        )
        .map_err(io_error("write", manifest_temp.path()))?;
    // The manifest first: a backup file in place always has its manifest.
    manifest_temp
        .persist(&manifest_path)
        .map_err(|e| io_error("write", &manifest_path)(e.error))?;
    let bytes = temp
        .as_file()
        .metadata()
        .map_err(io_error("read", temp.path()))?
        .len();
    temp.persist(path)
        .map_err(|e| io_error("write", path)(e.error))?;
    progress(bytes);
    Ok(BackupReport {
        path: path.to_owned(),
        bytes,
        elapsed: started.elapsed(),
        manifest,
    })
}

/// The trailer pg_dump writes last in a plain dump: without it the file is cut short.
const PLAIN_TRAILER: &str = "-- PostgreSQL database dump complete";

/// A dump reads back: a custom archive's table of contents lists, a plain dump is complete.
async fn verify_dump(tools: &Tools, path: &Path, format: Format) -> Result<(), BackupError> {
    let damaged = |detail: String| BackupError::Damaged {
        path: path.to_owned(),
        detail,
    };
    match format {
        Format::Custom => {
            tools
                .run("pg_restore", &[OsStr::new("--list"), path.as_os_str()])
                .await
                .map_err(|e| damaged(e.to_string()))?;
        }
        Format::Sql => {
            let mut file = std::fs::File::open(path).map_err(io_error("read", path))?;
            let len = file.metadata().map_err(io_error("read", path))?.len();
            file.seek(SeekFrom::Start(len.saturating_sub(256)))
                .map_err(io_error("read", path))?;
            let mut tail = String::new();
            file.read_to_string(&mut tail)
                .map_err(|e| damaged(e.to_string()))?;
            if !tail.contains(PLAIN_TRAILER) {
                return Err(damaged(
                    "the dump's completion trailer is missing (the file was cut short)".into(),
                ));
            }
        }
    }
    Ok(())
}

/// What a backup file is, from its first bytes.
pub fn detect_format(path: &Path) -> Result<Format, BackupError> {
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path).map_err(io_error("read", path))?;
    let n = file.read(&mut head).map_err(io_error("read", path))?;
    let head = &head[..n];
    if head.starts_with(b"PGDMP") {
        Ok(Format::Custom)
    } else if head.starts_with(b"--\n-- PostgreSQL database dump") {
        Ok(Format::Sql)
    } else {
        Err(BackupError::NotABackup {
            path: path.to_owned(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub format: Format,
    /// Whether the row counts were checked against a manifest.
    pub verified: bool,
    pub tables: BTreeMap<String, i64>,
    pub elapsed: Duration,
}

/// How a restore goes.
#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// Restore over a database that holds data, or from a backup of a newer schema.
    pub force: bool,
    /// The newest schema version this `sambung` knows.
    pub known_schema_version: i64,
    /// The longest one statement of the script may run (a file could hold `pg_sleep`, or
    /// switch the timeout off: it is set again after every statement).
    pub statement_timeout: Duration,
}

/// The default of [`RestoreOptions::statement_timeout`]: generous for a large table's COPY,
/// finite for a file that would hold the transaction open forever.
pub const RESTORE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Restore `path` into the database: everything in its schema is replaced, in one
/// transaction, and the row counts are checked against the manifest inside that transaction,
/// so any failure leaves the database exactly as it was.
pub async fn restore(
    pool: &PgPool,
    tools: &Tools,
    path: &Path,
    options: RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let RestoreOptions {
        force,
        known_schema_version,
        statement_timeout,
    } = options;
    let started = Instant::now();
    let format = detect_format(path)?;
    let manifest = Manifest::read(path)?;
    if let Some(version) = manifest.as_ref().and_then(|m| m.schema_version) {
        if version > known_schema_version && !force {
            return Err(BackupError::NewerSchema {
                backup: version,
                known: known_schema_version,
            });
        }
    }
    let mut conn = pool.acquire().await?;
    if !force {
        // The migrations table alone (a freshly migrated database) is not data to protect.
        for table in table_names(&mut conn)
            .await?
            .into_iter()
            .filter(|t| t != sambung_schema::MIGRATIONS_TABLE)
        {
            let has_rows: bool = sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM {})",
                sambung_sql::quote_ident(&table)
            ))
            .fetch_one(&mut *conn)
            .await?;
            if has_rows {
                let database: String = sqlx::query_scalar("SELECT current_database()::text")
                    .fetch_one(&mut *conn)
                    .await?;
                return Err(BackupError::NotEmpty { database, table });
            }
        }
    }

    let work = tempfile::tempdir().map_err(io_error("create", std::env::temp_dir()))?;
    // A custom archive becomes SQL first: a damaged archive fails here, before any change, and
    // what it holds is checked like any plain file.
    let sql_path = match format {
        Format::Sql => {
            verify_dump(tools, path, format).await?;
            path.to_owned()
        }
        Format::Custom => {
            let out = work.path().join("restore.sql");
            tools
                .run(
                    "pg_restore",
                    &[
                        OsStr::new("--no-owner"),
                        OsStr::new("--no-privileges"),
                        OsStr::new("--file"),
                        out.as_os_str(),
                        path.as_os_str(),
                    ],
                )
                .await
                .map_err(|e| BackupError::Damaged {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })?;
            out
        }
    };
    // All of the script is read once before anything runs: a refusal changes nothing.
    let mut reader = open_script(&sql_path)?;
    while read_item(&mut reader, &sql_path, path)?.is_some() {}

    // One connection of its own (the script changes its settings) and one transaction: the
    // old objects go, the script runs, the counts are checked, and only then does it commit.
    // Killed midway, the connection closes and PostgreSQL rolls everything back.
    let objects = sambung_schema::objects_to_drop(&mut conn).await?;
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await?;
    drop(conn);
    let mut own = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
    let failed = |detail: String| BackupError::RestoreFailed { detail };
    let mut tx = own.begin().await?;
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await?;
    let limit = format!(
        "SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis().max(1)
    );
    sqlx::raw_sql(&limit).execute(&mut *tx).await?;
    for object in &objects {
        // Extensions are not schema objects by name; everything else is qualified.
        let name = if object.kind == "extension" {
            object.name.clone()
        } else {
            format!("{}.{}", quote_ident(&schema), object.name)
        };
        sqlx::query(&format!(
            "DROP {} IF EXISTS {name} CASCADE",
            object.kind.to_uppercase()
        ))
        .execute(&mut *tx)
        .await
        .map_err(|e| failed(format!("dropping {name}: {e}")))?;
    }
    let mut reader = open_script(&sql_path)?;
    while let Some(item) = read_item(&mut reader, &sql_path, path)? {
        let at = |line: usize| {
            move |e: sqlx::Error| {
                failed(format!(
                    "line {line} of the script: {}",
                    database_message(&e)
                ))
            }
        };
        match item {
            // The extended protocol: PostgreSQL takes exactly one statement per message, so
            // nothing can hide behind a statement the reader saw.
            Item::Statement { text, line } => {
                // A newer pg_dump sets parameters an older server lacks (18's
                // `transaction_timeout` on 15 and 16): their defaults are what they set anyway.
                if let Some(parameter) = script::set_parameter(&text) {
                    let known: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = $1)",
                    )
                    .bind(&parameter)
                    .fetch_one(&mut *tx)
                    .await?;
                    if !known {
                        tracing::info!(
                            parameter,
                            line,
                            "skipped a setting this server does not have"
                        );
                        continue;
                    }
                }
                sqlx::query(&text)
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(at(line))?;
                // Whatever the statement set (`SET statement_timeout = 0`, `RESET ALL`,
                // `set_config` under any spelling), the next one runs under the limit.
                sqlx::raw_sql(&limit).execute(&mut *tx).await?;
            }
            Item::CopyFromStdin { text, line } => {
                let mut copy = tx.copy_in_raw(&text).await.map_err(at(line))?;
                loop {
                    match read_item(&mut reader, &sql_path, path)? {
                        Some(Item::CopyData(rows)) => copy.send(rows).await.map_err(at(line))?,
                        Some(Item::CopyEnd) => break,
                        _ => unreachable!("the reader ends every COPY with CopyEnd"),
                    };
                }
                copy.finish().await.map_err(at(line))?;
            }
            Item::CopyData(_) | Item::CopyEnd => unreachable!("only after CopyFromStdin"),
        }
    }
    if let Some(manifest) = &manifest {
        for (table, expected) in &manifest.tables {
            // Names from the manifest are quoted identifiers, never spliced into code.
            let rows: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {}",
                sambung_sql::qualified(&schema, table)
            ))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                failed(format!(
                    "restore verification: table {table:?} of the manifest: {}",
                    database_message(&e)
                ))
            })?;
            if rows != *expected {
                return Err(failed(format!(
                    "restore verification: table {table} has {rows} rows, the manifest says {expected}"
                )));
            }
        }
    }
    tx.commit().await?;
    let _ = own.close().await;

    let mut conn = pool.acquire().await?;
    let mut tables = BTreeMap::new();
    for table in table_names(&mut conn).await? {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}",
            sambung_sql::quote_ident(&table)
        ))
        .fetch_one(&mut *conn)
        .await?;
        tables.insert(table, rows);
    }
    Ok(RestoreReport {
        format,
        verified: manifest.is_some(),
        tables,
        elapsed: started.elapsed(),
    })
}

fn open_script(
    path: &Path,
) -> Result<ScriptReader<std::io::BufReader<std::fs::File>>, BackupError> {
    let file = std::fs::File::open(path).map_err(io_error("read", path))?;
    Ok(ScriptReader::new(std::io::BufReader::with_capacity(
        1 << 16,
        file,
    )))
}

/// The next item of the script at `script` (made from the backup at `backup`).
fn read_item(
    reader: &mut ScriptReader<std::io::BufReader<std::fs::File>>,
    script: &Path,
    backup: &Path,
) -> Result<Option<Item>, BackupError> {
    reader.next_item().map_err(|e| match e {
        ReadError::Refused(refusal) => BackupError::Refused {
            path: backup.to_owned(),
            line: refusal.line,
            reason: refusal.reason,
        },
        ReadError::Io(e) => io_error("read", script)(e),
    })
}

/// PostgreSQL's own words for a failed statement (with its detail), else sqlx's.
fn database_message(error: &sqlx::Error) -> String {
    match error.as_database_error() {
        Some(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match pg.and_then(|pg| pg.detail()) {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_owned(),
            }
        }
        None => error.to_string(),
    }
}
