//! A server under measurement: `sambung serve` in a process of its own (so that its memory and
//! CPU are its own), with the production limits, on the benchmark's database.

use std::time::Duration;

use crate::{setup, BenchError};

pub(crate) struct Served {
    pub base: String,
    child: tokio::process::Child,
    _data_dir: tempfile::TempDir,
}

impl Served {
    /// Start `sambung` (the binary) serving on a free port, allowed to reach a provider on
    /// loopback at `provider_port`, with `env` set besides.
    pub async fn spawn(
        sambung: &std::path::Path,
        database_url: &str,
        provider_port: u16,
        env: &[(&str, &str)],
    ) -> Result<Served, BenchError> {
        use tokio::io::AsyncBufReadExt as _;
        let data_dir = tempfile::tempdir().map_err(setup)?;
        let mut command = tokio::process::Command::new(sambung);
        command
            .args(["serve", "--port", "0"])
            .env("DATABASE_URL", database_url)
            .env("SAMBUNG_DATA_DIR", data_dir.path())
            .env("AI_ALLOWED_HOSTS", format!("127.0.0.1:{provider_port}"))
            .env_remove("PUBLIC_URL")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| setup(format!("cannot start {}: {e}", sambung.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| setup("no stdout"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let base = loop {
            match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    if let Some(url) = line.strip_prefix("SambungChat is serving at ") {
                        break url.trim().to_owned();
                    }
                }
                _ => return Err(setup("`sambung serve` did not start")),
            }
        };
        // What else it prints is not needed; its pipe must not fill up.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Served {
            base,
            child,
            _data_dir: data_dir,
        })
    }

    /// The server process's resident memory, in MiB.
    pub fn rss_mb(&self) -> f64 {
        self.child
            .id()
            .map_or(0.0, |pid| crate::generate::rss_mb_of(&pid.to_string()))
    }
}
