//! The AI providers the server knows (`sambung-providers`' list), for the forms that pick
//! one, and that list as the OpenAPI document's enum of every `provider` field.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use sambung_chat::ProbeKey;
use sambung_db::ApiKeyId;
use sambung_providers::Provider;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::models::Available;
use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_providers))
        .routes(routes!(offered_models))
}

/// The schema of a `provider` field: a string, one of the providers' names.
pub fn provider_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(Provider::ALL.map(Provider::as_str)))
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOut {
    #[schema(schema_with = provider_schema)]
    pub name: &'static str,
    pub label: &'static str,
    /// Whether calls need an API key.
    pub needs_key: bool,
    /// Where requests go when a model names no base URL (`null`: it must name one).
    pub default_base_url: Option<&'static str>,
}

/// Every provider a key or a model may be for, in the order forms list them.
#[utoipa::path(get, path = "/providers", tag = "models",
    responses((status = 200, body = Vec<ProviderOut>)))]
async fn list_providers(_: SignedIn) -> Json<Vec<ProviderOut>> {
    Json(
        Provider::ALL
            .into_iter()
            .map(|p| ProviderOut {
                name: p.as_str(),
                label: p.label(),
                needs_key: p.needs_key(),
                default_base_url: p.default_base_url(),
            })
            .collect(),
    )
}

/// Where to ask a provider what it offers, before a model is made.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferedQuery {
    /// Else the provider's own.
    pub base_url: Option<String>,
    /// One of the user's stored keys...
    pub api_key_id: Option<Uuid>,
    /// ...or a key typed for this listing only (kept nowhere; a model saved with it stores
    /// it then).
    pub api_key: Option<String>,
}

/// The model ids `provider` offers at `baseUrl` with one of the user's keys, asked live (the
/// model form's list, and a connection test before saving). The address passes the same
/// outbound guard as a model's.
#[utoipa::path(post, path = "/providers/{provider}/models", tag = "models",
    params(("provider" = String, Path)), request_body = OfferedQuery,
    responses((status = 200, body = Available), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn offered_models(
    State(state): State<Arc<AppState>>,
    me: SignedIn,
    ApiPath(provider): ApiPath<String>,
    ApiJson(body): ApiJson<OfferedQuery>,
) -> ApiResult<Json<Available>> {
    let key = match (body.api_key_id, body.api_key) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "apiKey",
                "apiKey: either a stored key (apiKeyId) or a typed one, not both",
            ))
        }
        (Some(id), None) => Some(ProbeKey::Stored(ApiKeyId(id))),
        (None, Some(typed)) => Some(ProbeKey::Typed(typed)),
        (None, None) => None,
    };
    if key.is_some() && !state.instance_settings().await?.personal_keys {
        return Err(sambung_chat::TurnError::PersonalKeysOff.into());
    }
    let endpoint = state
        .turns
        .personal_endpoint(me.user.id, &provider, body.base_url.as_deref(), key)
        .await?;
    let models = sambung_ai::list_models(state.turns.guard(), &endpoint, state.turns.timeouts())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(Available { models }))
}
