//! Better Auth's email-and-password endpoints under `/api/auth`, with its bodies, answers,
//! cookies and error codes (`BASE_ERROR_CODES`), so its own client works unchanged.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use sambung_db::auth::{self as db, Session, User, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use sambung_db::{DomainError, SessionId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::cookie::{DONT_REMEMBER, SESSION_DATA, SESSION_TOKEN};
use super::{ClientIp, MaybeSignedIn, SignedIn, SESSION_LIFETIME, SHORT_SESSION_LIFETIME};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, OptionalJson};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(get_session))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(revoke_other_sessions))
        .routes(routes!(revoke_sessions))
        .routes(routes!(change_password))
        .routes(routes!(update_user))
        .routes(routes!(delete_user))
        .routes(routes!(ok))
}

/// A user as Better Auth shows one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOut {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            id: u.id.0,
            name: u.name,
            email: u.email,
            email_verified: u.email_verified,
            image: u.image,
            created_at: u.created_at.into(),
            updated_at: u.updated_at.into(),
        }
    }
}

/// A session as Better Auth shows one. Only token hashes are stored, so listed sessions carry
/// their id in `token` (which `revoke-session` accepts).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    pub id: Uuid,
    pub token: String,
    pub user_id: Uuid,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionOut {
    fn new(s: Session, token: String) -> Self {
        SessionOut {
            id: s.id.0,
            token,
            user_id: s.user_id.0,
            expires_at: s.expires_at.into(),
            created_at: s.created_at.into(),
            updated_at: s.updated_at.into(),
            ip_address: s.ip_address,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAndUser {
    pub session: SessionOut,
    pub user: UserOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAndUser {
    /// The new session's token (also in the cookie); `null` when none was made.
    pub token: Option<String>,
    pub user: UserOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInAnswer {
    pub redirect: bool,
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub user: UserOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn auth_error(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(status, code, message)
}

/// Better Auth's password length checks, with its codes.
fn check_new_password(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(auth_error(
            StatusCode::BAD_REQUEST,
            "PASSWORD_TOO_SHORT",
            "Password too short",
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(auth_error(
            StatusCode::BAD_REQUEST,
            "PASSWORD_TOO_LONG",
            "Password too long",
        ));
    }
    Ok(())
}

/// A `callbackURL` must lead back to this site: resolved against the public URL as a browser
/// resolves it, it must have our origin (or a trusted one). Backslashes, whitespace and
/// control characters are refused outright: browsers read `/\\evil.test` and `/\t/evil.test`
/// as addresses on evil.test.
pub fn check_callback_url(state: &AppState, url: &str) -> ApiResult<()> {
    let refused = || {
        auth_error(
            StatusCode::FORBIDDEN,
            "INVALID_CALLBACK_URL",
            "Invalid callbackURL",
        )
    };
    if url
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(refused());
    }
    let base = url::Url::parse(&state.public_url).map_err(|_| refused())?;
    let resolved = base.join(url).map_err(|_| refused())?;
    let origin = resolved.origin().ascii_serialization();
    match state.origins.contains(&origin) {
        true => Ok(()),
        false => Err(refused()),
    }
}

fn invalid_email() -> ApiError {
    auth_error(StatusCode::BAD_REQUEST, "INVALID_EMAIL", "Invalid email")
}

/// Open a session for `user` and the cookies that carry it.
async fn open_session(
    state: &AppState,
    user: &User,
    remember: bool,
    client: ClientIp,
    headers: &HeaderMap,
) -> ApiResult<(String, Vec<HeaderValue>)> {
    let lifetime = if remember {
        SESSION_LIFETIME
    } else {
        SHORT_SESSION_LIFETIME
    };
    let ip = client.0.map(|ip| ip.to_string());
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect::<String>());
    let (_, token) = db::create_session(
        &state.pool,
        user.id,
        lifetime,
        ip.as_deref(),
        agent.as_deref(),
    )
    .await?;
    let mut cookies = Vec::new();
    if remember {
        cookies.push(state.cookies.set(
            SESSION_TOKEN,
            &token,
            Some(SESSION_LIFETIME.num_seconds()),
        ));
    } else {
        cookies.push(state.cookies.set(SESSION_TOKEN, &token, None));
        cookies.push(state.cookies.set(DONT_REMEMBER, "true", None));
    }
    Ok((token, cookies))
}

fn with_cookies(body: impl IntoResponse, cookies: Vec<HeaderValue>) -> Response {
    let mut response = body.into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn expired_cookies(state: &AppState) -> Vec<HeaderValue> {
    [SESSION_TOKEN, SESSION_DATA, DONT_REMEMBER]
        .into_iter()
        .map(|name| state.cookies.expire(name))
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpBody {
    pub name: String,
    pub email: String,
    pub password: String,
    pub image: Option<String>,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    pub remember_me: Option<bool>,
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/sign-up/email", tag = "auth", request_body = SignUpBody,
    responses((status = 200, body = TokenAndUser), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn sign_up(
    State(state): Shared,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignUpBody>,
) -> ApiResult<Response> {
    if db::normalize_email(&body.email).is_err() {
        return Err(invalid_email());
    }
    check_new_password(&body.password)?;
    if let Some(url) = &body.callback_url {
        check_callback_url(&state, url)?;
    }
    // Checked before anything is stored: a refused picture must not leave an account behind.
    if let Some(image) = body.image.as_deref() {
        db::validate_image(image)?;
    }
    let user = db::sign_up(
        &state.pool,
        db::NewUser {
            name: &body.name,
            email: &body.email,
            password: &body.password,
        },
    )
    .await
    .map_err(|e| match e {
        DomainError::Conflict(_) => auth_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
            "User already exists. Use another email.",
        ),
        other => other.into(),
    })?;
    let user = match body.image.as_deref() {
        Some(image) => db::update_user(&state.pool, user.id, &user.name, Some(image)).await?,
        None => user,
    };
    let remember = body.remember_me != Some(false);
    let (token, cookies) = open_session(&state, &user, remember, client, &headers).await?;
    Ok(with_cookies(
        Json(TokenAndUser {
            token: Some(token),
            user: user.into(),
        }),
        cookies,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInBody {
    pub email: String,
    pub password: String,
    pub remember_me: Option<bool>,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// Sign in with email and password. Unknown emails and wrong passwords are answered alike,
/// in the same time.
#[utoipa::path(post, path = "/sign-in/email", tag = "auth", request_body = SignInBody,
    responses((status = 200, body = SignInAnswer), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sign_in(
    State(state): Shared,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInBody>,
) -> ApiResult<Response> {
    if db::normalize_email(&body.email).is_err() {
        return Err(invalid_email());
    }
    if let Some(url) = &body.callback_url {
        check_callback_url(&state, url)?;
    }
    // Passwords are guessed from many addresses as easily as from one: an account that had
    // too many wrong ones lately is refused whoever asks.
    let account = db::normalize_email(&body.email).map_err(|_| invalid_email())?;
    if let Err(wait) = state.limiter.may_try_password(&account) {
        return Ok(super::too_many_requests(wait));
    }
    let Some(user) = db::check_password(&state.pool, &body.email, &body.password).await? else {
        state.limiter.failed_password(&account);
        return Err(auth_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_EMAIL_OR_PASSWORD",
            "Invalid email or password",
        ));
    };
    let remember = body.remember_me != Some(false);
    let (token, cookies) = open_session(&state, &user, remember, client, &headers).await?;
    Ok(with_cookies(
        Json(SignInAnswer {
            redirect: body.callback_url.is_some(),
            token,
            url: body.callback_url,
            user: user.into(),
        }),
        cookies,
    ))
}

/// End this session and remove its cookies.
#[utoipa::path(post, path = "/sign-out", tag = "auth", responses((status = 200, body = Success)))]
async fn sign_out(
    State(state): Shared,
    MaybeSignedIn(signed_in): MaybeSignedIn,
) -> ApiResult<Response> {
    if let Some(signed_in) = signed_in {
        match db::revoke_session_token(&state.pool, signed_in.user.id, &signed_in.token).await {
            Ok(()) | Err(DomainError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(with_cookies(
        Json(Success {
            success: true,
            message: None,
        }),
        expired_cookies(&state),
    ))
}

/// The session and its user, or `null` without a valid session.
#[utoipa::path(get, path = "/get-session", tag = "auth", responses((status = 200, body = Option<SessionAndUser>)))]
async fn get_session(
    State(state): Shared,
    headers: HeaderMap,
    MaybeSignedIn(signed_in): MaybeSignedIn,
) -> Response {
    match signed_in {
        Some(s) => Json(Some(SessionAndUser {
            session: SessionOut::new(s.session, s.token),
            user: s.user.into(),
        }))
        .into_response(),
        None => {
            let stale = state.cookies.read(&headers, SESSION_TOKEN).is_some();
            let body = Json(Option::<SessionAndUser>::None);
            // A cookie whose session is gone (expired, revoked) is removed.
            if stale {
                with_cookies(body, expired_cookies(&state))
            } else {
                body.into_response()
            }
        }
    }
}

/// The user's sessions that have not expired.
#[utoipa::path(get, path = "/list-sessions", tag = "auth", responses((status = 200, body = Vec<SessionOut>), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(state): Shared,
    signed_in: SignedIn,
) -> ApiResult<Json<Vec<SessionOut>>> {
    let sessions = db::list_sessions(&state.pool, signed_in.user.id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| {
                let id = s.id.to_string();
                SessionOut::new(s, id)
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeSessionBody {
    /// A session's id (as `list-sessions` gives it in `token`) or a real session token.
    pub token: String,
}

/// End one of the user's sessions.
#[utoipa::path(post, path = "/revoke-session", tag = "auth", request_body = RevokeSessionBody,
    responses((status = 200, body = Status), (status = 401, body = ErrorBody)))]
async fn revoke_session(
    State(state): Shared,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<RevokeSessionBody>,
) -> ApiResult<Json<Status>> {
    let user = signed_in.user.id;
    let done = match body.token.parse::<Uuid>() {
        Ok(id) => db::revoke_session(&state.pool, user, SessionId(id)).await,
        Err(_) => db::revoke_session_token(&state.pool, user, &body.token).await,
    };
    match done {
        // Someone else's session, or none: nothing to say (as Better Auth).
        Ok(()) | Err(DomainError::NotFound { .. }) => Ok(Json(Status { status: true })),
        Err(e) => Err(e.into()),
    }
}

/// End every session of the user but this one.
#[utoipa::path(post, path = "/revoke-other-sessions", tag = "auth", responses((status = 200, body = Status), (status = 401, body = ErrorBody)))]
async fn revoke_other_sessions(
    State(state): Shared,
    signed_in: SignedIn,
) -> ApiResult<Json<Status>> {
    db::revoke_other_sessions(&state.pool, signed_in.user.id, Some(signed_in.session.id)).await?;
    Ok(Json(Status { status: true }))
}

/// End every session of the user, this one too.
#[utoipa::path(post, path = "/revoke-sessions", tag = "auth", responses((status = 200, body = Status), (status = 401, body = ErrorBody)))]
async fn revoke_sessions(State(state): Shared, signed_in: SignedIn) -> ApiResult<Response> {
    db::revoke_other_sessions(&state.pool, signed_in.user.id, None).await?;
    Ok(with_cookies(
        Json(Status { status: true }),
        expired_cookies(&state),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
    pub revoke_other_sessions: Option<bool>,
}

/// Change the password; optionally end every other session (this one is replaced).
#[utoipa::path(post, path = "/change-password", tag = "auth", request_body = ChangePasswordBody,
    responses((status = 200, body = TokenAndUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn change_password(
    State(state): Shared,
    client: ClientIp,
    headers: HeaderMap,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> ApiResult<Response> {
    check_new_password(&body.new_password)?;
    let user = signed_in.user;
    db::change_password(
        &state.pool,
        user.id,
        &body.current_password,
        &body.new_password,
    )
    .await
    .map_err(|e| match e {
        DomainError::Forbidden { .. } => auth_error(
            StatusCode::BAD_REQUEST,
            "INVALID_PASSWORD",
            "Invalid password",
        ),
        DomainError::NotFound { .. } => auth_error(
            StatusCode::BAD_REQUEST,
            "CREDENTIAL_ACCOUNT_NOT_FOUND",
            "Credential account not found",
        ),
        other => other.into(),
    })?;
    if body.revoke_other_sessions == Some(true) {
        db::revoke_other_sessions(&state.pool, user.id, None).await?;
        let (token, cookies) =
            open_session(&state, &user, !signed_in.dont_remember, client, &headers).await?;
        return Ok(with_cookies(
            Json(TokenAndUser {
                token: Some(token),
                user: user.into(),
            }),
            cookies,
        ));
    }
    Ok(Json(TokenAndUser {
        token: None,
        user: user.into(),
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserBody {
    pub name: Option<String>,
    /// `null` removes the picture.
    #[serde(default, deserialize_with = "crate::api::nullable")]
    #[schema(value_type = Option<String>)]
    pub image: Option<Option<String>>,
    /// Refused: the email cannot be changed here.
    pub email: Option<String>,
}

/// Change the user's name or picture.
#[utoipa::path(post, path = "/update-user", tag = "auth", request_body = UpdateUserBody,
    responses((status = 200, body = Status), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn update_user(
    State(state): Shared,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<Status>> {
    if body.email.is_some() {
        return Err(auth_error(
            StatusCode::BAD_REQUEST,
            "EMAIL_CAN_NOT_BE_UPDATED",
            "Email can not be updated",
        ));
    }
    if body.name.is_none() && body.image.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "No fields to update",
        ));
    }
    let user = signed_in.user;
    let name = body.name.unwrap_or(user.name);
    let image = body.image.unwrap_or(user.image);
    db::update_user(&state.pool, user.id, &name, image.as_deref()).await?;
    Ok(Json(Status { status: true }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteUserBody {
    /// Required unless the session is less than a day old.
    pub password: Option<String>,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// Delete the account and everything it owns.
#[utoipa::path(post, path = "/delete-user", tag = "auth", request_body = DeleteUserBody,
    responses((status = 200, body = Success), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn delete_user(
    State(state): Shared,
    signed_in: SignedIn,
    OptionalJson(body): OptionalJson<DeleteUserBody>,
) -> ApiResult<Response> {
    let user = signed_in.user;
    match body.and_then(|b| b.password) {
        Some(password) => {
            let matched = db::check_password(&state.pool, &user.email, &password).await?;
            if matched.is_none() {
                return Err(auth_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_PASSWORD",
                    "Invalid password",
                ));
            }
        }
        None => {
            // Without the password, only a fresh sign-in may delete the account.
            if Utc::now() - signed_in.session.created_at >= SHORT_SESSION_LIFETIME {
                return Err(auth_error(
                    StatusCode::BAD_REQUEST,
                    "SESSION_EXPIRED",
                    "Session expired. Re-authenticate to perform this action.",
                ));
            }
        }
    }
    db::delete_user(&state.pool, user.id).await?;
    Ok(with_cookies(
        Json(Success {
            success: true,
            message: Some("User deleted".into()),
        }),
        expired_cookies(&state),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OkAnswer {
    pub ok: bool,
}

/// Whether the auth service answers.
#[utoipa::path(get, path = "/ok", tag = "auth", responses((status = 200, body = OkAnswer)))]
async fn ok() -> Json<OkAnswer> {
    Json(OkAnswer { ok: true })
}
