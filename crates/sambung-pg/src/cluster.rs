//! A local cluster's life cycle: init, start, stop, logs.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::postgres::PgConnectOptions;

use crate::roles::{self, ClusterSecrets, REPLICATION_USER, SUPERUSER};
use crate::{ClusterError, OsUser, PgBinaries, SearchPlaces};

/// How long `pg_ctl` may wait for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before `stop` gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the processes of a crashed server get to notice and exit.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

/// What a cluster is: where it lives, its port, its credentials.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Holds `pgdata/` (the cluster) and `postgresql.log`.
    pub data_dir: PathBuf,
    pub port: u16,
    /// `SAMBUNG_PG_BIN`; `None` searches (see [`PgBinaries::discover`]).
    pub bin_dir: Option<PathBuf>,
    /// Where to search instead of the usual places (`SAMBUNG_PG_SEARCH`), and the cache of
    /// fetched packages (`SAMBUNG_PG_CACHE`), searched too.
    pub search: Option<Vec<PathBuf>>,
    pub cache_dir: Option<PathBuf>,
    /// `SAMBUNG_PG_USER`: who runs the server when we are root (default `postgres`).
    pub os_user: Option<String>,
    /// The application role (no superuser), its password, and the database `start` creates
    /// for it. The cluster's own roles are in [`crate::roles`]. The password is random and
    /// kept with the cluster's secrets, unless a fixed one is given (throwaway clusters).
    pub app_user: String,
    pub app_password: Option<String>,
    pub database: String,
    /// A throwaway cluster (tests): no fsync, since its data is never kept.
    pub throwaway: bool,
}

/// What `start` found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started { pid: u32, initialized: bool },
    AlreadyRunning { pid: u32, port: Option<u16> },
}

/// What `stop` found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped { pid: u32 },
    NotRunning,
}

/// A managed cluster, with its binaries found and its server user resolved.
#[derive(Debug, Clone)]
pub struct Cluster {
    spec: ClusterSpec,
    binaries: PgBinaries,
    run_as: Option<OsUser>,
}

