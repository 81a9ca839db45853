//! Better Auth 1.7.25's two-factor plugin (TOTP), so `twoFactorClient()` works unchanged:
//! `/two-factor/enable`, `get-totp-uri`, `verify-totp`, `verify-backup-code`,
//! `generate-backup-codes`, `disable`, and the password sign-in that answers
//! `{twoFactorRedirect: true}` with a pending-sign-in cookie instead of a session.
//!
//! Stricter than upstream where SPEC section 13 asks: a code counts once (a replay within its
//! window is refused), backup codes are kept as hashes, and the secret is sealed under the
//! master key. Codes are RFC 6238's (`totp-rs`): HMAC-SHA-1, 6 digits, 30 s, one step of skew.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sambung_db::audit::Action;
use sambung_db::auth::{self as db, Session, User};
use sambung_db::two_factor::{self, StepUse};
use sambung_db::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Algorithm, TOTP};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::{DONT_REMEMBER, TRUST_DEVICE, TWO_FACTOR, URI_COMPONENT};
use super::routes::{open_session, session_cookies, with_cookies, UserOut};
use super::{ClientIp, MaybeSignedIn, SignedIn};
use crate::audit::{self, Actor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// The name authenticator apps show above the codes.
const ISSUER: &str = "SambungChat";
/// Seconds a code lasts, its digits, and the steps before and after now that are accepted.
const PERIOD: u64 = 30;
const DIGITS: usize = 6;
const SKEW: i64 = 1;
/// Backup codes given at a time, each `XXXXX-XXXXX`.
const BACKUP_CODES: usize = 10;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(enable))
        .routes(routes!(get_totp_uri))
        .routes(routes!(verify_totp))
        .routes(routes!(verify_backup_code))
        .routes(routes!(generate_backup_codes))
        .routes(routes!(disable))
        .routes(routes!(send_otp))
        .routes(routes!(verify_otp))
}

fn refused(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(status, code, message)
}

/// What the plugin answers for codes sent by mail when it has no way to send them, as here
/// (in the words each of its routes uses).
fn otp_not_configured(message: &'static str) -> ApiError {
    refused(StatusCode::BAD_REQUEST, "OTP_NOT_CONFIGURED", message)
}

fn invalid_password() -> ApiError {
    refused(
        StatusCode::BAD_REQUEST,
        "INVALID_PASSWORD",
        "Invalid password",
    )
}

fn not_enabled() -> ApiError {
    refused(
        StatusCode::BAD_REQUEST,
        "TOTP_NOT_ENABLED",
        "TOTP not enabled",
    )
}

/// The signed-in user's password, checked (in the time a wrong one takes).
async fn check_password(state: &AppState, user: &User, password: &str) -> ApiResult<()> {
    match db::check_password(&state.pool, &user.email, password).await? {
        Some(found) if found.id == user.id => Ok(()),
        _ => Err(invalid_password()),
    }
}

/// The TOTP of a secret (its key bytes) for `account`.
fn totp(secret: Vec<u8>, account: &str) -> ApiResult<TOTP> {
    // The URI's label is `issuer:account`: a colon in the account would split it.
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW as u8,
        PERIOD,
        secret,
        Some(ISSUER.into()),
        account,
    )
    .map_err(|error| {
        tracing::error!(error = ?error, "a TOTP secret cannot be used");
        ApiError::internal()
    })
}

/// The `otpauth://` URI as the plugin writes it: `issuer:account`, each part encoded as
/// `encodeURIComponent` does, then `secret`, `issuer`, `digits` and `period` as a form (a
/// space a `+`). Authenticator apps read it as any other.
fn uri_of(totp: &TOTP) -> String {
    let issuer = totp.issuer.as_deref().unwrap_or(ISSUER);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("secret", &totp.get_secret_base32())
        .append_pair("issuer", issuer)
        .append_pair("digits", &totp.digits.to_string())
        .append_pair("period", &totp.step.to_string())
        .finish();
    let part = |text: &str| percent_encoding::utf8_percent_encode(text, URI_COMPONENT).to_string();
    format!(
        "otpauth://totp/{}:{}?{query}",
        part(issuer),
        part(&totp.account_name)
    )
}

