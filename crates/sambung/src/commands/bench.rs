//! `sambung bench`: the workloads through the data layer, optionally against the baseline.

use std::time::Duration;

use sambung_bench::{compare, measure, Inputs, Run, Stats, Workload};
use sambung_config::{Config, PoolConfig};
use serde::Serialize;

use crate::cli::BenchArgs;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    ours: &'a Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a Stats>,
    /// ours / baseline, in ops per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio: Option<f64>,
}

pub async fn run(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        anyhow::bail!("--seconds must be above 0 and at most 3600");
    }
    if args.workload == "generate" {
        return generate(config, args).await;
    }
    if let Some(attack) = args.workload.strip_prefix("attacks") {
        return attacks(config, args, attack.strip_prefix(':')).await;
    }
    if args.workload == "people" {
        return people(config, args).await;
    }
    if args.workload == "branches" {
        return branches(config, args).await;
    }
    if args.workload == "files" {
        return files(config, args).await;
    }
    if args.workload == "transfer" {
        return transfer(config, args).await;
    }
    if args.workload == "completions" {
        return completions(config, args).await;
    }
    let workloads = Workload::parse(&args.workload)?;
    let pool = pool_of(config, args.concurrency).await?;
    let mut inputs = Inputs::sample(&pool).await?;
    if workloads.iter().any(|w| w.direct().is_some()) {
        let topology = sambung_bench::http::Topology {
            servers: args.servers as usize,
            read_replicas: config.read_urls.clone(),
        };
        inputs
            .serve(&pool, args.concurrency as usize, &topology)
            .await?;
        if !args.json && (topology.servers > 1 || !topology.read_replicas.is_empty()) {
            println!(
                "http-*: {} servers taking turns, reading lists and searches on {} replica(s)",
                topology.servers,
                topology.read_replicas.len()
            );
        }
    }
    let warmup = Duration::from_secs_f64((args.seconds / 5.0).clamp(0.2, 2.0));
    let concurrency = args.concurrency as usize;
    if !args.json {
        println!(
            "{:<24} {:>8} {:>10} {:>8} {:>8} {:>8} {:>6}{}",
            "workload",
            "ops",
            "ops/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            if args.baseline {
                "   baseline ops/s  ours/baseline"
            } else {
                ""
            }
        );
    }
    for workload in workloads {
        let run = Run {
            seconds: args.seconds,
            concurrency,
            warmup,
        };
        let (ours, baseline) = if args.baseline {
            let (ours, baseline) = compare(&pool, &inputs, workload, run).await;
            (ours, Some(baseline))
        } else {
            (measure(&pool, &inputs, workload, run).await, None)
        };
        let ratio = baseline
            .as_ref()
            .map(|b| ours.ops_per_s / b.ops_per_s.max(f64::EPSILON));
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&Line {
                    ours: &ours,
                    baseline: baseline.as_ref(),
                    ratio
                })?
            );
        } else {
            let extra = match (&baseline, ratio) {
                (Some(b), Some(r)) => format!("   {:>14.0}  {:>13.2}", b.ops_per_s, r),
                _ => String::new(),
            };
            println!(
                "{:<24} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>6}{extra}",
                ours.workload,
                ours.ops,
                ours.ops_per_s,
                ours.p50_ms,
                ours.p95_ms,
                ours.p99_ms,
                ours.errors
            );
        }
    }
    inputs.close().await?;
    pool.close().await;
    Ok(())
}

/// `--workload attacks[:NAME]`: `/health` while each hostile client of issue 25 attacks a
/// server with the production limits.
async fn attacks(config: &Config, args: &BenchArgs, only: Option<&str>) -> anyhow::Result<()> {
    let database = super::cluster::database_url(config)?;
    let sambung = std::env::current_exe()?;
    let reports =
        sambung_bench::attacks::run(&sambung, database.as_str(), only, args.seconds).await?;
    if !args.json {
        println!(
            "{:<16} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "attack", "samples", "p50 ms", "p95 ms", "max ms", ">100 ms", "server MB"
        );
    }
    for report in reports {
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{:<16} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>10} {:>8.0}",
                report.attack,
                report.health_samples,
                report.health_p50_ms,
                report.health_p95_ms,
                report.health_max_ms,
                report.health_over_100ms,
                report.server_rss_mb
            );
        }
    }
    Ok(())
}

