//! Configured AI models (SPEC section 8): a user's own, or a team's (configured by its
//! admins, used by every member). A model's API key is its owner's: the database checks it
//! (foreign key on `(api_key_id, user_id)`); the plaintext comes out only to call the
//! provider.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::api_keys::{provider, reveal_api_key, Provider};
use crate::error::{required_text, DomainError, Result};
use crate::ids::{ApiKeyId, ChatId, ModelId, TeamId, UserId};
use crate::secret::Cipher;
use crate::teams::{require_admin, role_of};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Model {
    pub id: ModelId,
    pub user_id: UserId,
    pub team_id: Option<TeamId>,
    pub provider: String,
    pub model_id: String,
    pub name: String,
    pub base_url: Option<String>,
    pub api_key_id: Option<ApiKeyId>,
    pub settings: serde_json::Value,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "m.id, m.user_id, m.team_id, m.provider, m.model_id, m.name, m.base_url, m.api_key_id, m.settings, m.is_default, m.created_at, m.updated_at";

/// A model's fields as given by its owner.
#[derive(Debug, Clone)]
pub struct ModelFields<'a> {
    pub provider: &'a str,
    pub model_id: &'a str,
    pub name: &'a str,
    pub base_url: Option<&'a str>,
    pub api_key_id: Option<ApiKeyId>,
    pub settings: serde_json::Value,
    pub is_default: bool,
}

/// Check the fields: a known provider, names, a base URL that is an http(s) URL (the SSRF
/// guard judges it when it is used), settings of the known shape.
fn validate(fields: &ModelFields<'_>) -> Result<(String, String, Option<String>)> {
    let provider = provider(fields.provider)?;
    let model_id = required_text("model_id", fields.model_id, 200)?;
    let name = required_text("name", fields.name, 100)?;
    let base_url = match fields.base_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            let parsed = url::Url::parse(url)
                .map_err(|e| DomainError::invalid("base_url", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(DomainError::invalid(
                    "base_url",
                    "an http(s) URL with a host",
                ));
            }
            Some(url.to_owned())
        }
        None if provider == Provider::Custom => {
            return Err(DomainError::invalid(
                "base_url",
                "a custom provider needs one",
            ))
        }
        None => None,
    };
    let settings = fields
        .settings
        .as_object()
        .ok_or_else(|| DomainError::invalid("settings", "must be a JSON object"))?;
    for (key, value) in settings {
        let fine = match key.as_str() {
            "temperature" => value.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)),
            "topP" => value.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)),
            "maxTokens" => value.as_u64().is_some_and(|m| (1..=1_000_000).contains(&m)),
            "system" => value.as_str().is_some_and(|s| s.len() <= 100_000),
            _ => {
                return Err(DomainError::invalid(
                    "settings",
                    format!("unknown setting {key:?}"),
                ))
            }
        };
        if !fine {
            return Err(DomainError::invalid(
                "settings",
                format!("{key} is out of range"),
            ));
        }
    }
    Ok((model_id, name, base_url))
}

fn key_refused(error: sqlx::Error) -> DomainError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("models_api_key_owner_fkey") => {
            DomainError::invalid("api_key_id", "no such API key of yours")
        }
        _ => DomainError::Database(error),
    }
}

/// Who may configure a model in `team` (or a personal one): its owner, or the team's admins.
async fn require_configure(
    conn: &mut PgConnection,
    actor: UserId,
    team: Option<TeamId>,
) -> Result<()> {
    match team {
        Some(team) => require_admin(conn, team, actor, "configure the team's models").await,
        None => Ok(()),
    }
}

/// Who may change `model`: its owner (personal), or its team's admins.
async fn require_change(conn: &mut PgConnection, actor: UserId, model: &Model) -> Result<()> {
    match model.team_id {
        Some(team) => require_configure(conn, actor, Some(team)).await,
        None if model.user_id != actor => Err(DomainError::not_found("model")),
        None => Ok(()),
    }
}

/// Make `model` the only default of its scope.
async fn clear_other_defaults(conn: &mut PgConnection, model: &Model) -> Result<()> {
    sqlx::query(
        "UPDATE models SET is_default = false
          WHERE is_default AND id <> $1
            AND (($2::uuid IS NULL AND team_id IS NULL AND user_id = $3) OR team_id = $2)",
    )
    .bind(model.id)
    .bind(model.team_id)
    .bind(model.user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Configure a model: personal, or for a team (its admins).
pub async fn create_model(
    pool: &PgPool,
    actor: UserId,
    team: Option<TeamId>,
    fields: ModelFields<'_>,
) -> Result<Model> {
    let (model_id, name, base_url) = validate(&fields)?;
    let mut tx = pool.begin().await?;
    require_configure(&mut tx, actor, team).await?;
    if fields.is_default {
        sqlx::query(
            "UPDATE models SET is_default = false
              WHERE is_default AND (($1::uuid IS NULL AND team_id IS NULL AND user_id = $2) OR team_id = $1)",
        )
        .bind(team)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    }
    let model: Model = sqlx::query_as(&format!(
        "INSERT INTO models AS m (id, user_id, team_id, provider, model_id, name, base_url, api_key_id, settings, is_default)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(ModelId::new())
    .bind(actor)
    .bind(team)
    .bind(fields.provider)
    .bind(model_id)
    .bind(name)
    .bind(base_url)
    .bind(fields.api_key_id)
    .bind(&fields.settings)
    .bind(fields.is_default)
    .fetch_one(&mut *tx)
    .await
    .map_err(key_refused)?;
    tx.commit().await?;
    Ok(model)
}

/// A model the actor may use: their own personal one, or one of a team they belong to.
pub async fn get_model(pool: &PgPool, actor: UserId, model: ModelId) -> Result<Model> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models m
          WHERE m.id = $1 AND sambung_usable_by(m.user_id, m.team_id, $2)"
    ))
    .bind(model)
    .bind(actor)
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("model"))
}