/// The user's TOTP, its secret unsealed.
async fn totp_of(
    state: &AppState,
    user: &User,
) -> ApiResult<Option<(TOTP, two_factor::TwoFactor)>> {
    let Some(stored) = two_factor::get(&state.pool, user.id).await? else {
        return Ok(None);
    };
    let secret = state
        .require_cipher()?
        .decrypt(&stored.secret, user.id.0.as_bytes())?;
    Ok(Some((totp(secret, &user.email)?, stored)))
}

/// The time step `code` is for (now, or one before or after), compared in constant time.
fn step_of(totp: &TOTP, code: &str) -> Option<i64> {
    let now = chrono::Utc::now().timestamp() / PERIOD as i64;
    let code = code.trim();
    (now - SKEW..=now + SKEW)
        .find(|step| sambung_http::edge::secrets_equal(&totp.generate(*step as u64 * PERIOD), code))
}

/// Ten new backup codes, `XXXXX-XXXXX` of letters and digits (about 59 bits each).
fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODES)
        .map(|_| {
            let letters: String = sambung_db::secret::random_token()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(10)
                .collect();
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordBody {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EnableBody {
    pub password: String,
    /// The name authenticator apps show (default: SambungChat).
    pub issuer: Option<String>,
    /// `totp` (the default); the plugin's `otp` (codes sent by mail) is not offered here.
    pub method: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnableAnswer {
    /// Always `totp`.
    pub method: &'static str,
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
    /// Shown this once: only their hashes are kept.
    pub backup_codes: Vec<String>,
}

/// Start setting up TOTP: a new secret (its `otpauth://` URI) and backup codes. Two-factor
/// sign-in is on once a first code from the app is verified (`verify-totp`).
#[utoipa::path(post, path = "/two-factor/enable", tag = "auth", request_body = EnableBody,
    responses((status = 200, body = EnableAnswer), (status = 400, body = ErrorBody)))]
async fn enable(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<EnableBody>,
) -> ApiResult<Json<EnableAnswer>> {
    check_password(&state, &me.user, &body.password).await?;
    match body.method.as_deref() {
        None | Some("totp") => {}
        Some("otp") => return Err(otp_not_configured("OTP is not available")),
        Some(_) => return Err(ApiError::invalid("method", "method: otp or totp")),
    }
    let cipher = state.require_cipher()?;
    // Upstream's shape: 32 characters whose bytes are the key (an imported secret works).
    let secret: String = sambung_db::secret::random_token()
        .chars()
        .take(32)
        .collect();
    let sealed = cipher.encrypt(secret.as_bytes(), me.user.id.0.as_bytes());
    let codes = new_backup_codes();
    if !two_factor::begin(&state.pool, me.user.id, &sealed, &codes).await? {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "TOTP_ALREADY_ENABLED",
            "TOTP is already enabled",
        ));
    }
    let mut totp = totp(secret.into_bytes(), &me.user.email)?;
    if let Some(issuer) = body
        .issuer
        .filter(|i| !i.trim().is_empty() && i.len() <= 64)
    {
        totp.issuer = Some(issuer.replace(':', "_"));
    }
    Ok(Json(EnableAnswer {
        method: "totp",
        totp_uri: uri_of(&totp),
        backup_codes: codes,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UriAnswer {
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
}

/// The `otpauth://` URI of the user's secret, to add it to another app.
#[utoipa::path(post, path = "/two-factor/get-totp-uri", tag = "auth", request_body = PasswordBody,
    responses((status = 200, body = UriAnswer), (status = 400, body = ErrorBody)))]
async fn get_totp_uri(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<Json<UriAnswer>> {
    let Some((totp, _)) = totp_of(&state, &me.user).await? else {
        return Err(not_enabled());
    };
    check_password(&state, &me.user, &body.password).await?;
    Ok(Json(UriAnswer {
        totp_uri: uri_of(&totp),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeBody {
    pub code: String,
    /// Skip the code on this device for 30 days.
    pub trust_device: Option<bool>,
    /// (`verify-backup-code`) Check the code without opening a session.
    pub disable_session: Option<bool>,
}

/// Send a code by mail for a pending sign-in: not offered here (codes come from an
/// authenticator app), answered as the plugin answers when it has no way to send them.
#[utoipa::path(post, path = "/two-factor/send-otp", tag = "auth",
    responses((status = 400, body = ErrorBody)))]
async fn send_otp() -> ApiResult<Response> {
    Err(otp_not_configured("otp isn't configured"))
}

/// Check a code sent by mail: none is ever sent here, so none has a code to check (after the
/// sign-in or session is checked, as the plugin does).
#[utoipa::path(post, path = "/two-factor/verify-otp", tag = "auth", request_body = CodeBody,
    responses((status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn verify_otp(
    State(state): Shared,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    headers: HeaderMap,
    ApiJson(_): ApiJson<CodeBody>,
) -> ApiResult<Response> {
    verifier(&state, signed_in, &headers).await?;
    Err(refused(
        StatusCode::BAD_REQUEST,
        "OTP_HAS_EXPIRED",
        "OTP has expired",
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    pub token: Option<String>,
    pub user: UserOut,
}

/// Who a code is for: the signed-in user (setting up, or checking), or the pending password
/// sign-in the `two_factor` cookie names.
enum Verifier {
    SignedIn(SignedIn),
    Pending { user: User, challenge: String },
}

async fn verifier(
    state: &AppState,
    signed_in: Option<SignedIn>,
    headers: &HeaderMap,
) -> ApiResult<Verifier> {
    if let Some(signed_in) = signed_in {
        return Ok(Verifier::SignedIn(signed_in));
    }
    let invalid = || {
        refused(
            StatusCode::UNAUTHORIZED,
            "INVALID_TWO_FACTOR_COOKIE",
            "Invalid two factor cookie",
        )
    };
    let challenge = state
        .cookies
        .read(headers, TWO_FACTOR)
        .ok_or_else(invalid)?;
    let user = two_factor::challenge_user(&state.pool, &challenge)
        .await?
        .ok_or_else(invalid)?;
    let user = db::get_user(&state.pool, user).await?;
    if user.is_banned() {
        return Err(invalid());
    }
    Ok(Verifier::Pending { user, challenge })
}

impl Verifier {
    fn user(&self) -> &User {
        match self {
            Verifier::SignedIn(signed_in) => &signed_in.user,
            Verifier::Pending { user, .. } => user,
        }
    }
}

/// The answer while the account is locked after too many wrong codes: 429 with
/// `X-Retry-After`.
fn locked_answer(until: chrono::DateTime<chrono::Utc>) -> Response {
    let wait = (until - chrono::Utc::now()).num_seconds().max(1);
    let mut response = refused(
        StatusCode::TOO_MANY_REQUESTS,
        "ACCOUNT_TEMPORARILY_LOCKED",
        "Too many failed verification attempts. Your account is temporarily locked. Please try again later.",
    )
    .into_response();
    response
        .headers_mut()
        .insert("X-Retry-After", HeaderValue::from(wait));
    response
}

/// The answer to a pending sign-in that has had its codes: it is over, cookie and all.
fn spent_answer(state: &AppState) -> Response {
    with_cookies(
        refused(
            StatusCode::BAD_REQUEST,
            "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
            "Too many attempts. Please request a new code.",
        ),
        vec![state.cookies.expire(TWO_FACTOR)],
    )
}

/// Count this attempt before its code is checked, so that attempts sent at once are all
/// counted: against the account (locked after ten wrong codes in a row) and against the
/// pending sign-in (five wrong codes, each answered as wrong; the attempt after them ends it,
/// as the plugin does). `Ok`: the code may be checked; `Err`: the answer instead.
async fn count_attempt(state: &AppState, verifier: &Verifier) -> ApiResult<Result<(), Response>> {
    if let Verifier::Pending { challenge, .. } = verifier {
        if !two_factor::challenge_attempt(&state.pool, challenge).await? {
            two_factor::end_challenge(&state.pool, challenge).await?;
            return Ok(Err(spent_answer(state)));
        }
    }
    if let Err(until) = two_factor::attempt(&state.pool, verifier.user().id).await? {
        return Ok(Err(locked_answer(until)));
    }
    Ok(Ok(()))
}

/// A code was right: a pending sign-in becomes a session (once, when `open`), a set-up that
/// it turned into two-factor sign-in gave its session a new token (`new_session`, set as the
/// cookie); a trusted device gets its cookie.
async fn passed(
    state: &AppState,
    verifier: Verifier,
    client: ClientIp,
    headers: &HeaderMap,
    trust: bool,
    open: bool,
    new_session: Option<(Session, String)>,
) -> ApiResult<Response> {
    let mut cookies = Vec::new();
    let (token, user) = match verifier {
        Verifier::SignedIn(signed_in) => {
            let user = db::get_user(&state.pool, signed_in.user.id).await?;
            let token = match new_session {
                Some((session, token)) => {
                    cookies.extend(new_session_cookies(state, &signed_in, &session, &token));
                    token
                }
                None => signed_in.token,
            };
            (Some(token), user)
        }
        Verifier::Pending { user, challenge } => {
            if !two_factor::end_challenge(&state.pool, &challenge).await? {
                return Err(refused(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_TWO_FACTOR_COOKIE",
                    "Invalid two factor cookie",
                ));
            }
            cookies.push(state.cookies.expire(TWO_FACTOR));
            let token = if open {
                let remember = state.cookies.read(headers, DONT_REMEMBER).is_none();
                let (token, session) =
                    open_session(state, &user, remember, client, headers).await?;
                cookies.extend(session);
                audit::record(
                    state,
                    Actor::User(&user),
                    client,
                    Action::SignIn,
                    Some(("user", user.id.to_string())),
                    json!({"secondFactor": true}),
                )
                .await;
                Some(token)
            } else {
                None
            };
            (token, user)
        }
    };
    if trust {
        // The code was right and a session may be new: failing here would lose its token, and
        // sign the person out, over a convenience.
        match two_factor::trust_device(&state.pool, user.id).await {
            Ok(device) => cookies.push(state.cookies.set(
                TRUST_DEVICE,
                &device,
                Some(two_factor::TRUST_LIFETIME.num_seconds()),
            )),
            Err(e) => tracing::warn!(error = %e, "a device could not be trusted"),
        }
    }
    Ok(with_cookies(
        Json(TokenAnswer {
            token,
            user: user.into(),
        }),
        cookies,
    ))
}

/// Check a code from the authenticator app: it finishes a pending password sign-in, or
/// (signed in) confirms the set-up, which turns two-factor sign-in on. A code counts once.
#[utoipa::path(post, path = "/two-factor/verify-totp", tag = "auth", request_body = CodeBody,
    responses((status = 200, body = TokenAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn verify_totp(
    State(state): Shared,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Response> {
    let verifier = verifier(&state, signed_in, &headers).await?;
    let Some((totp, stored)) = totp_of(&state, verifier.user()).await? else {
        return Err(not_enabled());
    };
    let pending = matches!(verifier, Verifier::Pending { .. });
    if pending && !stored.verified {
        return Err(not_enabled());
    }
    if let Err(answer) = count_attempt(&state, &verifier).await? {
        return Ok(answer);
    }
    let invalid = || refused(StatusCode::UNAUTHORIZED, "INVALID_CODE", "Invalid code");
    let Some(step) = step_of(&totp, &body.code) else {
        return Err(invalid());
    };
    let session = match &verifier {
        Verifier::SignedIn(signed_in) => Some(signed_in.session.id),
        Verifier::Pending { .. } => None,
    };
    let used = two_factor::use_step(&state.pool, verifier.user().id, step, session)
        .await
        .map_err(session_gone)?;
    let new_session = match used {
        // The right code, used already: whoever saw it may not sign in with it.
        StepUse::Refused => return Err(invalid()),
        StepUse::Used { new_session } => new_session,
    };
    if !stored.verified {
        audit::record(
            &state,
            Actor::User(verifier.user()),
            client,
            Action::TwoFactorChanged,
            Some(("user", verifier.user().id.to_string())),
            json!({"enabled": true}),
        )
        .await;
    }
    passed(
        &state,
        verifier,
        client,
        &headers,
        body.trust_device == Some(true),
        true,
        new_session,
    )
    .await
}

/// Use a backup code (once) instead of the app's.
#[utoipa::path(post, path = "/two-factor/verify-backup-code", tag = "auth", request_body = CodeBody,
    responses((status = 200, body = TokenAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn verify_backup_code(
    State(state): Shared,
    MaybeSignedIn(signed_in): MaybeSignedIn,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Response> {
    let verifier = verifier(&state, signed_in, &headers).await?;
    let enabled = two_factor::get(&state.pool, verifier.user().id)
        .await?
        .is_some_and(|stored| stored.verified);
    if !enabled {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "BACKUP_CODES_NOT_ENABLED",
            "Backup codes aren't enabled",
        ));
    }
    if let Err(answer) = count_attempt(&state, &verifier).await? {
        return Ok(answer);
    }
    if !two_factor::use_backup_code(&state.pool, verifier.user().id, &body.code).await? {
        let invalid = refused(
            StatusCode::UNAUTHORIZED,
            "INVALID_BACKUP_CODE",
            "Invalid backup code",
        );
        return Err(invalid);
    }
    passed(
        &state,
        verifier,
        client,
        &headers,
        body.trust_device == Some(true),
        body.disable_session != Some(true),
        None,
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCodesAnswer {
    pub status: bool,
    pub backup_codes: Vec<String>,
}

/// New backup codes in place of the old ones (shown this once).
#[utoipa::path(post, path = "/two-factor/generate-backup-codes", tag = "auth", request_body = PasswordBody,
    responses((status = 200, body = BackupCodesAnswer), (status = 400, body = ErrorBody)))]
async fn generate_backup_codes(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<Json<BackupCodesAnswer>> {
    let not_enabled = || {
        refused(
            StatusCode::BAD_REQUEST,
            "TWO_FACTOR_NOT_ENABLED",
            "Two factor isn't enabled",
        )
    };
    if !me.user.two_factor_enabled {
        return Err(not_enabled());
    }
    check_password(&state, &me.user, &body.password).await?;
    let codes = new_backup_codes();
    if !two_factor::replace_backup_codes(&state.pool, me.user.id, &codes).await? {
        return Err(not_enabled());
    }
    Ok(Json(BackupCodesAnswer {
        status: true,
        backup_codes: codes,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    pub status: bool,
}

/// Turn two-factor sign-in off (the secret, backup codes and trusted devices go).
///
/// The session it is done in gets a new token, as Better Auth's plugin replaces it.
#[utoipa::path(post, path = "/two-factor/disable", tag = "auth", request_body = PasswordBody,
    responses((status = 200, body = StatusAnswer), (status = 400, body = ErrorBody)))]
async fn disable(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<Response> {
    check_password(&state, &me.user, &body.password).await?;
    let new_session = two_factor::disable(&state.pool, me.user.id, Some(me.session.id))
        .await
        .map_err(session_gone)?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::TwoFactorChanged,
        Some(("user", me.user.id.to_string())),
        json!({"enabled": false}),
    )
    .await;
    let mut cookies = match new_session {
        Some((session, token)) => new_session_cookies(&state, &me, &session, &token),
        None => Vec::new(),
    };
    cookies.push(state.cookies.expire(TRUST_DEVICE));
    Ok(with_cookies(Json(StatusAnswer { status: true }), cookies))
}

/// The cookies of `signed_in`'s session under the new token two-factor sign-in turned on or
/// off gave it: the same end, and remembered as it was.
fn new_session_cookies(
    state: &AppState,
    signed_in: &SignedIn,
    session: &Session,
    token: &str,
) -> Vec<HeaderValue> {
    let remembered_for =
        (!signed_in.dont_remember).then(|| session.expires_at - chrono::Utc::now());
    session_cookies(state, token, remembered_for)
}

/// A session that ended while its request turned two-factor sign-in on or off (nothing
/// changed): signed out.
fn session_gone(e: DomainError) -> ApiError {
    match e {
        DomainError::NotFound { .. } => ApiError::unauthorized(),
        other => other.into(),
    }
}

/// What a password sign-in of `user` answers when they have two-factor sign-in on: a
/// session at once on a device they trust (its cookie renewed), else
/// `{twoFactorRedirect: true}` and the pending sign-in's cookie, and no session.
pub enum SignInStep {
    Session(Vec<HeaderValue>),
    /// No session: the cookies of the pending sign-in that waits for a code.
    Code(Vec<HeaderValue>),
}

pub async fn sign_in_step(
    state: &AppState,
    user: &User,
    remember: bool,
    headers: &HeaderMap,
) -> ApiResult<SignInStep> {
    let mut cookies = Vec::new();
    if let Some(device) = state.cookies.read(headers, TRUST_DEVICE) {
        if two_factor::take_trusted_device(&state.pool, user.id, &device).await? {
            let renewed = two_factor::trust_device(&state.pool, user.id).await?;
            cookies.push(state.cookies.set(
                TRUST_DEVICE,
                &renewed,
                Some(two_factor::TRUST_LIFETIME.num_seconds()),
            ));
            return Ok(SignInStep::Session(cookies));
        }
        cookies.push(state.cookies.expire(TRUST_DEVICE));
    }
    let challenge = two_factor::start_challenge(&state.pool, user.id).await?;
    cookies.push(state.cookies.set(
        TWO_FACTOR,
        &challenge,
        Some(two_factor::CHALLENGE_LIFETIME.num_seconds()),
    ));
    cookies.push(match remember {
        true => state.cookies.expire(DONT_REMEMBER),
        false => state.cookies.set(DONT_REMEMBER, "true", None),
    });
    Ok(SignInStep::Code(cookies))
}

/// A QR code of the secret being set up (SVG, drawn here: the secret goes to no other
/// service), for the settings page. Only while it is being set up.
pub async fn setup_qr(state: &AppState, user: &User) -> ApiResult<Response> {
    let Some((totp, stored)) = totp_of(state, user).await? else {
        return Err(not_enabled());
    };
    if stored.verified {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "TOTP_ALREADY_ENABLED",
            "TOTP is already enabled",
        ));
    }
    let code = qrcode::QrCode::new(uri_of(&totp).as_bytes()).map_err(|_| ApiError::internal())?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let mut response = svg.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(response)
}

/// Whether `user` must set up a second factor before anything else: when the instance
/// requires one of password accounts, and theirs has a password and no second factor yet
/// (one who signs in only through an identity provider has the provider's; an admin acting
/// as them is let through).
pub async fn must_set_up(state: &AppState, signed_in: &SignedIn) -> ApiResult<bool> {
    if signed_in.user.two_factor_enabled || signed_in.session.impersonated_by.is_some() {
        return Ok(false);
    }
    Ok(state.two_factor_required().await?
        && db::has_password(&state.pool, signed_in.user.id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 test vectors (8 digits there, 6 here: the last six).
    #[test]
    fn codes_are_rfc_6238s() {
        let secret = b"12345678901234567890".to_vec();
        let eight = TOTP::new(
            Algorithm::SHA1,
            8,
            1,
            30,
            secret,
            Some(ISSUER.into()),
            "a@example.com".into(),
        )
        .unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(eight.generate(time), code, "at {time}");
        }
        let six = totp(b"12345678901234567890".to_vec(), "a@example.com").unwrap();
        assert_eq!(six.generate(59), "287082");
        assert_eq!(
            uri_of(&six),
            "otpauth://totp/SambungChat:a%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=SambungChat&digits=6&period=30"
        );
        let mut named = six.clone();
        named.issuer = Some("Custom App Name".into());
        assert!(
            uri_of(&named).starts_with("otpauth://totp/Custom%20App%20Name:a%40example.com?")
                && uri_of(&named).contains("&issuer=Custom+App+Name&"),
            "the plugin's shape: {}",
            uri_of(&named)
        );
    }

    #[test]
    fn a_code_is_accepted_one_step_around_now_and_no_further() {
        let six = totp(b"12345678901234567890".to_vec(), "a@example.com").unwrap();
        let now = chrono::Utc::now().timestamp() / PERIOD as i64;
        for offset in [-1, 0, 1] {
            let code = six.generate(((now + offset) as u64) * PERIOD);
            assert_eq!(step_of(&six, &code), Some(now + offset));
        }
        let far = six.generate(((now + 3) as u64) * PERIOD);
        // A code three steps away may equal a near one by chance (one in a million).
        let near: Vec<String> = (-1..=1)
            .map(|o| six.generate(((now + o) as u64) * PERIOD))
            .collect();
        if !near.contains(&far) {
            assert_eq!(step_of(&six, &far), None);
        }
        assert_eq!(step_of(&six, "12345"), None);
        assert_eq!(step_of(&six, ""), None);
    }

    #[test]
    fn backup_codes_are_ten_of_five_and_five() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| c.is_ascii_alphanumeric()));
        }
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
    }
}