impl Cluster {
    /// Resolve the binaries and the server user; touches nothing on disk.
    pub fn new(spec: ClusterSpec) -> Result<Self, ClusterError> {
        let places = match &spec.search {
            Some(dirs) => SearchPlaces::only(dirs, spec.cache_dir.as_deref()),
            None => SearchPlaces::of_this_machine(spec.cache_dir.as_deref()),
        };
        // An existing cluster runs on its own major version when that is installed.
        let cluster_version = std::fs::read_to_string(spec.data_dir.join("pgdata/PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let binaries = PgBinaries::discover_for(spec.bin_dir.as_deref(), &places, cluster_version)?;
        let run_as = OsUser::for_server(spec.os_user.as_deref())?;
        Ok(Cluster {
            spec,
            binaries,
            run_as,
        })
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    /// The system user the server runs as, when not the current one.
    pub fn run_as(&self) -> Option<&OsUser> {
        self.run_as.as_ref()
    }

    /// The PostgreSQL data directory (`initdb -D`); its unix socket lives here too.
    pub fn pgdata(&self) -> PathBuf {
        self.spec.data_dir.join("pgdata")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.spec.data_dir.join("postgresql.log")
    }

    /// The application role's password: the spec's, else the one in the cluster's secrets.
    pub fn app_password(&self) -> Result<String, ClusterError> {
        if let Some(fixed) = &self.spec.app_password {
            return Ok(fixed.clone());
        }
        self.secrets()?
            .app_password
            .ok_or_else(|| ClusterError::BadSecrets {
                path: ClusterSecrets::path(&self.pgdata()),
                missing: "the application role's password (start the cluster to make it)".into(),
            })
    }

    /// Connect options of the application role for `database`, over TCP on 127.0.0.1.
    pub fn connect_options(&self, database: &str) -> Result<PgConnectOptions, ClusterError> {
        Ok(PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.spec.port)
            .username(&self.spec.app_user)
            .password(&self.app_password()?)
            .database(database))
    }

    /// A `postgres://` URL of the application role for `database` (its password in it, so
    /// only for whoever may read the cluster's secrets).
    pub fn database_url(&self, database: &str) -> Result<String, ClusterError> {
        // Our passwords are URL-safe base64: nothing to escape.
        Ok(format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            self.spec.app_user,
            self.app_password()?,
            self.spec.port,
            database
        ))
    }

    /// The cluster's own secrets, once `start` made them.
    pub fn secrets(&self) -> Result<ClusterSecrets, ClusterError> {
        ClusterSecrets::read(&self.pgdata())?.ok_or_else(|| ClusterError::BadSecrets {
            path: ClusterSecrets::path(&self.pgdata()),
            missing: "the file".into(),
        })
    }

    /// Connect options of the bootstrap superuser, through the socket in the data directory.
    fn superuser_options(&self, secrets: &ClusterSecrets) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.pgdata())
            .port(self.spec.port)
            .username(SUPERUSER)
            .password(&secrets.superuser_password)
            .database("postgres")
    }

    /// libpq's environment for the replication role through the socket (`pg_basebackup`).
    pub fn replication_env(&self) -> Result<Vec<(&'static str, String)>, ClusterError> {
        let secrets = self.secrets()?;
        Ok(vec![
            ("PGHOST", self.pgdata().display().to_string()),
            ("PGPORT", self.spec.port.to_string()),
            ("PGUSER", REPLICATION_USER.to_owned()),
            ("PGPASSWORD", secrets.replication_password),
            ("PGDATABASE", "postgres".to_owned()),
        ])
    }

    /// The postmaster's pid when the server is running (a stale pid file after a crash is not).
    pub fn running_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pgdata().join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        is_server_of(pid, &self.pgdata()).then_some(pid)
    }

    /// The port recorded in the running server's pid file.
    fn running_port(&self) -> Option<u16> {
        let text = std::fs::read_to_string(self.pgdata().join("postmaster.pid")).ok()?;
        text.lines().nth(3)?.trim().parse().ok()
    }

    /// Every process working in this cluster's data directory: the postmaster and its children
    /// (PostgreSQL processes change into the data directory). Needs `/proc`.
    pub fn server_processes(&self) -> Vec<u32> {
        processes_working_in(&self.pgdata())
    }

    /// Initialise the cluster if needed, start it, wait until it accepts connections and
    /// create the database. Already running: says so and changes nothing.
    pub async fn start(&self) -> Result<StartOutcome, ClusterError> {
        self.ensure_data_dir()?;
        let _lock = self.lock().await?;
        if let Some(pid) = self.running_pid() {
            // A cluster an earlier sambung started may still take the design's public
            // password: it gets its own now, without waiting for a restart.
            if !self.is_standby() {
                if let Some(secrets) = self.secrets_with_app_password()? {
                    self.provision(&secrets, true).await?;
                }
            }
            return Ok(StartOutcome::AlreadyRunning {
                pid,
                port: self.running_port(),
            });
        }
        let initialized = self.ensure_initialized().await?;
        // A cluster made by an earlier sambung has no secrets, or no application password,
        // yet: they are made here and the roles set up with them below.
        let secrets = match self.secrets_with_app_password()? {
            Some(upgraded) => upgraded,
            None => self.secrets()?,
        };
        self.wait_for_orphans().await;
        self.remove_stale_lock_files()?;
        ensure_port_free(self.spec.port)?;
        self.write_runtime_settings()?;

        let log = self.log_path();
        if !log.exists() {
            std::fs::File::create(&log).map_err(io_error("create", &log))?;
            if let Some(user) = &self.run_as {
                user.chown(&log)?;
            }
        }
        // The log holds what PostgreSQL reports of failed statements: emails from unique
        // violations, say. Only the server's user reads it (a log made earlier too).
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("set permissions on", &log))?;
        let log_offset = log.metadata().map_or(0, |m| m.len());
        let output = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-s", "-t", &START_TIMEOUT.as_secs().to_string()])
            .output()
            .await
            .map_err(|e| self.tool_error("pg_ctl", e.to_string()))?;
        if !output.status.success() {
            let new_lines = read_from(&log, log_offset).unwrap_or_default();
            if new_lines.contains("Address already in use") {
                return Err(ClusterError::PortInUse {
                    port: self.spec.port,
                });
            }
            let mut tail = last_lines(&new_lines, 15);
            if tail.trim().is_empty() {
                tail = String::from_utf8_lossy(&output.stderr).into_owned();
            }
            return Err(ClusterError::StartFailed { log_tail: tail });
        }
        let pid = self
            .running_pid()
            .ok_or_else(|| ClusterError::StartFailed {
                log_tail: read_from(&log, log_offset).unwrap_or_default(),
            })?;
        // A standby is read-only: its roles and database are its primary's, replayed.
        if !self.is_standby() {
            self.provision(&secrets, !initialized).await?;
        }
        tracing::info!(pid, port = self.spec.port, "PostgreSQL started");
        Ok(StartOutcome::Started { pid, initialized })
    }

    /// The cluster's secrets when they had to be made or completed (an application password
    /// where an earlier `sambung` kept the design's public one), written back; `None` when
    /// they were complete already.
    fn secrets_with_app_password(&self) -> Result<Option<ClusterSecrets>, ClusterError> {
        let secrets = match ClusterSecrets::read(&self.pgdata())? {
            Some(secrets) if secrets.app_password.is_some() => return Ok(None),
            Some(old) => ClusterSecrets {
                app_password: ClusterSecrets::generate().app_password,
                ..old
            },
            None => ClusterSecrets::generate(),
        };
        self.give_to_server_user(&secrets.write(&self.pgdata())?)?;
        Ok(Some(secrets))
    }

    /// Fast shutdown (`pg_ctl stop -m fast`: open sessions are ended), waiting until it is done.
    pub async fn stop(&self) -> Result<StopOutcome, ClusterError> {
        if !self.spec.data_dir.exists() {
            return Ok(StopOutcome::NotRunning);
        }
        let _lock = self.lock().await?;
        let Some(pid) = self.running_pid() else {
            return Ok(StopOutcome::NotRunning);
        };
        signal(pid, Signal::SIGINT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while is_alive(pid) {
            if Instant::now() > deadline {
                return Err(ClusterError::StopTimedOut {
                    pid,
                    seconds: STOP_TIMEOUT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(StopOutcome::Stopped { pid })
    }

    /// Immediate shutdown without waiting for sessions, for throwaway clusters; blocking,
    /// so it can run at process exit. Returns once no process of the cluster is left.
    pub fn stop_immediately(&self) {
        let deadline = Instant::now() + ORPHAN_GRACE;
        if let Some(pid) = self.running_pid() {
            signal(pid, Signal::SIGQUIT);
            while is_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for pid in self.server_processes() {
            signal(pid, Signal::SIGKILL);
        }
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> Result<String, ClusterError> {
        let path = self.log_path();
        let mut file = std::fs::File::open(&path).map_err(io_error("read", &path))?;
        let len = file.metadata().map_err(io_error("read", &path))?.len();
        // Read backwards in growing windows until the window holds n whole lines.
        let mut window: u64 = 16 * 1024;
        loop {
            let start = len.saturating_sub(window);
            file.seek(SeekFrom::Start(start))
                .map_err(io_error("read", &path))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(io_error("read", &path))?;
            let text = String::from_utf8_lossy(&bytes);
            if start == 0 || text.lines().count() > n {
                return Ok(last_lines(&text, n));
            }
            window *= 4;
        }
    }

    /// Hand what the server writes to its log from now on to `sink`, until `stop` completes
    /// (`db logs -f`). A log that shrinks (truncated or replaced) is read from its start.
    pub async fn follow_log(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let path = self.log_path();
        let mut offset = path.metadata().map_or(0, |m| m.len());
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let len = path.metadata().map_or(0, |m| m.len());
            if len < offset {
                offset = 0;
            }
            if len > offset {
                let bytes = read_bytes_from(&path, offset).map_err(io_error("read", &path))?;
                offset += bytes.len() as u64;
                sink(&bytes).map_err(io_error("write out", &path))?;
            }
        }
    }

    /// Create the data directory if it is missing (given to the server's user when we run as
    /// root), and check that user can enter it.
    fn ensure_data_dir(&self) -> Result<(), ClusterError> {
        let data_dir = &self.spec.data_dir;
        let created = !data_dir.exists();
        std::fs::create_dir_all(data_dir).map_err(io_error("create", data_dir))?;
        if let Some(user) = &self.run_as {
            if created {
                user.chown(data_dir)?;
            }
            user.check_can_enter(data_dir)?;
        }
        Ok(())
    }

    /// An exclusive lock on the cluster, held while it starts or stops: a second `sambung`
    /// doing the same waits for the first, then finds the cluster running (or stopped),
    /// instead of racing it to initdb or the port. Released when the file is dropped.
    async fn lock(&self) -> Result<std::fs::File, ClusterError> {
        let path = self.spec.data_dir.join("cluster.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        let deadline = Instant::now() + START_TIMEOUT + STOP_TIMEOUT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(ClusterError::Busy { path });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_error("lock", &path)(e)),
            }
        }
    }

    /// Run `initdb` when the data directory holds no cluster yet. Returns whether it did.
    async fn ensure_initialized(&self) -> Result<bool, ClusterError> {
        let pgdata = self.pgdata();
        let version_file = pgdata.join("PG_VERSION");
        if version_file.exists() {
            let data_version = std::fs::read_to_string(&version_file)
                .map_err(io_error("read", &version_file))?
                .trim()
                .to_owned();
            if data_version != self.binaries.major().to_string() {
                return Err(ClusterError::VersionMismatch {
                    dir: pgdata,
                    data_version,
                    binaries_version: self.binaries.major(),
                });
            }
            return Ok(false);
        }

        let data_dir = &self.spec.data_dir;
        match std::fs::read_dir(&pgdata) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(ClusterError::NotACluster { dir: pgdata });
                }
            }
            Err(_) => std::fs::create_dir(&pgdata).map_err(io_error("create", &pgdata))?,
        }
        std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error("set permissions on", &pgdata))?;
        self.give_to_server_user(&pgdata)?;

        // initdb reads the superuser's password from a file only it can read.
        let secrets = ClusterSecrets::generate();
        let password_file = data_dir.join(".initdb-password");
        std::fs::write(&password_file, &secrets.superuser_password)
            .map_err(io_error("write", &password_file))?;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("set permissions on", &password_file))?;
        self.give_to_server_user(&password_file)?;

        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&pgdata)
            .arg("--username")
            .arg(SUPERUSER)
            .arg(format!("--pwfile={}", password_file.display()))
            .args([
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ]);
        if self.spec.throwaway {
            initdb.arg("--no-sync");
        }
        let output = initdb.output().await;
        let _ = std::fs::remove_file(&password_file);
        let output = output.map_err(|e| self.tool_error("initdb", e.to_string()))?;
        if !output.status.success() {
            // Leave no half-made cluster behind: the next start tries again from scratch.
            let _ = std::fs::remove_dir_all(&pgdata);
            return Err(self.tool_error(
                "initdb",
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }

        self.give_to_server_user(&secrets.write(&pgdata)?)?;
        let conf = pgdata.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(io_error("read", &conf))?;
        text.push_str("\n# Port, addresses and socket are set by sambung at every start.\ninclude_if_exists = 'sambung.conf'\n");
        std::fs::write(&conf, text).map_err(io_error("write", &conf))?;
        tracing::info!(pgdata = %pgdata.display(), "initialised a new PostgreSQL cluster");
        Ok(true)
    }

    /// Settings that follow the configuration, rewritten at every start so a changed
    /// `SAMBUNG_PG_PORT` takes effect; the user's own edits belong in postgresql.conf.
    fn write_runtime_settings(&self) -> Result<(), ClusterError> {
        let pgdata = self.pgdata();
        let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let hba = pgdata.join("sambung_hba.conf");
        std::fs::write(&hba, roles::hba_rules()).map_err(io_error("write", &hba))?;
        self.give_to_server_user(&hba)?;
        let mut text = format!(
            "# Written by sambung at every start: changes here are overwritten.\n\
             port = {}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = {}\n\
             unix_socket_permissions = 0700\n\
             hba_file = {}\n\
             password_encryption = 'scram-sha-256'\n",
            self.spec.port,
            quoted(&pgdata.display().to_string()),
            quoted(&hba.display().to_string()),
        );
        if self.spec.throwaway {
            text.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n");
        }
        let path = pgdata.join("sambung.conf");
        std::fs::write(&path, text).map_err(io_error("write", &path))?;
        self.give_to_server_user(&path)
    }

    /// Lock files whose process is no server of this cluster (dead, a zombie not yet reaped,
    /// or the pid reused): PostgreSQL itself takes a zombie for a running server and refuses
    /// to start, so they go: the pid file, and the socket's lock in the cluster's own socket
    /// directory. Called with the cluster lock held, no server running, no orphan left.
    fn remove_stale_lock_files(&self) -> Result<(), ClusterError> {
        let pgdata = self.pgdata();
        let mut stale = vec![pgdata.join("postmaster.pid")];
        if let Ok(entries) = std::fs::read_dir(&pgdata) {
            stale.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".s.PGSQL.") && n.ends_with(".lock"))
            }));
        }
        for path in stale {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "removed the lock file of a server that is gone")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("remove", &path)(e)),
            }
        }
        Ok(())
    }

    /// After a crash (the postmaster killed), its children exit once they notice; a new
    /// server cannot start while they hold the old shared memory.
    async fn wait_for_orphans(&self) {
        let deadline = Instant::now() + ORPHAN_GRACE;
        loop {
            let orphans = self.server_processes();
            if orphans.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                tracing::warn!(?orphans, "killing processes left by a crashed server");
                for pid in orphans {
                    signal(pid, Signal::SIGKILL);
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The roles and the application's database, as [`roles`] describes; a cluster made by an
    /// earlier `sambung` (its application role the bootstrap superuser) is upgraded first.
    async fn provision(
        &self,
        secrets: &ClusterSecrets,
        had_cluster: bool,
    ) -> Result<(), ClusterError> {
        let error = |source| ClusterError::Provision { source };
        let app_password = match (&self.spec.app_password, &secrets.app_password) {
            (Some(fixed), _) | (None, Some(fixed)) => fixed.clone(),
            (None, None) => {
                return Err(ClusterError::BadSecrets {
                    path: ClusterSecrets::path(&self.pgdata()),
                    missing: "the application role's password".into(),
                })
            }
        };
        let superuser = self.superuser_options(secrets);
        // A cluster of the earliest sambung: its application role, the bootstrap superuser,
        // still has the design's password.
        let legacy = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.spec.port)
            .username(&self.spec.app_user)
            .password(roles::LEGACY_APP_PASSWORD)
            .database("postgres");
        if had_cluster && roles::app_is_bootstrap_superuser(&legacy).await == Some(true) {
            roles::upgrade_legacy(
                &legacy,
                &superuser,
                &self.spec.app_user,
                &app_password,
                secrets,
            )
            .await
            .map_err(error)?;
        }
        roles::provision(&roles::Provisioning {
            superuser,
            app_user: &self.spec.app_user,
            app_password: &app_password,
            database: &self.spec.database,
            secrets,
        })
        .await
        .map_err(error)
    }

    pub(crate) fn give_to_server_user(&self, path: &Path) -> Result<(), ClusterError> {
        match &self.run_as {
            Some(user) => user.chown(path),
            None => Ok(()),
        }
    }

    /// A command for one of the server tools, run as the server user, from the data dir.
    pub(crate) fn command(&self, tool: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.binaries.tool(tool));
        command.current_dir(&self.spec.data_dir).kill_on_drop(true);
        // Our own connection settings must not leak into the server's tools.
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
        ] {
            command.env_remove(var);
        }
        if let Some(user) = &self.run_as {
            command
                .uid(user.uid)
                .gid(user.gid)
                .env("HOME", &self.spec.data_dir);
        }
        command
    }

    pub(crate) fn tool_error(&self, tool: &str, detail: String) -> ClusterError {
        ClusterError::Tool {
            tool: self.binaries.tool(tool).display().to_string(),
            detail,
        }
    }
}

