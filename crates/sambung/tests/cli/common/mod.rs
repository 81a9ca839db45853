//! Running the `sambung` binary in a scratch directory, with a clean environment.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use sambung_testkit::ScratchCluster;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

pub struct Sambung {
    work_dir: PathBuf,
    env: Vec<(String, String)>,
    /// Keeps the working directory of [`Sambung::with_database`] alive.
    _own_dir: Option<tempfile::TempDir>,
}

impl Sambung {
    /// `sambung` configured for the scratch cluster, working in its directory.
    #[allow(dead_code)]
    pub fn managed(scratch: &ScratchCluster) -> Sambung {
        Sambung {
            work_dir: scratch.work_dir(),
            env: vec![
                (
                    "SAMBUNG_DATA_DIR".into(),
                    scratch.data_dir().display().to_string(),
                ),
                ("SAMBUNG_PG_PORT".into(), scratch.port().to_string()),
                (
                    "SAMBUNG_PG_BIN".into(),
                    sambung_testkit::server_bin_dir().display().to_string(),
                ),
            ],
            _own_dir: None,
        }
    }

    /// `sambung` pointed at `database_url`, working in an empty directory of its own.
    #[allow(dead_code)] // not every test binary uses every helper
    pub fn with_database(database_url: &str) -> Sambung {
        let dir = tempfile::tempdir().expect("a working directory");
        Sambung {
            work_dir: dir.path().to_owned(),
            env: vec![("DATABASE_URL".into(), database_url.into())],
            _own_dir: Some(dir),
        }
    }

    #[allow(dead_code)]
    pub fn env(mut self, name: &str, value: &str) -> Sambung {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn run<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Run {
        Run::from_output(self.command(args).output().expect("run sambung"))
    }

    #[allow(dead_code)]
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }

    /// The command, to be started by the caller (for running several at once).
    pub fn command<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sambung"));
        command.args(args).current_dir(&self.work_dir);
        // Every variable `sambung` reads is removed unless the test sets it: the developer's
        // own environment never leaks into a test.
        for name in sambung_config::VARIABLES {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(n, v)| (n, v)));
        // No terminal: confirmations must be refused, never hang.
        command.stdin(std::process::Stdio::null());
        command
    }
}

/// A standby of a scratch cluster, in `standby/` of its directory on a free port.
#[allow(dead_code)]
pub struct Standby {
    pub port: u16,
    pub dir: PathBuf,
    /// `sambung` configured for the standby (its data directory and port).
    pub sambung: Sambung,
}

impl Standby {
    #[allow(dead_code)]
    pub fn of(scratch: &ScratchCluster) -> Standby {
        let port = sambung_testkit::free_port();
        let dir = scratch.work_dir().join("standby");
        let sambung = Sambung::managed(scratch)
            .env("SAMBUNG_DATA_DIR", &dir.display().to_string())
            .env("SAMBUNG_PG_PORT", &port.to_string());
        Standby { port, dir, sambung }
    }

    /// `sambung db replica init` of it, run by the primary's `sambung`.
    #[allow(dead_code)]
    pub fn init(&self, primary: &Sambung) -> Run {
        primary.run([
            "db",
            "replica",
            "init",
            self.dir.to_str().unwrap(),
            "--port",
            &self.port.to_string(),
        ])
    }
}

/// What a run printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished child process printed.
    #[allow(dead_code)]
    pub fn from_output(output: std::process::Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    #[allow(dead_code)] // not every test binary uses every helper
    pub fn failure(self) -> Run {
        assert_eq!(self.code, Some(1), "expected exit code 1:\n{self}");
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

#[allow(dead_code)]
pub async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(url).await
}
