//! Teams, members, invites and slug redirects, with their rules: the creator becomes admin
//! in the same transaction, slugs are checked and their changes redirected, a team keeps at
//! least one admin, invites are single-use, expire and belong to one email.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::auth::normalize_email;
use crate::error::{conflict_on, required_text, DomainError, Result};
use crate::ids::{InviteId, TeamId, TeamMemberId, UserId};
use crate::secret::random_token;

/// Slugs that would shadow the app's own routes.
pub const RESERVED_SLUGS: &[&str] = &[
    "api", "app", "p", "admin", "settings", "login", "logout", "register", "signup", "signin",
    "new", "teams", "team", "chats", "chat", "prompts", "account", "auth", "static", "assets",
    "help", "about", "docs", "studio",
];

/// How long an invite stays valid by default.
pub fn default_invite_lifetime() -> Duration {
    Duration::days(7)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    fn parse(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Who made it; `None` once their account is gone (the team stays its members').
    pub created_by: Option<UserId>,
    pub settings: serde_json::Value,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub id: TeamMemberId,
    pub team_id: TeamId,
    pub user_id: UserId,
    /// The member's name and email, as their teammates see them.
    pub name: String,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invite {
    pub id: InviteId,
    pub team_id: TeamId,
    pub email: String,
    pub role: Role,
    /// The secret the invitee needs; shown to whoever sends the invite.
    pub token: String,
    pub invited_by: UserId,
    pub accepted_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// Check a slug: 3-48 of a-z, 0-9 and single inner hyphens, not reserved.
pub fn validate_slug(slug: &str) -> Result<()> {
    let invalid = |reason: &str| Err(DomainError::invalid("slug", reason.to_owned()));
    if !(3..=48).contains(&slug.len()) {
        return invalid("3 to 48 characters");
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("only a-z, 0-9 and hyphens");
    }
    if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
        return invalid("hyphens only between letters or digits, one at a time");
    }
    if RESERVED_SLUGS.contains(&slug) {
        return invalid("reserved");
    }
    Ok(())
}

/// What a slug that cannot be had is told: the same whether another team has it now or had
/// it before (its old links lead there), so that nobody can take over a team's old address.
fn slug_unavailable(slug: &str) -> DomainError {
    DomainError::Conflict(format!(
        "the address {slug:?} is not available: choose another"
    ))
}

/// A slug another team had before is kept for it: its old links must not lead elsewhere.
async fn require_slug_unclaimed(
    conn: &mut PgConnection,
    slug: &str,
    team: Option<TeamId>,
) -> Result<()> {
    let claimed = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM slug_redirects
                           WHERE old_slug = $1 AND team_id IS DISTINCT FROM $2) AS "claimed!""#,
        slug,
        team as Option<TeamId>,
    )
    .fetch_one(conn)
    .await?;
    match claimed {
        true => Err(slug_unavailable(slug)),
        false => Ok(()),
    }
}

/// Create a team; its creator becomes its admin in the same transaction.
pub async fn create_team(
    pool: &PgPool,
    creator: UserId,
    name: &str,
    slug: &str,
    description: Option<&str>,
) -> Result<Team> {
    let name = required_text("name", name, 100)?;
    validate_slug(slug)?;
    let mut tx = pool.begin().await?;
    require_slug_unclaimed(&mut tx, slug, None).await?;
    let team = sqlx::query_as!(
        Team,
        r#"INSERT INTO teams (id, name, slug, description, created_by) VALUES ($1, $2, $3, $4, $5)
           RETURNING id AS "id: TeamId", name, slug, description, created_by AS "created_by: UserId",
                     settings, metadata, created_at, updated_at"#,
        TeamId::new() as TeamId,
        name,
        slug,
        description,
        creator as UserId,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match conflict_on(e, "team_slug_idx", "") {
        DomainError::Conflict(_) => slug_unavailable(slug),
        other => other,
    })?;
    sqlx::query!(
        "INSERT INTO team_members (id, team_id, user_id, role) VALUES ($1, $2, $3, 'admin')",
        TeamMemberId::new() as TeamMemberId,
        team.id as TeamId,
        creator as UserId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(team)
}

/// The acting user's role in a team, if a member.
pub async fn role_of(conn: &mut PgConnection, team: TeamId, user: UserId) -> Result<Option<Role>> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2",
        team as TeamId,
        user as UserId,
    )
    .fetch_optional(conn)
    .await?;
    Ok(role.as_deref().map(Role::parse))
}