/// Processes whose working directory is `dir` or below it (read from `/proc`; empty where
/// there is none or `dir` does not exist).
pub fn processes_working_in(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            cwd.starts_with(&dir).then_some(pid)
        })
        .collect()
}

fn ensure_port_free(port: u16) -> Result<(), ClusterError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(ClusterError::PortInUse { port })
        }
        Err(e) => Err(ClusterError::Io {
            action: "listen on 127.0.0.1 port",
            path: PathBuf::from(port.to_string()),
            source: e,
        }),
    }
}

fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // EPERM: alive, but someone else's.
    !matches!(kill(Pid::from_raw(raw), None), Err(Errno::ESRCH))
}

/// A live PostgreSQL server working in `pgdata`: a stale pid file may name a pid now reused
/// (by anything, or another cluster's server), or a server that died and was not yet reaped
/// (a zombie answers signals but serves nothing).
fn is_server_of(pid: u32, pgdata: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc.join("stat")) else {
        // No /proc (not Linux): trust the signal check.
        return !Path::new("/proc/self").exists();
    };
    // `pid (comm) state …`: the command may hold spaces and parentheses, the state follows
    // the last `)`.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    let comm = std::fs::read_to_string(proc.join("comm")).unwrap_or_default();
    if comm.trim() != "postgres" {
        return false;
    }
    // PostgreSQL works in its data directory; unreadable (another user's process) counts as
    // a match, since the name and the pid file already agree.
    match (std::fs::read_link(proc.join("cwd")), pgdata.canonicalize()) {
        (Ok(cwd), Ok(pgdata)) => cwd == pgdata,
        _ => true,
    }
}

fn signal(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

pub(crate) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ClusterError + 'a {
    move |source| ClusterError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn read_bytes_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<String> {
    Ok(String::from_utf8_lossy(&read_bytes_from(path, offset)?).into_owned())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb", 5), "a\nb\n");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn a_taken_port_is_detected() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(
            matches!(ensure_port_free(port), Err(ClusterError::PortInUse { port: p }) if p == port)
        );
    }
}
