//! `sambung db seed [--scale N]`.

use indicatif::{ProgressBar, ProgressStyle};
use sambung_config::Config;
use sambung_db::seed::{seed_sample, seed_scale, ScaleCounts, SeedProgress};
use sqlx::PgPool;

use super::connect;
use crate::cli::SeedArgs;

pub async fn run(config: &Config, args: &SeedArgs) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    seed_sample_data(&pool).await?;
    if let Some(scale) = args.scale {
        let counts = ScaleCounts::for_scale(scale)?;
        println!(
            "Loading the scale-{scale} dataset: {} users, {} teams, {} chats, {} messages, {} prompts, {} folders, {} tags ...",
            counts.users, counts.teams, counts.chats, counts.messages, counts.prompts, counts.folders, counts.tags
        );
        let bar = ProgressBar::new(counts.total()).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let loaded = seed_scale(&pool, scale, &|at: SeedProgress<'_>| {
            bar.set_position(at.rows);
            bar.set_message(at.step.to_owned());
        })
        .await?;
        bar.finish_and_clear();
        if loaded.loaded {
            let seconds = loaded.elapsed.as_secs_f64();
            println!(
                "Loaded {} rows in {seconds:.1} s ({:.0} rows/s).",
                loaded.rows,
                loaded.rows as f64 / seconds.max(f64::EPSILON)
            );
        } else {
            println!("The synthetic dataset is loaded already; nothing changed.");
        }
    }
    pool.close().await;
    Ok(())
}

/// Seed the sample data and say so (shared with `sambung up`).
pub async fn seed_sample_data(pool: &PgPool) -> anyhow::Result<()> {
    let sample = seed_sample(pool).await?;
    if sample.created {
        println!(
            "Seeded the sample data. Sign in as {} with password {}",
            sample.email, sample.password
        );
    } else {
        println!("The sample data is there already; nothing changed.");
    }
    Ok(())
}
