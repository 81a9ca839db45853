//! What the instance's admins do to accounts (SPEC section 12, Better Auth's admin plugin):
//! list and find users, create and change them, set their role, ban and unban them, see and
//! end their sessions, set their password, remove them, approve them, and act as them. Who
//! may is the caller's business (the server checks the admin's permissions); the rules that
//! protect the instance are here: the last admin can be neither demoted, banned nor removed.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::auth::{
    self, claim_first_account, normalize_email, validate_password, Session, User, ADMIN_ROLE,
};
use crate::error::{conflict_on, expect_row, required_text, DomainError, Result};
use crate::ids::{SessionId, UserId};
use crate::secret::{hash_password, token_hash};

/// The roles this instance knows (Better Auth's admin plugin with these two roles).
pub const ROLES: [&str; 2] = ["user", ADMIN_ROLE];

/// A role as stored: one or more of [`ROLES`], comma-separated; anything else is refused.
pub fn validate_role(role: &str) -> Result<String> {
    let roles: Vec<&str> = role.split(',').collect();
    if roles.is_empty() || roles.iter().any(|r| !ROLES.contains(r)) {
        return Err(DomainError::invalid(
            "role",
            format!("one of {}", ROLES.join(", ")),
        ));
    }
    Ok(roles.join(","))
}

const USER_COLUMNS: &str = "u.id, u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at, u.role, u.banned, u.ban_reason, u.ban_expires, u.approved, u.locale, u.two_factor_enabled";

/// Which user field a listing searches, filters or sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Name,
    Email,
    Role,
    Banned,
    Approved,
    EmailVerified,
    CreatedAt,
    UpdatedAt,
}

impl UserField {
    /// A field by the name Better Auth's client uses for it.
    pub fn parse(name: &str) -> Option<UserField> {
        Some(match name {
            // The plugin's adapters read `_id` as `id`.
            "id" | "_id" => UserField::Id,
            "name" => UserField::Name,
            "email" => UserField::Email,
            "role" => UserField::Role,
            "banned" => UserField::Banned,
            "approved" => UserField::Approved,
            "emailVerified" => UserField::EmailVerified,
            "createdAt" => UserField::CreatedAt,
            "updatedAt" => UserField::UpdatedAt,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            UserField::Id => "u.id",
            UserField::Name => "u.name",
            UserField::Email => "u.email",
            UserField::Role => "u.role",
            UserField::Banned => "u.banned",
            UserField::Approved => "u.approved",
            UserField::EmailVerified => "u.email_verified",
            UserField::CreatedAt => "u.created_at",
            UserField::UpdatedAt => "u.updated_at",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, UserField::Name | UserField::Email | UserField::Role)
    }
}

/// How a listing compares a field with a value (Better Auth's `searchOperator` and
/// `filterOperator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
}

impl Operator {
    pub fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "eq" => Operator::Eq,
            "ne" => Operator::Ne,
            "lt" => Operator::Lt,
            "lte" => Operator::Lte,
            "gt" => Operator::Gt,
            "gte" => Operator::Gte,
            "in" => Operator::In,
            "not_in" => Operator::NotIn,
            "contains" => Operator::Contains,
            "starts_with" => Operator::StartsWith,
            "ends_with" => Operator::EndsWith,
            _ => return None,
        })
    }
}

/// One condition of a listing: `field operator values` (several values for `in`/`not_in`).
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: UserField,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A listing of users: conditions (all must hold), a sort, a page.
#[derive(Debug, Clone)]
pub struct UserQuery {
    pub conditions: Vec<Condition>,
    pub sort: Option<(UserField, bool)>,
    pub limit: i64,
    pub offset: i64,
}

/// The most users one listing returns.
pub const MAX_USERS_PAGE: i64 = 500;

