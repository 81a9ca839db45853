//! Quotas (SPEC section 12): what an admin lets a user and a team use a day (tokens,
//! requests), how many replies a user may have running at once, and the caps of one reply.
//! The instance's defaults are settings ([`crate::instance::QuotaDefaults`]); an admin may set
//! other limits for one user or one team here. They live in PostgreSQL, so every server of an
//! instance agrees, and a call reads everything it needs in one statement before the
//! provider is called ([`check_turn`]; a chat's turn reads [`ALLOWANCE_SQL`] in its own).

use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::Caller;
use crate::chats::REPLY_STREAMING_SQL;
use crate::error::{DomainError, Result};
use crate::ids::{QuotaId, TeamId, UserId};
use crate::instance::QuotaDefaults;

/// Limits an admin set for one user or team; `None` leaves the instance's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuotaLimits {
    pub tokens_per_day: Option<i64>,
    pub requests_per_day: Option<i64>,
    /// Users only.
    pub running_generations: Option<i32>,
}

/// A user's or team's own limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Quota {
    pub id: QuotaId,
    pub user_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    /// The user's email or the team's name.
    pub subject: String,
    pub tokens_per_day: Option<i64>,
    pub requests_per_day: Option<i64>,
    pub running_generations: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// Whose quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSubject {
    User(UserId),
    Team(TeamId),
}

/// Set the limits of one user or team (all `None`: back to the defaults, the row removed).
pub async fn set_quota(pool: &PgPool, subject: QuotaSubject, limits: QuotaLimits) -> Result<()> {
    for (field, value) in [
        ("tokensPerDay", limits.tokens_per_day),
        ("requestsPerDay", limits.requests_per_day),
        (
            "runningGenerations",
            limits.running_generations.map(i64::from),
        ),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(DomainError::Invalid {
                field: "quota",
                reason: format!("{field} must be 0 or more (or null: the default)"),
            });
        }
    }
    let (user, team) = match subject {
        QuotaSubject::User(user) => (Some(user), None),
        QuotaSubject::Team(team) => {
            if limits.running_generations.is_some() {
                return Err(DomainError::invalid(
                    "runningGenerations",
                    "a limit of users, not teams",
                ));
            }
            (None, Some(team))
        }
    };
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "DELETE FROM quotas WHERE user_id = $1 OR team_id = $2",
        user as Option<UserId>,
        team as Option<TeamId>,
    )
    .execute(&mut *tx)
    .await?;
    if limits != QuotaLimits::default() {
        sqlx::query!(
            "INSERT INTO quotas (id, user_id, team_id, tokens_per_day, requests_per_day, running_generations)
             VALUES ($1, $2, $3, $4, $5, $6)",
            QuotaId::new() as QuotaId,
            user as Option<UserId>,
            team as Option<TeamId>,
            limits.tokens_per_day,
            limits.requests_per_day,
            limits.running_generations,
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                DomainError::not_found(if user.is_some() { "user" } else { "team" })
            }
            _ => DomainError::Database(e),
        })?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every user's and team's own limits.
pub async fn list_quotas(pool: &PgPool) -> Result<Vec<Quota>> {
    Ok(sqlx::query_as!(
        Quota,
        r#"SELECT q.id AS "id: QuotaId", q.user_id AS "user_id: UserId", q.team_id AS "team_id: TeamId",
                  coalesce(u.email, t.name) AS "subject!", q.tokens_per_day, q.requests_per_day,
                  q.running_generations, q.updated_at
             FROM quotas q LEFT JOIN users u ON u.id = q.user_id LEFT JOIN teams t ON t.id = q.team_id
            ORDER BY q.team_id IS NOT NULL, 4"#
    )
    .fetch_all(pool)
    .await?)
}

/// The caps of one reply, as the instance's settings say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCaps {
    pub max_output_tokens: Option<i64>,
    pub max_seconds: Option<i64>,
    pub max_bytes: Option<i64>,
}

/// What a turn may use: the replies it may have running at once (counted again under a lock
/// when the turn is stored), the caps of its reply, and whether users' own keys may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub running_generations: Option<i64>,
    pub reply: ReplyCaps,
    pub personal_keys: bool,
}

/// When a day's quota starts again: the next midnight, UTC.
pub fn next_reset(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + Duration::days(1))
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// What a turn's allowance is worked out from: the settings, the user's and the team's own
/// limits, what they used today (UTC) and the replies the user has running.
#[derive(Debug, Deserialize, sqlx::FromRow)]
pub struct AllowanceRow {
    defaults: Option<serde_json::Value>,
    personal_keys: Option<serde_json::Value>,
    user_tokens: Option<i64>,
    user_requests: Option<i64>,
    user_running: Option<i32>,
    team_id: Option<TeamId>,
    team_tokens: Option<i64>,
    team_requests: Option<i64>,
    user_tokens_used: i64,
    user_requests_used: i64,
    team_tokens_used: i64,
    team_requests_used: i64,
    running: i64,
}

