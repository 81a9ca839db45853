//! `sambung up`: the one command a newcomer runs.

use sambung_config::Config;
use sambung_db::seed;

use crate::cli::UpArgs;

use super::cluster;

pub async fn run(config: &Config, args: &UpArgs) -> anyhow::Result<()> {
    let managed = config.database_url.is_none();
    if managed {
        let cluster = cluster::managed_cluster_to_start(config).await?;
        cluster::start_cluster(config, &cluster).await?;
    }
    let url = super::cluster::database_url(config)?;
    let pool = super::connect(config).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!("Connected to PostgreSQL {version} at {}", url.address());
    super::schema::apply_migrations(&pool).await?;
    // First run: an empty database gets the sample data to look around with.
    if !sambung_db::seed::has_users(&pool).await? {
        super::seed::seed_sample_data(&pool).await?;
    }
    println!();
    println!("SambungChat's database is ready. Connect with:");
    // The managed cluster's password is its operator's (from the cluster's secrets, which only
    // they may read); an external URL's is not shown.
    let shown = if managed {
        url.as_str().to_owned()
    } else {
        url.redacted()
    };
    println!("  psql \"{shown}\"");
    if managed {
        println!("Stop it with `sambung db stop`; its log: `sambung db logs`.");
    }
    if args.no_serve {
        pool.close().await;
        return Ok(());
    }
    println!();
    let server = super::serve::bind(config, &pool, "127.0.0.1", args.port, true).await?;
    println!("SambungChat is serving at {}", server.public_url());
    let demo = seed::DEMO_EMAIL;
    if sambung_db::auth::check_password(&pool, demo, seed::DEMO_PASSWORD)
        .await?
        .is_some()
    {
        println!("Sign in as {demo} with password {}", seed::DEMO_PASSWORD);
    }
    let served = super::serve::until_interrupted(server.serve(super::serve::stopped()));
    if args.no_studio {
        return served.await;
    }
    println!();
    let settings = sambung_studio::StudioSettings {
        port: args.studio_port,
        ..Default::default()
    };
    tokio::try_join!(served, super::studio::serve(config, &settings))?;
    Ok(())
}
