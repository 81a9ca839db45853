//! Better Auth's email-and-password endpoints under `/api/auth`, with its bodies, answers,
//! cookies and error codes (`BASE_ERROR_CODES`), so its own client works unchanged.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use sambung_db::audit::Action;
use sambung_db::auth::{self as db, Session, User, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use sambung_db::mail::MailKind;
use sambung_db::{DomainError, SessionId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::cookie::{DONT_REMEMBER, SESSION_DATA, SESSION_TOKEN};
use super::{
    two_factor, ClientIp, MaybeSignedIn, SignedIn, SESSION_LIFETIME, SHORT_SESSION_LIFETIME,
};
use crate::audit::{self, Actor};
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
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password_link))
        .routes(routes!(reset_password))
        .routes(routes!(send_verification_email))
        .routes(routes!(verify_email))
        .routes(routes!(ok))
        .merge(super::admin::router())
        .merge(super::two_factor::router())
        .merge(super::social::router())
}

/// A user as Better Auth shows one (with its admin plugin's fields, and whether an admin
/// approved the account).
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
    /// `user` or `admin`.
    pub role: String,
    pub banned: bool,
    pub ban_reason: Option<String>,
    pub ban_expires: Option<Timestamp>,
    /// False while the account waits for an admin (the `approval` sign-up policy).
    pub approved: bool,
    /// Whether a password sign-in also needs a code (Better Auth's two-factor plugin).
    pub two_factor_enabled: bool,
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
            role: u.role,
            banned: u.banned,
            ban_reason: u.ban_reason,
            ban_expires: u.ban_expires.map(Timestamp::from),
            approved: u.approved,
            two_factor_enabled: u.two_factor_enabled,
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
    /// The admin acting as the user in this session.
    pub impersonated_by: Option<Uuid>,
}

impl SessionOut {
    pub fn new(s: Session, token: String) -> Self {
        SessionOut {
            id: s.id.0,
            token,
            user_id: s.user_id.0,
            expires_at: s.expires_at.into(),
            created_at: s.created_at.into(),
            updated_at: s.updated_at.into(),
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            impersonated_by: s.impersonated_by.map(|a| a.0),
        }
    }

