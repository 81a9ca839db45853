//! Authentication: Better Auth's email-and-password contract (`routes`), its signed cookies
//! (`cookie`), the signed-in user of a request, origin checks and rate limits.

pub mod admin;
pub mod cookie;
pub mod rate_limit;
pub mod routes;
pub mod social;
pub mod two_factor;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sambung_db::auth::{Session, User};

use crate::error::ApiError;
use crate::state::AppState;
use cookie::{DONT_REMEMBER, SESSION_TOKEN};

/// How long a session lasts, and how long one opened with `rememberMe: false` lasts.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
pub const SHORT_SESSION_LIFETIME: Duration = Duration::days(1);
/// A session used this long after it was last extended is extended again.
pub const SESSION_UPDATE_AGE: Duration = Duration::days(1);

/// The signed-in user of a request and the session that proves it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub user: User,
    pub token: String,
    /// The session was opened with `rememberMe: false` (cookie `dont_remember`).
    pub dont_remember: bool,
    /// The personal access token the request came with (then `session` stands for it: its id
    /// is the token's, and it ends when the token does).
    pub access: Option<Box<sambung_db::tokens::AccessToken>>,
}

impl SignedIn {
    /// Whether the request may use its user's powers as the instance's admin: an admin's
    /// session may, an admin's access token never (a token does not administer).
    pub fn administers(&self) -> bool {
        self.user.is_admin() && self.access.is_none()
    }
}

/// The session token a request presents: the signed session cookie, else
/// `Authorization: Bearer` (the raw token, or a signed one). Also whether it came by cookie.
fn presented_token(state: &AppState, headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(token) = state.cookies.read(headers, SESSION_TOKEN) {
        return Some((token, true));
    }
    let decoded = percent_encoding::percent_decode_str(bearer(headers)?)
        .decode_utf8()
        .ok()?;
    let token = match decoded.contains('.') {
        true => state.cookies.verify(&decoded)?.to_owned(),
        false => decoded.into_owned(),
    };
    (!token.is_empty()).then_some((token, false))
}

/// What the long way found for a session: the renewed token to set again as the cookie, and
/// the reader's language, applied to the response on its way out.
#[derive(Debug, Default)]
struct Found {
    /// The long way was taken (for a [`DeferredSession`]: by the handler, or on the way out).
    taken: bool,
    /// A handler's statement accepted the session itself ([`Requester::run`]).
    accepted: bool,
    /// The session was renewed (a statement checking it itself would not have accepted it).
    renewed: bool,
    extended: Option<String>,
    reader: Option<crate::i18n::Locale>,
}

/// The request's session the long way (one round trip; two when it is renewed): its user,
/// the session extended when it is due.
async fn sign_in(
    state: &AppState,
    token: String,
    by_cookie: bool,
    dont_remember: bool,
    found: &mut Found,
) -> Result<Option<SignedIn>, ApiError> {
    found.taken = true;
    let Some((mut session, user)) = sambung_db::auth::authenticate(&state.pool, &token).await?
    else {
        return Ok(None);
    };
    let due = session.expires_at - SESSION_LIFETIME + SESSION_UPDATE_AGE <= Utc::now();
    // An admin acting as a user does so for its hour, never longer.
    if due && !dont_remember && session.impersonated_by.is_none() {
        session =
            sambung_db::auth::extend_session(&state.pool, session.id, SESSION_LIFETIME).await?;
        found.renewed = true;
        if by_cookie {
            found.extended = Some(token.clone());
        }
    }
    found.reader = user.locale.as_deref().and_then(crate::i18n::Locale::parse);
    Ok(Some(SignedIn {
        session,
        user,
        token,
        dont_remember,
        access: None,
    }))
}

/// The session of a request some routes leave to the handler's own statement to check
/// ([`Requester`]), and what the long way found, should the handler have to take it.
#[derive(Clone)]
pub struct DeferredSession {
    token: String,
    /// The request's path, for the account gate should the long way be taken.
    path: String,
    by_cookie: bool,
    dont_remember: bool,
    found: Arc<std::sync::Mutex<Found>>,
}

impl DeferredSession {
    /// The session the long way: who it is, or why it may not make this request (401, or the
    /// account gate's 403). What was found goes on the response on its way out.
    async fn confirm(&self, state: &AppState) -> Result<SignedIn, ApiError> {
        let mut found = Found::default();
        let signed_in = sign_in(
            state,
            self.token.clone(),
            self.by_cookie,
            self.dont_remember,
            &mut found,
        )
        .await;
        {
            let mut kept = self.found.lock().unwrap_or_else(|e| e.into_inner());
            found.accepted = kept.accepted;
            *kept = found;
        }
        let me = signed_in?.ok_or_else(ApiError::unauthorized)?;
        refusal(state, &me, &self.path).await?;
        Ok(me)
    }

