//! The connection pool: the design's postgres.js settings (max 10, idle 20 s, connect 10 s),
//! and connection failures turned into errors a user can act on.

use sambung_config::{DatabaseUrl, PoolConfig};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

/// Why no connection to PostgreSQL could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to PostgreSQL at {address}: connection refused")]
    Refused { address: String, managed: bool },
    #[error("cannot connect to PostgreSQL at {address}: no answer within {seconds} s")]
    TimedOut { address: String, seconds: u64 },
    #[error("PostgreSQL at {address} refused the login of user {user:?}: {message}")]
    Authentication {
        address: String,
        user: String,
        message: String,
    },
    #[error("PostgreSQL at {address} has no database {database:?}")]
    NoDatabase { address: String, database: String },
    #[error("cannot connect to PostgreSQL at {address}: {message}")]
    Other { address: String, message: String },
}

impl sambung_config::Hint for ConnectError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ConnectError::Refused { managed: true, .. } => {
                "is it running? try `sambung db start`".into()
            }
            ConnectError::Refused { managed: false, .. } => {
                "is it running? check the host and port in DATABASE_URL".into()
            }
            ConnectError::TimedOut { .. } => {
                "check the host in DATABASE_URL and the network; DATABASE_CONNECT_TIMEOUT sets the wait".into()
            }
            ConnectError::Authentication { .. } => {
                "check the user and password in DATABASE_URL".into()
            }
            ConnectError::NoDatabase { .. } => {
                "create it (`createdb`), or fix the database name in DATABASE_URL; `sambung db start` creates the managed one".into()
            }
            ConnectError::Other { .. } => return None,
        })
    }
}

/// Connect a pool to `url`. One connection is made first so that a failure is reported at
/// once, with its real cause (a pool would retry until its timeout and only say "timed out").
/// `managed` says whether `url` is the managed cluster, which decides the hint.
pub async fn connect(
    url: &DatabaseUrl,
    settings: &PoolConfig,
    managed: bool,
) -> Result<PgPool, ConnectError> {
    let options = url.connect_options();
    let address = url.address();
    let probe = tokio::time::timeout(
        settings.connect_timeout,
        PgConnection::connect_with(&options),
    )
    .await;
    match probe {
        Err(_elapsed) => {
            return Err(ConnectError::TimedOut {
                address,
                seconds: settings.connect_timeout.as_secs(),
            })
        }
        Ok(Err(e)) => return Err(explain(e, &address, url, managed)),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
    }
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .idle_timeout(settings.idle_timeout)
        .acquire_timeout(settings.connect_timeout)
        .connect_lazy_with(options))
}

fn explain(error: sqlx::Error, address: &str, url: &DatabaseUrl, managed: bool) -> ConnectError {
    let address = address.to_owned();
    let options = url.connect_options();
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ConnectError::Refused { address, managed }
        }
        sqlx::Error::Database(e) => match e.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01" | "28000") => ConnectError::Authentication {
                address,
                user: options.get_username().to_owned(),
                message: e.message().to_owned(),
            },
            // invalid_catalog_name
            Some("3D000") => ConnectError::NoDatabase {
                address,
                database: options.get_database().unwrap_or_default().to_owned(),
            },
            _ => ConnectError::Other {
                address,
                message: e.message().to_owned(),
            },
        },
        other => ConnectError::Other {
            address,
            message: other.to_string(),
        },
    }
}

/// How far a streaming replica is behind its primary, in seconds: 0 while it has replayed all
/// it received; otherwise the age of the last change it replayed (`None`: nothing replayed
/// yet). `Err` names what makes it no replica to read from.
pub async fn replica_lag(pool: &PgPool) -> Result<Option<f64>, String> {
    let (standby, lag): (bool, Option<f64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(),
                CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                     ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    if !standby {
        // A promoted replica takes writes of its own: reading from it would mix two histories.
        return Err("not a standby (promoted?)".into());
    }
    Ok(lag)
}