    /// A session as listings show it: its id stands for the token, which is never kept.
    pub fn listed(s: Session) -> Self {
        let id = s.id.to_string();
        SessionOut::new(s, id)
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
pub(crate) async fn open_session(
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
    let cookies = session_cookies(state, &token, remember.then_some(SESSION_LIFETIME));
    Ok((token, cookies))
}

/// The cookies that carry a session's `token`: kept `for` that long when the person asked to
/// be remembered (`None`: they did not; kept for the browser's session).
pub(crate) fn session_cookies(
    state: &AppState,
    token: &str,
    remembered_for: Option<chrono::Duration>,
) -> Vec<HeaderValue> {
    match remembered_for {
        Some(kept) => {
            let max_age = kept.num_seconds().max(0);
            vec![state.cookies.set(SESSION_TOKEN, token, Some(max_age))]
        }
        None => vec![
            state.cookies.set(SESSION_TOKEN, token, None),
            state.cookies.set(DONT_REMEMBER, "true", None),
        ],
    }
}

pub(crate) fn with_cookies(body: impl IntoResponse, cookies: Vec<HeaderValue>) -> Response {
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
    /// An invitation token: an admin's invitation to the instance, or a team's invitation for
    /// this address. It lets its holder in whatever the sign-up policy.
    pub invitation: Option<String>,
}

/// Create an account and sign in, as the instance's sign-up policy allows (the first account
/// is its admin; a refused sign-up answers `EMAIL_PASSWORD_SIGN_UP_DISABLED`, saying why).
/// When emails must be verified, no session is made: a verification mail goes out instead.
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
    let settings = state.instance_settings().await?;
    let user = db::sign_up(
        &state.pool,
        db::NewUser {
            name: &body.name,
            email: &body.email,
            password: &body.password,
        },
        db::SignupGate {
            policy: settings.signup,
            settings: &settings,
            invitation: body.invitation.as_deref(),
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
    audit::record(
        &state,
        Actor::User(&user),
        client,
        Action::SignUp,
        Some(("user", user.id.to_string())),
        json!({"role": user.role, "approved": user.approved}),
    )
    .await;
    if settings.email_verification && !user.is_admin() {
        send_verification(&state, &headers, &user, body.callback_url.as_deref()).await?;
        return Ok(Json(TokenAndUser {
            token: None,
            user: user.into(),
        })
        .into_response());
    }
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
        audit::record(
            &state,
            Actor::Nobody,
            client,
            Action::SignInFailed,
            None,
            json!({"email": account}),
        )
        .await;
        return Err(auth_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_EMAIL_OR_PASSWORD",
            "Invalid email or password",
        ));
    };
    // Admins are let in whatever the settings: they are who can change them.
    let settings = match user.is_admin() {
        true => None,
        false => Some(state.instance_settings().await?),
    };
    if !user.email_verified && settings.as_ref().is_some_and(|s| s.email_verification) {
        return Err(auth_error(
            StatusCode::FORBIDDEN,
            "EMAIL_NOT_VERIFIED",
            "Email not verified",
        ));
    }
    refuse_printed_demo_password(&state, &user, &body.password)?;
    if settings.is_some_and(|s| !s.password_sign_in) {
        return Err(auth_error(
            StatusCode::FORBIDDEN,
            "PASSWORD_SIGN_IN_DISABLED",
            "This instance signs people in through its identity provider: use its button on the sign-in page.",
        ));
    }
    let remember = body.remember_me != Some(false);
    let mut trusted = Vec::new();
    if user.two_factor_enabled {
        match two_factor::sign_in_step(&state, &user, remember, &headers).await? {
            two_factor::SignInStep::Code(mut cookies) => {
                // No session yet: one the browser had (someone else's, say) ends here.
                cookies
                    .extend([SESSION_TOKEN, SESSION_DATA].map(|name| state.cookies.expire(name)));
                let body = json!({"twoFactorRedirect": true, "twoFactorMethods": ["totp"]});
                return Ok(with_cookies(Json(body), cookies));
            }
            two_factor::SignInStep::Session(cookies) => trusted = cookies,
        }
    }
    let (token, mut cookies) = open_session(&state, &user, remember, client, &headers).await?;
    cookies.extend(trusted);
    audit::record(
        &state,
        Actor::User(&user),
        client,
        Action::SignIn,
        Some(("user", user.id.to_string())),
        json!({}),
    )
    .await;
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
    client: ClientIp,
    MaybeSignedIn(signed_in): MaybeSignedIn,
) -> ApiResult<Response> {
    if let Some(signed_in) = signed_in {
        // By the session's id, not its token: a new token given to it meanwhile (two-factor
        // sign-in turned on or off) ends with it.
        match db::revoke_session(&state.pool, signed_in.user.id, signed_in.session.id).await {
            Ok(()) | Err(DomainError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        audit::record(
            &state,
            Actor::Session(&signed_in),
            client,
            Action::SignOut,
            None,
            json!({}),
        )
        .await;
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
    Ok(Json(sessions.into_iter().map(SessionOut::listed).collect()))
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

/// A server others can reach refuses the sample data's accounts while they keep the password
/// `sambung up` printed: anyone who read it could sign in.
fn refuse_printed_demo_password(state: &AppState, user: &User, password: &str) -> ApiResult<()> {
    let sample = db::SAMPLE_EMAILS.contains(&user.email.as_str());
    let reachable = url::Url::parse(&state.public_url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
        .is_some_and(|host| match host {
            url::Host::Domain(name) => name != "localhost",
            url::Host::Ipv4(ip) => !ip.is_loopback(),
            url::Host::Ipv6(ip) => !ip.is_loopback(),
        });
    if sample && reachable && password == sambung_db::seed::DEMO_PASSWORD {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "DEMO_PASSWORD_REFUSED",
            "This sample account still has the password `sambung up` printed, and this server is \
             reachable beyond this machine (PUBLIC_URL), so it is refused: set another password \
             (sambung admin reset-password EMAIL) or remove the account.",
        ));
    }
    Ok(())
}

/// A link in mail to `path` under `/api/auth`, carrying `callbackURL` when there is one.
fn auth_link(state: &AppState, path: &str, callback: Option<&str>) -> String {
    let mut link = format!("{}/api/auth/{path}", state.public_url.trim_end_matches('/'));
    if let Some(callback) = callback {
        link.push_str("?callbackURL=");
        link.extend(url::form_urlencoded::byte_serialize(callback.as_bytes()));
    }
    link
}

/// Send `user` a link that verifies their address (noted in the outbox, shown to admins
/// without a mail server).
async fn send_verification(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    callback: Option<&str>,
) -> ApiResult<()> {
    let Some(place) = crate::mail::reserve(state, &user.email, MailKind::VerifyEmail).await else {
        return Ok(());
    };
    let purpose = db::LinkPurpose::VerifyEmail;
    let token = db::issue_link_token(&state.pool, purpose, user.id).await?;
    let mut link = auth_link(state, "verify-email", None);
    link.push_str("?token=");
    link.push_str(&token);
    if let Some(callback) = callback {
        link.push_str("&callbackURL=");
        link.extend(url::form_urlencoded::byte_serialize(callback.as_bytes()));
    }
    let locale = crate::i18n::locale_of(user.locale.as_deref(), headers);
    let mail = sambung_mail::verify_email(
        locale,
        &user.email,
        &crate::mail::instance_name(state, locale),
        &link,
    );
    crate::mail::send(
        state,
        place,
        &mail,
        &link,
        Some(Utc::now() + purpose.lifetime()),
    )
    .await;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestResetBody {
    pub email: String,
    /// Where the link leads (the page that asks for the new password); on this site.
    pub redirect_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetRequested {
    pub status: bool,
    pub message: String,
}

/// Mail a password reset link (valid an hour, once). The answer is the same whether the
/// address has an account or not, and comes as fast: the mail goes out afterwards.
#[utoipa::path(post, path = "/request-password-reset", tag = "auth", request_body = RequestResetBody,
    responses((status = 200, body = ResetRequested), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn request_password_reset(
    State(state): Shared,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RequestResetBody>,
) -> ApiResult<Json<ResetRequested>> {
    let email = db::normalize_email(&body.email).map_err(|_| invalid_email())?;
    if let Some(url) = &body.redirect_to {
        check_callback_url(&state, url).map_err(|_| {
            auth_error(
                StatusCode::FORBIDDEN,
                "INVALID_REDIRECT_URL",
                "Invalid redirectURL",
            )
        })?;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let user = match db::get_user_by_email(&state.pool, &email).await {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up an account for a password reset");
                return;
            }
        };
        // With password sign-in left to admins, nobody else is sent a way to set one (the
        // answer is the same: it tells nothing of who has an account).
        if !user.is_admin() {
            match state.instance_settings().await {
                Ok(settings) if !settings.password_sign_in => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the instance's settings");
                    return;
                }
            }
        }
        // One reset mail a minute per address, however many clients ask.
        let Some(place) = crate::mail::reserve(&state, &user.email, MailKind::ResetPassword).await
        else {
            return;
        };
        let purpose = db::LinkPurpose::ResetPassword;
        let token = match db::issue_link_token(&state.pool, purpose, user.id).await {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "cannot make a password reset link");
                return;
            }
        };
        let link = format!(
            "{}/api/auth/reset-password/{token}?callbackURL={}",
            state.public_url.trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(
                body.redirect_to
                    .as_deref()
                    .unwrap_or("/#/reset-password")
                    .as_bytes()
            )
            .collect::<String>(),
        );
        let locale = crate::i18n::locale_of(user.locale.as_deref(), &headers);
        let mail = sambung_mail::reset_password(
            locale,
            &user.email,
            &crate::mail::instance_name(&state, locale),
            &link,
            purpose.lifetime().num_minutes(),
        );
        crate::mail::send(
            &state,
            place,
            &mail,
            &link,
            Some(Utc::now() + purpose.lifetime()),
        )
        .await;
        audit::record(
            &state,
            Actor::Nobody,
            client,
            Action::PasswordResetRequested,
            Some(("user", user.id.to_string())),
            json!({"email": user.email}),
        )
        .await;
    });
    Ok(Json(ResetRequested {
        status: true,
        message: "If this email exists in our system, check your email for the reset link".into(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// `callbackURL` resolved against this site with `key=value` added to its query (for the web
/// UI's `#/page` addresses, to the query in the fragment, which the page reads).
pub(crate) fn callback_with(state: &AppState, callback: &str, key: &str, value: &str) -> String {
    let base = url::Url::parse(&state.public_url).ok();
    let Some(mut url) = base.and_then(|b| b.join(callback).ok()) else {
        return state.public_url.clone();
    };
    match url.fragment().map(str::to_owned) {
        Some(fragment) if fragment.starts_with('/') => {
            let separator = if fragment.contains('?') { '&' } else { '?' };
            url.set_fragment(Some(&format!("{fragment}{separator}{key}={value}")));
        }
        _ => {
            url.query_pairs_mut().append_pair(key, value);
        }
    }
    url.to_string()
}

pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Where a mailed reset link leads: the `callbackURL` page with `?token=`, or with
/// `?error=INVALID_TOKEN` when the link is unknown, used or expired.
#[utoipa::path(get, path = "/reset-password/{token}", tag = "auth",
    params(("token" = String, Path), CallbackQuery),
    responses((status = 302, description = "To callbackURL with token= or error=INVALID_TOKEN"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn reset_password_link(
    State(state): Shared,
    axum::extract::Path(token): axum::extract::Path<String>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<CallbackQuery>,
) -> ApiResult<Response> {
    let Some(callback) = q.callback_url else {
        return Err(ApiError::invalid(
            "callbackURL",
            "[query.callbackURL] a page to lead to",
        ));
    };
    check_callback_url(&state, &callback)?;
    let valid = db::link_token_user(&state.pool, db::LinkPurpose::ResetPassword, &token)
        .await?
        .is_some();
    let location = match valid {
        true => callback_with(
            &state,
            &callback,
            "token",
            &url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>(),
        ),
        false => callback_with(&state, &callback, "error", "INVALID_TOKEN"),
    };
    Ok(redirect(&location))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordBody {
    pub new_password: String,
    pub token: Option<String>,
}

fn invalid_token() -> ApiError {
    auth_error(StatusCode::BAD_REQUEST, "INVALID_TOKEN", "Invalid token")
}

/// Set a new password with a reset link's token (used up); every session of the account
/// ends.
#[utoipa::path(post, path = "/reset-password", tag = "auth", request_body = ResetPasswordBody,
    responses((status = 200, body = Status), (status = 400, body = ErrorBody)))]
async fn reset_password(
    State(state): Shared,
    client: ClientIp,
    ApiJson(body): ApiJson<ResetPasswordBody>,
) -> ApiResult<Json<Status>> {
    let token = body
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_token)?;
    check_new_password(&body.new_password)?;
    let user = db::reset_password(&state.pool, &token, &body.new_password)
        .await
        .map_err(|e| match e {
            DomainError::Invalid { field: "token", .. } => invalid_token(),
            other => other.into(),
        })?;
    audit::record(
        &state,
        Actor::User(&user),
        client,
        Action::PasswordReset,
        Some(("user", user.id.to_string())),
        json!({}),
    )
    .await;
    Ok(Json(Status { status: true }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendVerificationBody {
    pub email: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// Mail a link that verifies an address (again). The answer is the same whatever the address.
#[utoipa::path(post, path = "/send-verification-email", tag = "auth", request_body = SendVerificationBody,
    responses((status = 200, body = Status), (status = 400, body = ErrorBody)))]
async fn send_verification_email(
    State(state): Shared,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendVerificationBody>,
) -> ApiResult<Json<Status>> {
    let email = db::normalize_email(&body.email).map_err(|_| invalid_email())?;
    if let Some(url) = &body.callback_url {
        check_callback_url(&state, url)?;
    }
    if let Some(signed_in) = &signed_in {
        if signed_in.user.email != email {
            return Err(auth_error(
                StatusCode::BAD_REQUEST,
                "EMAIL_MISMATCH",
                "Email mismatch",
            ));
        }
    }
    if let Some(user) = db::get_user_by_email(&state.pool, &email).await? {
        if !user.email_verified {
            send_verification(&state, &headers, &user, body.callback_url.as_deref()).await?;
        }
    }
    Ok(Json(Status { status: true }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    pub token: String,
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// Verify an address with a mailed link's token: to `callbackURL` (with `?error=` when the
/// link is unknown, used or expired), or `{status}` without one.
#[utoipa::path(get, path = "/verify-email", tag = "auth", params(VerifyQuery),
    responses((status = 200, body = Status), (status = 302, description = "To callbackURL"), (status = 400, body = ErrorBody)))]
async fn verify_email(
    State(state): Shared,
    client: ClientIp,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<VerifyQuery>,
) -> ApiResult<Response> {
    if let Some(callback) = &q.callback_url {
        check_callback_url(&state, callback)?;
    }
    let verified = db::verify_email(&state.pool, &q.token).await;
    match (&verified, &q.callback_url) {
        (Ok(user), _) => {
            audit::record(
                &state,
                Actor::User(user),
                client,
                Action::EmailVerified,
                Some(("user", user.id.to_string())),
                json!({}),
            )
            .await;
        }
        (Err(DomainError::Invalid { field: "token", .. }), Some(callback)) => {
            return Ok(redirect(&callback_with(
                &state,
                callback,
                "error",
                "invalid_token",
            )));
        }
        (Err(DomainError::Invalid { field: "token", .. }), None) => return Err(invalid_token()),
        (Err(_), _) => {}
    }
    verified?;
    Ok(match q.callback_url {
        Some(callback) => redirect(&callback_with(&state, &callback, "verified", "true")),
        None => Json(Status { status: true }).into_response(),
    })
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