    /// Whether the long way renewed the session (then a statement's outcome asked before
    /// does not stand).
    fn renewed(&self) -> bool {
        self.found.lock().unwrap_or_else(|e| e.into_inner()).renewed
    }
}

/// Whether the session of `method` `path` is left to the handler's own statement: the routes
/// every chat page, message and turn uses, when the instance does not require a second
/// factor (the account gate then asks more than a statement does), and for the reads a
/// replica may serve, when there is none (a session must be checked on the primary: a
/// replica may lag behind a sign-out).
async fn deferred(state: &AppState, method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return false;
    };
    let messages_of_a_chat = rest
        .strip_prefix("chats/")
        .and_then(|tail| tail.strip_suffix("/messages"))
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok());
    let may_lag = matches!(rest, "chats" | "search/messages");
    let a_turn = rest
        .strip_prefix("chats/")
        .and_then(|tail| tail.strip_suffix("/generate"))
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok());
    let route = match *method {
        Method::GET => messages_of_a_chat || may_lag,
        Method::POST => messages_of_a_chat || a_turn,
        _ => false,
    };
    route
        && !(may_lag && state.replicas.configured())
        && matches!(state.two_factor_required().await, Ok(false))
}

/// Find the request's session (once per request), extend it when it is due, and re-set the
/// cookie on the way out after an extension. On the routes of [`deferred`] the handler's own
/// statement checks it instead, one round trip fewer.
pub async fn session_layer(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(secret) = presented_access_token(request.headers()) {
        return with_access_token(&state, secret, request, next).await;
    }
    let mut found = Found::default();
    let mut deferred_session = None;
    if let Some((token, by_cookie)) = presented_token(&state, request.headers()) {
        let dont_remember = by_cookie
            && state
                .cookies
                .read(request.headers(), DONT_REMEMBER)
                .is_some();
        // Only a signed cookie's session is left to the statement: a token anyone can make
        // up (a bearer) is checked first, so that it costs one statement, not the route's.
        if by_cookie && deferred(&state, request.method(), request.uri().path()).await {
            let session = DeferredSession {
                token,
                path: request.uri().path().to_owned(),
                by_cookie,
                dont_remember,
                found: Arc::default(),
            };
            deferred_session = Some(session.clone());
            request.extensions_mut().insert(session);
        } else {
            match sign_in(&state, token, by_cookie, dont_remember, &mut found).await {
                Ok(Some(signed_in)) => {
                    request.extensions_mut().insert(signed_in);
                }
                Ok(None) => {}
                Err(e) => return e.into_response(),
            }
        }
    }
    let mut response = next.run(request).await;
    if let Some(session) = deferred_session {
        response = settle_deferred(&state, &session, response).await;
        found = std::mem::take(&mut *session.found.lock().unwrap_or_else(|e| e.into_inner()));
    }
    if let Some(locale) = found.reader {
        response
            .extensions_mut()
            .insert(crate::i18n::ReaderLocale(locale));
    }
    if let Some(token) = found.extended {
        // A handler that set (or ended) the session's cookie itself knows better than the
        // renewal. (A renewal racing a new token for the same session, two-factor sign-in
        // turned on or off in another request, may put the old token back: that browser is
        // then signed out, never let in.)
        if set_session_cookie(&state, &response).is_none() {
            response.headers_mut().append(
                header::SET_COOKIE,
                state
                    .cookies
                    .set(SESSION_TOKEN, &token, Some(SESSION_LIFETIME.num_seconds())),
            );
        }
    }
    expose_session_token(&state, &mut response);
    response
}

/// The session cookie a response sets: `Some(None)` when it removes it.
fn set_session_cookie(state: &AppState, response: &Response) -> Option<Option<String>> {
    // Most answers set no cookie at all: nothing to make for them.
    if !response.headers().contains_key(header::SET_COOKIE) {
        return None;
    }
    let prefix = format!("{}=", state.cookies.name(SESSION_TOKEN));
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|cookie| cookie.to_str().ok()?.strip_prefix(prefix.as_str()))
        .map(|rest| {
            let (value, attributes) = rest.split_once(';').unwrap_or((rest, ""));
            let removed = attributes
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            (!value.is_empty() && !removed).then(|| value.to_owned())
        })
        .next_back()
}