fn push_condition(sql: &mut QueryBuilder<'_, Postgres>, condition: &Condition) -> Result<()> {
    let field = condition.field;
    let column = field.column();
    // Every value is compared as text, which is how it arrives, and bound: a value never
    // becomes SQL. Booleans read `true` as true and anything else as false, as Better Auth's
    // adapter does.
    let value = |text: &str| -> String {
        match field {
            UserField::Banned | UserField::Approved | UserField::EmailVerified => {
                (text == "true").to_string()
            }
            _ => text.to_owned(),
        }
    };
    let first = condition
        .values
        .first()
        .ok_or_else(|| DomainError::invalid("filterValue", "a value to compare with"))?;
    let like = |sql: &mut QueryBuilder<'_, Postgres>, pattern: String| {
        sql.push(format!("{column}::text ILIKE "))
            .push_bind(pattern);
    };
    let comparison = |symbol: &str, sql: &mut QueryBuilder<'_, Postgres>| {
        sql.push(format!("{column}::text {symbol} "))
            .push_bind(value(first));
    };
    match condition.operator {
        Operator::Eq => comparison("=", sql),
        Operator::Ne => comparison("<>", sql),
        Operator::Lt => comparison("<", sql),
        Operator::Lte => comparison("<=", sql),
        Operator::Gt => comparison(">", sql),
        Operator::Gte => comparison(">=", sql),
        Operator::In | Operator::NotIn => {
            let values: Vec<String> = condition.values.iter().map(|v| value(v)).collect();
            let negation = if condition.operator == Operator::NotIn {
                "NOT "
            } else {
                ""
            };
            sql.push(format!("{negation}({column}::text = ANY("))
                .push_bind(values)
                .push("))");
        }
        Operator::Contains | Operator::StartsWith | Operator::EndsWith if field.is_text() => {
            let escaped = sambung_sql::escape_like(first);
            let pattern = match condition.operator {
                Operator::Contains => format!("%{escaped}%"),
                Operator::StartsWith => format!("{escaped}%"),
                _ => format!("%{escaped}"),
            };
            like(sql, pattern);
        }
        Operator::Contains | Operator::StartsWith | Operator::EndsWith => {
            return Err(DomainError::invalid(
                "searchOperator",
                "contains, starts_with and ends_with compare text fields (name, email, role)",
            ))
        }
    }
    Ok(())
}

/// Users matching `query`, and how many match in all.
pub async fn list_users(pool: &PgPool, query: &UserQuery) -> Result<(Vec<User>, i64)> {
    if !(1..=MAX_USERS_PAGE).contains(&query.limit) || query.offset < 0 {
        return Err(DomainError::invalid(
            "limit",
            format!("1 to {MAX_USERS_PAGE}, and offset at least 0"),
        ));
    }
    let filtered = |select: &str| -> Result<QueryBuilder<'static, Postgres>> {
        let mut sql = QueryBuilder::new(format!("SELECT {select} FROM users u WHERE true"));
        for condition in &query.conditions {
            sql.push(" AND ");
            push_condition(&mut sql, condition)?;
        }
        Ok(sql)
    };
    let mut page = filtered(USER_COLUMNS)?;
    match query.sort {
        Some((field, descending)) => {
            let direction = if descending { "DESC" } else { "ASC" };
            page.push(format!(
                " ORDER BY {} {direction}, u.id {direction}",
                field.column()
            ))
        }
        None => page.push(" ORDER BY u.created_at, u.id"),
    };
    page.push(" LIMIT ")
        .push_bind(query.limit)
        .push(" OFFSET ")
        .push_bind(query.offset);
    let users: Vec<User> = page.build_query_as().fetch_all(pool).await?;
    let total: i64 = filtered("count(*)")?
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    Ok((users, total))
}

/// Whether `role` (a stored role list) includes the admin role.
fn has_admin(role: &str) -> bool {
    role.split(',').any(|r| r == ADMIN_ROLE)
}

/// Refuse what would leave the instance without an admin who can sign in: `target` is an
/// admin, and no other admin who is not banned remains. Runs in the caller's transaction,
/// which it locks against a concurrent change of another admin (`NO KEY UPDATE`: rows that
/// only name an admin, a session or an import's chats, neither wait for it nor hold it up).
async fn require_another_admin(
    conn: &mut PgConnection,
    target: UserId,
    action: &'static str,
) -> Result<()> {
    let target_is_admin: Option<bool> = sqlx::query_scalar(
        "SELECT role ~ '(^|,)admin(,|$)' FROM users WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(target)
    .fetch_optional(&mut *conn)
    .await?;
    if target_is_admin != Some(true) {
        return Ok(());
    }
    let others: Vec<UserId> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role ~ '(^|,)admin(,|$)' AND id <> $1
            AND NOT (banned AND (ban_expires IS NULL OR ban_expires > now()))
          FOR NO KEY UPDATE",
    )
    .bind(target)
    .fetch_all(&mut *conn)
    .await?;
    if others.is_empty() {
        return Err(DomainError::LastAdmin { action });
    }
    Ok(())
}

