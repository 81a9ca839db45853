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
    let url = server.public_url().to_owned();
    println!("SambungChat is serving at {url}");
    println!();
    let admins = sambung_db::admin::count_admins(&pool).await?;
    let models = sambung_db::models::list_instance_models(&pool).await?.len();
    println!("Next:");
    if admins == 0 {
        println!(
            "  1. Open {url} and create your account: the first account is this instance's admin."
        );
        println!("  2. The setup page then asks for a connection (OpenAI-compatible with a key, Anthropic,");
        println!(
            "     Gemini, or a local Ollama) and its models; everyone chats on them without a key."
        );
        println!("  3. Others sign up, and you approve them under Admin (or change who may sign up there).");
    } else if models == 0 {
        println!(
            "  Sign in as an admin at {url}: Admin, Connections adds the models everyone uses."
        );
    } else {
        println!("  Open {url} and sign in.");
    }
    let demo = seed::DEMO_EMAIL;
    if sambung_db::auth::check_password(&pool, demo, seed::DEMO_PASSWORD)
        .await?
        .is_some()
    {
        println!(
            "  To look around first: the sample account {demo}, password {} (an ordinary user).",
            seed::DEMO_PASSWORD
        );
    }
    println!("  Forgot a password and no mail server? `sambung admin reset-password EMAIL` prints a link.");
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