/// The acting user must be an admin of `team` to `action`: a member is refused (403), an
/// outsider does not see the team (404).
pub(crate) async fn require_admin(
    conn: &mut PgConnection,
    team: TeamId,
    actor: UserId,
    action: &'static str,
) -> Result<()> {
    match role_of(conn, team, actor).await? {
        Some(Role::Admin) => Ok(()),
        Some(Role::Member) => Err(DomainError::forbidden(action)),
        None => Err(DomainError::not_found("team")),
    }
}

/// A team the acting user belongs to.
pub async fn get_team(pool: &PgPool, actor: UserId, team: TeamId) -> Result<Team> {
    sqlx::query_as!(
        Team,
        r#"SELECT id AS "id: TeamId", name, slug, description, created_by AS "created_by: UserId",
                  settings, metadata, created_at, updated_at
             FROM teams t WHERE id = $1
              AND EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id = $2)"#,
        team as TeamId,
        actor as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("team"))
}

/// Find a team by its slug, or by a slug it had before (the newest redirect wins).
pub async fn find_team_by_slug(pool: &PgPool, slug: &str) -> Result<Option<Team>> {
    // (A UNION's columns are nullable to the macro: `!` says these are not.)
    Ok(sqlx::query_as!(
        Team,
        r#"SELECT id AS "id!: TeamId", name AS "name!", slug AS "slug!", description,
                  created_by AS "created_by: UserId", settings AS "settings!",
                  metadata AS "metadata!", created_at AS "created_at!", updated_at AS "updated_at!"
             FROM teams WHERE slug = $1
           UNION ALL
           (SELECT id, name, slug, description, created_by, settings, metadata, created_at, updated_at
              FROM teams WHERE id = (
                SELECT team_id FROM slug_redirects WHERE old_slug = $1
                 ORDER BY created_at DESC, id DESC LIMIT 1))
           LIMIT 1"#,
        slug,
    )
    .fetch_optional(pool)
    .await?)
}

/// A former slug of a team, kept so old links still find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SlugRedirect {
    pub old_slug: String,
    pub new_slug: String,
    pub team_id: TeamId,
    pub created_at: DateTime<Utc>,
}

