//! `sambung import upstream`: an upstream SambungChat database into this one
//! (`sambung_db::upstream` does the work; this reads the flags and prints the report).

use std::str::FromStr;

use sambung_config::Config;
use sambung_db::secret::Cipher;
use sambung_db::upstream::{self, Options};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::cli::UpstreamArgs;

use super::connect;

pub async fn upstream(config: &Config, args: &UpstreamArgs) -> anyhow::Result<()> {
    // Read only: whatever the import does, upstream's database is left as it was.
    let from_options = PgConnectOptions::from_str(&args.from)
        .map_err(|e| anyhow::anyhow!("--from is not a PostgreSQL URL: {e}"))?
        .options([("default_transaction_read_only", "on")]);
    let from = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(from_options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the upstream database: {e}"))?;
    let to = connect(config).await?;
    let cipher = config
        .encryption_key
        .as_ref()
        .map(|key| Cipher::new(key.as_bytes()));
    if args.encryption_key.is_some() && cipher.is_none() {
        eprintln!("warning: ENCRYPTION_KEY is not set here: upstream's API keys cannot be sealed again, and are left out\nhint: make one with `sambung keys generate` and set ENCRYPTION_KEY");
    }
    let report = upstream::import(
        &from,
        &to,
        &Options {
            upstream_key: args.encryption_key.as_deref(),
            cipher: cipher.as_ref(),
            merge: args.merge,
            dry_run: args.dry_run,
        },
    )
    .await?;
    from.close().await;
    to.close().await;
    let verb = if args.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    println!(
        "{verb}: {} users ({} merged with accounts here), {} sign-in methods, {} folders, {} chats, {} messages, {} prompts ({} earlier versions), {} models, {} API keys.",
        report.users,
        report.users_merged,
        report.accounts,
        report.folders,
        report.chats,
        report.messages,
        report.prompts,
        report.prompt_versions,
        report.models,
        report.api_keys,
    );
    if report.already_imported > 0 {
        println!(
            "Imported by an earlier run, not added again: {} rows.",
            report.already_imported
        );
    }
    for (reason, count) in &report.left_out {
        println!("Left out: {count} × {reason}");
    }
    if args.dry_run {
        println!("Dry run: nothing was kept.");
    } else if report.users > 0 {
        println!("The people imported sign in with their old passwords. Make one of them an admin with `sambung admin set-role EMAIL admin`.");
    }
    Ok(())
}
