//! Configured AI models (SPEC sections 8 and 12): a user's own, a team's (configured by its
//! admins, used by every member), or the instance's (on one of its connections, configured by
//! the instance's admins, for everyone or for chosen teams). A user's or team's model uses its
//! owner's own API key (the database checks it: foreign key on `(api_key_id, user_id)`); an
//! instance model, its connection's. The plaintext comes out only to call the provider.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::api_keys::{provider, Provider};
use crate::connections::connection_provider;
use crate::error::{required_text, DomainError, Result};
use crate::ids::{ApiKeyId, ConnectionId, ModelId, TeamId, UserId};
use crate::secret::Cipher;
use crate::teams::{require_admin, role_of};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Model {
    pub id: ModelId,
    /// Who configured it; none for the instance's models.
    pub user_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    /// An instance model's connection.
    pub connection_id: Option<ConnectionId>,
    pub provider: String,
    pub model_id: String,
    pub name: String,
    pub base_url: Option<String>,
    pub api_key_id: Option<ApiKeyId>,
    pub settings: serde_json::Value,
    pub is_default: bool,
    /// What a million input and output tokens cost (usage shows cost when set).
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Whose a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelScope {
    Instance,
    Team,
    Personal,
}

impl ModelScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelScope::Instance => "instance",
            ModelScope::Team => "team",
            ModelScope::Personal => "personal",
        }
    }
}

impl Model {
    pub fn scope(&self) -> ModelScope {
        match (self.connection_id, self.team_id) {
            (Some(_), _) => ModelScope::Instance,
            (None, Some(_)) => ModelScope::Team,
            (None, None) => ModelScope::Personal,
        }
    }
}

const COLUMNS: &str = "m.id, m.user_id, m.team_id, m.connection_id, m.provider, m.model_id, m.name, m.base_url, m.api_key_id, m.settings, m.is_default, m.input_price::float8 AS input_price, m.output_price::float8 AS output_price, m.created_at, m.updated_at";

/// SQL true when the instance model `m` serves `actor` (an SQL expression) somewhere: it is
/// for everyone, or for a team of theirs.
fn instance_model_usable(actor: &str) -> String {
    format!(
        "(m.connection_id IS NOT NULL AND (
      NOT EXISTS (SELECT 1 FROM model_teams mt WHERE mt.model_id = m.id)
      OR EXISTS (SELECT 1 FROM model_teams mt JOIN team_members tm ON tm.team_id = mt.team_id
                  WHERE mt.model_id = m.id AND tm.user_id = {actor})))"
    )
}

/// SQL true when `actor` (an SQL expression) may use the model `m` at all: their own, a team's
/// of theirs, or the instance's for them ([`get_model`]'s rule).
fn usable_by(actor: &str) -> String {
    format!(
        "(sambung_usable_by(m.user_id, m.team_id, {actor}) OR {})",
        instance_model_usable(actor)
    )
}

/// Where the model `m` is called, as stored ([`StoredEndpoint`]'s columns), on
/// [`ENDPOINT_JOINS`]: a user's or team's model at its own base URL with its owner's key, an
/// instance model at its connection's with the connection's key.
const ENDPOINT_COLUMNS: &str = "CASE WHEN m.connection_id IS NULL THEN m.base_url ELSE cn.base_url END AS endpoint_url,
       replace(encode(CASE WHEN m.connection_id IS NULL THEN k.encrypted_key ELSE cn.encrypted_key END, 'base64'), E'\\n', '') AS sealed_key,
       (m.api_key_id IS NULL OR k.id IS NOT NULL) AND (m.connection_id IS NULL OR cn.id IS NOT NULL) AS endpoint_found";

/// The key and connection of the model `m` (the key its owner's only, as the foreign key
/// says).
const ENDPOINT_JOINS: &str = "LEFT JOIN api_keys k ON k.id = m.api_key_id AND k.user_id = m.user_id
       LEFT JOIN connections cn ON cn.id = m.connection_id";

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

/// A base URL as given: none (the provider's own; a custom provider needs one), or an http(s)
/// URL with a host (the SSRF guard judges it when it is used).
pub(crate) fn validate_base_url(
    provider: Provider,
    base_url: Option<&str>,
) -> Result<Option<String>> {
    match base_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            let parsed = url::Url::parse(url)
                .map_err(|e| DomainError::invalid("base_url", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(DomainError::invalid(
                    "base_url",
                    "an http(s) URL with a host",
                ));
            }
            Ok(Some(url.to_owned()))
        }
        None if provider == Provider::Custom => Err(DomainError::invalid(
            "base_url",
            "a custom provider needs one",
        )),
        None => Ok(None),
    }
}

