//! Which servers are alive, told by PostgreSQL itself. Each server holds a session-level
//! advisory lock, its lease, on a connection of its own for as long as it runs; a reply being
//! written carries its server's lease number (`metadata.server`). When a server dies its
//! connection closes and PostgreSQL releases the lock, so any server can tell at once that
//! the reply will never end and mark it `incomplete`: no heartbeat to tune, no clock to trust.

use std::sync::LazyLock;
use std::time::Duration;

use sambung_db::chats::REPLY_STREAMING_SQL;
use sambung_db::{ChatId, Result, UserId};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

use crate::ReplyStatus;

/// The first key of every lease lock ("SBNG"), so leases never meet other advisory locks.
pub const LEASE_SPACE: i32 = 0x5342_4e47;

/// SQL true when the reply `m` (a `messages` row) is written by a live server: its lease lock
/// is held (`classid` is [`LEASE_SPACE`]). Compared as text, so no metadata can make a cast
/// fail.
pub(crate) fn writer_alive() -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = {LEASE_SPACE} AND l.objid::text = m.metadata->>'server')"
    )
}

/// This server's lease: a lock held on a connection of its own, opened beside the request
/// pool (never taken from it: a pool of one would have nothing left to serve with).
pub struct ServerLease {
    number: i32,
    connection: Mutex<PgConnection>,
}

impl std::fmt::Debug for ServerLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLease")
            .field("number", &self.number)
            .finish()
    }
}

/// A connection to `pool`'s database that is not one of the pool's, made within the pool's
/// own time for a connection.
pub(crate) async fn own_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = pool.connect_options();
    tokio::time::timeout(
        pool.options().get_acquire_timeout(),
        PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no connection to PostgreSQL in time",
        ))
    })?
}

async fn try_lock(connection: &mut PgConnection, number: i32) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(LEASE_SPACE)
        .bind(number)
        .fetch_one(connection)
        .await?)
}

impl ServerLease {
    /// Take a free lease number, then mark incomplete every reply its server left unfinished
    /// (those of an earlier holder of this number first: they would look alive now).
    pub async fn acquire(pool: &PgPool) -> Result<ServerLease> {
        let mut connection = own_connection(pool).await?;
        let number = loop {
            // Positive, so it reads the same as pg_locks' unsigned objid.
            let number = (rand::random::<u32>() & 0x7fff_ffff).max(1) as i32;
            if try_lock(&mut connection, number).await? {
                break number;
            }
        };
        mark_orphans(&mut connection, Orphans::OfServer(number)).await?;
        let lease = ServerLease {
            number,
            connection: Mutex::new(connection),
        };
        sweep(pool).await?;
        Ok(lease)
    }

    /// The number replies written by this server carry.
    pub fn number(&self) -> i32 {
        self.number
    }

    /// Keep the lease while the server runs: check its connection every `every`, take the
    /// lock again on a new connection when it was lost (the database restarted), and mark
    /// other servers' orphaned replies incomplete. Runs until dropped.
    pub async fn keep(&self, pool: &PgPool, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let mut connection = self.connection.lock().await;
            let held = sqlx::query("SELECT 1")
                .execute(&mut *connection)
                .await
                .is_ok();
            if !held {
                match own_connection(pool).await {
                    Ok(fresh) => {
                        *connection = fresh;
                        match try_lock(&mut connection, self.number).await {
                            Ok(true) => tracing::warn!("the server lease was lost and taken again"),
                            Ok(false) => tracing::error!(
                                number = self.number,
                                "the server lease was taken by another server"
                            ),
                            Err(e) => tracing::warn!(error = %e, "cannot take the server lease"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reach the database for the lease"),
                }
            }
            drop(connection);
            if let Err(e) = sweep(pool).await {
                tracing::warn!(error = %e, "cannot mark orphaned replies");
            }
        }
    }
}

/// Which streaming replies are orphans.
enum Orphans {
    /// Those of an earlier holder of this lease number.
    OfServer(i32),
    /// Every one whose server is gone.
    WhoseServerIsGone,
}

/// Mark `which` orphaned replies incomplete; how many there were.
async fn mark_orphans(conn: &mut PgConnection, which: Orphans) -> Result<u64> {
    let (picked, server) = match which {
        Orphans::OfServer(number) => ("m.metadata->>'server' = $2".to_owned(), Some(number)),
        Orphans::WhoseServerIsGone => (format!("NOT {}", writer_alive()), None),
    };
    let sql = format!(
        "UPDATE messages m SET metadata = m.metadata ||
                jsonb_build_object('status', $1::text, 'error',
                                   'the server writing this reply stopped before it ended')
          WHERE {REPLY_STREAMING_SQL} AND {picked}"
    );
    let mut query = sqlx::query(&sql).bind(ReplyStatus::Incomplete.as_str());
    if let Some(number) = server {
        query = query.bind(number.to_string());
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// Mark incomplete every reply still streaming whose server is gone; how many were.
pub async fn sweep(pool: &PgPool) -> Result<u64> {
    mark_orphans(&mut *pool.acquire().await?, Orphans::WhoseServerIsGone).await
}

/// Whether a reply is being written in `chat` by a live server, and how many replies `actor`
/// asked for are being written by live servers anywhere; the chat's replies left by a dead
/// server are marked incomplete on the way (one statement, inside a turn's transaction).
pub(crate) async fn chat_busy(
    conn: &mut PgConnection,
    chat: ChatId,
    actor: UserId,
) -> Result<(bool, i64)> {
    Ok(sqlx::query_as(&CHAT_BUSY_SQL)
        .bind(chat)
        .bind(ReplyStatus::Incomplete.as_str())
        .bind(actor)
        .fetch_one(conn)
        .await?)
}

/// [`chat_busy`]'s statement: `$1` the chat, `$2` the status of an orphan, `$3` the actor.
pub(crate) static CHAT_BUSY_SQL: LazyLock<String> = LazyLock::new(|| {
    let alive = writer_alive();
    format!(
        "WITH orphaned AS (
           UPDATE messages m SET metadata = m.metadata ||
                  jsonb_build_object('status', $2::text, 'error',
                                     'the server writing this reply stopped before it ended')
            WHERE {REPLY_STREAMING_SQL} AND m.chat_id = $1 AND NOT {alive})
         SELECT EXISTS (SELECT 1 FROM messages m
                         WHERE m.chat_id = $1 AND {REPLY_STREAMING_SQL} AND {alive}),
                (SELECT count(*) FROM messages m
                  WHERE {REPLY_STREAMING_SQL} AND m.metadata->>'askedBy' = $3::text AND {alive})"
    )
});
