//! The audit log (SPEC section 12): security and administrative events, with who did it (and
//! the email they had then), when, from which address, what, and on what; never a secret (no
//! password, token or key is ever put in `detail`). Kept for the retention the settings say.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::error::{DomainError, Result};
use crate::ids::{AuditEventId, UserId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignUp,
    SignIn,
    SignInFailed,
    SignOut,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    EmailVerified,
    SessionRevoked,
    SessionsRevoked,
    AccountDeleted,
    TwoFactorChanged,
    UserCreated,
    UserUpdated,
    UserApproved,
    RoleChanged,
    UserBanned,
    UserUnbanned,
    PasswordSet,
    UserRemoved,
    ImpersonationStarted,
    ImpersonationStopped,
    KeyAdded,
    KeyRemoved,
    ConnectionAdded,
    ConnectionChanged,
    ConnectionRemoved,
    ModelAdded,
    ModelChanged,
    ModelRemoved,
    ChatShared,
    ChatUnshared,
    TeamRoleChanged,
    SettingsChanged,
    QuotaChanged,
    InviteCreated,
    InviteRevoked,
    TokenCreated,
    TokenRevoked,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::SignUp => "user.sign-up",
            Action::SignIn => "user.sign-in",
            Action::SignInFailed => "user.sign-in-failed",
            Action::SignOut => "user.sign-out",
            Action::PasswordChanged => "user.password-changed",
            Action::PasswordResetRequested => "user.password-reset-requested",
            Action::PasswordReset => "user.password-reset",
            Action::EmailVerified => "user.email-verified",
            Action::SessionRevoked => "user.session-revoked",
            Action::SessionsRevoked => "user.sessions-revoked",
            Action::AccountDeleted => "user.deleted",
            Action::TwoFactorChanged => "user.two-factor-changed",
            Action::UserCreated => "admin.user-created",
            Action::UserUpdated => "admin.user-updated",
            Action::UserApproved => "admin.user-approved",
            Action::RoleChanged => "admin.role-changed",
            Action::UserBanned => "admin.user-banned",
            Action::UserUnbanned => "admin.user-unbanned",
            Action::PasswordSet => "admin.password-set",
            Action::UserRemoved => "admin.user-removed",
            Action::ImpersonationStarted => "admin.impersonation-started",
            Action::ImpersonationStopped => "admin.impersonation-stopped",
            Action::KeyAdded => "key.added",
            Action::KeyRemoved => "key.removed",
            Action::ConnectionAdded => "connection.added",
            Action::ConnectionChanged => "connection.changed",
            Action::ConnectionRemoved => "connection.removed",
            Action::ModelAdded => "model.added",
            Action::ModelChanged => "model.changed",
            Action::ModelRemoved => "model.removed",
            Action::ChatShared => "chat.shared",
            Action::ChatUnshared => "chat.unshared",
            Action::TeamRoleChanged => "team.role-changed",
            Action::SettingsChanged => "instance.settings-changed",
            Action::QuotaChanged => "instance.quota-changed",
            Action::InviteCreated => "instance.invite-created",
            Action::InviteRevoked => "instance.invite-revoked",
            Action::TokenCreated => "user.token-created",
            Action::TokenRevoked => "user.token-revoked",
        }
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Who did it (their id and email then); none when nobody signed in (a failed sign-in,
    /// whose `detail` says which address was tried).
    pub actor: Option<(UserId, &'a str)>,
    pub action: Action,
    /// What it was done to: a kind (`user`, `session`, `chat`, ...) and its id.
    pub target: Option<(&'static str, String)>,
    pub ip_address: Option<String>,
    /// More about it, never a secret.
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(action: Action) -> Self {
        Event {
            actor: None,
            action,
            target: None,
            ip_address: None,
            detail: serde_json::json!({}),
        }
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub actor_email: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub detail: serde_json::Value,
}

/// Record an event.
pub async fn record(pool: &PgPool, event: Event<'_>) -> Result<()> {
    let (actor_id, actor_email) = event.actor.unzip();
    let (target_type, target_id) = event.target.unzip();
    let detail = match event.detail {
        serde_json::Value::Object(_) => event.detail,
        _ => serde_json::json!({}),
    };
    sqlx::query!(
        "INSERT INTO audit_events (id, actor_id, actor_email, action, target_type, target_id, ip_address, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        AuditEventId::new() as AuditEventId,
        actor_id as Option<UserId>,
        actor_email,
        event.action.as_str(),
        target_type,
        target_id,
        event.ip_address,
        detail,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Which events to list: all filters must hold; newest first, `limit` of them, older than
/// `before` (a cursor: the last event of the previous page).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// An action, or a prefix ending in `.` (`admin.`).
    pub action: Option<String>,
    pub actor: Option<UserId>,
    pub target_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, AuditEventId)>,
    pub limit: i64,
}

/// The most events one listing returns.
pub const MAX_PAGE: i64 = 1000;

/// The events `query` picks.
pub async fn list(pool: &PgPool, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
    if !(1..=MAX_PAGE).contains(&query.limit) {
        return Err(DomainError::invalid("limit", format!("1 to {MAX_PAGE}")));
    }
    let mut sql: QueryBuilder<'_, Postgres> = QueryBuilder::new(
        "SELECT id, at, actor_id, actor_email, action, target_type, target_id, ip_address, detail
           FROM audit_events WHERE true",
    );
    if let Some(action) = &query.action {
        match action.strip_suffix('.') {
            Some(prefix) => sql
                .push(" AND action LIKE ")
                .push_bind(format!("{}.%", sambung_sql::escape_like(prefix))),
            None => sql.push(" AND action = ").push_bind(action.clone()),
        };
    }
    if let Some(actor) = query.actor {
        sql.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(target) = &query.target_id {
        sql.push(" AND target_id = ").push_bind(target.clone());
    }
    if let Some(from) = query.from {
        sql.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = query.to {
        sql.push(" AND at < ").push_bind(to);
    }
    if let Some((at, id)) = query.before {
        sql.push(" AND (at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(query.limit);
    Ok(sql.build_query_as().fetch_all(pool).await?)
}

/// Delete events older than `days`; how many went.
pub async fn purge(pool: &PgPool, days: i64) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM audit_events WHERE at < now() - make_interval(days => $1)",
        days as i32
    )
    .execute(pool)
    .await?
    .rows_affected())
}
