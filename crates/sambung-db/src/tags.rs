//! Tags: public (fit every chat), personal or team-scoped; a chat only takes tags of its scope.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::chats::{is_member, require_change, require_read};
use crate::error::{expect_row, required_text, DomainError, Result};
use crate::ids::{ChatId, TagId, TeamId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Tag {
    pub id: TagId,
    pub name: String,
    pub color: Option<String>,
    pub user_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub created_at: DateTime<Utc>,
}

/// Whose a tag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TagScope {
    /// Usable on every chat. Created by the operator (seed), not through a user action.
    Public,
    Personal(UserId),
    Team(TeamId),
}

fn validate_color(color: Option<&str>) -> Result<Option<String>> {
    match color {
        None => Ok(None),
        Some(c)
            if c.len() == 7
                && c.starts_with('#')
                && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(c.to_lowercase()))
        }
        Some(_) => Err(DomainError::invalid("color", "a hex colour like #ff5733")),
    }
}

/// Create a tag. Personal tags are the actor's own; team tags need membership; public tags
/// are the operator's (pass `actor = None`).
pub async fn create_tag(
    pool: &PgPool,
    actor: Option<UserId>,
    scope: TagScope,
    name: &str,
    color: Option<&str>,
) -> Result<Tag> {
    let name = required_text("name", name, 50)?;
    let color = validate_color(color)?;
    let mut conn = pool.acquire().await?;
    let (user, team) = match (scope, actor) {
        (TagScope::Public, None) => (None, None),
        (TagScope::Personal(user), Some(actor)) if user == actor => (Some(user), None),
        (TagScope::Team(team), Some(actor)) if is_member(&mut conn, actor, team).await? => {
            (None, Some(team))
        }
        (TagScope::Team(_), Some(_)) => return Err(DomainError::not_found("team")),
        _ => return Err(DomainError::forbidden("create a tag in this scope")),
    };
    Ok(sqlx::query_as!(
        Tag,
        r#"INSERT INTO tags (id, name, color, user_id, team_id) VALUES ($1, $2, $3, $4, $5)
           RETURNING id AS "id: TagId", name, color, user_id AS "user_id: UserId",
                     team_id AS "team_id: TeamId", created_at"#,
        TagId::new() as TagId,
        name,
        color,
        user as Option<UserId>,
        team as Option<TeamId>,
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Put a tag on a chat (who may change the chat); the tag must fit the chat's scope.
pub async fn tag_chat(pool: &PgPool, actor: UserId, chat: ChatId, tag: TagId) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "tag this chat").await?;
    let fits = sqlx::query_scalar!(
        r#"SELECT coalesce((t.user_id IS NULL AND t.team_id IS NULL)
             OR (t.user_id IS NOT NULL AND c.team_id IS NULL AND t.user_id = c.user_id)
             OR (t.team_id IS NOT NULL AND t.team_id = c.team_id), false) AS "fits!"
           FROM tags t, chats c WHERE t.id = $1 AND c.id = $2"#,
        tag as TagId,
        chat as ChatId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if fits != Some(true) {
        return Err(DomainError::invalid(
            "tag_id",
            "no such tag in the chat's scope",
        ));
    }
    sqlx::query!(
        "INSERT INTO chat_tags (chat_id, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        chat as ChatId,
        tag as TagId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Take a tag off a chat.
pub async fn untag_chat(pool: &PgPool, actor: UserId, chat: ChatId, tag: TagId) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "untag this chat").await?;
    sqlx::query!(
        "DELETE FROM chat_tags WHERE chat_id = $1 AND tag_id = $2",
        chat as ChatId,
        tag as TagId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tags of a chat the actor may read.
pub async fn chat_tags(pool: &PgPool, actor: UserId, chat: ChatId) -> Result<Vec<Tag>> {
    let mut conn = pool.acquire().await?;
    require_read(&mut conn, actor, chat).await?;
    Ok(sqlx::query_as!(
        Tag,
        r#"SELECT id AS "id: TagId", name, color, user_id AS "user_id: UserId",
                  team_id AS "team_id: TeamId", created_at
             FROM tags WHERE id IN (SELECT tag_id FROM chat_tags WHERE chat_id = $1)
            ORDER BY name, id"#,
        chat as ChatId,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Delete a tag of the actor's own, or of a team they belong to.
pub async fn delete_tag(pool: &PgPool, actor: UserId, tag: TagId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM tags t WHERE t.id = $1 AND sambung_usable_by(t.user_id, t.team_id, $2)",
        tag as TagId,
        actor as UserId,
    )
    .execute(pool)
    .await?;
    expect_row(done, "tag")
}

/// Replace a chat's tags with `tags` (who may change the chat); every tag must fit the
/// chat's scope, or nothing changes.
pub async fn set_chat_tags(
    pool: &PgPool,
    actor: UserId,
    chat: ChatId,
    tags: &[TagId],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, chat, "tag this chat").await?;
    let fitting = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM tags t, chats c
            WHERE t.id = ANY($1) AND c.id = $2
              AND ((t.user_id IS NULL AND t.team_id IS NULL)
                OR (t.user_id IS NOT NULL AND c.team_id IS NULL AND t.user_id = c.user_id)
                OR (t.team_id IS NOT NULL AND t.team_id = c.team_id))"#,
        tags as &[TagId],
        chat as ChatId,
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut distinct = tags.to_vec();
    distinct.sort();
    distinct.dedup();
    if fitting != distinct.len() as i64 {
        return Err(DomainError::invalid(
            "tags",
            "no such tag in the chat's scope",
        ));
    }
    sqlx::query!(
        "DELETE FROM chat_tags WHERE chat_id = $1 AND tag_id <> ALL($2)",
        chat as ChatId,
        &distinct as &[TagId],
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO chat_tags (chat_id, tag_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        chat as ChatId,
        &distinct as &[TagId],
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tags usable in a scope, by name: the public ones and the scope's own (a team's need
/// membership).
pub async fn list_tags(pool: &PgPool, actor: UserId, team: Option<TeamId>) -> Result<Vec<Tag>> {
    let mut conn = pool.acquire().await?;
    if let Some(team) = team {
        if !is_member(&mut conn, actor, team).await? {
            return Err(DomainError::not_found("team"));
        }
    }
    Ok(sqlx::query_as!(
        Tag,
        r#"SELECT id AS "id: TagId", name, color, user_id AS "user_id: UserId",
                  team_id AS "team_id: TeamId", created_at
             FROM tags
            WHERE (user_id IS NULL AND team_id IS NULL)
               OR ($2::uuid IS NULL AND user_id = $1)
               OR team_id = $2
            ORDER BY name, id"#,
        actor as UserId,
        team as Option<TeamId>,
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Rename or recolour (`Some(None)` removes the colour) a tag of the actor's own, or of a
/// team they belong to; `None` leaves a field as it is.
pub async fn update_tag(
    pool: &PgPool,
    actor: UserId,
    tag: TagId,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> Result<Tag> {
    let name = name.map(|n| required_text("name", n, 50)).transpose()?;
    let new_color = color.map(validate_color).transpose()?;
    sqlx::query_as!(
        Tag,
        r#"UPDATE tags t SET name = coalesce($3, t.name),
                  color = CASE WHEN $5 THEN $4 ELSE t.color END
            WHERE t.id = $1 AND sambung_usable_by(t.user_id, t.team_id, $2)
           RETURNING id AS "id: TagId", name, color, user_id AS "user_id: UserId",
                     team_id AS "team_id: TeamId", created_at"#,
        tag as TagId,
        actor as UserId,
        name,
        new_color.clone().flatten(),
        new_color.is_some(),
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("tag"))
}
