//! Sign-in through an identity provider, as Better Auth 1.7.25 shapes it, so its client's
//! `signIn.social`, `linkSocial`, `listAccounts` and `unlinkAccount` work unchanged:
//! `POST /sign-in/social` and `/link-social` answer `{url, redirect: true}`; the provider
//! comes back to `GET /callback/{id}`, which signs in (or links) and redirects.
//!
//! A sign-in's secrets (`state`, the PKCE verifier, `nonce`, where to go back to) travel in a
//! signed cookie of the browser that started it, and its `state` is also stored (hashed) once:
//! a callback needs both, so a `state` from another browser, a replayed one, or one without
//! its cookie is refused. The provider side is `sambung-sso`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sambung_db::audit::Action;
use sambung_db::auth::{self as db, ProviderAccount, SignupGate, User};
use sambung_db::{DomainError, UserId};
use sambung_sso::{Identity, Provider, Start};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::OAUTH_STATE;
use super::routes::{check_callback_url, open_session, redirect, with_cookies};
use super::{two_factor, ClientIp, SignedIn};
use crate::audit::{self, Actor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

/// How long a sign-in may take at the provider.
const SIGN_IN_TIME: chrono::Duration = chrono::Duration::minutes(10);
/// What `verifications` calls a sign-in's stored `state`.
const STATE_IDENTIFIER: &str = "oauth-state";

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(sign_in_social))
        .routes(routes!(link_social))
        .routes(routes!(callback))
        .routes(routes!(list_accounts))
        .routes(routes!(unlink_account))
}

/// What the callback needs to know of the sign-in that began it (in its signed cookie).
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    provider: String,
    start: Start,
    callback: String,
    error_callback: Option<String>,
    new_user_callback: Option<String>,
    /// Linking to this signed-in user, not signing in.
    link: Option<UserId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SocialBody {
    pub provider: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    #[serde(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    /// Answer `redirect: false` (the client goes to `url` itself).
    pub disable_redirect: Option<bool>,
    pub login_hint: Option<String>,
    /// Better Auth's other fields (`scopes`, `requestSignUp`, `idToken`...) are accepted and
    /// not used: the operator sets a provider's scopes.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedirectAnswer {
    pub url: String,
    pub redirect: bool,
}

async fn provider_of(state: &AppState, id: &str) -> ApiResult<Provider> {
    state
        .identity_providers()
        .await?
        .iter()
        .find(|p| p.config.id == id)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "PROVIDER_NOT_FOUND",
                "Provider not found",
            )
        })
}

/// Where the provider sends the browser back (what its admin registers there).
pub(crate) fn redirect_uri(state: &AppState, provider: &Provider) -> String {
    format!(
        "{}/api/auth/callback/{}",
        state.public_url.trim_end_matches('/'),
        provider.config.id
    )
}

/// Begin a sign-in (or a link, `link`): store its `state`, set its cookie, and answer the
/// provider's address.
async fn begin(state: &AppState, body: SocialBody, link: Option<UserId>) -> ApiResult<Response> {
    let provider = &provider_of(state, &body.provider).await?;
    if let Some(url) = &body.callback_url {
        check_callback_url(state, url)?;
    }
    let named = [
        (
            &body.error_callback_url,
            "INVALID_ERROR_CALLBACK_URL",
            "Invalid errorCallbackURL",
        ),
        (
            &body.new_user_callback_url,
            "INVALID_NEW_USER_CALLBACK_URL",
            "Invalid newUserCallbackURL",
        ),
    ];
    for (url, code, message) in named {
        if url
            .as_ref()
            .is_some_and(|url| check_callback_url(state, url).is_err())
        {
            return Err(ApiError::new(StatusCode::FORBIDDEN, code, message));
        }
    }
    let start = Start::new();
    let url = state
        .sso
        .authorization_url(
            provider,
            &start,
            &redirect_uri(state, provider),
            body.login_hint.as_deref().filter(|h| h.len() <= 320),
        )
        .await
        .map_err(provider_unavailable)?;
    db::create_verification(&state.pool, STATE_IDENTIFIER, &start.state, SIGN_IN_TIME).await?;
    let pending = Pending {
        provider: provider.config.id.clone(),
        start,
        callback: body.callback_url.unwrap_or_else(|| "/".into()),
        error_callback: body.error_callback_url,
        new_user_callback: body.new_user_callback_url,
        link,
    };
    let value =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&pending).map_err(|_| ApiError::internal())?);
    let cookie = state
        .cookies
        .set(OAUTH_STATE, &value, Some(SIGN_IN_TIME.num_seconds()));
    Ok(with_cookies(
        Json(RedirectAnswer {
            url,
            redirect: body.disable_redirect != Some(true),
        }),
        vec![cookie],
    ))
}