/// A team's slug history, newest first (members only).
pub async fn slug_redirects(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
) -> Result<Vec<SlugRedirect>> {
    let mut conn = pool.acquire().await?;
    if role_of(&mut conn, team, actor).await?.is_none() {
        return Err(DomainError::not_found("team"));
    }
    Ok(sqlx::query_as!(
        SlugRedirect,
        r#"SELECT old_slug, new_slug, team_id AS "team_id: TeamId", created_at
             FROM slug_redirects WHERE team_id = $1 ORDER BY created_at DESC, id DESC"#,
        team as TeamId,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Change a team's name and description (admins only).
pub async fn update_team(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
    name: &str,
    description: Option<&str>,
) -> Result<Team> {
    let name = required_text("name", name, 100)?;
    let mut tx = pool.begin().await?;
    require_admin(&mut tx, team, actor, "change this team").await?;
    let updated = sqlx::query_as!(
        Team,
        r#"UPDATE teams SET name = $2, description = $3 WHERE id = $1
           RETURNING id AS "id: TeamId", name, slug, description, created_by AS "created_by: UserId",
                     settings, metadata, created_at, updated_at"#,
        team as TeamId,
        name,
        description,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Change a team's slug (admins only), recording a redirect from the old one.
pub async fn change_slug(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
    new_slug: &str,
) -> Result<Team> {
    validate_slug(new_slug)?;
    let mut tx = pool.begin().await?;
    require_admin(&mut tx, team, actor, "change this team's slug").await?;
    let old_slug = sqlx::query_scalar!(
        "SELECT slug FROM teams WHERE id = $1 FOR UPDATE",
        team as TeamId
    )
    .fetch_one(&mut *tx)
    .await?;
    if old_slug == new_slug {
        return Err(DomainError::invalid("slug", "is the current slug"));
    }
    require_slug_unclaimed(&mut tx, new_slug, Some(team)).await?;
    let updated = sqlx::query_as!(
        Team,
        r#"UPDATE teams SET slug = $2 WHERE id = $1
           RETURNING id AS "id: TeamId", name, slug, description, created_by AS "created_by: UserId",
                     settings, metadata, created_at, updated_at"#,
        team as TeamId,
        new_slug,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match conflict_on(e, "team_slug_idx", "") {
        DomainError::Conflict(_) => slug_unavailable(new_slug),
        other => other,
    })?;
    sqlx::query!(
        "INSERT INTO slug_redirects (old_slug, new_slug, team_id) VALUES ($1, $2, $3)",
        old_slug,
        new_slug,
        team as TeamId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Delete a team and, by cascade, its chats, folders, tags, invites and memberships.
pub async fn delete_team(pool: &PgPool, actor: UserId, team: TeamId) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_admin(&mut tx, team, actor, "delete this team").await?;
    sqlx::query!("DELETE FROM teams WHERE id = $1", team as TeamId)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: TeamMemberId,
    team_id: TeamId,
    user_id: UserId,
    name: String,
    email: String,
    role: String,
    joined_at: DateTime<Utc>,
}

impl From<MemberRow> for TeamMember {
    fn from(r: MemberRow) -> Self {
        TeamMember {
            id: r.id,
            team_id: r.team_id,
            user_id: r.user_id,
            name: r.name,
            email: r.email,
            role: Role::parse(&r.role),
            joined_at: r.joined_at,
        }
    }
}

/// The members of a team the acting user belongs to.
pub async fn list_members(pool: &PgPool, actor: UserId, team: TeamId) -> Result<Vec<TeamMember>> {
    let mut conn = pool.acquire().await?;
    if role_of(&mut conn, team, actor).await?.is_none() {
        return Err(DomainError::not_found("team"));
    }
    let rows = sqlx::query_as!(
        MemberRow,
        r#"SELECT m.id AS "id: TeamMemberId", m.team_id AS "team_id: TeamId",
                  m.user_id AS "user_id: UserId", u.name, u.email, m.role, m.joined_at
             FROM team_members m JOIN users u ON u.id = m.user_id
            WHERE m.team_id = $1 ORDER BY m.joined_at, m.id"#,
        team as TeamId,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Lock the team's admin set and refuse a change that would leave it without an admin.
async fn keep_an_admin(conn: &mut PgConnection, team: TeamId, losing: UserId) -> Result<()> {
    // Locking the team row serialises concurrent demotions and departures.
    sqlx::query!(
        "SELECT 1 AS locked FROM teams WHERE id = $1 FOR UPDATE",
        team as TeamId
    )
    .fetch_optional(&mut *conn)
    .await?;
    let other_admins = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM team_members
            WHERE team_id = $1 AND role = 'admin' AND user_id <> $2"#,
        team as TeamId,
        losing as UserId,
    )
    .fetch_one(&mut *conn)
    .await?;
    if other_admins == 0 {
        return Err(DomainError::Conflict(
            "a team must keep at least one admin".into(),
        ));
    }
    Ok(())
}

/// Remove a member: admins remove anyone, members only themselves (leaving).
pub async fn remove_member(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
    member: UserId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    if actor != member {
        require_admin(&mut tx, team, actor, "remove team members").await?;
    }
    match role_of(&mut tx, team, member).await? {
        None => return Err(DomainError::not_found("team member")),
        Some(Role::Admin) => keep_an_admin(&mut tx, team, member).await?,
        Some(Role::Member) => {}
    }
    sqlx::query!(
        "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2",
        team as TeamId,
        member as UserId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Change a member's role (admins only); the last admin cannot be demoted.
pub async fn set_role(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
    member: UserId,
    role: Role,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_admin(&mut tx, team, actor, "change roles").await?;
    match role_of(&mut tx, team, member).await? {
        None => return Err(DomainError::not_found("team member")),
        Some(Role::Admin) if role == Role::Member => keep_an_admin(&mut tx, team, member).await?,
        Some(_) => {}
    }
    sqlx::query!(
        "UPDATE team_members SET role = $3 WHERE team_id = $1 AND user_id = $2",
        team as TeamId,
        member as UserId,
        role.as_str(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: InviteId,
    team_id: TeamId,
    email: String,
    role: String,
    token: String,
    invited_by: UserId,
    accepted_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

impl From<InviteRow> for Invite {
    fn from(r: InviteRow) -> Self {
        Invite {
            id: r.id,
            team_id: r.team_id,
            email: r.email,
            role: Role::parse(&r.role),
            token: r.token,
            invited_by: r.invited_by,
            accepted_at: r.accepted_at,
            expires_at: r.expires_at,
        }
    }
}

/// Invite an email to a team (admins only), with a random token that expires.
pub async fn invite(
    pool: &PgPool,
    actor: UserId,
    team: TeamId,
    email: &str,
    role: Role,
    lifetime: Duration,
) -> Result<Invite> {
    let email = normalize_email(email)?;
    let mut tx = pool.begin().await?;
    require_admin(&mut tx, team, actor, "invite to this team").await?;
    let row = sqlx::query_as!(
        InviteRow,
        r#"INSERT INTO team_invites (id, team_id, email, role, token, invited_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + $7)
           RETURNING id AS "id: InviteId", team_id AS "team_id: TeamId", email, role, token,
                     invited_by AS "invited_by: UserId", accepted_at, expires_at"#,
        InviteId::new() as InviteId,
        team as TeamId,
        email,
        role.as_str(),
        random_token(),
        actor as UserId,
        lifetime as _,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Accept an invite: the token must exist, be unused and unexpired, and be for the accepting
/// user's email. Membership and `accepted_at` change in one transaction.
/// What an invitation says to the person it is for, before they accept it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteDetails {
    pub team_id: TeamId,
    pub team_name: String,
    pub team_slug: String,
    /// Who invited them (`None` once that account is gone).
    pub invited_by: Option<String>,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

/// The team and the inviter of the invitation `token`, for the signed-in user it was sent to
/// (another user learns nothing of it: not found). A used or expired invitation says so.
pub async fn invite_details(pool: &PgPool, user: UserId, token: &str) -> Result<InviteDetails> {
    let row = sqlx::query!(
        r#"SELECT t.id AS "team_id: TeamId", t.name AS team_name, t.slug AS team_slug,
                  u.name AS "invited_by?", i.role, i.accepted_at, i.expires_at
             FROM team_invites i
             JOIN teams t ON t.id = i.team_id
             LEFT JOIN users u ON u.id = i.invited_by
            WHERE i.token = $1
              AND i.email = (SELECT email FROM users WHERE id = $2)"#,
        token,
        user as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("invite"))?;
    if row.accepted_at.is_some() {
        return Err(DomainError::Conflict(
            "this invite has been used already".into(),
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(DomainError::Conflict("this invite has expired".into()));
    }
    Ok(InviteDetails {
        team_id: row.team_id,
        team_name: row.team_name,
        team_slug: row.team_slug,
        invited_by: row.invited_by,
        role: row.role,
        expires_at: row.expires_at,
    })
}

pub async fn accept_invite(pool: &PgPool, user: UserId, token: &str) -> Result<TeamMember> {
    let mut tx = pool.begin().await?;
    let invite = sqlx::query_as!(
        InviteRow,
        r#"SELECT id AS "id: InviteId", team_id AS "team_id: TeamId", email, role, token,
                  invited_by AS "invited_by: UserId", accepted_at, expires_at
             FROM team_invites WHERE token = $1 FOR UPDATE"#,
        token,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let invite = invite.ok_or(DomainError::not_found("invite"))?;
    if invite.accepted_at.is_some() {
        return Err(DomainError::Conflict(
            "this invite has been used already".into(),
        ));
    }
    if invite.expires_at <= Utc::now() {
        return Err(DomainError::Conflict("this invite has expired".into()));
    }
    let email = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", user as UserId)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::not_found("user"))?;
    if email != invite.email {
        return Err(DomainError::forbidden(
            "accept an invite sent to another email",
        ));
    }
    let member = sqlx::query_as!(
        MemberRow,
        r#"WITH added AS (
             INSERT INTO team_members (id, team_id, user_id, role) VALUES ($1, $2, $3, $4)
             RETURNING id, team_id, user_id, role, joined_at)
           SELECT a.id AS "id!: TeamMemberId", a.team_id AS "team_id!: TeamId",
                  a.user_id AS "user_id!: UserId", u.name, u.email, a.role AS "role!",
                  a.joined_at AS "joined_at!"
             FROM added a JOIN users u ON u.id = a.user_id"#,
        TeamMemberId::new() as TeamMemberId,
        invite.team_id as TeamId,
        user as UserId,
        invite.role,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        conflict_on(
            e,
            "team_member_team_user_idx",
            "already a member of this team",
        )
    })?;
    sqlx::query!(
        "UPDATE team_invites SET accepted_at = now() WHERE id = $1",
        invite.id as InviteId
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(member.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for good in ["abc", "a1-b2", "team-42", &"a".repeat(48)] {
            assert!(validate_slug(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(49),
            "Team",
            "te_am",
            "-team",
            "team-",
            "te--am",
            "api",
            "settings",
            "tëam",
            "a b c",
            "x'; DROP TABLE teams; --",
        ] {
            assert!(
                matches!(
                    validate_slug(bad),
                    Err(DomainError::Invalid { field: "slug", .. })
                ),
                "{bad}"
            );
        }
    }
}

/// A team and the acting user's role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub team: Team,
    pub role: Role,
}

/// The teams the acting user belongs to, by name.
pub async fn list_teams(pool: &PgPool, actor: UserId) -> Result<Vec<Membership>> {
    let rows = sqlx::query!(
        r#"SELECT t.id AS "id: TeamId", t.name, t.slug, t.description,
                  t.created_by AS "created_by: UserId", t.settings, t.metadata, t.created_at,
                  t.updated_at, m.role
             FROM teams t JOIN team_members m ON m.team_id = t.id
            WHERE m.user_id = $1 ORDER BY t.name, t.id"#,
        actor as UserId,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Membership {
            role: Role::parse(&r.role),
            team: Team {
                id: r.id,
                name: r.name,
                slug: r.slug,
                description: r.description,
                created_by: r.created_by,
                settings: r.settings,
                metadata: r.metadata,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
        })
        .collect())
}

/// A team the acting user belongs to, by id or by slug (a slug it had before finds it too).
pub async fn find_team(pool: &PgPool, actor: UserId, id_or_slug: &str) -> Result<Team> {
    let id = match id_or_slug.parse::<uuid::Uuid>() {
        Ok(id) => TeamId(id),
        Err(_) => match find_team_by_slug(pool, id_or_slug).await? {
            Some(team) => team.id,
            None => return Err(DomainError::not_found("team")),
        },
    };
    get_team(pool, actor, id).await
}