/// `--workload generate`: turns through the server against the built-in fake provider.
async fn generate(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let pool = pool_of(config, args.concurrency.max(20)).await?;
    let inputs = Inputs::sample(&pool).await?;
    let run = sambung_bench::generate::GenerateRun {
        turns: args.turns,
        warmup: sambung_bench::generate::warmup_turns(
            pool.options().get_max_connections(),
            args.concurrency as usize,
        ),
        concurrency: args.concurrency as usize,
        streams: args.streams,
        pace: Duration::from_millis(args.pace_ms),
    };
    let report = sambung_bench::generate::run(&pool, &inputs.personal_chats, run).await?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "generate: {} turns at concurrency {}: the provider's own first token after p50 {:.2} ms, p95 {:.2} ms; the server adds p50 {:.2} ms, p95 {:.2} ms",
            report.turns, report.concurrency, report.provider_first_token_p50_ms, report.provider_first_token_p95_ms, report.added_first_token_p50_ms, report.added_first_token_p95_ms
        );
        if let Some(split) = &report.split {
            println!(
                "of it, to the provider's request read p50 {:.2} ms, p95 {:.2} ms; from its first piece to the client's first delta p50 {:.2} ms, p95 {:.2} ms",
                split.to_provider_p50_ms, split.to_provider_p95_ms, split.relay_p50_ms, split.relay_p95_ms
            );
        }
        println!(
            "{} replies streaming at once: memory {:.0} MB before, {:.0} MB at the peak (+{:.0} MB), {:.0} MB after; {} errors",
            report.streams, report.rss_before_mb, report.rss_peak_mb, report.rss_peak_mb - report.rss_before_mb, report.rss_after_mb, report.errors
        );
        println!(
            "the fake provider accepted {} connections in all (its warm-up and the streams included)",
            report.provider_connections
        );
    }
    Ok(())
}

/// The benchmark's database, with room for `connections` at once.
async fn pool_of(config: &Config, connections: u32) -> anyhow::Result<sqlx::PgPool> {
    let pool_config = PoolConfig {
        max_connections: connections,
        ..config.pool.clone()
    };
    Ok(sambung_db::connect(
        &super::cluster::database_url(config)?,
        &pool_config,
        config.database_url.is_none(),
    )
    .await?)
}

/// `--workload files`: a 20 MB file up and down through the server, then 20 uploads at once,
/// then turns with a 5 MB image and without.
async fn files(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let pool = pool_of(config, 30).await?;
    let report = sambung_bench::files::run(&pool, args.seconds).await?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "files: {:.0} MB files, {} rounds one at a time: upload p50 {:.0} ms ({:.0} MB/s), download p50 {:.0} ms ({:.0} MB/s)",
            report.file_mb, report.rounds, report.upload_p50_ms, report.upload_mb_per_s, report.download_p50_ms, report.download_mb_per_s
        );
        println!(
            "{} uploads at once in {:.0} ms: memory {:.0} MB before, {:.0} MB at the peak (+{:.0} MB, against {:.0} MB of files), {:.0} MB after; {} errors",
            report.at_once, report.at_once_ms, report.rss_before_mb, report.rss_peak_mb, report.rss_peak_mb - report.rss_before_mb,
            report.file_mb * report.at_once as f64, report.rss_after_mb, report.errors
        );
        println!(
            "a {:.1} MB image in a turn, {} turns with and without: first token p50 {:.0} ms against {:.0} ms (+{:.0} ms); \
             of it the server's: reading {:.0} ms, metadata out {:.0} ms, base64 {:.0} ms",
            report.image_mb, report.image_turns, report.image_first_token_p50_ms, report.plain_first_token_p50_ms,
            report.image_added_ms, report.image_read_ms, report.image_strip_ms, report.image_base64_ms
        );
    }
    Ok(())
}