/// Check the fields: a known provider, names, a base URL, settings of the known shape.
fn validate(fields: &ModelFields<'_>) -> Result<(String, String, Option<String>)> {
    let provider = provider(fields.provider)?;
    let base_url = validate_base_url(provider, fields.base_url)?;
    let (model_id, name) = validate_model(fields.model_id, fields.name, &fields.settings)?;
    Ok((model_id, name, base_url))
}

/// A model's name at its provider, its name here, and its settings (a JSON object of known
/// settings in range).
fn validate_model(
    model_id: &str,
    name: &str,
    settings: &serde_json::Value,
) -> Result<(String, String)> {
    let model_id = required_text("model_id", model_id, 200)?;
    let name = required_text("name", name, 100)?;
    check_generation_settings(settings, "system")?;
    Ok((model_id, name))
}

/// Settings of how replies are generated (a model's, or a chat's own that override them): a
/// JSON object of known settings in range; the system prompt under `system_key` (`system` for
/// models, `systemPrompt` for chats, as the seed's design names them).
pub(crate) fn check_generation_settings(
    settings: &serde_json::Value,
    system_key: &str,
) -> Result<()> {
    let settings = settings
        .as_object()
        .ok_or_else(|| DomainError::invalid("settings", "must be a JSON object"))?;
    for (key, value) in settings {
        let fine = match key.as_str() {
            "temperature" => value.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)),
            "topP" => value.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)),
            "maxTokens" => value.as_u64().is_some_and(|m| (1..=1_000_000).contains(&m)),
            key if key == system_key => value.as_str().is_some_and(|s| s.len() <= 100_000),
            // What a model takes beside text: a model's own settings, not a chat's.
            "vision" | "pdf" if system_key == "system" => value.is_boolean(),
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
    Ok(())
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

/// Who may change `model` here: its owner (personal), or its team's admins. The instance's
/// models are changed by the instance's admins ([`update_instance_model`]).
async fn require_change(conn: &mut PgConnection, actor: UserId, model: &Model) -> Result<()> {
    match model.scope() {
        ModelScope::Instance => Err(DomainError::forbidden(
            "change the instance's models (its admins do, under Admin)",
        )),
        ModelScope::Team => require_configure(conn, actor, model.team_id).await,
        ModelScope::Personal if model.user_id != Some(actor) => {
            Err(DomainError::not_found("model"))
        }
        ModelScope::Personal => Ok(()),
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

/// A model the actor may use: their own personal one, one of a team they belong to, or an
/// instance model for everyone or for a team of theirs.
pub async fn get_model(pool: &PgPool, actor: UserId, model: ModelId) -> Result<Model> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models m
          WHERE m.id = $1 AND {usable}",
        usable = usable_by("$2")
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

/// Every model `actor` may pick for a chat of `team` (none: a personal chat): the instance's
/// that serve it, the team's, and their own; in that order, defaults first, by name.
pub async fn list_usable_models(
    pool: &PgPool,
    actor: UserId,
    team: Option<TeamId>,
) -> Result<Vec<Model>> {
    let mut conn = pool.acquire().await?;
    if let Some(team) = team {
        if role_of(&mut conn, team, actor).await?.is_none() {
            return Err(DomainError::not_found("team"));
        }
    }
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models m
          WHERE (m.connection_id IS NOT NULL AND sambung_instance_model_serves(m.id, $1, $2))
             OR ($1::uuid IS NOT NULL AND m.team_id = $1)
             OR (m.team_id IS NULL AND m.user_id = $2)
          ORDER BY m.connection_id IS NULL, m.team_id IS NULL, m.is_default DESC, m.name, m.id"
    ))
    .bind(team)
    .bind(actor)
    .fetch_all(&mut *conn)
    .await?)
}

