//! `sambung db backup` and `sambung db restore`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sambung_backup::{Format, Tools};
use sambung_config::Config;
use sambung_pg::{PgBinaries, SearchPlaces};
use sqlx::PgPool;

use super::cluster::managed_cluster;
use super::connect;
use crate::cli::{BackupArgs, BackupFormat, RestoreArgs};

/// The client tools for the configured server: the managed cluster's own when they fit, else
/// the newest found; says which.
async fn tools(config: &Config, pool: &PgPool) -> anyhow::Result<Tools> {
    let server = sambung_backup::server_major(pool).await?;
    let server_binaries = match config.database_url {
        None => Some(managed_cluster(config)?.binaries().clone()),
        Some(_) => config
            .pg_bin
            .as_deref()
            .map(|dir| PgBinaries::discover(Some(dir), None))
            .transpose()?,
    };
    let places = match &config.pg_search {
        Some(dirs) => SearchPlaces::only(dirs, Some(&config.pg_cache)),
        None => SearchPlaces::of_this_machine(Some(&config.pg_cache)),
    };
    let binaries = PgBinaries::client_tools(server, server_binaries.as_ref(), &places)?;
    eprintln!(
        "Using the client tools of PostgreSQL {} ({}) for a PostgreSQL {server} server",
        binaries.major(),
        binaries.dir().display()
    );
    Ok(Tools::new(
        &binaries,
        server,
        super::cluster::database_url(config)?.libpq_env(),
    )?)
}

/// Physical backups are of the managed cluster's files.
fn managed_only(config: &Config) -> anyhow::Result<sambung_pg::Cluster> {
    if let Some(url) = &config.database_url {
        let managed = super::cluster::managed_database_url(config).ok();
        if managed.is_none_or(|managed| url.as_str() != managed.as_str()) {
            anyhow::bail!("physical backups copy the managed cluster's files; DATABASE_URL points elsewhere ({})\nhint: use a logical backup (without --physical), or unset DATABASE_URL", url.redacted());
        }
    }
    Ok(managed_cluster(config)?)
}

pub async fn backup(config: &Config, args: &BackupArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.physical {
        let cluster = managed_only(config)?;
        let pool = connect(config).await?;
        let tools = tools(config, &pool).await?;
        pool.close().await;
        sambung_backup::physical_backup(&cluster, &tools, dir).await?;
        println!("Physical backup written to {} and verified. Restore it with `sambung db restore --physical {}`.", dir.display(), dir.display());
        return Ok(());
    }
    let format = match args.format {
        BackupFormat::Custom => Format::Custom,
        BackupFormat::Sql => Format::Sql,
    };
    let path = match &args.path {
        Some(path) => path.clone(),
        None => sambung_backup::default_backup_path(&std::env::current_dir()?, format),
    };
    let pool = connect(config).await?;
    let tools = tools(config, &pool).await?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} dumping: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let report = sambung_backup::backup(&pool, &tools, &path, format, &|bytes| {
        spinner.set_message(human_bytes(bytes))
    })
    .await;
    spinner.finish_and_clear();
    let report = report?;
    pool.close().await;
    let rows: i64 = report.manifest.tables.values().sum();
    println!(
        "Backed up {} tables ({rows} rows) to {} ({}, {:.1} s); manifest: {}",
        report.manifest.tables.len(),
        report.path.display(),
        human_bytes(report.bytes),
        report.elapsed.as_secs_f64(),
        sambung_backup::Manifest::path_for(&report.path).display()
    );
    Ok(())
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.physical {
        let cluster = managed_only(config)?;
        sambung_backup::physical_restore(&cluster, dir, args.force).await?;
        println!(
            "Restored the physical backup {} into {} and started it.",
            dir.display(),
            cluster.pgdata().display()
        );
        return Ok(());
    }
    let path = args
        .path
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("give the backup file to restore"))?;
    let pool = connect(config).await?;
    let tools = tools(config, &pool).await?;
    let options = sambung_backup::RestoreOptions {
        force: args.force,
        known_schema_version: sambung_schema::Migrator::embedded().latest_version(),
        statement_timeout: std::time::Duration::from_secs(args.statement_timeout),
    };
    let report = sambung_backup::restore(&pool, &tools, path, options).await?;
    pool.close().await;
    let rows: i64 = report.tables.values().sum();
    println!(
        "Restored {} ({} tables, {rows} rows) in {:.1} s; {}",
        path.display(),
        report.tables.len(),
        report.elapsed.as_secs_f64(),
        if report.verified {
            "row counts match the manifest"
        } else {
            "no manifest found: row counts not verified"
        }
    );
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
