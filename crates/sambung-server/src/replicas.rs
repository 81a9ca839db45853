//! Reads that may lag go to streaming replicas (`DATABASE_READ_URL`): chat lists, searches,
//! the prompt library and shared chats. Each replica is checked twice a second; one that does
//! not answer, is no standby, or lags more than `DATABASE_READ_MAX_LAG` is skipped until it
//! catches up, and the reads go to the primary. Everything else (writes, access decisions,
//! a caller's own reads after a write) always goes to the primary.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::state::AppState;

/// How often each replica's lag is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// What the last check of a replica found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaHealth {
    /// `ok`, `lagging`, `down` or `unchecked`.
    pub status: &'static str,
    /// Seconds behind the primary, when known.
    pub lag_seconds: Option<f64>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub struct Replica {
    /// Its URL without the password, for `/health` and logs.
    pub address: String,
    pub pool: PgPool,
    health: Mutex<ReplicaHealth>,
}

impl Replica {
    pub fn new(address: String, pool: PgPool) -> Replica {
        Replica {
            address,
            pool,
            health: Mutex::new(ReplicaHealth {
                status: "unchecked",
                lag_seconds: None,
                reason: None,
            }),
        }
    }

    pub fn health(&self) -> ReplicaHealth {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn usable(&self) -> bool {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).status == "ok"
    }
}

/// The replicas and the turn among them.
#[derive(Default)]
pub struct Replicas {
    pub list: Vec<Replica>,
    next: AtomicUsize,
}

impl Replicas {
    pub fn new(list: Vec<Replica>) -> Replicas {
        Replicas {
            list,
            next: AtomicUsize::new(0),
        }
    }

    /// Whether any replica is configured (usable now or not).
    pub fn configured(&self) -> bool {
        !self.list.is_empty()
    }

    /// A usable replica's pool, taking turns; `None` when none is.
    pub fn pick(&self) -> Option<&PgPool> {
        let count = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.list[(start + i) % count])
            .find(|r| r.usable())
            .map(|r| &r.pool)
    }
}

/// Check every replica, for as long as the server runs.
pub async fn watch(state: Arc<AppState>) {
    if state.replicas.list.is_empty() {
        return;
    }
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    loop {
        ticks.tick().await;
        for replica in &state.replicas.list {
            let checked = tokio::time::timeout(
                Duration::from_secs(1),
                sambung_db::replica_lag(&replica.pool),
            )
            .await
            .unwrap_or_else(|_| Err("no answer within 1 s".into()));
            let health = match checked {
                Ok(Some(lag)) if lag <= state.read_max_lag.as_secs_f64() => ReplicaHealth {
                    status: "ok",
                    lag_seconds: Some(lag),
                    reason: None,
                },
                Ok(lag) => ReplicaHealth {
                    status: "lagging",
                    lag_seconds: lag,
                    reason: None,
                },
                Err(reason) => ReplicaHealth {
                    status: "down",
                    lag_seconds: None,
                    reason: Some(reason),
                },
            };
            let mut current = replica.health.lock().unwrap_or_else(|e| e.into_inner());
            if current.status != health.status {
                tracing::info!(replica = %replica.address, status = health.status, "replica");
            }
            *current = health;
        }
    }
}
