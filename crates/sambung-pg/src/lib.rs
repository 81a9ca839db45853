//! The managed local PostgreSQL cluster: SambungChat's embedded default database (the design's
//! `docker compose` service), run from the PostgreSQL server binaries installed on the machine.
//!
//! It finds the binaries ([`PgBinaries`]), initialises a cluster on first use, starts it on
//! 127.0.0.1 with password (scram) authentication, stops it, and reads its log. When run by
//! root, the server runs as an unprivileged system user, since PostgreSQL refuses root.

mod binaries;
mod cluster;
pub mod fetch;
mod os_user;
pub mod replica;
pub mod roles;

use std::path::PathBuf;

pub use binaries::{PgBinaries, SearchPlaces, MIN_MAJOR_VERSION};
pub use cluster::{processes_working_in, Cluster, ClusterSpec, StartOutcome, StopOutcome};
pub use os_user::OsUser;

/// What can go wrong managing the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no PostgreSQL server binaries found (searched: {searched})")]
    BinariesNotFound { searched: String },
    #[error("SAMBUNG_PG_BIN={} does not hold the PostgreSQL server binaries (missing: {missing})", dir.display())]
    BadBinDir { dir: PathBuf, missing: String },
    #[error("PostgreSQL in {} is too old ({version}); sambung needs PostgreSQL {MIN_MAJOR_VERSION} or newer", dir.display())]
    TooOld { dir: PathBuf, version: String },
    #[error("the cluster in {} was created by PostgreSQL {data_version}, but the binaries are version {binaries_version}", dir.display())]
    VersionMismatch {
        dir: PathBuf,
        data_version: String,
        binaries_version: u32,
    },
    #[error("system user {user:?} does not exist; run as root, sambung runs the PostgreSQL server as that unprivileged user")]
    NoSuchOsUser { user: String },
    #[error("system user {user:?} cannot enter {}", dir.display())]
    Unreachable { user: String, dir: PathBuf },
    #[error("{} exists but is not a PostgreSQL cluster", dir.display())]
    NotACluster { dir: PathBuf },
    #[error("another sambung has been starting or stopping this cluster for too long (lock: {})", path.display())]
    Busy { path: PathBuf },
    #[error("port {port} on 127.0.0.1 is already in use by another process")]
    PortInUse { port: u16 },
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error("{0}")]
    Replica(String),
    #[error("PostgreSQL did not start{}", log_excerpt(.log_tail))]
    StartFailed { log_tail: String },
    #[error("PostgreSQL did not stop within {seconds} s (pid {pid})")]
    StopTimedOut { pid: u32, seconds: u64 },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the newest pg_dump found ({found}, in {}) is older than the server ({server}): it cannot dump it", dir.display())]
    ClientTooOld {
        dir: PathBuf,
        found: u32,
        server: u32,
    },
    #[error("no PostgreSQL client tools (pg_dump, pg_restore, pg_basebackup) found for a version {server} server")]
    ClientToolsNotFound { server: u32 },
    #[error("cannot set up the cluster's roles and database: {source}")]
    Provision { source: sqlx::Error },
    #[error("{} is unusable ({missing} is missing)", path.display())]
    BadSecrets { path: PathBuf, missing: String },
}

fn log_excerpt(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; the server log ends with:\n{}", tail.trim_end())
    }
}

impl sambung_config::Hint for ClusterError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ClusterError::BinariesNotFound { .. } => "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`), set SAMBUNG_PG_BIN to its bin directory, or set DATABASE_URL to use another PostgreSQL".into(),
            ClusterError::BadBinDir { .. } => "point SAMBUNG_PG_BIN at the directory holding `postgres` and `initdb` (e.g. /usr/lib/postgresql/15/bin), or unset it to search automatically".into(),
            ClusterError::TooOld { .. } => format!("install PostgreSQL {MIN_MAJOR_VERSION} or newer and point SAMBUNG_PG_BIN at it"),
            ClusterError::VersionMismatch { .. } => "point SAMBUNG_PG_BIN at the matching PostgreSQL version, or upgrade the cluster with pg_upgrade".into(),
            ClusterError::NoSuchOsUser { user } => format!("create it (`useradd --system {user}`) or set SAMBUNG_PG_USER to an existing unprivileged user"),
            ClusterError::Unreachable { user, .. } => format!("put SAMBUNG_DATA_DIR somewhere {user} can reach, or allow it in (chmod o+x on the directories above)"),
            ClusterError::NotACluster { .. } => "move it away, or set SAMBUNG_DATA_DIR to another directory".into(),
            ClusterError::PortInUse { .. } => "stop what uses it, or set SAMBUNG_PG_PORT to a free port".into(),
            ClusterError::Busy { .. } => "wait for it to finish, or stop it; the lock goes with its process".into(),
            ClusterError::StartFailed { .. } => "see the whole log with `sambung db logs`".into(),
            ClusterError::StopTimedOut { .. } => "see `sambung db logs`; the server may still be shutting down".into(),
            ClusterError::ClientTooOld { server, .. } | ClusterError::ClientToolsNotFound { server } => format!("install the client tools of PostgreSQL {server} or newer (`scripts/fetch-postgres 18` brings them), or point SAMBUNG_PG_BIN at them"),
            ClusterError::Provision { .. } => "the cluster's superuser connects through the socket in the data directory with the password in cluster.secrets: if that file was lost, set a new password as the server's system user (`ALTER ROLE sambung_superuser PASSWORD …` in single-user mode) and write it there".into(),
            ClusterError::BadSecrets { path, .. } => format!("restore {} from a backup of the data directory, or remove it from a cluster whose roles sambung should set up again", path.display()),
            ClusterError::Tool { .. } | ClusterError::Io { .. } | ClusterError::Replica(_) => return None,
        })
    }
}
