//! Backups that never lose data. `backup` runs `pg_dump` (custom or plain format) into a
//! temporary file, verifies it reads back, and only then renames it into place, with a manifest
//! of every table's row count and the schema version taken from the same snapshot. `restore`
//! runs the whole restore (dropping what is there, loading the backup, checking the row counts
//! against the manifest) in one transaction, so a bad file leaves the database as it was.
//! `physical_backup` / `physical_restore` copy the managed cluster's files with
//! `pg_basebackup` (the design's Docker volume backup, done safely while the server runs).

mod logical;
mod physical;
mod script;
mod tools;

use std::path::PathBuf;

pub use logical::{
    backup, default_backup_path, detect_format, restore, server_major, BackupReport, Format,
    Manifest, RestoreOptions, RestoreReport, RESTORE_STATEMENT_TIMEOUT,
};
pub use physical::{physical_backup, physical_restore};
pub use tools::Tools;

/// What can go wrong backing up or restoring.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{tool} is version {found}, older than the server ({server}): it cannot dump it")]
    ToolTooOld {
        tool: String,
        found: u32,
        server: u32,
    },
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("{} is not a SambungChat backup (neither a pg_dump custom archive nor a plain SQL dump)", path.display())]
    NotABackup { path: PathBuf },
    #[error("{} is damaged or incomplete: {detail}", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("the database {database:?} already holds data (table {table} has rows)")]
    NotEmpty { database: String, table: String },
    #[error(
        "the backup was made by schema version {backup}, newer than this sambung knows ({known})"
    )]
    NewerSchema { backup: i64, known: i64 },
    #[error("{} is refused before anything ran: line {line}: {reason}", path.display())]
    Refused {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("the restore failed and was rolled back; the database is as it was: {detail}")]
    RestoreFailed { detail: String },
    #[error("{0}")]
    Physical(String),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cluster(#[from] sambung_pg::ClusterError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl sambung_config::Hint for BackupError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            BackupError::ToolTooOld { .. } => "install the PostgreSQL client tools of the server's version or newer, and point SAMBUNG_PG_BIN at them".into(),
            BackupError::NotEmpty { .. } => "restore into an empty database, or pass --force to replace everything in it".into(),
            BackupError::NewerSchema { .. } => "restore with the newer sambung, or pass --force".into(),
            BackupError::Damaged { .. } | BackupError::NotABackup { .. } => "nothing was changed; use another backup file".into(),
            BackupError::Refused { .. } => "nothing was changed; a pg_dump of a database holds none of this: restore only backups you trust".into(),
            _ => return None,
        })
    }
}

pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.into();
    move |source| BackupError::Io {
        action,
        path,
        source,
    }
}