/// `--workload completions`: the OpenAI-compatible endpoint against the provider called
/// directly and against a chat's turn, `--turns` requests of each at concurrency 1 and 10.
async fn completions(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let pool = pool_of(config, 30).await?;
    let inputs = Inputs::sample(&pool).await?;
    let report = sambung_bench::completions::run(&pool, &inputs.personal_chats, args.turns).await?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    for level in &report.levels {
        println!(
            "completions at concurrency {}, {} requests each: the provider directly p50 {:.1} ms, p95 {:.1} ms; \
             /v1/chat/completions p50 {:.1} ms (+{:.1}), p95 {:.1} ms (+{:.1}); a chat's turn p50 {:.1} ms (+{:.1}), p95 {:.1} ms (+{:.1}); {} errors",
            level.concurrency, level.requests, level.direct_p50_ms, level.direct_p95_ms,
            level.endpoint_p50_ms, level.endpoint_p50_ms - level.direct_p50_ms,
            level.endpoint_p95_ms, level.endpoint_p95_ms - level.direct_p95_ms,
            level.turn_p50_ms, level.turn_p50_ms - level.direct_p50_ms,
            level.turn_p95_ms, level.turn_p95_ms - level.direct_p95_ms,
            level.errors
        );
    }
    Ok(())
}

/// `--workload transfer`: a ChatGPT export of `--mb` megabytes imported through the server
/// and the account exported back, against serde_json reading the same file.
async fn transfer(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let pool = pool_of(config, 4).await?;
    let report = sambung_bench::transfer::run(&pool, args.mb).await?;
    pool.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "transfer: a {:.0} MB ChatGPT export ({} conversations, {} messages) imported in {:.1} s, {:.1}× serde_json reading it alone ({:.1} s); memory {:.0} MB before, {:.0} MB at the peak (+{:.0} MB)",
            report.file_mb, report.conversations, report.messages, report.import_ms / 1000.0, report.import_over_parse,
            report.parse_ms / 1000.0, report.import_rss_before_mb, report.import_rss_peak_mb,
            report.import_rss_peak_mb - report.import_rss_before_mb
        );
        println!(
            "the account exported back as a {:.0} MB zip in {:.1} s; memory at the peak {:.0} MB",
            report.export_mb,
            report.export_ms / 1000.0,
            report.export_rss_peak_mb
        );
    }
    Ok(())
}

/// A chat with 50 branches opened against a flat one with the same path.
async fn branches(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let pool = sambung_db::connect(
        &super::cluster::database_url(config)?,
        &config.pool,
        config.database_url.is_none(),
    )
    .await?;
    let report = sambung_bench::branches::run(&pool, args.seconds).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "opened {} times: flat p50 {:.2} ms p95 {:.2} ms; with {} branches p50 {:.2} ms p95 {:.2} ms; branched/flat {:.2}",
            report.opens,
            report.flat_p50_ms,
            report.flat_p95_ms,
            sambung_bench::branches::BRANCHES,
            report.branched_p50_ms,
            report.branched_p95_ms,
            report.ratio_p50
        );
    }
    Ok(())
}

/// `--workload people --users N[,N...]`: N simulated people on `sambung serve` (`--servers`
/// of them on one database), one run per N.
async fn people(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let counts = args
        .users
        .split(',')
        .map(|n| n.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty() && c.iter().all(|n| (1..=100_000).contains(n)))
        .ok_or_else(|| anyhow::anyhow!("--users takes counts from 1 to 100000, comma-separated"))?;
    let database = super::cluster::database_url(config)?;
    let sambung = std::env::current_exe()?;
    if !args.json {
        println!(
            "{:>6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>7} {:>10} {:>10}  served",
            "people",
            "servers",
            "pages",
            "p50 ms",
            "p95 ms",
            "max ms",
            "replies",
            "+1st p50",
            "+1st p95",
            "errors",
            "server MB",
            "KB/person"
        );
    }
    for users in counts {
        let report = sambung_bench::people::run(
            &sambung,
            database.as_str(),
            users,
            args.servers as usize,
            args.seconds,
            sambung_bench::people::Pace::default(),
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{:>6} {:>7} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>11.1} {:>11.1} {:>7} {:>10.1} {:>10.0}  {}",
                report.users,
                report.servers,
                report.page_requests,
                report.page_p50_ms,
                report.page_p95_ms,
                report.page_max_ms,
                report.questions,
                report.first_token_added_p50_ms,
                report.first_token_added_p95_ms,
                report.errors,
                report.server_rss_mb,
                report.rss_per_person_kb,
                if report.served { "yes" } else { "no" }
            );
        }
    }
    Ok(())
}