/// A new account made by an admin (or the operator's `sambung admin create-user`), admitted,
/// with a password or none (it signs in another way, or gets one later). The first account of
/// an instance without people is its admin whatever `role` says. The password is the admin's
/// choice: as Better Auth's admin plugin, only its length's upper bound is checked.
pub async fn create_user(
    pool: &PgPool,
    name: &str,
    email: &str,
    password: Option<&str>,
    role: Option<&str>,
) -> Result<User> {
    let name = required_text("name", name, 200)?;
    let email = normalize_email(email)?;
    let role = role.map(validate_role).transpose()?;
    let hash = match password {
        Some(password) => {
            if password.is_empty() || password.chars().count() > auth::MAX_PASSWORD_LEN {
                return Err(DomainError::invalid(
                    "password",
                    format!("1 to {} characters", auth::MAX_PASSWORD_LEN),
                ));
            }
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let mut tx = pool.begin().await?;
    let role = match claim_first_account(&mut tx).await? {
        true => ADMIN_ROLE.to_owned(),
        false => role.unwrap_or_else(|| "user".to_owned()),
    };
    let user: User = sqlx::query_as(&format!(
        "INSERT INTO users AS u (id, name, email, role) VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}"
    ))
    .bind(UserId::new())
    .bind(name)
    .bind(&email)
    .bind(role)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        conflict_on(
            e,
            "users_email_key",
            format!("an account with {email} exists already"),
        )
    })?;
    if let Some(hash) = hash {
        sqlx::query(
            "INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ($1, $1::text, 'credential', $2)",
        )
        .bind(user.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// A ban: why, and until when (none: until lifted).
pub type Ban = (Option<String>, Option<DateTime<Utc>>);

/// An admin's changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// `Some(None)` removes the picture.
    pub image: Option<Option<String>>,
    pub role: Option<String>,
    /// A ban set or lifted.
    pub ban: Option<Option<Ban>>,
    pub approved: Option<bool>,
}

/// The fields of [`UserChanges`] as they are written: the name trimmed, the email
/// normalized, the role checked (the image is checked, and written as given).
pub struct CheckedChanges {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

/// `changes` checked by each field's own rule, before anything is written (a caller that
/// writes more first asks this before it does).
pub fn check_changes(changes: &UserChanges) -> Result<CheckedChanges> {
    if let Some(Some(image)) = &changes.image {
        auth::validate_image(image)?;
    }
    Ok(CheckedChanges {
        name: changes
            .name
            .as_deref()
            .map(|n| required_text("name", n, 200))
            .transpose()?,
        email: changes.email.as_deref().map(normalize_email).transpose()?,
        role: changes.role.as_deref().map(validate_role).transpose()?,
    })
}

/// Change an account as an admin; a ban ends the user's sessions at once.
pub async fn update_user(
    pool: &PgPool,
    actor: UserId,
    target: UserId,
    changes: UserChanges,
) -> Result<User> {
    let CheckedChanges { name, email, role } = check_changes(&changes)?;
    let banning = matches!(changes.ban, Some(Some(_)));
    if banning && actor == target {
        return Err(DomainError::invalid("banned", "you cannot ban yourself"));
    }
    let mut tx = pool.begin().await?;
    if banning {
        require_another_admin(&mut tx, target, "ban").await?;
    }
    if role.as_deref().is_some_and(|r| !has_admin(r)) {
        require_another_admin(&mut tx, target, "demote").await?;
    }
    let (ban_set, banned, reason, expires) = match &changes.ban {
        None => (false, false, None, None),
        Some(None) => (true, false, None, None),
        Some(Some((reason, expires))) => (true, true, reason.clone(), *expires),
    };
    // The email is set only when it changes: it is a key (unique), and naming a key column
    // makes the update lock the row as a key change (with the row's trigger, PostgreSQL decides
    // by the columns named), which waits for every transaction holding rows that name the user
    // (an import running for them: up to its 10 minutes).
    let email = match email {
        Some(email) => {
            let current: Option<String> =
                sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                    .bind(target)
                    .fetch_optional(&mut *tx)
                    .await?;
            (current.as_deref() != Some(email.as_str())).then_some(email)
        }
        None => None,
    };
    let set_email = if email.is_some() { "email = $3," } else { "" };
    if email.is_some() {
        auth::wait_briefly_for_user(&mut tx).await?;
    }
    let user: Option<User> = sqlx::query_as(&format!(
        "UPDATE users AS u SET
            name = coalesce($2, u.name),
            {set_email}
            email_verified = coalesce($4, u.email_verified),
            image = CASE WHEN $5 THEN $6 ELSE u.image END,
            role = coalesce($7, u.role),
            banned = CASE WHEN $8 THEN $9 ELSE u.banned END,
            ban_reason = CASE WHEN $8 THEN $10 ELSE u.ban_reason END,
            ban_expires = CASE WHEN $8 THEN $11 ELSE u.ban_expires END,
            approved = coalesce($12, u.approved)
          WHERE u.id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(target)
    .bind(name)
    .bind(&email)
    .bind(changes.email_verified)
    .bind(changes.image.is_some())
    .bind(changes.image.clone().flatten())
    .bind(role)
    .bind(ban_set)
    .bind(banned)
    .bind(reason)
    .bind(expires)
    .bind(changes.approved)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| {
        match conflict_on(
            e,
            "users_email_key",
            "another account has that email already",
        ) {
            DomainError::Database(e) => crate::error::busy_account(e),
            refused => refused,
        }
    })?;
    let user = user.ok_or(DomainError::not_found("user"))?;
    if banned {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(target)
            .execute(&mut *tx)
            .await?;
    }
    // Who is no admin any more (or banned) acts as nobody else.
    if banned || !user.is_admin() {
        sqlx::query("DELETE FROM sessions WHERE impersonated_by = $1")
            .bind(target)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Ban a user: their sessions end at once, and no new one opens until the ban ends (`expires`)
/// or is lifted.
pub async fn ban_user(
    pool: &PgPool,
    actor: UserId,
    target: UserId,
    reason: Option<&str>,
    expires: Option<DateTime<Utc>>,
) -> Result<User> {
    let reason = reason
        .map(|r| required_text("banReason", r, 500))
        .transpose()?
        .unwrap_or_else(|| "No reason".to_owned());
    update_user(
        pool,
        actor,
        target,
        UserChanges {
            ban: Some(Some((Some(reason), expires))),
            ..UserChanges::default()
        },
    )
    .await
}

/// Every session of a user, expired and impersonation sessions too, newest first.
pub async fn list_user_sessions(pool: &PgPool, user: UserId) -> Result<Vec<Session>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, expires_at, ip_address, user_agent, created_at, updated_at, impersonated_by
           FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 100",
    )
    .bind(user)
    .fetch_all(pool)
    .await?)
}

/// End a session by its token or its id (as listings show it); whose, whoever asks as admin.
pub async fn revoke_session(pool: &PgPool, token_or_id: &str) -> Result<Option<UserId>> {
    let id = token_or_id.parse::<uuid::Uuid>().ok().map(SessionId);
    Ok(sqlx::query_scalar(
        "DELETE FROM sessions WHERE token_hash = $1 OR id = $2 RETURNING user_id",
    )
    .bind(token_hash(token_or_id))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// What ending a user's sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub sessions: u64,
    pub tokens: u64,
}

/// End every session of a user, and their access tokens with them: an admin who locks someone
/// out locks out what they (or whoever had their password) made to act in their name.
pub async fn revoke_user_sessions(pool: &PgPool, user: UserId) -> Result<Ended> {
    let mut tx = pool.begin().await?;
    let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let tokens = crate::tokens::revoke_all_of(&mut tx, user).await?;
    tx.commit().await?;
    Ok(Ended { sessions, tokens })
}

/// Set a user's password (making their credential account when they have none). Their
/// sessions go on (as Better Auth's admin does); [`revoke_user_sessions`] ends them.
pub async fn set_password(pool: &PgPool, user: UserId, password: &str) -> Result<()> {
    validate_password(password)?;
    let hash = hash_password(password).await?;
    let done = sqlx::query(
        "WITH target AS (SELECT id FROM users WHERE id = $1),
              updated AS (UPDATE accounts SET password = $2
                           WHERE user_id = $1 AND provider_id = 'credential' RETURNING id)
         INSERT INTO accounts (user_id, account_id, provider_id, password)
         SELECT id, id::text, 'credential', $2 FROM target WHERE NOT EXISTS (SELECT 1 FROM updated)
         RETURNING id",
    )
    .bind(user)
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user)
        .fetch_one(pool)
        .await?;
    match (done, exists) {
        (_, false) => Err(DomainError::not_found("user")),
        _ => Ok(()),
    }
}

/// Remove an account and what it owns (as deleting one's own account does: teams stay their
/// members'), never the last admin's.
pub async fn remove_user(pool: &PgPool, actor: UserId, target: UserId) -> Result<()> {
    if actor == target {
        return Err(DomainError::invalid(
            "userId",
            "you cannot remove yourself here (delete your account from your settings)",
        ));
    }
    let mut tx = pool.begin().await?;
    require_another_admin(&mut tx, target, "remove").await?;
    auth::delete_user_in(&mut tx, target).await?;
    tx.commit().await?;
    Ok(())
}

/// A session in which `admin` acts as `target` for `lifetime` (never renewed), marked as such;
/// never for another admin.
pub async fn impersonate(
    pool: &PgPool,
    admin: UserId,
    target: UserId,
    lifetime: Duration,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(Session, String, User)> {
    let user = auth::get_user(pool, target).await?;
    if user.is_admin() {
        return Err(DomainError::forbidden("impersonate an admin"));
    }
    let (session, token) =
        auth::open_session(pool, target, lifetime, ip_address, user_agent, Some(admin)).await?;
    Ok((session, token, user))
}

/// End an impersonation session (by its token) and return the admin's own session.
pub async fn stop_impersonating(pool: &PgPool, session: SessionId) -> Result<()> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND impersonated_by IS NOT NULL")
        .bind(session)
        .execute(pool)
        .await?;
    expect_row(done, "impersonation session")
}

/// How many admins the instance has.
pub async fn count_admins(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM users WHERE role ~ '(^|,)admin(,|$)'")
            .fetch_one(pool)
            .await?,
    )
}
