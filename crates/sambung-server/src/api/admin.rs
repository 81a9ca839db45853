//! The instance's administration under `/api/v1/admin` (SPEC section 12), for its admins
//! only: settings (the sign-up policy, domains, personal keys, verification, quotas, audit
//! retention), connections and the models on them, invitations to sign up, users' and teams'
//! quotas, the audit log and the mail sent. Accounts themselves are administered through
//! Better Auth's admin routes (`/api/auth/admin/*`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use sambung_db::audit::{self as audit_log, Action, AuditEvent, AuditQuery};
use sambung_db::connections::{self, Connection, ConnectionFields};
use sambung_db::instance::{self, InstanceInvite};
use sambung_db::mail::{MailKind, OutboxMail};
use sambung_db::models::{self, InstanceModel, InstanceModelFields};
use sambung_db::quotas::{self, Quota, QuotaLimits, QuotaSubject};
use sambung_db::{AuditEventId, ConnectionId, InstanceInviteId, ModelId, TeamId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::models::{check_base_url, ModelOut, ModelSettings};
use super::{decode_cursor, encode_cursor, page_limit, Page};
use crate::audit::{self, Actor};
use crate::auth::{ClientIp, InstanceAdmin};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::i18n::Reader;
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(list_connections, add_connection))
        .routes(routes!(update_connection, delete_connection))
        .routes(routes!(connection_models))
        .routes(routes!(list_instance_models, add_instance_model))
        .routes(routes!(update_instance_model, delete_instance_model))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(list_quotas, set_quota))
        .routes(routes!(list_audit))
        .routes(routes!(list_mail))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsOut {
    /// `signup` (`open`, `approval`, `invite`, `closed`), `allowedEmailDomains`,
    /// `personalKeys`, `emailVerification`, `quotas` (`userTokensPerDay`,
    /// `userRequestsPerDay`, `teamTokensPerDay`, `teamRequestsPerDay`, `runningGenerations`,
    /// `replyMaxOutputTokens`, `replyMaxSeconds`, `replyMaxBytes`; null: no limit), `files`
    /// (`maxFileBytes`, `maxFilesPerMessage`, `userStorageBytes`; null: no limit),
    /// `auditRetentionDays`.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Set by the environment (`SIGNUP`), which wins over the setting: changing it here
    /// has no effect until the variable is removed.
    pub signup_from_environment: bool,
    /// Whether a mail server is set up (`SMTP_URL`); without one, links meant to be mailed
    /// are listed under `/admin/mail` to pass on.
    pub mail_configured: bool,
}

async fn settings_out(state: &AppState) -> ApiResult<SettingsOut> {
    let settings = state.instance_settings().await?;
    Ok(SettingsOut {
        settings: serde_json::to_value(settings).map_err(|_| ApiError::internal())?,
        signup_from_environment: state.signup_override.is_some(),
        mail_configured: state.mailer.is_configured(),
    })
}

/// The instance's settings.
#[utoipa::path(get, path = "/admin/settings", tag = "admin",
    responses((status = 200, body = SettingsOut), (status = 403, body = ErrorBody)))]
async fn get_settings(State(state): Shared, _: InstanceAdmin) -> ApiResult<Json<SettingsOut>> {
    Ok(Json(settings_out(&state).await?))
}