fn provider_unavailable(error: sambung_sso::SsoError) -> ApiError {
    // Who asks may be anyone: the reason (an address, a status) is for the log.
    tracing::warn!(error = %error, "an identity provider cannot be used");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "PROVIDER_UNAVAILABLE",
        "the identity provider cannot be reached now; an admin finds why in the server's log",
    )
}

/// Sign in through an identity provider: where to send the browser.
#[utoipa::path(post, path = "/sign-in/social", tag = "auth", request_body = SocialBody,
    responses((status = 200, body = RedirectAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn sign_in_social(
    State(state): Shared,
    ApiJson(body): ApiJson<SocialBody>,
) -> ApiResult<Response> {
    begin(&state, body, None).await
}

/// Link an identity provider's account to the signed-in user: where to send the browser.
#[utoipa::path(post, path = "/link-social", tag = "auth", request_body = SocialBody,
    responses((status = 200, body = RedirectAnswer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn link_social(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<SocialBody>,
) -> ApiResult<Response> {
    begin(&state, body, Some(me.user.id)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The provider sends the browser back here: signed in (or linked), it goes on to the
/// `callbackURL` (`newUserCallbackURL` for a new account); else to `errorCallbackURL` (or
/// the sign-in page) with `?error=` naming what went wrong.
#[utoipa::path(get, path = "/callback/{id}", tag = "auth", params(("id" = String, Path), CallbackQuery),
    responses((status = 302, description = "On to the callback URL, or to the error page with error=")))]
async fn callback(
    State(state): Shared,
    Path(id): Path<String>,
    Query(query): Query<CallbackQuery>,
    client: ClientIp,
    headers: HeaderMap,
) -> Response {
    let pending = state
        .cookies
        .read(&headers, OAUTH_STATE)
        .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
        .and_then(|json| serde_json::from_slice::<Pending>(&json).ok());
    let expire = state.cookies.expire(OAUTH_STATE);
    let Some(pending) = pending else {
        let code = match query.state {
            Some(_) => "state_mismatch",
            None => "state_not_found",
        };
        return with_cookies(failed(&state, None, code), vec![expire]);
    };
    let error_to = pending
        .error_callback
        .clone()
        .unwrap_or_else(|| pending.callback.clone());
    let outcome = finish(&state, &id, query, &pending, client, &headers).await;
    let mut cookies = vec![expire];
    match outcome {
        Ok((to, session)) => {
            cookies.extend(session);
            with_cookies(redirect(&to), cookies)
        }
        Err(code) => with_cookies(failed(&state, Some(&error_to), code), cookies),
    }
}

/// The error page: `to` (the sign-in's error callback) or the web UI's sign-in page, with
/// `?error=CODE` (the UI says it in words).
fn failed(state: &AppState, to: Option<&str>, code: &str) -> Response {
    let to = to
        .filter(|to| check_callback_url(state, to).is_ok())
        .unwrap_or("/#/");
    redirect(&super::routes::callback_with(state, to, "error", code))
}

async fn finish(
    state: &AppState,
    id: &str,
    query: CallbackQuery,
    pending: &Pending,
    client: ClientIp,
    headers: &HeaderMap,
) -> Result<(String, Vec<axum::http::HeaderValue>), &'static str> {
    // The state must be the one this browser's cookie names, and unused.
    let given = query.state.as_deref().unwrap_or_default();
    if given.is_empty() || !sambung_http::edge::secrets_equal(given, &pending.start.state) {
        return Err("state_mismatch");
    }
    let fresh = db::consume_verification(&state.pool, STATE_IDENTIFIER, given)
        .await
        .map_err(|_| "internal_server_error")?;
    if !fresh || pending.provider != id {
        return Err("state_mismatch");
    }
    if let Some(error) = query.error.as_deref() {
        tracing::info!(
            provider = id,
            error,
            "the identity provider refused the sign-in"
        );
        return Err(match error {
            "access_denied" => "access_denied",
            _ => "provider_error",
        });
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or("no_code")?;
    let provider = &provider_of(state, id)
        .await
        .map_err(|_| "oauth_provider_not_found")?;
    let identity = state
        .sso
        .finish(provider, &pending.start, code, &redirect_uri(state, provider))
        .await
        .map_err(|error| {
            tracing::warn!(provider = id, error = %error, "a sign-in through an identity provider failed");
            error.code()
        })?;
    let email = identity
        .email
        .clone()
        .and_then(|e| db::normalize_email(&e).ok())
        .ok_or("email_not_found")?;
    if !provider.domain_allowed(&email) {
        return Err("email_domain_not_allowed");
    }
    // Better Auth keeps scopes comma-separated.
    let scope = identity
        .scope
        .as_deref()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(","));
    let account = ProviderAccount {
        provider_id: &provider.config.id,
        account_id: &identity.subject,
        scope: scope.as_deref(),
    };
    let known = db::provider_account_user(&state.pool, account.provider_id, account.account_id)
        .await
        .map_err(|_| "internal_server_error")?;
    if let Some(linking) = pending.link {
        // As Better Auth: only an identity whose email the provider vouches for, and the
        // same email as the account's.
        let user = db::get_user(&state.pool, linking)
            .await
            .map_err(|_| "unable_to_link_account")?;
        if !identity.email_verified {
            return Err("unable_to_link_account");
        }
        if user.email != email {
            return Err("email_does_not_match");
        }
        match known {
            Some(owner) if owner != linking => {
                return Err("account_already_linked_to_different_user")
            }
            Some(_) => {}
            None => db::link_provider_account(&state.pool, linking, account, false)
                .await
                .map_err(|_| "unable_to_link_account")?,
        }
        return Ok((pending.callback.clone(), Vec::new()));
    }
    let (user, new) = match known {
        Some(user) => (
            db::get_user(&state.pool, user)
                .await
                .map_err(|_| "user_not_found")?,
            false,
        ),
        None => match db::get_user_by_email(&state.pool, &email)
            .await
            .map_err(|_| "internal_server_error")?
        {
            // An account here with this email is theirs only if both sides vouch for it; an
            // admin's is never linked by email alone (its owner links it, signed in).
            Some(user) => {
                let vouched = identity.email_verified
                    && (user.email_verified || provider.config.link_unverified_accounts)
                    && !user.is_admin();
                if !vouched {
                    return Err("account_not_linked");
                }
                // An unconfirmed account may have been made by whoever typed the address: the
                // provider's person takes it over, without that password or its sessions.
                let take_over = !user.email_verified;
                db::link_provider_account(&state.pool, user.id, account, take_over)
                    .await
                    .map_err(|_| "unable_to_link_account")?;
                (user, false)
            }
            None => (
                sign_up(state, provider, &identity, &email, account).await?,
                true,
            ),
        },
    };
    if user.is_banned() {
        return Err("banned");
    }
    if identity.admin && !user.is_admin() {
        db::make_admin(&state.pool, user.id)
            .await
            .map_err(|_| "internal_server_error")?;
        audit::record(
            state,
            Actor::User(&user),
            client,
            Action::RoleChanged,
            Some(("user", user.id.to_string())),
            json!({"to": "admin", "by": "adminClaim", "provider": provider.config.id}),
        )
        .await;
    }
    // The provider is one way in; a second factor set up here is asked for all the same.
    let mut trusted = Vec::new();
    if user.two_factor_enabled {
        match two_factor::sign_in_step(state, &user, true, headers)
            .await
            .map_err(|_| "internal_server_error")?
        {
            two_factor::SignInStep::Code(cookies) => {
                return Ok(("/#/?two_factor=1".to_owned(), cookies))
            }
            two_factor::SignInStep::Session(cookies) => trusted = cookies,
        }
    }
    let (_, mut cookies) = open_session(state, &user, true, client, headers)
        .await
        .map_err(|_| "internal_server_error")?;
    cookies.extend(trusted);
    audit::record(
        state,
        Actor::User(&user),
        client,
        if new { Action::SignUp } else { Action::SignIn },
        Some(("user", user.id.to_string())),
        json!({"provider": provider.config.id}),
    )
    .await;
    let to = match (&pending.new_user_callback, new) {
        (Some(to), true) => to.clone(),
        _ => pending.callback.clone(),
    };
    Ok((to, cookies))
}

/// A new account for whoever signed in, as the provider and the sign-up policy allow.
async fn sign_up(
    state: &AppState,
    provider: &Provider,
    identity: &Identity,
    email: &str,
    account: ProviderAccount<'_>,
) -> Result<User, &'static str> {
    if !provider.config.allow_sign_up {
        return Err("signup_disabled");
    }
    // An address the provider does not vouch for could be anyone's: no account is made for it
    // (its owner would find it taken, and the taker linked to it).
    if !identity.email_verified {
        return Err("email_not_verified");
    }
    let settings = state
        .instance_settings()
        .await
        .map_err(|_| "internal_server_error")?;
    let name = identity
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let name: String = name.chars().take(200).collect();
    let gate = SignupGate {
        policy: settings.signup,
        settings: &settings,
        invitation: None,
    };
    db::sign_up_with_provider(
        &state.pool,
        &name,
        email,
        identity.email_verified,
        account,
        gate,
    )
    .await
    .map_err(|error| match error {
        DomainError::SignupRefused(_) => "signup_disabled",
        DomainError::Conflict(_) => "account_not_linked",
        _ => "unable_to_create_user",
    })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountOut {
    pub id: uuid::Uuid,
    pub provider_id: String,
    pub account_id: String,
    pub user_id: uuid::Uuid,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The signed-in user's ways to sign in (`credential` is the password).
#[utoipa::path(get, path = "/list-accounts", tag = "auth",
    responses((status = 200, body = [AccountOut]), (status = 401, body = ErrorBody)))]
async fn list_accounts(State(state): Shared, me: SignedIn) -> ApiResult<Json<Vec<AccountOut>>> {
    let accounts = db::list_accounts(&state.pool, me.user.id).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| AccountOut {
                id: a.id.0,
                provider_id: a.provider_id,
                account_id: a.account_id,
                user_id: a.user_id.0,
                scopes: a
                    .scope
                    .map(|s| {
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                created_at: a.created_at.into(),
                updated_at: a.updated_at.into(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkBody {
    /// The account's `id` (as `list-accounts` shows it).
    pub account_id: Option<String>,
    /// Or the provider's id.
    pub provider_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnlinkAnswer {
    pub status: bool,
}

/// Unlink one of the user's ways to sign in, never the last; the session must be fresh (a
/// day old at most), as Better Auth asks.
#[utoipa::path(post, path = "/unlink-account", tag = "auth", request_body = UnlinkBody,
    responses((status = 200, body = UnlinkAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn unlink_account(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<UnlinkBody>,
) -> ApiResult<Response> {
    if chrono::Utc::now() - me.session.created_at > super::SHORT_SESSION_LIFETIME {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "SESSION_NOT_FRESH",
            "Session is not fresh",
        ));
    }
    let which = match (&body.account_id, &body.provider_id) {
        (Some(id), _) => db::AccountChoice::Id(id.parse().unwrap_or_default()),
        (None, Some(provider)) => db::AccountChoice::Provider(provider),
        (None, None) => return Err(ApiError::invalid("accountId", "name the account to unlink")),
    };
    match db::unlink_account(&state.pool, me.user.id, which).await {
        Ok(()) => {}
        Err(DomainError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "FAILED_TO_UNLINK_LAST_ACCOUNT",
                "You can't unlink your last account",
            ))
        }
        Err(DomainError::NotFound { .. }) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "ACCOUNT_NOT_FOUND",
                "Account not found",
            ))
        }
        Err(other) => return Err(other.into()),
    }
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::UserUpdated,
        Some(("user", me.user.id.to_string())),
        json!({"unlinked": body.account_id.or(body.provider_id)}),
    )
    .await;
    Ok(Json(UnlinkAnswer { status: true }).into_response())
}
