//! What each command does, wiring configuration, the cluster and the data layer together.

mod admin;
mod backup;
mod bench;
mod cluster;
mod declarative;
mod import;
mod keys;
pub mod read_pdf;
mod schema;
mod seed;
mod serve;
mod studio;
mod up;

use std::path::PathBuf;

use anyhow::Context;
use sambung_config::Config;

use crate::cli::{AdminCommand, Command, DbCommand, ImportCommand, KeysCommand, ReplicaCommand};

pub async fn run(command: Command) -> anyhow::Result<()> {
    let config = load_config()?;
    match command {
        Command::Up(args) => up::run(&config, &args).await,
        Command::Db(DbCommand::Start) => cluster::start(&config).await,
        Command::Db(DbCommand::Stop) => cluster::stop(&config).await,
        Command::Db(DbCommand::Restart) => cluster::restart(&config).await,
        Command::Db(DbCommand::Logs(args)) => cluster::logs(&config, &args).await,
        Command::Db(DbCommand::Replica(ReplicaCommand::Init(args))) => {
            cluster::replica_init(&config, &args).await
        }
        Command::Db(DbCommand::Replica(ReplicaCommand::Promote)) => {
            cluster::replica_promote(&config).await
        }
        Command::Db(DbCommand::Migrate) => schema::migrate(&config).await,
        Command::Db(DbCommand::Rollback(args)) => schema::rollback(&config, &args).await,
        Command::Db(DbCommand::Status(args)) => schema::status(&config, &args).await,
        Command::Db(DbCommand::Schema(args)) => schema::show(&config, &args).await,
        Command::Db(DbCommand::Drop(args)) => schema::drop(&config, &args).await,
        Command::Db(DbCommand::Generate(args)) => {
            interruptible(declarative::generate(&config, &args)).await
        }
        Command::Db(DbCommand::Push(args)) => {
            interruptible(declarative::push(&config, &args)).await
        }
        Command::Db(DbCommand::Check(args)) => {
            interruptible(declarative::check(&config, &args)).await
        }
        Command::Db(DbCommand::Seed(args)) => seed::run(&config, &args).await,
        Command::Db(DbCommand::Backup(args)) => backup::backup(&config, &args).await,
        Command::Db(DbCommand::Restore(args)) => backup::restore(&config, &args).await,
        Command::Db(DbCommand::Studio(args)) => studio::run(&config, &args).await,
        Command::Keys(KeysCommand::Generate) => keys::generate(),
        Command::Keys(KeysCommand::Rotate) => keys::rotate(&config).await,
        Command::Admin(AdminCommand::CreateUser(args)) => admin::create_user(&config, &args).await,
        Command::Admin(AdminCommand::SetRole(args)) => admin::set_role(&config, &args).await,
        Command::Admin(AdminCommand::DisableTwoFactor(args)) => {
            admin::disable_two_factor(&config, &args).await
        }
        Command::Admin(AdminCommand::ResetPassword(args)) => {
            admin::reset_password(&config, &args).await
        }
        Command::Import(ImportCommand::Upstream(args)) => import::upstream(&config, &args).await,
        Command::Serve(args) => serve::run(&config, &args).await,
        Command::Bench(args) => bench::run(&config, &args).await,
        // `main` runs it before there is a runtime, whose threads it must not share limits with.
        Command::ReadPdf => anyhow::bail!("read-pdf runs on its own, never inside the runtime"),
    }
}

/// Run `work` until done or Ctrl-C. Interrupted, `work` is dropped, and with it the scratch
/// databases it made (their `Drop` removes them).
async fn interruptible(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; nothing was written or changed"),
    }
}

/// A pool for the configured database: `DATABASE_URL`, else the managed cluster.
pub async fn connect(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let url = cluster::database_url(config)?;
    let pool = sambung_db::connect(&url, &config.pool, config.database_url.is_none()).await?;
    warn_if_superuser(&pool).await;
    Ok(pool)
}

/// A superuser can run programs and read files on the database server: any SQL that reaches
/// it (a restored file, Studio's console) can too. Said once per process.
async fn warn_if_superuser(pool: &sqlx::PgPool) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await
            .unwrap_or(false);
    if superuser {
        WARNED.call_once(|| {
            eprintln!(
                "warning: DATABASE_URL connects as a superuser; sambung needs only a role that owns its database (and CREATEDB for `db generate`)"
            );
        });
    }
}

fn load_config() -> anyhow::Result<Config> {
    let dir: PathBuf = std::env::current_dir().context("cannot read the working directory")?;
    Ok(Config::load(&dir)?)
}

/// Ask on the terminal and read the answer's line (trimmed).
pub fn ask(question: &str) -> anyhow::Result<String> {
    use std::io::{BufRead as _, Write as _};
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_owned())
}

/// Ask a yes/no question; anything but `y`/`yes` is no.
pub fn ask_yes(question: &str) -> anyhow::Result<bool> {
    Ok(matches!(
        ask(question)?.to_lowercase().as_str(),
        "y" | "yes"
    ))
}