/// Better Auth's bearer plugin: a response that sets a new session cookie also says its value
/// (decoded, as the plugin reads it) in `set-auth-token`, exposed to scripts of other origins
/// the CORS rules let in, so that a client without cookies, which signs in and sends
/// `Authorization: Bearer`, learns the token that replaces its own (a session replaced when
/// two-factor sign-in is turned on or off).
fn expose_session_token(state: &AppState, response: &mut Response) {
    let Some(Some(value)) = set_session_cookie(state, response) else {
        return;
    };
    let decoded = percent_encoding::percent_decode_str(&value).decode_utf8_lossy();
    let Ok(token) = HeaderValue::from_str(&decoded) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(SET_AUTH_TOKEN.clone(), token);
    let exposed = headers
        .get_all(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case(SET_AUTH_TOKEN.as_str()))
        .chain([SET_AUTH_TOKEN.as_str()])
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(exposed) = HeaderValue::from_str(&exposed) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
    }
}

static SET_AUTH_TOKEN: HeaderName = HeaderName::from_static("set-auth-token");

/// A deferred session's answer, once the handler has given one. A refusal the handler made
/// before its statement checked the session (its input, a limit) is not said to someone who
/// may not make the request: the long way is taken then, and its 401 or 403 answers instead,
/// as on every other route. A refusal after the statement accepted the session stands, told in
/// its user's language, which the long way reads.
async fn settle_deferred(
    state: &AppState,
    session: &DeferredSession,
    response: Response,
) -> Response {
    let (taken, accepted) = {
        let found = session.found.lock().unwrap_or_else(|e| e.into_inner());
        (found.taken, found.accepted)
    };
    if taken || !response.status().is_client_error() {
        return response;
    }
    match session.confirm(state).await {
        Err(refused) if !accepted => refused.into_response(),
        _ => response,
    }
}

/// The person a request acts for, as the handler's own statement checks them
/// (`sambung_db::auth::Caller`): someone signed in, or the request's session, which the
/// statement checks itself ([`DeferredSession`]). A statement that finds nothing for such a
/// session, or fails, is not the answer yet: [`Requester::run`] then signs in the long way,
/// which answers 401 or 403 when the session or the account says so, and asks again as the
/// person found.
#[derive(Clone)]
pub enum Requester {
    SignedIn(Box<SignedIn>),
    Deferred(DeferredSession),
}

impl<S: Send + Sync> FromRequestParts<S> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(session) = parts.extensions.get::<DeferredSession>() {
            return Ok(Requester::Deferred(session.clone()));
        }
        SignedIn::from_request_parts(parts, state)
            .await
            .map(|me| Requester::SignedIn(Box::new(me)))
    }
}

impl From<SignedIn> for Requester {
    fn from(me: SignedIn) -> Requester {
        Requester::SignedIn(Box::new(me))
    }
}

impl Requester {
    /// `op` as this requester; `settled` says whether its outcome stands for a session the
    /// statement checked (else the long way is taken and `op` asked again). A failure other
    /// than "not found" is answered once the long way has accepted the session.
    pub async fn run<T, Op, Asked>(
        &self,
        state: &AppState,
        op: Op,
        settled: impl Fn(&T) -> bool,
    ) -> Result<T, ApiError>
    where
        Op: Fn(sambung_db::auth::Caller) -> Asked,
        Asked: std::future::Future<Output = Result<T, sambung_db::DomainError>>,
    {
        let session = match self {
            Requester::SignedIn(me) => return Ok(op(me.user.id.into()).await?),
            Requester::Deferred(session) => session,
        };
        let renew_if_before =
            (!session.dont_remember).then(|| Utc::now() + SESSION_LIFETIME - SESSION_UPDATE_AGE);
        let caller = sambung_db::auth::Caller::session(&session.token, renew_if_before);
        // Asked again only when the statement found nothing (which is what it finds for a
        // session it does not accept); any other failure stands once the session does, so
        // that a write is never sent twice.
        let (first, failed) = match op(caller).await {
            Ok(outcome) if settled(&outcome) => {
                session
                    .found
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .accepted = true;
                return Ok(outcome);
            }
            Ok(outcome) => (Some(outcome), None),
            Err(sambung_db::DomainError::NotFound { .. }) => (None, None),
            Err(other) => (None, Some(other)),
        };
        let me = session.confirm(state).await?;
        if let Some(failed) = failed {
            return Err(failed.into());
        }
        // A session the long way let in without renewing it, the statement accepted too (the
        // same rules): what it found, empty, is the answer.
        match first {
            Some(outcome) if !session.renewed() => Ok(outcome),
            _ => Ok(op(me.user.id.into()).await?),
        }
    }
}