/// Every model `actor` may call outside a chat (the OpenAI-compatible endpoint): the
/// instance's that serve them, their teams', their own; in that order, defaults first, by name.
pub async fn list_callable_models(pool: &PgPool, actor: UserId) -> Result<Vec<Model>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models m
          WHERE (m.connection_id IS NOT NULL AND sambung_instance_model_serves(m.id, NULL, $1))
             OR (m.team_id IS NOT NULL
                 AND EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = m.team_id AND tm.user_id = $1))
             OR (m.team_id IS NULL AND m.user_id = $1)
          ORDER BY m.connection_id IS NULL, m.team_id IS NULL, m.is_default DESC, m.name, m.id"
    ))
    .bind(actor)
    .fetch_all(pool)
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

/// The model of a turn in a chat, on the common table `readable`
/// ([`crate::chats::readable_sql`]: nothing for a chat the caller may not read) and `$5`, the
/// model the turn asks for (else NULL): one [`TurnModel`] row at most, for
/// [`TurnModel::for_turn`].
///
/// A model asked for is looked up among those its reader may use at all, with whether it
/// serves this chat: a team's model (and its admin's key behind it) serves that team's chats
/// only, an instance model its teams' (or everyone's), a personal model its owner anywhere
/// they may write. When none is asked for: the chat's own, else the team's default (a team
/// chat), else the reader's default, else an instance model's that serves them. Either way
/// with where it is called and its key still sealed ([`StoredEndpoint`]), so that a turn
/// reads everything before the provider in one statement.
pub fn turn_model_sql() -> String {
    format!(
        "SELECT {COLUMNS}, {ENDPOINT_COLUMNS}, chosen.serves_chat
           FROM (SELECT m.id,
                        COALESCE(CASE WHEN m.connection_id IS NOT NULL
                                      THEN sambung_instance_model_serves(m.id, c.team_id, c.reader_id)
                                      ELSE m.team_id IS NULL OR m.team_id = c.team_id END, false) AS serves_chat
                   FROM readable c JOIN models m ON m.id = $5::uuid
                  WHERE {usable}
                 UNION ALL
                 (SELECT m.id, true FROM readable c
                    JOIN models m ON m.id::text = c.model
                              AND ((m.team_id IS NULL AND m.user_id = c.reader_id) OR m.team_id = c.team_id
                                   OR (m.connection_id IS NOT NULL
                                       AND sambung_instance_model_serves(m.id, c.team_id, c.reader_id)))
                   WHERE $5::uuid IS NULL)
                 UNION ALL
                 (SELECT m.id, true FROM readable c JOIN models m ON m.team_id = c.team_id AND m.is_default
                   WHERE $5::uuid IS NULL)
                 UNION ALL
                 (SELECT m.id, true FROM readable c
                    JOIN models m ON m.user_id = c.reader_id AND m.team_id IS NULL AND m.is_default
                   WHERE $5::uuid IS NULL)
                 UNION ALL
                 (SELECT m.id, true FROM readable c
                    JOIN models m ON m.connection_id IS NOT NULL AND m.is_default
                                 AND sambung_instance_model_serves(m.id, c.team_id, c.reader_id)
                   WHERE $5::uuid IS NULL)
                 LIMIT 1) chosen
           JOIN models m ON m.id = chosen.id
           {ENDPOINT_JOINS}",
        usable = usable_by("c.reader_id"),
    )
}

/// Where a model is called, as stored: its base URL (an instance model's, its connection's)
/// and its key still sealed (base64), opened by [`StoredEndpoint::open`] for the turn only.
#[derive(Clone, Deserialize, sqlx::FromRow)]
pub struct StoredEndpoint {
    endpoint_url: Option<String>,
    sealed_key: Option<String>,
    /// False when the model's key or connection is gone.
    endpoint_found: bool,
}

impl std::fmt::Debug for StoredEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sealed, but a key all the same: never printed.
        f.debug_struct("StoredEndpoint")
            .field("endpoint_url", &self.endpoint_url)
            .field("sealed_key", &self.sealed_key.as_ref().map(|_| "***"))
            .field("endpoint_found", &self.endpoint_found)
            .finish()
    }
}

