//! What each command does, wiring configuration, the cluster and the data layer together.

mod cluster;
mod up;

use std::path::PathBuf;

use anyhow::Context;
use sambung_config::Config;

use crate::cli::{Command, DbCommand};

pub async fn run(command: Command) -> anyhow::Result<()> {
    let config = load_config()?;
    match command {
        Command::Up => up::run(&config).await,
        Command::Db(DbCommand::Start) => cluster::start(&config).await,
        Command::Db(DbCommand::Stop) => cluster::stop(&config).await,
        Command::Db(DbCommand::Restart) => cluster::restart(&config).await,
        Command::Db(DbCommand::Logs(args)) => cluster::logs(&config, &args).await,
    }
}

fn load_config() -> anyhow::Result<Config> {
    let dir: PathBuf = std::env::current_dir().context("cannot read the working directory")?;
    Ok(Config::load(&dir)?)
}