/// The personal access token of `Authorization: Bearer sk-sambung-…`, if that is what the
/// request presents.
fn presented_access_token(headers: &HeaderMap) -> Option<String> {
    bearer(headers)
        .filter(|b| b.starts_with(sambung_db::tokens::TOKEN_PREFIX))
        .map(str::to_owned)
}

/// What `Authorization: Bearer …` carries (the scheme in any case, as RFC 9110 has it).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(credentials.trim())
}

/// The scope a token needs for `method` on `path`, or why no token may be used there: the
/// OpenAI-compatible endpoint takes `chat`; the JSON API `read` for reads and `write` for the
/// rest (a turn through the AI SDK's transport among them). Signing in, the tokens themselves,
/// two-factor settings and the instance's administration take a signed-in person, so a
/// leaked token can neither keep itself alive nor take the instance over. So does changing
/// API keys, models and asking a provider for its models: each can send a stored key to an
/// address of the caller's choosing, and a token must never be a way to a provider's key.
fn scope_for(method: &Method, path: &str) -> Result<sambung_db::tokens::Scope, &'static str> {
    use sambung_db::tokens::Scope;
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/v1") {
        return Ok(Scope::Chat);
    }
    if under("/api/v1/tokens") || under("/api/v1/admin") || under("/api/v1/me/two-factor") {
        return Err("tokens, two-factor settings and administration take a signed-in session, not an access token");
    }
    if !(under("/api/v1") || path == "/api/chat") {
        return Err("an access token is for /v1 and /api/v1 only");
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(Scope::Read);
    }
    if under("/api/v1/api-keys") || under("/api/v1/models") || under("/api/v1/providers") {
        return Err("API keys, models and providers are changed in a signed-in session, not with an access token");
    }
    Ok(Scope::Write)
}

/// A request with a personal access token acts as the token's owner within its scopes (see
/// [`scope_for`]), counted against the token's own rate limit. A token that is not valid now
/// is refused: the request is never quietly anonymous.
async fn with_access_token(
    state: &AppState,
    secret: String,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| rate_limit::client_address(c.0.ip(), request.headers(), &state.trusted_proxies));
    let found = sambung_db::tokens::authenticate(
        &state.pool,
        &secret,
        address.map(|a| a.to_string()).as_deref(),
    )
    .await;
    let (token, user) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "the access token is not valid: it was revoked or has expired, its owner cannot sign in now, or this instance turned tokens off",
            ).into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match scope_for(request.method(), &path) {
        Err(why) => return ApiError::new(StatusCode::FORBIDDEN, "TOKEN_NOT_ALLOWED", why).into_response(),
        Ok(scope) if !token.allows(scope) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_SCOPE",
                format!("this token lacks the scope {:?}: make one that has it under Settings, Access tokens", scope.as_str()),
            ).into_response()
        }
        Ok(_) => {}
    }
    if let Err(wait) = state.limiter.check_token(token.id) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "this token made too many requests; try again later",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let reader = user.locale.as_deref().and_then(crate::i18n::Locale::parse);
    let session = Session {
        id: sambung_db::SessionId(token.id.0),
        user_id: user.id,
        expires_at: token.expires_at.unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
        ip_address: token.last_used_ip.clone(),
        user_agent: None,
        created_at: token.created_at,
        updated_at: token.created_at,
        impersonated_by: None,
    };
    request.extensions_mut().insert(SignedIn {
        session,
        user,
        token: String::new(),
        dont_remember: false,
        access: Some(Box::new(token)),
    });
    let mut response = next.run(request).await;
    if let Some(locale) = reader {
        response
            .extensions_mut()
            .insert(crate::i18n::ReaderLocale(locale));
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The signed-in user, when there is one.
pub struct MaybeSignedIn(pub Option<SignedIn>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(MaybeSignedIn(parts.extensions.get::<SignedIn>().cloned()))
    }
}

