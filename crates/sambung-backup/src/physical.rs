//! Physical backups of the managed cluster: `pg_basebackup` while it runs (the design's
//! Docker volume backup, made safe), and the way back: a new data directory from a backup.

use std::ffi::OsStr;
use std::path::Path;

use sambung_pg::{Cluster, OsUser};

use crate::tools::Tools;
use crate::{io_error, BackupError};

/// Copy the running managed cluster into `dir` (new or empty) with pg_basebackup, WAL
/// included, then check it with pg_verifybackup. It connects as the cluster's replication role
/// through the socket: the application role has no right to copy the cluster.
pub async fn physical_backup(
    cluster: &Cluster,
    tools: &Tools,
    dir: &Path,
) -> Result<(), BackupError> {
    if cluster.running_pid().is_none() {
        return Err(BackupError::Physical(
            "the managed cluster is not running: start it with `sambung db start`".into(),
        ));
    }
    // A backup's files are the server's own format: pg_verifybackup of another version reads
    // pg_control with another layout and rejects it (18's tools on 17 say "CRC is incorrect").
    let server = cluster.binaries().major();
    if tools.major() != server {
        return Err(BackupError::Physical(format!(
            "a physical backup of PostgreSQL {server} needs pg_basebackup and pg_verifybackup \
             {server}, the cluster's own version; the client tools found are version {}: \
             install PostgreSQL {server}'s client tools, or make a logical backup (without \
             --physical)",
            tools.major()
        )));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io_error("read", dir))?
            .next()
            .is_some()
    {
        return Err(BackupError::Physical(format!(
            "{} is not empty; a physical backup needs a new directory",
            dir.display()
        )));
    }
    tools
        .with_env(cluster.replication_env()?)
        .run(
            "pg_basebackup",
            &[
                OsStr::new("--pgdata"),
                dir.as_os_str(),
                OsStr::new("--format=plain"),
                OsStr::new("--wal-method=stream"),
                OsStr::new("--checkpoint=fast"),
                OsStr::new("--no-password"),
            ],
        )
        .await?;
    tools
        .run(
            "pg_verifybackup",
            &[OsStr::new("--no-parse-wal"), dir.as_os_str()],
        )
        .await
        .map_err(|e| {
            BackupError::Physical(format!(
                "the physical backup in {} does not verify: {e}",
                dir.display()
            ))
        })?;
    Ok(())
}

/// Make the backup in `dir` the managed cluster's data directory and start it. The cluster
/// must be stopped. A data directory already there is kept aside (never deleted) and only
/// replaced with `force`; if the restored cluster does not start, it is put back.
pub async fn physical_restore(
    cluster: &Cluster,
    dir: &Path,
    force: bool,
) -> Result<(), BackupError> {
    if cluster.running_pid().is_some() {
        return Err(BackupError::Physical(
            "the managed cluster is running: stop it first with `sambung db stop`".into(),
        ));
    }
    if !dir.join("PG_VERSION").is_file() || !dir.join("backup_manifest").is_file() {
        return Err(BackupError::Physical(format!(
            "{} is not a physical backup (no PG_VERSION or backup_manifest)",
            dir.display()
        )));
    }
    let pgdata = cluster.pgdata();
    let existing = pgdata.exists();
    if existing && !force {
        return Err(BackupError::Physical(format!(
            "{} holds a cluster already; pass --force to replace it (it is kept aside, not deleted)",
            pgdata.display()
        )));
    }
    let data_dir = pgdata.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(data_dir).map_err(io_error("create", data_dir))?;
    let incoming = data_dir.join("pgdata.restoring");
    if incoming.exists() {
        std::fs::remove_dir_all(&incoming).map_err(io_error("remove", &incoming))?;
    }
    copy_tree(dir, &incoming, cluster.run_as())?;
    std::fs::set_permissions(
        &incoming,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(io_error("set permissions on", &incoming))?;
    let aside = data_dir.join(format!(
        "pgdata.replaced-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    if existing {
        std::fs::rename(&pgdata, &aside).map_err(io_error("move aside", &pgdata))?;
    }
    std::fs::rename(&incoming, &pgdata).map_err(io_error("move into place", &incoming))?;
    if let Err(e) = cluster.start().await {
        // Put everything back as it was.
        let _ = std::fs::rename(&pgdata, &incoming);
        if existing {
            let _ = std::fs::rename(&aside, &pgdata);
        }
        return Err(e.into());
    }
    if existing {
        tracing::info!(kept = %aside.display(), "the replaced data directory is kept");
    }
    Ok(())
}

/// Copy a directory tree, giving it to the server's user when we run as root.
fn copy_tree(from: &Path, to: &Path, owner: Option<&OsUser>) -> Result<(), BackupError> {
    std::fs::create_dir(to).map_err(io_error("create", to))?;
    if let Some(user) = owner {
        user.chown(to)?;
    }
    for entry in std::fs::read_dir(from).map_err(io_error("read", from))? {
        let entry = entry.map_err(io_error("read", from))?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io_error("read", entry.path()))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, owner)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(io_error("copy", entry.path()))?;
            if let Some(user) = owner {
                user.chown(&target)?;
            }
        }
    }
    Ok(())
}
