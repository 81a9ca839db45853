//! AI-provider API keys: stored sealed, never shown again (only their last 4 characters).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::api_keys::{self as db, ApiKey};
use sambung_db::audit::Action;
use sambung_db::ApiKeyId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ListQuery, Page};
use crate::audit::{self, Actor};
use crate::auth::{ClientIp, SignedIn};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, add_key))
        .routes(routes!(rename_key, delete_key))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyOut {
    pub id: Uuid,
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: String,
    pub name: String,
    /// The key's last 4 characters: all that is ever shown of it.
    pub last4: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        ApiKeyOut {
            id: k.id.0,
            provider: k.provider,
            name: k.name,
            last4: k.key_last4,
            created_at: k.created_at.into(),
            updated_at: k.updated_at.into(),
        }
    }
}

/// The user's API keys (never the keys themselves).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(ListQuery), responses((status = 200, body = Page<ApiKeyOut>), (status = 401, body = ErrorBody)))]
async fn list_keys(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<ApiKeyOut>>> {
    let keys = db::list_api_keys(&state.pool, me.user.id).await?;
    let keys = keys.into_iter().map(ApiKeyOut::from).collect();
    Ok(Json(Page::after_key(
        keys,
        |k: &ApiKeyOut| (format!("{}/{}", k.provider, k.name), k.id),
        &q,
    )?))
}

/// The raw key is never echoed, logged or put in an error: `Debug` hides it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(schema_with = super::providers::provider_schema)]
    pub provider: String,
    pub name: Option<String>,
    pub key: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("key", &"***")
            .finish()
    }
}

/// Store a provider key, sealed with AES-256-GCM; only its last 4 characters come back.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = ApiKeyOut), (status = 400, body = ErrorBody)))]
async fn add_key(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<NewApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyOut>)> {
    let cipher = state.require_cipher()?;
    if !state.instance_settings().await?.personal_keys {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "PERSONAL_KEYS_DISABLED",
            "the instance's admins turned personal API keys off: use the instance's models",
        ));
    }
    let provider = db::provider(&body.provider)?;
    let name = body.name.as_deref().unwrap_or(provider.as_str());
    let key = db::add_api_key(&state.pool, cipher, me.user.id, provider, name, &body.key).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::KeyAdded,
        Some(("api-key", key.id.to_string())),
        json!({"provider": key.provider, "name": key.name, "last4": key.key_last4}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyChanges {
    pub name: String,
}

/// Rename a key (to change the key itself, add a new one and delete this one).
#[utoipa::path(patch, path = "/api-keys/{id}", tag = "api-keys", params(("id" = Uuid, Path)), request_body = ApiKeyChanges,
    responses((status = 200, body = ApiKeyOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rename_key(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ApiKeyChanges>,
) -> ApiResult<Json<ApiKeyOut>> {
    Ok(Json(
        db::rename_api_key(&state.pool, me.user.id, ApiKeyId(id), &body.name)
            .await?
            .into(),
    ))
}

/// Delete a key.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_key(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_api_key(&state.pool, me.user.id, ApiKeyId(id)).await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::KeyRemoved,
        Some(("api-key", id.to_string())),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