/// Change settings: the body holds those to change (others stay).
#[utoipa::path(patch, path = "/admin/settings", tag = "admin", request_body = Object,
    responses((status = 200, body = SettingsOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn update_settings(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiJson(patch): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<Json<SettingsOut>> {
    let (now, changed) = instance::update_settings(&state.pool, me.user.id, patch.clone()).await?;
    state.instance_settings_changed(now.require_two_factor);
    if !changed.is_empty() {
        let values: serde_json::Map<String, Value> = changed
            .iter()
            .filter_map(|k| patch.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        audit::record(
            &state,
            Actor::Session(&me),
            client,
            Action::SettingsChanged,
            None,
            json!({"changed": values}),
        )
        .await;
    }
    Ok(Json(settings_out(&state).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOut {
    pub id: Uuid,
    pub name: String,
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: String,
    pub base_url: Option<String>,
    /// The key's last four characters (the key itself is never shown).
    pub key_last4: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Connection> for ConnectionOut {
    fn from(c: Connection) -> Self {
        ConnectionOut {
            id: c.id.0,
            name: c.name,
            provider: c.provider,
            base_url: c.base_url,
            key_last4: c.key_last4,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

/// The raw key is never echoed, logged or put in an error: `Debug` hides it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionBody {
    pub name: Option<String>,
    /// Only when adding: a connection's models are its provider's.
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: Option<String>,
    /// Required for `custom` (any OpenAI-compatible server); else the provider's own.
    pub base_url: Option<String>,
    /// The provider key (a local Ollama needs none). When changing: a new key, or none to
    /// keep the one stored.
    pub key: Option<String>,
}

impl std::fmt::Debug for ConnectionBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionBody")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The instance's connections.
#[utoipa::path(get, path = "/admin/connections", tag = "admin",
    responses((status = 200, body = Page<ConnectionOut>), (status = 403, body = ErrorBody)))]
async fn list_connections(
    State(state): Shared,
    _: InstanceAdmin,
) -> ApiResult<Json<Page<ConnectionOut>>> {
    let list = connections::list_connections(&state.pool).await?;
    Ok(Json(Page::all(list.into_iter().map(Into::into).collect())))
}

/// The key of a body, sealed with the server's cipher (none without a key).
fn sealing<'a>(
    state: &'a AppState,
    key: Option<&'a str>,
) -> ApiResult<Option<(&'a sambung_db::secret::Cipher, &'a str)>> {
    match key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) => Ok(Some((state.require_cipher()?, key))),
        None => Ok(None),
    }
}

/// Set up a connection (its key sealed as users' keys are).
#[utoipa::path(post, path = "/admin/connections", tag = "admin", request_body = ConnectionBody,
    responses((status = 201, body = ConnectionOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn add_connection(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> ApiResult<(StatusCode, Json<ConnectionOut>)> {
    let provider = body
        .provider
        .as_deref()
        .ok_or_else(|| ApiError::invalid("provider", "provider: which provider it is"))?;
    check_base_url(&state, body.base_url.as_deref()).await?;
    let name = body.name.as_deref().unwrap_or(provider);
    let connection = connections::add_connection(
        &state.pool,
        me.user.id,
        ConnectionFields {
            name,
            provider,
            base_url: body.base_url.as_deref(),
        },
        sealing(&state, body.key.as_deref())?,
    )
    .await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ConnectionAdded,
        Some(("connection", connection.id.to_string())),
        json!({"name": connection.name, "provider": connection.provider, "baseUrl": connection.base_url}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(connection.into())))
}

/// Change a connection's name, base URL or key.
#[utoipa::path(patch, path = "/admin/connections/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = ConnectionBody,
    responses((status = 200, body = ConnectionOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_connection(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> ApiResult<Json<ConnectionOut>> {
    if body.provider.is_some() {
        return Err(ApiError::invalid(
            "provider",
            "provider: a connection keeps its provider (add another connection)",
        ));
    }
    let current = connections::list_connections(&state.pool)
        .await?
        .into_iter()
        .find(|c| c.id.0 == id)
        .ok_or_else(|| ApiError::from(sambung_db::DomainError::not_found("connection")))?;
    check_base_url(&state, body.base_url.as_deref()).await?;
    let connection = connections::update_connection(
        &state.pool,
        ConnectionId(id),
        body.name.as_deref().unwrap_or(&current.name),
        body.base_url.as_deref().or(current.base_url.as_deref()),
        sealing(&state, body.key.as_deref())?,
    )
    .await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ConnectionChanged,
        Some(("connection", connection.id.to_string())),
        json!({"name": connection.name, "baseUrl": connection.base_url, "newKey": body.key.is_some()}),
    )
    .await;
    Ok(Json(connection.into()))
}

/// Remove a connection and its models.
#[utoipa::path(delete, path = "/admin/connections/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_connection(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let gone = connections::delete_connection(&state.pool, ConnectionId(id)).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ConnectionRemoved,
        Some(("connection", id.to_string())),
        json!({"name": gone.name, "provider": gone.provider}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferedModels {
    /// The provider's model ids.
    pub models: Vec<String>,
}

/// What a connection's provider offers, asked live with its key (also a connection test).
#[utoipa::path(get, path = "/admin/connections/{id}/models", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 200, body = OfferedModels), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn connection_models(
    State(state): Shared,
    _: InstanceAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<OfferedModels>> {
    let connection = connections::list_connections(&state.pool)
        .await?
        .into_iter()
        .find(|c| c.id.0 == id)
        .ok_or_else(|| ApiError::from(sambung_db::DomainError::not_found("connection")))?;
    let endpoint = state.turns.connection_endpoint(&connection).await?;
    let models = sambung_ai::list_models(state.turns.guard(), &endpoint, state.turns.timeouts())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(OfferedModels { models }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceModelOut {
    #[serde(flatten)]
    pub model: ModelOut,
    /// The teams it serves (their chats, their members); none: everyone.
    pub teams: Vec<Uuid>,
}

impl From<InstanceModel> for InstanceModelOut {
    fn from(m: InstanceModel) -> Self {
        InstanceModelOut {
            teams: m.teams.iter().map(|t| t.0).collect(),
            model: m.model.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceModelBody {
    pub connection_id: Uuid,
    /// The provider's name for the model.
    pub model_id: String,
    /// Shown in the model picker; the model id when left out.
    pub name: Option<String>,
    pub settings: Option<ModelSettings>,
    /// The instance's default model (for chats without one).
    pub is_default: Option<bool>,
    /// The teams it is for; none or empty: everyone.
    pub teams: Option<Vec<Uuid>>,
    /// What a million input tokens cost.
    pub input_price: Option<f64>,
    /// What a million output tokens cost.
    pub output_price: Option<f64>,
}

impl InstanceModelBody {
    fn fields(&self) -> ApiResult<InstanceModelFields<'_>> {
        Ok(InstanceModelFields {
            connection: ConnectionId(self.connection_id),
            model_id: &self.model_id,
            name: self.name.as_deref().unwrap_or(&self.model_id),
            settings: serde_json::to_value(
                self.settings.as_ref().unwrap_or(&ModelSettings::default()),
            )
            .map_err(|_| ApiError::invalid("settings", "settings: not serialisable"))?,
            is_default: self.is_default.unwrap_or(false),
            teams: self.teams.iter().flatten().map(|t| TeamId(*t)).collect(),
            input_price: self.input_price,
            output_price: self.output_price,
        })
    }
}

/// The instance's models.
#[utoipa::path(get, path = "/admin/models", tag = "admin",
    responses((status = 200, body = Page<InstanceModelOut>), (status = 403, body = ErrorBody)))]
async fn list_instance_models(
    State(state): Shared,
    _: InstanceAdmin,
) -> ApiResult<Json<Page<InstanceModelOut>>> {
    let list = models::list_instance_models(&state.pool).await?;
    Ok(Json(Page::all(list.into_iter().map(Into::into).collect())))
}

/// Add a model of the instance, on one of its connections.
#[utoipa::path(post, path = "/admin/models", tag = "admin", request_body = InstanceModelBody,
    responses((status = 201, body = InstanceModelOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn add_instance_model(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiJson(body): ApiJson<InstanceModelBody>,
) -> ApiResult<(StatusCode, Json<InstanceModelOut>)> {
    let model = models::create_instance_model(&state.pool, body.fields()?).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ModelAdded,
        Some(("model", model.model.id.to_string())),
        json!({"model": model.model.model_id, "teams": model.teams.len()}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// Replace an instance model's fields and teams.
#[utoipa::path(put, path = "/admin/models/{id}", tag = "admin", params(("id" = Uuid, Path)), request_body = InstanceModelBody,
    responses((status = 200, body = InstanceModelOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_instance_model(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<InstanceModelBody>,
) -> ApiResult<Json<InstanceModelOut>> {
    let model = models::update_instance_model(&state.pool, ModelId(id), body.fields()?).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ModelChanged,
        Some(("model", id.to_string())),
        json!({"model": model.model.model_id, "teams": model.teams.len()}),
    )
    .await;
    Ok(Json(model.into()))
}

/// Remove an instance model.
#[utoipa::path(delete, path = "/admin/models/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_instance_model(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    models::delete_instance_model(&state.pool, ModelId(id)).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ModelRemoved,
        Some(("model", id.to_string())),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteOut {
    pub id: Uuid,
    /// For this address only; none: anyone with the link.
    pub email: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    /// The link to pass on: only when the invitation is made (its token is kept hashed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// When made for an address: `sent` (the mail server took it), `unsent` (no mail
    /// server: pass the link on), `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<&'static str>,
}

impl From<InstanceInvite> for InviteOut {
    fn from(i: InstanceInvite) -> Self {
        InviteOut {
            id: i.id.0,
            email: i.email,
            expires_at: i.expires_at.into(),
            created_at: i.created_at.into(),
            link: None,
            mail: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewInstanceInvite {
    /// For one address (the link is mailed to it); none: anyone with the link.
    pub email: Option<String>,
    /// Days it stays valid: 1 to 90 (default 7).
    pub expires_in_days: Option<i64>,
}

/// Invitations to sign up that are still open.
#[utoipa::path(get, path = "/admin/invites", tag = "admin",
    responses((status = 200, body = Page<InviteOut>), (status = 403, body = ErrorBody)))]
async fn list_invites(State(state): Shared, _: InstanceAdmin) -> ApiResult<Json<Page<InviteOut>>> {
    let list = instance::list_invites(&state.pool).await?;
    Ok(Json(Page::all(list.into_iter().map(Into::into).collect())))
}

/// Invite someone to sign up: under every policy, the link lets its holder in.
#[utoipa::path(post, path = "/admin/invites", tag = "admin", request_body = NewInstanceInvite,
    responses((status = 201, body = InviteOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_invite(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    Reader(locale): Reader,
    ApiJson(body): ApiJson<NewInstanceInvite>,
) -> ApiResult<(StatusCode, Json<InviteOut>)> {
    let days = body.expires_in_days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid("expiresInDays", "expiresInDays: 1 to 90"));
    }
    let (invite, token) = instance::create_invite(
        &state.pool,
        me.user.id,
        body.email.as_deref(),
        Duration::days(days),
    )
    .await?;
    let link = state.page_link(&format!("signup?invitation={token}"));
    let mail = match &invite.email {
        Some(email) => {
            // The invitee has no account yet, hence no language of their own: the admin's.
            let mail = sambung_mail::invitation(
                locale,
                email,
                &crate::mail::instance_name(&state, locale),
                &me.user.name,
                "SambungChat",
                &link,
            );
            Some(
                crate::mail::deliver(
                    &state,
                    MailKind::InstanceInvite,
                    &mail,
                    &link,
                    Some(invite.expires_at),
                )
                .await
                .map_or("failed", |delivery| delivery.as_str()),
            )
        }
        None => None,
    };
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::InviteCreated,
        Some(("invite", invite.id.to_string())),
        json!({"email": invite.email, "days": days}),
    )
    .await;
    let mut out = InviteOut::from(invite);
    out.link = Some(link);
    out.mail = mail;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Withdraw an invitation.
#[utoipa::path(delete, path = "/admin/invites/{id}", tag = "admin", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_invite(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    instance::revoke_invite(&state.pool, InstanceInviteId(id)).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::InviteRevoked,
        Some(("invite", id.to_string())),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaOut {
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// The user's email or the team's name.
    pub subject: String,
    pub tokens_per_day: Option<i64>,
    pub requests_per_day: Option<i64>,
    pub running_generations: Option<i32>,
    pub updated_at: Timestamp,
}

impl From<Quota> for QuotaOut {
    fn from(q: Quota) -> Self {
        QuotaOut {
            user_id: q.user_id.map(|u| u.0),
            team_id: q.team_id.map(|t| t.0),
            subject: q.subject,
            tokens_per_day: q.tokens_per_day,
            requests_per_day: q.requests_per_day,
            running_generations: q.running_generations,
            updated_at: q.updated_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaBody {
    /// One user's limits, or (instead) one team's.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Null or left out: the instance's default; 0: nothing.
    pub tokens_per_day: Option<i64>,
    pub requests_per_day: Option<i64>,
    /// Users only.
    pub running_generations: Option<i32>,
}

/// The users' and teams' own limits (over the defaults in the settings).
#[utoipa::path(get, path = "/admin/quotas", tag = "admin",
    responses((status = 200, body = Page<QuotaOut>), (status = 403, body = ErrorBody)))]
async fn list_quotas(State(state): Shared, _: InstanceAdmin) -> ApiResult<Json<Page<QuotaOut>>> {
    let list = quotas::list_quotas(&state.pool).await?;
    Ok(Json(Page::all(list.into_iter().map(Into::into).collect())))
}

/// Set one user's or team's limits (all null: back to the defaults).
#[utoipa::path(put, path = "/admin/quotas", tag = "admin", request_body = QuotaBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_quota(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiJson(body): ApiJson<QuotaBody>,
) -> ApiResult<StatusCode> {
    let subject = match (body.user_id, body.team_id) {
        (Some(user), None) => QuotaSubject::User(UserId(user)),
        (None, Some(team)) => QuotaSubject::Team(TeamId(team)),
        _ => {
            return Err(ApiError::invalid(
                "userId",
                "userId or teamId: whose limits (one of them)",
            ))
        }
    };
    let limits = QuotaLimits {
        tokens_per_day: body.tokens_per_day,
        requests_per_day: body.requests_per_day,
        running_generations: body.running_generations,
    };
    quotas::set_quota(&state.pool, subject, limits.clone()).await?;
    let (kind, id) = match subject {
        QuotaSubject::User(user) => ("user", user.to_string()),
        QuotaSubject::Team(team) => ("team", team.to_string()),
    };
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::QuotaChanged,
        Some((kind, id)),
        serde_json::to_value(&limits).unwrap_or_default(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventOut {
    pub id: Uuid,
    pub at: Timestamp,
    pub actor_id: Option<Uuid>,
    /// The actor's email when it happened.
    pub actor_email: Option<String>,
    /// `user.sign-in`, `admin.user-banned`, `connection.added`, ...
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        AuditEventOut {
            id: e.id.0,
            at: e.at.into(),
            actor_id: e.actor_id.map(|a| a.0),
            actor_email: e.actor_email,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            ip_address: e.ip_address,
            detail: e.detail,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// An action (`user.sign-in`), or a prefix ending in a dot (`admin.`).
    pub action: Option<String>,
    /// Who did it.
    pub actor: Option<Uuid>,
    /// What it was done to (a user's, chat's, connection's ... id).
    pub target: Option<String>,
    /// From this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Until this time.
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// The audit log, newest first, filtered.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = Page<AuditEventOut>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(state): Shared,
    _: InstanceAdmin,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> ApiResult<Json<Page<AuditEventOut>>> {
    let limit = page_limit(q.limit, 100, 500)?;
    let before = q
        .cursor
        .as_deref()
        .map(decode_cursor::<(DateTime<Utc>, Uuid)>)
        .transpose()?
        .map(|(at, id)| (at, AuditEventId(id)));
    let events = audit_log::list(
        &state.pool,
        &AuditQuery {
            action: q.action.filter(|a| !a.is_empty()),
            actor: q.actor.map(UserId),
            target_id: q.target,
            from: q.from,
            to: q.to,
            before,
            limit: limit + 1,
        },
    )
    .await?;
    let more = events.len() as i64 > limit;
    let items: Vec<AuditEventOut> = events
        .into_iter()
        .take(limit as usize)
        .map(Into::into)
        .collect();
    let next_cursor = match (more, items.last()) {
        (true, Some(last)) => Some(encode_cursor(&(last.at.0, last.id))),
        _ => None,
    };
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailOut {
    pub id: Uuid,
    pub recipient: String,
    /// `reset-password`, `verify-email`, `team-invite`, `instance-invite`.
    pub kind: String,
    pub subject: String,
    /// The link to pass on, for mail that did not go, while it is valid.
    pub link: Option<String>,
    /// `sent`, `unsent` (no mail server), `failed`.
    pub status: String,
    pub error: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<OutboxMail> for MailOut {
    fn from(m: OutboxMail) -> Self {
        MailOut {
            id: m.id.0,
            recipient: m.recipient,
            kind: m.kind,
            subject: m.subject,
            link: m.link,
            status: m.status,
            error: m.error,
            expires_at: m.expires_at.map(Into::into),
            created_at: m.created_at.into(),
        }
    }
}

/// The mail the instance sent or could not send (the last 30 days, newest first): without a
/// mail server, the links to pass on.
#[utoipa::path(get, path = "/admin/mail", tag = "admin",
    responses((status = 200, body = Page<MailOut>), (status = 403, body = ErrorBody)))]
async fn list_mail(State(state): Shared, _: InstanceAdmin) -> ApiResult<Json<Page<MailOut>>> {
    let list = sambung_db::mail::list(&state.pool, 200).await?;
    Ok(Json(Page::all(list.into_iter().map(Into::into).collect())))
}