impl StoredEndpoint {
    /// The base URL and the key's plaintext of `model`'s endpoint (for the provider request
    /// only; never show or log it). Without `cipher`, a model with a key cannot be called
    /// ([`DomainError::Decrypt`]).
    pub fn open(
        &self,
        model: &Model,
        cipher: Option<&Cipher>,
    ) -> Result<(Option<String>, Option<String>)> {
        // A key is sealed bound to its own row: the connection's, or the stored key's.
        let (bound_to, missing) = match (model.connection_id, model.api_key_id) {
            (Some(connection), _) => (Some(connection.0), "connection"),
            (None, key) => (key.map(|k| k.0), "API key"),
        };
        if !self.endpoint_found {
            return Err(DomainError::not_found(missing));
        }
        let key = match (&self.sealed_key, bound_to, cipher) {
            (None, _, _) => None,
            (Some(_), _, None) | (Some(_), None, _) => return Err(DomainError::Decrypt),
            (Some(sealed), Some(bound_to), Some(cipher)) => {
                use base64::Engine as _;
                let sealed = base64::engine::general_purpose::STANDARD
                    .decode(sealed)
                    .map_err(|_| DomainError::Decrypt)?;
                Some(cipher.decrypt_text(&sealed, bound_to.as_bytes())?)
            }
        };
        Ok((self.endpoint_url.clone(), key))
    }
}

/// A turn's model as [`turn_model_sql`] reads it: the model, where it is called, and whether
/// it serves the chat.
#[derive(Debug, Clone, Deserialize)]
pub struct TurnModel {
    #[serde(flatten)]
    pub model: Model,
    #[serde(flatten)]
    pub endpoint: StoredEndpoint,
    serves_chat: bool,
}

impl TurnModel {
    /// The model a turn uses from [`turn_model_sql`]'s `row`: for a model `requested`, not
    /// found when its reader may not use it, refused when it does not serve the chat; else the
    /// chat's own or its fallback (`None`: there is none).
    pub fn for_turn(
        row: Option<TurnModel>,
        requested: Option<ModelId>,
    ) -> Result<Option<(Model, StoredEndpoint)>> {
        let Some(row) = row else {
            return match requested {
                Some(_) => Err(DomainError::not_found("model")),
                None => Ok(None),
            };
        };
        if !row.serves_chat {
            return Err(DomainError::invalid(
                "model",
                match row.model.scope() {
                    ModelScope::Instance => {
                        "this model of the instance answers in its teams' chats only"
                    }
                    _ => "a team's model answers in that team's chats only",
                },
            ));
        }
        Ok(Some((row.model, row.endpoint)))
    }
}

/// Where to call a model's provider, and the plaintext of its key (for the provider request
/// only; never show or log it): a user's or team's model, its base URL and its owner's key; an
/// instance model, its connection's. Without `cipher`, a model with a key cannot be called
/// ([`DomainError::Decrypt`]). (A turn reads the same in its own statement:
/// [`turn_model_sql`].)
pub async fn model_endpoint(
    pool: &PgPool,
    cipher: Option<&Cipher>,
    model: &Model,
) -> Result<(Option<String>, Option<String>)> {
    // A model with neither key nor connection is called at its own URL: nothing to read.
    if model.api_key_id.is_none() && model.connection_id.is_none() {
        return Ok((model.base_url.clone(), None));
    }
    let stored: StoredEndpoint = sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM models m {ENDPOINT_JOINS} WHERE m.id = $1"
    ))
    .bind(model.id)
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("model"))?;
    stored.open(model, cipher)
}

/// An instance model as its admins give it: on a connection, for everyone (no teams) or for
/// chosen teams, with optional prices per million tokens.
#[derive(Debug, Clone)]
pub struct InstanceModelFields<'a> {
    pub connection: ConnectionId,
    pub model_id: &'a str,
    pub name: &'a str,
    pub settings: serde_json::Value,
    pub is_default: bool,
    pub teams: Vec<TeamId>,
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
}

/// An instance model and the teams it is for (none: everyone).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct InstanceModel {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub model: Model,
    pub teams: Vec<TeamId>,
}

fn validate_price(field: &'static str, price: Option<f64>) -> Result<()> {
    match price {
        Some(p) if !(p.is_finite() && (0.0..=100_000_000.0).contains(&p)) => Err(
            DomainError::invalid(field, "a price per million tokens, 0 or more"),
        ),
        _ => Ok(()),
    }
}

