//! Streaming standbys of a managed cluster (SPEC section 11): made with `pg_basebackup -R`
//! through a replication slot of their own (so the primary keeps the WAL they still need),
//! then started and stopped like any managed cluster, in their own data directory on their
//! own port; promoted for failover.

use std::os::unix::fs::PermissionsExt;

use sqlx::{Connection, PgConnection};

use crate::cluster::{io_error, Cluster};
use crate::roles::REPLICATION_USER;
use crate::ClusterError;

/// The replication slot of the standby on `port`.
pub fn slot_name(port: u16) -> String {
    format!("sambung_standby_{port}")
}

/// Where a cluster stands in replication.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replication {
    /// `primary` or `standby`.
    pub role: &'static str,
    /// A standby: how far behind its primary's last replayed change is, in seconds (`None`
    /// before anything was replayed); whether replay is paused.
    pub replay_lag_seconds: Option<f64>,
    pub replay_paused: bool,
    /// A primary: its replication slots.
    pub slots: Vec<Slot>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Slot {
    pub name: String,
    /// A standby is connected through it.
    pub active: bool,
    /// WAL the primary keeps for it, in bytes.
    pub retained_bytes: Option<i64>,
}

impl Cluster {
    /// A standby: it has `standby.signal` (until promoted).
    pub fn is_standby(&self) -> bool {
        self.pgdata().join("standby.signal").exists()
    }

    /// Make `standby` (a cluster spec with its own data directory and port, nothing there
    /// yet) a streaming standby of this running cluster, through a new replication slot, and
    /// start it. Returns the slot's name.
    pub async fn make_standby(&self, standby: &Cluster) -> Result<String, ClusterError> {
        if self.running_pid().is_none() {
            return Err(ClusterError::Replica(
                "the primary is not running: start it with `sambung db start`".into(),
            ));
        }
        let pgdata = standby.pgdata();
        if pgdata.join("PG_VERSION").exists() {
            return Err(ClusterError::Replica(format!(
                "{} holds a cluster already; a standby needs a new directory",
                pgdata.display()
            )));
        }
        let data_dir = &standby.spec().data_dir;
        std::fs::create_dir_all(&pgdata).map_err(io_error("create", &pgdata))?;
        std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error("set permissions on", &pgdata))?;
        standby.give_to_server_user(data_dir)?;
        standby.give_to_server_user(&pgdata)?;
        let slot = slot_name(standby.spec().port);
        let secrets = self.secrets()?;
        // Over loopback, so the standby's primary_conninfo (written by -R) reaches the primary
        // from any directory.
        let conninfo = format!(
            "host=127.0.0.1 port={} user={REPLICATION_USER} dbname=replication",
            self.spec().port
        );
        let output = standby
            .command("pg_basebackup")
            .arg("--pgdata")
            .arg(&pgdata)
            .args([
                "--format=plain",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--write-recovery-conf",
                "--create-slot",
                "--no-password",
            ])
            .arg(format!("--slot={slot}"))
            .arg(format!("--dbname={conninfo}"))
            .env("PGPASSWORD", &secrets.replication_password)
            .output()
            .await
            .map_err(|e| self.tool_error("pg_basebackup", e.to_string()))?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&pgdata);
            return Err(self.tool_error(
                "pg_basebackup",
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        standby.start().await?;
        Ok(slot)
    }

    /// Promote this standby to a primary (failover: its primary is gone), waiting until it
    /// accepts writes.
    pub async fn promote(&self) -> Result<(), ClusterError> {
        if self.running_pid().is_none() {
            return Err(ClusterError::Replica(
                "this standby is not running: start it with `sambung db start`".into(),
            ));
        }
        if !self.is_standby() {
            return Err(ClusterError::Replica(
                "this cluster is a primary already".into(),
            ));
        }
        let output = self
            .command("pg_ctl")
            .arg("promote")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-w", "-s"])
            .output()
            .await
            .map_err(|e| self.tool_error("pg_ctl", e.to_string()))?;
        if !output.status.success() {
            return Err(self.tool_error(
                "pg_ctl promote",
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        Ok(())
    }

    /// Where the running cluster stands in replication (asked as the application role).
    pub async fn replication(&self) -> Result<Replication, ClusterError> {
        let error = |e: sqlx::Error| ClusterError::Replica(format!("cannot ask the server: {e}"));
        let mut conn = PgConnection::connect_with(&self.connect_options("postgres")?)
            .await
            .map_err(error)?;
        let (standby, lag, paused): (bool, Option<f64>, bool) = sqlx::query_as(
            "SELECT pg_is_in_recovery(),
                    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
                    pg_is_in_recovery() AND pg_is_wal_replay_paused()",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(error)?;
        let slots: Vec<(String, bool, Option<i64>)> = if standby {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT slot_name::text, active,
                        pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
                   FROM pg_replication_slots ORDER BY slot_name",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(error)?
        };
        let _ = conn.close().await;
        Ok(Replication {
            role: if standby { "standby" } else { "primary" },
            replay_lag_seconds: lag.filter(|_| standby),
            replay_paused: paused,
            slots: slots
                .into_iter()
                .map(|(name, active, retained_bytes)| Slot {
                    name,
                    active,
                    retained_bytes,
                })
                .collect(),
        })
    }
}
