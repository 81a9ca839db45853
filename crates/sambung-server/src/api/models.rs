//! Configured AI models: a user's own, or a team's (its admins configure them), the ones a
//! user may pick (the instance's too), and what a provider offers, asked live.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::models::{self as db, Model, ModelFields};
use sambung_db::{ApiKeyId, ModelId, TeamId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::folders::ScopeQuery;
use super::Page;
use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_models, create_model))
        .routes(routes!(update_model, delete_model))
        .routes(routes!(usable_models))
        .routes(routes!(available_models))
}

/// A model's settings: all optional.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// The system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Whether it sees images (else known by its name: GPT-4o, Claude, Gemini, LLaVA...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// Whether it reads PDFs as documents (else known by its name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelOut {
    pub id: Uuid,
    /// `instance` (set up by the instance's admins), `team` or `personal`.
    pub scope: &'static str,
    /// Who configured it; none for the instance's models.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// An instance model's connection.
    pub connection_id: Option<Uuid>,
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: String,
    /// The provider's name for the model (`gpt-4o`, `claude-sonnet-4`...).
    pub model_id: String,
    pub name: String,
    pub base_url: Option<String>,
    pub api_key_id: Option<Uuid>,
    #[schema(value_type = ModelSettings)]
    pub settings: serde_json::Value,
    pub is_default: bool,
    /// What a million input and output tokens cost (usage shows cost when set).
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Model> for ModelOut {
    fn from(m: Model) -> Self {
        ModelOut {
            id: m.id.0,
            scope: m.scope().as_str(),
            user_id: m.user_id.map(|u| u.0),
            team_id: m.team_id.map(|t| t.0),
            connection_id: m.connection_id.map(|c| c.0),
            provider: m.provider,
            model_id: m.model_id,
            name: m.name,
            base_url: m.base_url,
            api_key_id: m.api_key_id.map(|k| k.0),
            settings: m.settings,
            is_default: m.is_default,
            input_price: m.input_price,
            output_price: m.output_price,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelBody {
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: String,
    pub model_id: String,
    /// Shown in the model picker; the model id when left out.
    pub name: Option<String>,
    /// Required for `custom`; else the provider's own.
    pub base_url: Option<String>,
    /// One of the user's API keys.
    pub api_key_id: Option<Uuid>,
    pub settings: Option<ModelSettings>,
    pub is_default: Option<bool>,
    /// A team's model (its admins configure them). Only when creating.
    pub team: Option<Uuid>,
}

impl ModelBody {
    fn fields(&self) -> ApiResult<ModelFields<'_>> {
        let settings =
            serde_json::to_value(self.settings.as_ref().unwrap_or(&ModelSettings::default()))
                .map_err(|_| ApiError::invalid("settings", "settings: not serialisable"))?;
        Ok(ModelFields {
            provider: &self.provider,
            model_id: &self.model_id,
            name: self.name.as_deref().unwrap_or(&self.model_id),
            base_url: self.base_url.as_deref(),
            api_key_id: self.api_key_id.map(ApiKeyId),
            settings,
            is_default: self.is_default.unwrap_or(false),
        })
    }
}

/// The user's models, or a team's (`?team=`), defaults first.
#[utoipa::path(get, path = "/models", tag = "models", params(ScopeQuery),
    responses((status = 200, body = Page<ModelOut>), (status = 404, body = ErrorBody)))]
async fn list_models(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> ApiResult<Json<Page<ModelOut>>> {
    let models = db::list_models(&state.pool, me.user.id, q.team.map(TeamId)).await?;
    let models = models.into_iter().map(ModelOut::from).collect();
    // Defaults first, then by name.
    let key = |m: &ModelOut| (format!("{}{}", u8::from(!m.is_default), m.name), m.id);
    Ok(Json(Page::after_key(models, key, &q.list())?))
}

/// Every model the user may pick for a chat of `?team=` (none: a personal chat): the
/// instance's that serve it, the team's, their own; in that order, defaults first.
#[utoipa::path(get, path = "/models/usable", tag = "models", params(ScopeQuery),
    responses((status = 200, body = Page<ModelOut>), (status = 404, body = ErrorBody)))]
async fn usable_models(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> ApiResult<Json<Page<ModelOut>>> {
    let models = db::list_usable_models(&state.pool, me.user.id, q.team.map(TeamId)).await?;
    Ok(Json(Page::all(
        models.into_iter().map(ModelOut::from).collect(),
    )))
}

/// Configure a model (for a team: its admins).
#[utoipa::path(post, path = "/models", tag = "models", request_body = ModelBody,
    responses((status = 201, body = ModelOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_model(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<ModelBody>,
) -> ApiResult<(StatusCode, Json<ModelOut>)> {
    check_base_url(&state, body.base_url.as_deref()).await?;
    let model = db::create_model(
        &state.pool,
        me.user.id,
        body.team.map(TeamId),
        body.fields()?,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// A base URL is refused when it is saved, by the guard every request to it passes later
/// (https to a public address, or a host the operator allowed): a model that could never be
/// used is not kept.
pub(crate) async fn check_base_url(state: &AppState, base_url: Option<&str>) -> ApiResult<()> {
    let Some(text) = base_url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let url = url::Url::parse(text)
        .map_err(|e| ApiError::invalid("baseUrl", format!("invalid baseUrl: not a URL ({e})")))?;
    state
        .turns
        .guard()
        .check(&url)
        .await
        .map_err(|e| ApiError {
            field: Some("baseUrl".into()),
            ..ApiError::from(e)
        })?;
    Ok(())
}

/// Change a model (all its fields; `team` cannot change).
#[utoipa::path(patch, path = "/models/{id}", tag = "models", params(("id" = Uuid, Path)), request_body = ModelBody,
    responses((status = 200, body = ModelOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_model(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ModelBody>,
) -> ApiResult<Json<ModelOut>> {
    if body.team.is_some() {
        return Err(ApiError::invalid(
            "team",
            "team: a model stays in its scope",
        ));
    }
    check_base_url(&state, body.base_url.as_deref()).await?;
    Ok(Json(
        db::update_model(&state.pool, me.user.id, ModelId(id), body.fields()?)
            .await?
            .into(),
    ))
}

/// Delete a model.
#[utoipa::path(delete, path = "/models/{id}", tag = "models", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_model(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_model(&state.pool, me.user.id, ModelId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Available {
    /// The provider's model ids.
    pub models: Vec<String>,
}

/// What the model's provider offers, asked live with the model's key (also a connection
/// test).
#[utoipa::path(get, path = "/models/{id}/available", tag = "models", params(("id" = Uuid, Path)),
    responses((status = 200, body = Available), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn available_models(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Available>> {
    let model = db::get_model(&state.pool, me.user.id, ModelId(id)).await?;
    let endpoint = state.turns.endpoint_for(&model).await?;
    let models = sambung_ai::list_models(state.turns.guard(), &endpoint, state.turns.timeouts())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(Available { models }))
}
