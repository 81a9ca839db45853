//! Personal access tokens (SPEC section 16): made, listed and revoked by their owner in a
//! signed-in session (never with a token: see `auth`); listed and revoked by the
//! instance's admins. The secret is in the answer that makes it, and nowhere else ever.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use sambung_db::audit::Action;
use sambung_db::tokens::{self as db, AccessToken, Scope};
use sambung_db::AccessTokenId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, Actor};
use crate::auth::{ClientIp, InstanceAdmin, SignedIn};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_all_tokens))
        .routes(routes!(revoke_any_token))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenOut {
    pub id: Uuid,
    pub name: String,
    /// The secret's last 4 characters: all that is shown of it after it was made.
    pub last4: String,
    #[schema(value_type = Vec<String>, example = json!(["chat"]))]
    pub scopes: Vec<Scope>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// The address it was last used from.
    pub last_used_ip: Option<String>,
    pub created_at: Timestamp,
}

impl From<AccessToken> for TokenOut {
    fn from(t: AccessToken) -> Self {
        TokenOut {
            id: t.id.0,
            name: t.name,
            last4: t.last_four,
            scopes: t.scopes,
            expires_at: t.expires_at.map(Into::into),
            last_used_at: t.last_used_at.map(Into::into),
            last_used_ip: t.last_used_ip,
            created_at: t.created_at.into(),
        }
    }
}

/// A token just made: its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewTokenOut {
    #[serde(flatten)]
    pub token: TokenOut,
    /// `sk-sambung-…`: keep it now, it is never shown again.
    pub token_secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Any of `chat` (the OpenAI-compatible endpoint), `read` and `write` (the JSON API).
    pub scopes: Vec<String>,
    /// When it stops working; none: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The signed-in person's tokens, newest first (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenOut>), (status = 401, body = ErrorBody)))]
async fn list_tokens(State(state): Shared, me: SignedIn) -> ApiResult<Json<Vec<TokenOut>>> {
    let tokens = db::list(&state.pool, me.user.id).await?;
    Ok(Json(tokens.into_iter().map(TokenOut::from).collect()))
}

/// Make a token: its secret is in this answer only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = NewTokenOut), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_token(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<NewTokenOut>)> {
    // An admin acting as someone does so for an hour, never longer: no token outlives that.
    if me.session.impersonated_by.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "IMPERSONATING",
            "an admin acting as someone cannot make tokens in their name",
        ));
    }
    if !state.instance_settings().await?.access_tokens {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ACCESS_TOKENS_DISABLED",
            "the instance's admins turned personal access tokens off",
        ));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| {
            Scope::parse(s).ok_or_else(|| ApiError {
                field: Some("scopes".into()),
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    format!("scopes: {s:?} is not one of chat, read, write"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (token, secret) = db::create(
        &state.pool,
        me.user.id,
        &body.name,
        &scopes,
        body.expires_at,
    )
    .await?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::TokenCreated,
        Some(("access-token", token.id.to_string())),
        json!({"name": token.name, "scopes": token.scopes, "expiresAt": token.expires_at, "last4": token.last_four}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenOut {
            token: token.into(),
            token_secret: secret,
        }),
    ))
}

/// Revoke one of one's tokens: it stops at once.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let token = db::revoke(&state.pool, Some(me.user.id), AccessTokenId(id)).await?;
    record_revoked(&state, &me, client, &token).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnedTokenOut {
    #[serde(flatten)]
    pub token: TokenOut,
    pub user_id: Uuid,
    pub user_email: String,
}

/// Every token of the instance, newest first, with its owner (the instance's admins).
#[utoipa::path(get, path = "/admin/tokens", tag = "tokens",
    responses((status = 200, body = Vec<OwnedTokenOut>), (status = 403, body = ErrorBody)))]
async fn list_all_tokens(
    State(state): Shared,
    InstanceAdmin(_): InstanceAdmin,
) -> ApiResult<Json<Vec<OwnedTokenOut>>> {
    let tokens = db::list_all(&state.pool).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|(token, email)| OwnedTokenOut {
                user_id: token.user_id.0,
                token: token.into(),
                user_email: email,
            })
            .collect(),
    ))
}

/// Revoke anyone's token (the instance's admins).
#[utoipa::path(delete, path = "/admin/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_any_token(
    State(state): Shared,
    InstanceAdmin(me): InstanceAdmin,
    client: ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let token = db::revoke(&state.pool, None, AccessTokenId(id)).await?;
    record_revoked(&state, &me, client, &token).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn record_revoked(state: &AppState, me: &SignedIn, client: ClientIp, token: &AccessToken) {
    audit::record(
        state,
        Actor::Session(me),
        client,
        Action::TokenRevoked,
        Some(("access-token", token.id.to_string())),
        json!({"name": token.name, "owner": token.user_id, "last4": token.last_four}),
    )
    .await;
}
