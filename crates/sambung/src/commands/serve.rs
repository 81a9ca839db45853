//! `sambung serve`: the HTTP API, sign-in and the web UI until Ctrl-C.

use std::time::Duration;

use anyhow::bail;
use sambung_config::Config;
use sambung_server::{Server, ServerSettings};
use sqlx::PgPool;

use crate::cli::ServeArgs;

pub async fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let pool = super::connect(config).await?;
    super::schema::apply_migrations(&pool).await?;
    let server = bind(config, &pool, &args.host, args.port, false).await?;
    println!("SambungChat is serving at {}", server.public_url());
    println!("Ctrl-C stops it.");
    until_interrupted(server.serve(stopped())).await
}

/// The server's settings: first-run secrets filled in (generated into `SAMBUNG_DATA_DIR`
/// when unset), never a silent new `ENCRYPTION_KEY` for a database holding keys sealed
/// under another.
pub async fn bind(
    config: &Config,
    pool: &PgPool,
    host: &str,
    port: u16,
    allow_local_ollama: bool,
) -> anyhow::Result<Server> {
    if config.lacks_encryption_key()? {
        let sealed: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM api_keys)
                  + (SELECT count(*) FROM connections WHERE encrypted_key IS NOT NULL)",
        )
        .fetch_one(pool)
        .await?;
        if sealed > 0 {
            bail!(
                "the database holds {sealed} API keys sealed under an ENCRYPTION_KEY this server does not have \
                 (it is not set and {} has none); a new key would make them unreadable",
                config.secrets_file().display()
            );
        }
    }
    let (config, secrets) = config.clone().with_first_run_secrets()?;
    if !secrets.generated.is_empty() {
        println!(
            "Generated {} into {} (keep it private, back it up)",
            secrets.generated.join(" and "),
            secrets.path.display()
        );
    }
    let auth_secret = config.auth_secret.clone().expect("filled in above");
    let mut settings = ServerSettings::from_config(&config, auth_secret, host, port)?;
    if let Some(json) = &config.oidc_providers {
        settings.identity_providers = sambung_sso::parse_providers(json)?;
    }
    if allow_local_ollama {
        // `up` is a local set-up: a model on this machine's Ollama should just work.
        settings.ai_allowed_hosts.push("127.0.0.1:11434".into());
        settings.ai_allowed_hosts.push("localhost:11434".into());
        if let Some(models) = local_ollama().await {
            match models.is_empty() {
                true => println!(
                    "Found Ollama at {OLLAMA}, without models yet (`ollama pull llama3.2` gets one)"
                ),
                false => println!("Found Ollama at {OLLAMA} with {}", models.join(", ")),
            }
            settings.detected_ollama = Some(OLLAMA.into());
        }
    }
    Ok(Server::bind(pool.clone(), &settings).await?)
}

/// Where a local Ollama answers (its OpenAI-compatible API).
const OLLAMA: &str = "http://127.0.0.1:11434/v1";

/// The models of an Ollama running on this machine, if one answers within a second.
async fn local_ollama() -> Option<Vec<String>> {
    let guard = sambung_ai::Guard::new(&["127.0.0.1:11434".to_owned()]).ok()?;
    let endpoint =
        sambung_ai::Endpoint::new(sambung_ai::Provider::Ollama, Some(OLLAMA), None).ok()?;
    let quick = sambung_ai::Timeouts {
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(2),
        idle: Duration::from_secs(2),
        retries: 0,
        ..Default::default()
    };
    sambung_ai::list_models(&guard, &endpoint, quick).await.ok()
}

/// Resolves at the first Ctrl-C.
pub async fn stopped() {
    // No signal handler: serving on until killed is all there is.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Run a server (which stops itself at Ctrl-C and drains its requests for a few seconds); a
/// second Ctrl-C, or the grace period running out, ends it at once.
pub async fn until_interrupted(
    served: impl std::future::Future<Output = Result<(), sambung_server::ServerError>>,
) -> anyhow::Result<()> {
    tokio::pin!(served);
    tokio::select! {
        done = &mut served => done?,
        _ = async { stopped().await; tokio::time::sleep(GRACE).await } => {
            eprintln!("warning: requests still running were cut off");
        }
    }
    println!("Stopped.");
    Ok(())
}

/// Longest a drain may take after Ctrl-C (the server gives requests 4 s).
const GRACE: Duration = Duration::from_secs(5);