/// Write an instance model's fields (new when `existing` is none) and its teams, in one
/// transaction; the instance has one default model at most.
async fn write_instance_model(
    pool: &PgPool,
    existing: Option<ModelId>,
    fields: InstanceModelFields<'_>,
) -> Result<InstanceModel> {
    let (model_id, name) = validate_model(fields.model_id, fields.name, &fields.settings)?;
    validate_price("input_price", fields.input_price)?;
    validate_price("output_price", fields.output_price)?;
    if fields.teams.len() > 1000 {
        return Err(DomainError::invalid("teams", "at most 1000"));
    }
    let mut tx = pool.begin().await?;
    let provider = connection_provider(&mut tx, fields.connection).await?;
    if fields.is_default {
        sqlx::query!(
            "UPDATE models SET is_default = false WHERE is_default AND connection_id IS NOT NULL"
        )
        .execute(&mut *tx)
        .await?;
    }
    let id = existing.unwrap_or_default();
    let written = sqlx::query_scalar!(
        r#"INSERT INTO models (id, connection_id, provider, model_id, name, settings, is_default,
                               input_price, output_price)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::float8::numeric, $9::float8::numeric)
           ON CONFLICT (id) DO UPDATE SET connection_id = EXCLUDED.connection_id,
                  provider = EXCLUDED.provider, model_id = EXCLUDED.model_id, name = EXCLUDED.name,
                  settings = EXCLUDED.settings, is_default = EXCLUDED.is_default,
                  input_price = EXCLUDED.input_price, output_price = EXCLUDED.output_price
            WHERE models.connection_id IS NOT NULL
           RETURNING id AS "id: ModelId""#,
        id as ModelId,
        fields.connection as ConnectionId,
        provider.as_str(),
        model_id,
        name,
        &fields.settings,
        fields.is_default,
        fields.input_price,
        fields.output_price,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let id = written.ok_or(DomainError::not_found("model"))?;
    sqlx::query!("DELETE FROM model_teams WHERE model_id = $1", id as ModelId)
        .execute(&mut *tx)
        .await?;
    let mut teams: Vec<uuid::Uuid> = fields.teams.iter().map(|t| t.0).collect();
    teams.sort_unstable();
    teams.dedup();
    let linked = sqlx::query!(
        "INSERT INTO model_teams (model_id, team_id) SELECT $1, t.id FROM teams t WHERE t.id = ANY($2)",
        id as ModelId,
        &teams,
    )
    .execute(&mut *tx)
    .await?;
    if linked.rows_affected() != teams.len() as u64 {
        return Err(DomainError::invalid("teams", "no such team"));
    }
    let model = instance_models(&mut tx, Some(id)).await?.pop();
    tx.commit().await?;
    model.ok_or(DomainError::not_found("model"))
}

/// Add a model of the instance.
pub async fn create_instance_model(
    pool: &PgPool,
    fields: InstanceModelFields<'_>,
) -> Result<InstanceModel> {
    write_instance_model(pool, None, fields).await
}

/// Replace an instance model's fields and teams.
pub async fn update_instance_model(
    pool: &PgPool,
    model: ModelId,
    fields: InstanceModelFields<'_>,
) -> Result<InstanceModel> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM models WHERE id = $1 AND connection_id IS NOT NULL) AS "exists!""#,
        model as ModelId
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Err(DomainError::not_found("model"));
    }
    write_instance_model(pool, Some(model), fields).await
}

/// Remove an instance model.
pub async fn delete_instance_model(pool: &PgPool, model: ModelId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM models WHERE id = $1 AND connection_id IS NOT NULL",
        model as ModelId
    )
    .execute(pool)
    .await?;
    crate::error::expect_row(done, "model")
}

/// The instance's models (or one), default first, by name, with their teams.
async fn instance_models(
    conn: &mut PgConnection,
    only: Option<ModelId>,
) -> Result<Vec<InstanceModel>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS},
                coalesce((SELECT array_agg(mt.team_id ORDER BY mt.team_id) FROM model_teams mt
                           WHERE mt.model_id = m.id), '{{}}') AS teams
           FROM models m
          WHERE m.connection_id IS NOT NULL AND ($1::uuid IS NULL OR m.id = $1)
          ORDER BY m.is_default DESC, m.name, m.id"
    ))
    .bind(only)
    .fetch_all(conn)
    .await?)
}

/// Every model of the instance, with its teams.
pub async fn list_instance_models(pool: &PgPool) -> Result<Vec<InstanceModel>> {
    instance_models(&mut *pool.acquire().await?, None).await
}
