//! `sambung db studio`: serve Studio on the configured database until Ctrl-C.

use std::time::Duration;

use sambung_config::Config;
use sambung_studio::{Studio, StudioSettings};

use crate::cli::StudioArgs;

pub async fn run(config: &Config, args: &StudioArgs) -> anyhow::Result<()> {
    // Connect once first: a stopped cluster or a bad URL is explained here, not in the page.
    super::connect(config).await?.close().await;
    let settings = StudioSettings {
        host: args.host.clone(),
        port: args.port,
        read_only: args.read_only,
        statement_timeout: Duration::from_secs(args.statement_timeout),
    };
    serve(config, &settings).await
}

/// Bind Studio, print its URL and serve it until Ctrl-C.
pub async fn serve(config: &Config, settings: &StudioSettings) -> anyhow::Result<()> {
    let studio = Studio::bind(config.effective_database_url().connect_options(), settings).await?;
    println!(
        "Studio is running{}. Open:",
        if settings.read_only {
            " (read-only)"
        } else {
            ""
        }
    );
    println!("  {}", studio.url());
    println!("The link carries this run's access token; keep it to yourself. Ctrl-C stops Studio.");
    studio
        .serve(async {
            // An error here means no signal handler: serving on until killed is all there is.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    println!("Studio stopped.");
    Ok(())
}
