//! The PostgreSQL client tools a backup needs, of a version that can handle the server.

use std::path::PathBuf;

use sambung_pg::PgBinaries;
use tokio::process::Command;

use crate::BackupError;

/// `pg_dump`, `pg_restore`, `psql`, `pg_basebackup` from one installation.
#[derive(Debug, Clone)]
pub struct Tools {
    dir: PathBuf,
    major: u32,
    env: Vec<(&'static str, String)>,
}

impl Tools {
    /// The tools beside `binaries`, checked to be at least the server's major version, run
    /// with the connection in `env` (libpq variables: no password on a command line).
    pub fn new(
        binaries: &PgBinaries,
        server_major: u32,
        env: Vec<(&'static str, String)>,
    ) -> Result<Tools, BackupError> {
        if binaries.major() < server_major {
            return Err(BackupError::ToolTooOld {
                tool: binaries.tool("pg_dump").display().to_string(),
                found: binaries.major(),
                server: server_major,
            });
        }
        Ok(Tools {
            dir: binaries.dir().to_owned(),
            major: binaries.major(),
            env,
        })
    }

    /// The same tools, connecting with `env` instead.
    pub fn with_env(&self, env: Vec<(&'static str, String)>) -> Tools {
        Tools {
            env,
            ..self.clone()
        }
    }

    pub fn major(&self) -> u32 {
        self.major
    }

    pub(crate) fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.dir.join(tool));
        for var in [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE",
            "PGSSLMODE",
            "PGSERVICE",
            "PGPASSFILE",
        ] {
            command.env_remove(var);
        }
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        command.kill_on_drop(true);
        // A tool must not outlive a `sambung` killed with SIGKILL (no destructor runs then).
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        command
    }

    /// Run a tool to completion; its stderr becomes the error when it fails.
    pub(crate) async fn run(
        &self,
        tool: &str,
        args: &[&std::ffi::OsStr],
    ) -> Result<String, BackupError> {
        let output =
            self.command(tool)
                .args(args)
                .output()
                .await
                .map_err(|e| BackupError::Tool {
                    tool: tool.into(),
                    detail: e.to_string(),
                })?;
        if !output.status.success() {
            return Err(BackupError::Tool {
                tool: tool.into(),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
