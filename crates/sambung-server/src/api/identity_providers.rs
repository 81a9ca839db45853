//! `/admin/identity-providers`: the identity providers admins set up in the UI (SPEC section
//! 13), beside those of `OIDC_PROVIDERS` (listed, not editable). A client secret is sealed
//! under the master key and never shown again; a provider is saved only once it answers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::audit::Action;
use sambung_db::identity_providers as db;
use sambung_sso::{Provider, ProviderConfig, PRESETS};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, Actor};
use crate::auth::{ClientIp, InstanceAdmin};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(put, delete))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOut {
    /// Its settings as given, without the client secret.
    #[schema(value_type = Object)]
    pub config: Value,
    pub name: String,
    /// Set by `OIDC_PROVIDERS` (change it there).
    pub from_environment: bool,
    /// The address to register at the provider.
    #[serde(rename = "redirectURI")]
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresetOut {
    pub id: &'static str,
    pub name: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersOut {
    pub providers: Vec<ProviderOut>,
    pub presets: Vec<PresetOut>,
}

fn shown(state: &AppState, provider: &Provider) -> ProviderOut {
    let mut config = serde_json::to_value(&provider.config).unwrap_or_default();
    if let Some(object) = config.as_object_mut() {
        object.remove("clientSecret");
    }
    ProviderOut {
        config,
        name: provider.name.clone(),
        from_environment: state
            .env_providers
            .iter()
            .any(|p| p.config.id == provider.config.id),
        redirect_uri: crate::auth::social::redirect_uri(state, provider),
    }
}

/// A provider of `OIDC_PROVIDERS` is changed there, not here.
fn refuse_environments(state: &AppState, id: &str) -> ApiResult<()> {
    match state.env_providers.iter().any(|p| p.config.id == id) {
        true => Err(ApiError::new(
            StatusCode::CONFLICT,
            "PROVIDER_FROM_ENVIRONMENT",
            format!("{id} is set by OIDC_PROVIDERS: change it there"),
        )),
        false => Ok(()),
    }
}

/// A change of the stored providers: in effect here at once, and in the audit log.
async fn changed(state: &AppState, me: &crate::auth::SignedIn, client: ClientIp, detail: Value) {
    state.identity_providers_changed();
    audit::record(
        state,
        Actor::Session(me),
        client,
        Action::SettingsChanged,
        None,
        detail,
    )
    .await;
}

/// The identity providers, and the presets a new one may start from.
#[utoipa::path(get, path = "/admin/identity-providers", tag = "admin",
    responses((status = 200, body = ProvidersOut), (status = 403, body = ErrorBody)))]
async fn list(State(state): Shared, _: InstanceAdmin) -> ApiResult<Json<ProvidersOut>> {
    let providers = state.identity_providers().await?;
    Ok(Json(ProvidersOut {
        providers: providers.iter().map(|p| shown(&state, p)).collect(),
        presets: PRESETS
            .iter()
            .map(|p| PresetOut {
                id: p.id,
                name: p.name,
            })
            .collect(),
    }))
}

/// Set up (or change) the provider `id`: its settings as `OIDC_PROVIDERS` takes them
/// (`clientSecret` may be left out to keep the stored one). It is saved once it answers.
#[utoipa::path(put, path = "/admin/identity-providers/{id}", tag = "admin", params(("id" = String, Path)),
    request_body = Object,
    responses((status = 200, body = ProviderOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<Json<ProviderOut>> {
    refuse_environments(&state, &id)?;
    let cipher = state.require_cipher()?;
    body.insert("id".into(), Value::String(id.clone()));
    let given_secret = body
        .get("clientSecret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let before = db::get(&state.pool, &id).await?;
    let secret = match (&given_secret, &before) {
        (Some(secret), _) => secret.clone(),
        (None, Some(before)) => {
            String::from_utf8(cipher.decrypt(&before.sealed_secret, id.as_bytes())?)
                .map_err(|_| ApiError::internal())?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "clientSecret",
                "a new provider needs its client secret",
            ))
        }
    };
    body.insert("clientSecret".into(), Value::String(secret.clone()));
    let config: ProviderConfig = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::invalid("provider", e.to_string()))?;
    let provider =
        Provider::new(config).map_err(|e| ApiError::invalid("provider", e.to_string()))?;
    let mut stored = serde_json::to_value(&provider.config).map_err(|_| ApiError::internal())?;
    if let Some(object) = stored.as_object_mut() {
        object.remove("clientSecret");
    }
    // Where the provider is: its secret goes there, and its subjects are its own.
    let whereabouts = |config: &Value| {
        [
            "preset",
            "issuer",
            "authorizationEndpoint",
            "tokenEndpoint",
            "userinfoEndpoint",
        ]
        .map(|field| config.get(field).cloned().unwrap_or(Value::Null))
    };
    let moved = before
        .as_ref()
        .is_some_and(|before| whereabouts(&before.config) != whereabouts(&stored));
    if moved && given_secret.is_none() {
        return Err(ApiError::invalid(
            "clientSecret",
            "give the client secret again: the provider's issuer, an endpoint or its kind changed, and the secret would be sent there",
        ));
    }
    state.sso.check(&provider).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "PROVIDER_UNAVAILABLE",
            format!("the provider does not answer as set up: {e}"),
        )
    })?;
    let sealed = cipher.encrypt(secret.as_bytes(), id.as_bytes());
    db::put(&state.pool, &id, &stored, &sealed, moved).await?;
    changed(&state, &me, client, json!({"identityProvider": id})).await;
    Ok(Json(shown(&state, &provider)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    pub status: bool,
}

/// Remove the provider `id` (its people's accounts stay, unusable until it is set up again).
#[utoipa::path(delete, path = "/admin/identity-providers/{id}", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = Removed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Removed>> {
    refuse_environments(&state, &id)?;
    db::delete(&state.pool, &id).await?;
    changed(&state, &me, client, json!({"identityProviderRemoved": id})).await;
    Ok(Json(Removed { status: true }))
}