/// The actor's personal models, or a team's (for its members), defaults first, by name.
pub async fn list_models(pool: &PgPool, actor: UserId, team: Option<TeamId>) -> Result<Vec<Model>> {
    let mut conn = pool.acquire().await?;
    if let Some(team) = team {
        if role_of(&mut conn, team, actor).await?.is_none() {
            return Err(DomainError::not_found("team"));
        }
    }
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models m
          WHERE ($2::uuid IS NULL AND m.team_id IS NULL AND m.user_id = $1) OR m.team_id = $2
          ORDER BY m.is_default DESC, m.name, m.id"
    ))
    .bind(actor)
    .bind(team)
    .fetch_all(&mut *conn)
    .await?)
}

/// Replace a model's fields (its owner; a team's admins for a team model).
pub async fn update_model(
    pool: &PgPool,
    actor: UserId,
    model: ModelId,
    fields: ModelFields<'_>,
) -> Result<Model> {
    let (model_id, name, base_url) = validate(&fields)?;
    let current = get_model(pool, actor, model).await?;
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, &current).await?;
    let updated: Model = sqlx::query_as(&format!(
        "UPDATE models AS m SET provider = $2, model_id = $3, name = $4, base_url = $5, api_key_id = $6,
                settings = $7, is_default = $8, user_id = CASE WHEN $6::uuid IS NULL THEN m.user_id ELSE $9 END
          WHERE m.id = $1 RETURNING {COLUMNS}"
    ))
    .bind(model)
    .bind(fields.provider)
    .bind(model_id)
    .bind(name)
    .bind(base_url)
    .bind(fields.api_key_id)
    .bind(&fields.settings)
    .bind(fields.is_default)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(key_refused)?;
    if updated.is_default {
        clear_other_defaults(&mut tx, &updated).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

/// Delete a model (its owner; a team's admins for a team model).
pub async fn delete_model(pool: &PgPool, actor: UserId, model: ModelId) -> Result<()> {
    let current = get_model(pool, actor, model).await?;
    let mut tx = pool.begin().await?;
    require_change(&mut tx, actor, &current).await?;
    sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(model)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The model a reply in `chat` uses: `requested`, else the chat's own, else the team's default
/// (a team chat), else the actor's default. `None` when nothing is configured. A team's model
/// (and its admin's key behind it) serves that team's chats only; a personal model serves its
/// owner anywhere they may write.
pub async fn model_for_chat(
    pool: &PgPool,
    actor: UserId,
    chat: ChatId,
    requested: Option<ModelId>,
) -> Result<Option<Model>> {
    if let Some(requested) = requested {
        let model = get_model(pool, actor, requested).await?;
        let chat_team: Option<Option<TeamId>> =
            sqlx::query_scalar("SELECT team_id FROM chats WHERE id = $1")
                .bind(chat)
                .fetch_optional(pool)
                .await?;
        return match model.team_id {
            Some(team) if chat_team != Some(Some(team)) => Err(DomainError::invalid(
                "model",
                "a team's model answers in that team's chats only",
            )),
            _ => Ok(Some(model)),
        };
    }
    let found: Option<Model> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM chats c
           JOIN chat_permissions p ON p.chat_id = c.id AND p.user_id = $2
           JOIN models m ON m.id::text = c.model
                         AND ((m.team_id IS NULL AND m.user_id = $2) OR m.team_id = c.team_id)
          WHERE c.id = $1
         UNION ALL
         (SELECT {COLUMNS} FROM chats c JOIN models m ON m.team_id = c.team_id AND m.is_default
           WHERE c.id = $1)
         UNION ALL
         (SELECT {COLUMNS} FROM models m WHERE m.user_id = $2 AND m.team_id IS NULL AND m.is_default)
         LIMIT 1"
    ))
    .bind(chat)
    .bind(actor)
    .fetch_optional(pool)
    .await?;
    Ok(found)
}

/// The plaintext of a model's API key (its owner's), for calling the provider; `None` when
/// it has none. Never show or log it.
pub async fn model_key(pool: &PgPool, cipher: &Cipher, model: &Model) -> Result<Option<String>> {
    match model.api_key_id {
        Some(key) => reveal_api_key(pool, cipher, model.user_id, key)
            .await
            .map(Some),
        None => Ok(None),
    }
}
