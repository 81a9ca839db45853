//! `GET /me`: the signed-in user; `GET`/`PATCH /me/preferences`: how they want the UI;
//! `GET /me/two-factor/qr`: the QR code of a second factor being set up.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use sambung_db::auth;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::nullable;
use crate::auth::routes::UserOut;
use crate::auth::SignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(get_preferences, set_preferences))
        .routes(routes!(two_factor_qr))
}

/// The QR code of the second factor being set up (`/api/auth/two-factor/enable` began it),
/// for an authenticator app to scan: SVG, drawn by this server.
#[utoipa::path(get, path = "/me/two-factor/qr", tag = "me",
    responses((status = 200, description = "an SVG", content_type = "image/svg+xml"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn two_factor_qr(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
) -> ApiResult<axum::response::Response> {
    crate::auth::two_factor::setup_qr(&state, &signed_in.user).await
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
async fn me(signed_in: SignedIn) -> Json<UserOut> {
    Json(signed_in.user.into())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesOut {
    /// `system` (the device's), `light` or `dark`.
    pub theme: String,
    /// `en` or `id`; `null`: the browser's `Accept-Language` decides.
    pub locale: Option<String>,
}

impl From<auth::Preferences> for PreferencesOut {
    fn from(p: auth::Preferences) -> Self {
        PreferencesOut {
            theme: p.theme,
            locale: p.locale,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceChanges {
    pub theme: Option<String>,
    /// `null` goes back to the browser's language.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
}

/// The signed-in user's theme and language.
#[utoipa::path(get, path = "/me/preferences", tag = "me", responses((status = 200, body = PreferencesOut), (status = 401, body = ErrorBody)))]
async fn get_preferences(
    State(state): State<Arc<AppState>>,
    me: SignedIn,
) -> ApiResult<Json<PreferencesOut>> {
    Ok(Json(
        auth::preferences(&state.pool, me.user.id).await?.into(),
    ))
}

/// Change the signed-in user's theme or language.
#[utoipa::path(patch, path = "/me/preferences", tag = "me", request_body = PreferenceChanges,
    responses((status = 200, body = PreferencesOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn set_preferences(
    State(state): State<Arc<AppState>>,
    me: SignedIn,
    ApiJson(body): ApiJson<PreferenceChanges>,
) -> ApiResult<Json<PreferencesOut>> {
    let preferences = auth::set_preferences(
        &state.pool,
        me.user.id,
        body.theme.as_deref(),
        body.locale.as_ref().map(|l| l.as_deref()),
    )
    .await?;
    Ok(Json(preferences.into()))
}