/// [`check_turn`]'s query: one [`AllowanceRow`], on the common tables `me`
/// ([`Caller::with_me`]) and `team` (`id`: the team whose allowance is spent too; at most one
/// row, none or NULL for none). What the user and the team used today is read once each.
pub static ALLOWANCE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (SELECT value FROM instance_settings WHERE key = 'quotas') AS defaults,
                  (SELECT value FROM instance_settings WHERE key = 'personalKeys') AS personal_keys,
                  uq.tokens_per_day AS user_tokens, uq.requests_per_day AS user_requests,
                  uq.running_generations AS user_running,
                  team.id AS team_id,
                  tq.tokens_per_day AS team_tokens, tq.requests_per_day AS team_requests,
                  by_user.tokens AS user_tokens_used, by_user.requests AS user_requests_used,
                  by_team.tokens AS team_tokens_used, by_team.requests AS team_requests_used,
                  (SELECT count(*) FROM messages m
                    WHERE {REPLY_STREAMING_SQL} AND m.metadata->>'askedBy' = me.id::text) AS running
             FROM me
             CROSS JOIN (SELECT (now() AT TIME ZONE 'UTC')::date AS day) today
             LEFT JOIN team ON true
             LEFT JOIN quotas uq ON uq.user_id = me.id
             LEFT JOIN quotas tq ON tq.team_id = team.id
             CROSS JOIN LATERAL ({used} WHERE u.user_id = me.id AND u.day = today.day) by_user
             CROSS JOIN LATERAL ({used} WHERE u.team_id = team.id AND u.day = today.day) by_team",
        used = "SELECT coalesce(sum(u.input_tokens + u.output_tokens), 0)::bigint AS tokens,
                       coalesce(sum(u.requests), 0)::bigint AS requests
                  FROM usage_daily u"
    )
});

/// What the caller may use for a call spending their allowance and `team`'s (outside a chat,
/// the OpenAI-compatible endpoint: the model's team, if any), or the quota it is over
/// ([`DomainError::QuotaExceeded`]). One statement: the settings, the user's and the team's
/// own limits, what they used today (UTC) and the replies the user has running. (A turn in a
/// chat reads the same beside the chat, the chat's team spending.) For a session `caller` the
/// statement does not accept: nobody's, nothing used.
pub async fn check_turn(
    pool: &PgPool,
    caller: impl Into<Caller>,
    team: Option<TeamId>,
) -> Result<Allowance> {
    static CHECK_TURN: LazyLock<String> =
        LazyLock::new(|| Caller::with_me(&["team AS (SELECT $4::uuid AS id)"], &ALLOWANCE_SQL));
    let row: AllowanceRow = caller
        .into()
        .bind(sqlx::query_as(&CHECK_TURN))
        .bind(team)
        .fetch_one(pool)
        .await?;
    allowance(row)
}

/// The allowance `row` gives, or the quota it is over.
pub fn allowance(row: AllowanceRow) -> Result<Allowance> {
    let defaults: QuotaDefaults = row
        .defaults
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let personal_keys = row.personal_keys.and_then(|v| v.as_bool()).unwrap_or(true);
    let resets_at = Some(next_reset(Utc::now()));
    let over = |limit: &'static str, allowed: Option<i64>, used: i64| -> Result<()> {
        match allowed {
            Some(allowed) if used >= allowed => Err(DomainError::QuotaExceeded {
                limit,
                allowed,
                resets_at,
            }),
            _ => Ok(()),
        }
    };
    over(
        "userTokensPerDay",
        row.user_tokens.or(defaults.user_tokens_per_day),
        row.user_tokens_used,
    )?;
    over(
        "userRequestsPerDay",
        row.user_requests.or(defaults.user_requests_per_day),
        row.user_requests_used,
    )?;
    if row.team_id.is_some() {
        over(
            "teamTokensPerDay",
            row.team_tokens.or(defaults.team_tokens_per_day),
            row.team_tokens_used,
        )?;
        over(
            "teamRequestsPerDay",
            row.team_requests.or(defaults.team_requests_per_day),
            row.team_requests_used,
        )?;
    }
    let running_generations = row
        .user_running
        .map(i64::from)
        .or(defaults.running_generations);
    running_over(running_generations, row.running)?;
    Ok(Allowance {
        running_generations,
        reply: ReplyCaps {
            max_output_tokens: defaults.reply_max_output_tokens,
            max_seconds: defaults.reply_max_seconds,
            max_bytes: defaults.reply_max_bytes,
        },
        personal_keys,
    })
}

/// Refuse a turn when `running` replies are as many as `allowed`.
pub fn running_over(allowed: Option<i64>, running: i64) -> Result<()> {
    match allowed {
        Some(allowed) if running >= allowed => Err(DomainError::QuotaExceeded {
            limit: "runningGenerations",
            allowed,
            resets_at: None,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_resets_at_the_next_midnight_utc() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            next_reset(at("2026-12-04T17:00:00Z")),
            at("2026-12-05T00:00:00Z")
        );
        assert_eq!(
            next_reset(at("2026-12-31T00:00:00Z")),
            at("2027-01-01T00:00:00Z")
        );
    }
}
