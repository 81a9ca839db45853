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
    let studio = Studio::bind(
        super::cluster::database_url(config)?.connect_options(),
        settings,
    )
    .await?;
    if !studio.address().ip().is_loopback() {
        eprintln!(
            "warning: Studio listens on {}: whoever reaches it with the URL can change every \
             row, over plain HTTP",
            studio.address()
        );
    }
    let mode = if settings.read_only {
        " (read-only)"
    } else {
        ""
    };
    println!("Studio is running{mode}. Open:");
    println!("  {}", studio.url());
    println!("The link carries this run's access token; keep it to yourself. Ctrl-C stops Studio.");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = studio.serve(async {
        let _ = stopped.await;
    });
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => served?,
        _ = interrupted() => {
            // Requests in flight (a long export) get a few seconds; a second Ctrl-C ends them.
            let _ = stop.send(());
            tokio::select! {
                served = &mut server => served?,
                _ = tokio::time::sleep(GRACE) => eprintln!("warning: requests still running were cut off"),
                _ = interrupted() => eprintln!("warning: requests still running were cut off"),
            }
        }
    }
    println!("Studio stopped.");
    Ok(())
}

/// How long requests in flight may finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(5);

async fn interrupted() {
    // An error here means no signal handler: serving on until killed is all there is.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
