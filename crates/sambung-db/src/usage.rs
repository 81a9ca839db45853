//! What replies used (SPEC section 12): tokens, requests, time and cost per day, user, team and
//! model in `usage_daily`, added to by each reply's own finishing statement (the chat turn's
//! store, `sambung-chat`), read here: summed over a range of days and grouped by day, model,
//! team or user.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use crate::error::{DomainError, Result};
use crate::ids::UserId;

/// How usage is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Model,
    Team,
    User,
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<GroupBy> {
        Some(match text {
            "day" => GroupBy::Day,
            "model" => GroupBy::Model,
            "team" => GroupBy::Team,
            "user" => GroupBy::User,
            _ => return None,
        })
    }
}

/// The longest range one question covers.
pub const MAX_DAYS: i64 = 366;
/// The most groups one answer holds (by user or model, the largest first).
pub const MAX_GROUPS: i64 = 1000;

/// One group's sums. `key` identifies it (a date, a model's provider and name, a team's or
/// user's id; `personal` for chats of no team); `label` is for people.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UsageRow {
    pub key: String,
    pub label: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub duration_ms: i64,
    pub cost: f64,
}

/// Usage from `from` to `to` (both included, UTC days) summed by `group_by`: of `user` only,
/// or of everyone (for admins). Days come in order; other groups by tokens, largest first.
pub async fn usage(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    group_by: GroupBy,
    user: Option<UserId>,
) -> Result<Vec<UsageRow>> {
    if to < from || (to - from).num_days() >= MAX_DAYS {
        return Err(DomainError::invalid(
            "to",
            format!("on or after from, at most {MAX_DAYS} days"),
        ));
    }
    let (key, label, join) = match group_by {
        GroupBy::Day => ("u.day::text", "u.day::text", ""),
        GroupBy::Model => (
            "u.provider || '/' || u.model",
            "u.model || ' (' || u.provider || ')'",
            "",
        ),
        GroupBy::Team => (
            "CASE WHEN u.team_id = '00000000-0000-0000-0000-000000000000' THEN 'personal' ELSE u.team_id::text END",
            "CASE WHEN u.team_id = '00000000-0000-0000-0000-000000000000' THEN 'Personal chats'
                  ELSE coalesce(t.name, 'a deleted team') END",
            "LEFT JOIN teams t ON t.id = u.team_id",
        ),
        GroupBy::User => (
            "u.user_id::text",
            "coalesce(p.name || ' <' || p.email || '>', 'a deleted user')",
            "LEFT JOIN users p ON p.id = u.user_id",
        ),
    };
    let order = match group_by {
        GroupBy::Day => "key",
        _ => "sum(u.input_tokens + u.output_tokens) DESC, key",
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {key} AS key, min({label}) AS label, sum(u.requests)::bigint AS requests,
                sum(u.input_tokens)::bigint AS input_tokens, sum(u.output_tokens)::bigint AS output_tokens,
                sum(u.duration_ms)::bigint AS duration_ms, sum(u.cost)::float8 AS cost
           FROM usage_daily u {join}
          WHERE u.day BETWEEN $1 AND $2 AND ($3::uuid IS NULL OR u.user_id = $3)
          GROUP BY 1 ORDER BY {order} LIMIT {MAX_GROUPS}"
    ))
    .bind(from)
    .bind(to)
    .bind(user)
    .fetch_all(pool)
    .await?)
}