/// A request that carries cookies and changes state must come from our own origin or a
/// trusted one (`Origin`, else `Referer`): a cross-site form or script cannot use the
/// user's cookie. Sign-in and sign-up are checked without cookies too, as Better Auth does
/// (login CSRF): a cross-site navigation is refused, and a browser's claimed origin must be
/// trusted. Other requests without cookies (bearer tokens, curl) pass.
pub async fn origin_check(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    let headers = request.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
    };
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let must_check = if headers.contains_key(header::COOKIE) {
        true
    } else if matches!(
        request.uri().path(),
        "/api/auth/sign-in/email" | "/api/auth/sign-up/email"
    ) {
        let (site, mode) = (header("sec-fetch-site"), header("sec-fetch-mode"));
        if site == "cross-site" && mode == "navigate" {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
                "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
            )
            .into_response();
        }
        let has_metadata =
            !(site.is_empty() && mode.is_empty() && header("sec-fetch-dest").is_empty());
        has_metadata || !claimed.is_empty()
    } else {
        false
    };
    if !must_check {
        return next.run(request).await;
    }
    if claimed.is_empty() || claimed == "null" {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "MISSING_OR_NULL_ORIGIN",
            "Missing or null Origin",
        )
        .into_response();
    }
    let origin = sambung_http::edge::url_origin(claimed);
    if !origin.is_some_and(|o| state.origins.contains(&o)) {
        tracing::warn!(origin = claimed, "refused a write from a foreign origin");
        return ApiError::new(StatusCode::FORBIDDEN, "INVALID_ORIGIN", "Invalid origin")
            .into_response();
    }
    next.run(request).await
}

/// The address of the client a request comes from (see [`rate_limit::client_address`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(peer.map(|peer| {
            rate_limit::client_address(peer, &parts.headers, &state.trusted_proxies)
        })))
    }
}

/// The answer to a request over a limit: 429 with `X-Retry-After` (Better Auth's shape).
pub fn too_many_requests(wait_seconds: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        "Too many requests. Please try again later.",
    )
    .into_response();
    response
        .headers_mut()
        .insert("X-Retry-After", HeaderValue::from(wait_seconds));
    response
}

/// Rate limits per client (SPEC section 7) on the sign-in contract's routes, as Better Auth
/// limits its own, and on the API's costly requests (uploads, model lists): 429 with
/// `X-Retry-After`. The rest of the JSON API behind a session is not limited here (a page
/// load makes many requests; abuse of it is a signed-in user's).
pub async fn rate_limit(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = rate_limit::client_address(peer, request.headers(), &state.trusted_proxies);
        if let Err(wait) = state
            .limiter
            .check(client, request.method(), request.uri().path())
        {
            return too_many_requests(wait);
        }
    }
    next.run(request).await
}

/// What an account may do before it is fully let in. One that waits for an admin's approval
/// (the `approval` sign-up policy) can do nothing but see itself and the instance, and sign
/// out: every other request of the API answers 403 `ACCOUNT_NOT_APPROVED`. One without a
/// second factor, on an instance that requires one, can besides set one up: everything else
/// answers 403 `TWO_FACTOR_REQUIRED`. (Runs inside the session layer.)
pub async fn account_gate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(signed_in) = request.extensions().get::<SignedIn>() else {
        return next.run(request).await;
    };
    match refusal(&state, signed_in, request.uri().path()).await {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// Why the account gate refuses `signed_in` the request of `path`, if it does.
async fn refusal(state: &AppState, signed_in: &SignedIn, path: &str) -> Result<(), ApiError> {
    // Signing in and out stays open; administering (Better Auth's admin routes) does not,
    // but for an admin's way back from acting as someone (who may be waiting for approval).
    let open = (path.starts_with("/api/auth/") && !path.starts_with("/api/auth/admin/"))
        || matches!(
            path,
            "/api/v1/me"
                | "/api/v1/instance"
                | "/api/v1/openapi.json"
                | "/api/v1/me/preferences"
                | "/api/auth/admin/stop-impersonating"
        )
        || !(path.starts_with("/api/") || path.starts_with("/v1/"));
    if open {
        return Ok(());
    }
    if !signed_in.user.approved {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ACCOUNT_NOT_APPROVED",
            "Your account waits for an admin of this instance to approve it; you can use it once they have.",
        ));
    }
    if path != "/api/v1/me/two-factor/qr" && two_factor::must_set_up(state, signed_in).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "TWO_FACTOR_REQUIRED",
            "This instance requires two-factor sign-in: set it up in Settings (an authenticator app's codes) to go on.",
        ));
    }
    Ok(())
}

/// The signed-in user, who must be an admin of the instance (and not an admin acting as
/// someone else: then they are that someone).
pub struct InstanceAdmin(pub SignedIn);

impl<S: Send + Sync> FromRequestParts<S> for InstanceAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if !signed_in.user.is_admin() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ADMIN_ONLY",
                "only the instance's admins may do this",
            ));
        }
        Ok(InstanceAdmin(signed_in))
    }
}
