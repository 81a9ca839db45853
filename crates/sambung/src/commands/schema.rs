//! `sambung db migrate|rollback|status|schema|drop`: the schema and its migrations.

use std::io::IsTerminal;

use sambung_config::Config;
use sambung_schema::{MigrationState, Migrator};
use sqlx::PgPool;

use super::connect;
use crate::cli::{DropArgs, RollbackArgs, SchemaArgs, StatusArgs};

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    apply_migrations(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Apply pending migrations and say what happened (shared with `sambung up`).
pub async fn apply_migrations(pool: &PgPool) -> anyhow::Result<()> {
    let migrator = Migrator::embedded();
    let applied = migrator.migrate(pool).await?;
    for run in &applied {
        println!("Applied {} ({} ms)", run.name, run.duration.as_millis());
    }
    if applied.is_empty() {
        println!(
            "The schema is up to date ({} migrations applied).",
            migrator.migrations().len()
        );
    }
    Ok(())
}

pub async fn rollback(config: &Config, args: &RollbackArgs) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    let undone = Migrator::embedded()
        .rollback(&pool, args.steps as usize)
        .await?;
    pool.close().await;
    for run in &undone {
        println!("Rolled back {} ({} ms)", run.name, run.duration.as_millis());
    }
    if undone.is_empty() {
        println!("Nothing to roll back: no migration is applied.");
    }
    Ok(())
}

pub async fn status(config: &Config, args: &StatusArgs) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    let migrator = Migrator::embedded();
    let status = migrator.status(&pool).await?;
    let server: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&pool)
        .await?;
    // The managed cluster's binaries and place in replication, when it is the database in use.
    let managed = match config.database_url {
        None => super::cluster::managed_cluster(config).ok(),
        Some(_) => None,
    };
    let binaries = managed
        .as_ref()
        .map(|c| c.binaries().dir().display().to_string());
    let replication = match &managed {
        Some(cluster) => cluster.replication().await.ok(),
        None => None,
    };
    let admin = super::cluster::database_url(config)?.connect_options();
    let drift = if replication.as_ref().is_some_and(|r| r.role == "standby") {
        Err("a standby replays its primary's schema: check the primary".to_owned())
    } else {
        sambung_schema::drift(&pool, &admin, &migrator, &status)
            .await
            .map_err(|e| e.to_string())
    };
    pool.close().await;
    if args.json {
        let drift = match &drift {
            Ok(differences) => serde_json::json!({ "checked": true, "differences": differences }),
            Err(reason) => serde_json::json!({ "checked": false, "reason": reason }),
        };
        let out = serde_json::json!({
            "server": { "version": server, "binaries": binaries },
            "replication": replication,
            "migrations": status,
            "drift": drift,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match &binaries {
        Some(dir) => println!("Server: {server} (managed; binaries in {dir})"),
        None => println!("Server: {server}"),
    }
    if let Some(replication) = &replication {
        match replication.role {
            "standby" => println!(
                "Replication: standby, replay {}{}",
                replication
                    .replay_lag_seconds
                    .map_or("not started yet".to_owned(), |s| format!("{s:.1} s behind")),
                if replication.replay_paused {
                    ", PAUSED"
                } else {
                    ""
                }
            ),
            _ if replication.slots.is_empty() => println!("Replication: primary, no standby"),
            _ => {
                for slot in &replication.slots {
                    println!(
                        "Replication: primary, slot {} {} (keeps {} bytes of WAL for it)",
                        slot.name,
                        if slot.active { "streaming" } else { "INACTIVE" },
                        slot.retained_bytes.unwrap_or(0)
                    );
                }
            }
        }
    }
    let width = status.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for migration in &status {
        let state = match migration.state {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Modified => "MODIFIED since applied",
            MigrationState::Unknown => "UNKNOWN to this sambung",
        };
        let when = migration
            .applied_at
            .map(|t| format!("  {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        println!("{:width$}  {state}{when}", migration.name);
    }
    let count = |state| status.iter().filter(|s| s.state == state).count();
    println!(
        "{} applied, {} pending, {} modified, {} unknown",
        count(MigrationState::Applied),
        count(MigrationState::Pending),
        count(MigrationState::Modified),
        count(MigrationState::Unknown)
    );
    if count(MigrationState::Pending) > 0 {
        println!("Run `sambung db migrate` to apply the pending migrations.");
    }
    match drift {
        Ok(differences) if differences.is_empty() => {
            println!("No drift: the live schema is exactly what the applied migrations build.")
        }
        Ok(differences) => {
            println!("DRIFT: the live schema differs from what the applied migrations build (- expected only, + live only, ~ different):");
            for line in differences {
                println!("  {line}");
            }
        }
        Err(reason) => println!("Drift not checked: {reason}"),
    }
    Ok(())
}

pub async fn show(config: &Config, args: &SchemaArgs) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    let schema = sambung_schema::introspect(&mut *pool.acquire().await?).await?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&schema)?);
    } else if args.mermaid {
        print!("{}", sambung_schema::to_mermaid(&schema));
    } else {
        print!("{}", sambung_schema::to_text(&schema));
    }
    Ok(())
}

pub async fn drop(config: &Config, args: &DropArgs) -> anyhow::Result<()> {
    let url = super::cluster::database_url(config)?;
    let database = url
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_owned();
    let pool = connect(config).await?;
    let mut conn = pool.acquire().await?;
    let objects = sambung_schema::objects_to_drop(&mut conn).await?;
    if objects.is_empty() {
        println!("Nothing to drop: the schema of {database:?} is empty.");
        return Ok(());
    }
    if !args.force {
        confirm_drop(&database, &url.redacted(), &objects)?;
    }
    let dropped = sambung_schema::drop_all(&mut conn).await?;
    println!("Dropped {} objects from {database:?}.", dropped.len());
    Ok(())
}

/// Ask the user to type the database name; refuses when there is no terminal to ask on.
fn confirm_drop(
    database: &str,
    url: &str,
    objects: &[sambung_schema::SchemaObject],
) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to drop {} objects from {database:?} without confirmation: no terminal to ask on (pass --force to drop anyway)",
            objects.len()
        );
    }
    println!("This drops every object of the schema in {url}, and all their data:");
    for object in objects {
        println!("  {} {}", object.kind, object.name);
    }
    if super::ask(&format!("Type the database name ({database}) to confirm: "))? != database {
        anyhow::bail!("confirmation did not match {database:?}; nothing was dropped");
    }
    Ok(())
}
