//! `GET /instance`: what the web UI needs to know of the instance before and after signing in:
//! who may sign up, whether emails are verified and mail goes out, whether users bring keys,
//! and (for its admins) whether it still needs setting up and which local Ollama was found.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::MaybeSignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(instance))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderOut {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOut {
    /// Who may sign up: `open`, `approval`, `invite`, `closed`.
    pub signup: &'static str,
    /// Set by the environment (`SIGNUP`), which wins over the admins' setting.
    pub signup_from_environment: bool,
    /// Email domains sign-up is limited to (none: any).
    pub allowed_email_domains: Vec<String>,
    pub email_verification: bool,
    /// Whether password accounts must use a second factor (TOTP).
    pub require_two_factor: bool,
    /// Whether the sign-in page offers the password form to everyone.
    pub password_sign_in: bool,
    /// The identity providers people may sign in with (a button each).
    pub identity_providers: Vec<IdentityProviderOut>,
    pub personal_keys: bool,
    /// Whether people may make personal access tokens (Settings, Access tokens).
    pub access_tokens: bool,
    /// Whether a mail server is set up (password resets by mail).
    pub mail_configured: bool,
    /// For admins: no model of the instance yet (the setup page offers to add one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_setup: Option<bool>,
    /// For admins: a local Ollama `sambung up` found (its base URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_ollama: Option<String>,
}

/// The instance as the web UI needs to know it.
#[utoipa::path(get, path = "/instance", tag = "instance", security(()),
    responses((status = 200, body = InstanceOut), (status = 503, body = ErrorBody)))]
async fn instance(
    State(state): State<Arc<AppState>>,
    MaybeSignedIn(me): MaybeSignedIn,
) -> ApiResult<Json<InstanceOut>> {
    let settings = state.instance_settings().await?;
    let admin = me.is_some_and(|me| me.administers());
    let needs_setup = match admin {
        true => Some(
            sambung_db::models::list_instance_models(&state.pool)
                .await?
                .is_empty(),
        ),
        false => None,
    };
    Ok(Json(InstanceOut {
        signup: settings.signup.as_str(),
        signup_from_environment: state.signup_override.is_some(),
        allowed_email_domains: settings.allowed_email_domains,
        email_verification: settings.email_verification,
        require_two_factor: settings.require_two_factor,
        password_sign_in: settings.password_sign_in,
        identity_providers: state
            .identity_providers()
            .await?
            .iter()
            .map(|p| IdentityProviderOut {
                id: p.config.id.clone(),
                name: p.name.clone(),
            })
            .collect(),
        personal_keys: settings.personal_keys,
        access_tokens: settings.access_tokens,
        mail_configured: state.mailer.is_configured(),
        needs_setup,
        detected_ollama: state.detected_ollama.clone().filter(|_| admin),
    }))
}
