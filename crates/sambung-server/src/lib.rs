//! SambungChat's HTTP server (SPEC sections 7–9): Better Auth's email-and-password contract
//! under `/api/auth` (`auth`), the JSON API under `/api/v1` (`api`), its OpenAPI document,
//! `/health`, and the web UI's pages (`web`, from `sambung-web`). Handlers parse, call the data layer and map its errors (`error`); every
//! access rule lives in the data layer.

pub mod api;
mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod i18n;
mod mail;
pub mod openai;
pub mod render;
pub mod replicas;
mod state;
pub mod time;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use sqlx::PgPool;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use sambung_chat::{ReplyLimits, REPLY_SAVE_EVERY};
pub use sambung_http::Limits as ConnectionLimits;
pub use state::{AppState, RateLimits, ServerSettings};

use crate::error::ApiError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cannot take this server's lease in the database: {0}")]
    Lease(sambung_db::DomainError),
}

impl sambung_config::Hint for ServerError {
    fn hint(&self) -> Option<String> {
        match self {
            ServerError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                Some("another program uses that port: pick another with --port".into())
            }
            _ => None,
        }
    }
}

/// A bound server, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    address: SocketAddr,
    limits: sambung_http::Limits,
}

impl Server {
    /// Listen on the settings' host and port (port 0: any free one).
    pub async fn bind(pool: PgPool, settings: &ServerSettings) -> Result<Server, ServerError> {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|source| ServerError::Bind {
                address: address.clone(),
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { address, source })?;
        let guard =
            sambung_ai::Guard::new(&settings.ai_allowed_hosts).map_err(ServerError::Settings)?;
        let cipher = settings
            .encryption_key
            .as_ref()
            .map(|key| sambung_db::secret::Cipher::new(key.as_bytes()));
        let turns = sambung_chat::Turns::new(
            pool.clone(),
            cipher,
            sambung_chat::TurnSettings {
                guard: guard.clone(),
                timeouts: settings.ai_timeouts,
                save_every: settings.reply_save_every,
                limits: settings.reply_limits,
            },
        )
        .await
        .map_err(ServerError::Lease)?;
        let state = Arc::new(AppState::new(pool, turns, guard, settings, address.port()));
        Ok(Server {
            listener,
            state,
            address,
            limits: settings.connections,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where browsers reach it (`PUBLIC_URL`, else the address served).
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// Serve until `shutdown` completes; requests in flight then get a few seconds to finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let other_servers = tokio::spawn(self.state.turns.clone().serve_other_servers());
        let replicas = tokio::spawn(replicas::watch(self.state.clone()));
        let housekeeping = tokio::spawn(keep_house(self.state.clone()));
        let router = router(self.state);
        let limits = self.limits;
        let served = sambung_http::serve(self.listener, router, limits, shutdown)
            .await
            .map_err(ServerError::Serve);
        other_servers.abort();
        replicas.abort();
        housekeeping.abort();
        served
    }
}

/// How long an upload no message carries is kept (a message being written may attach it).
const UNSENT_UPLOADS_KEPT: chrono::Duration = chrono::Duration::days(1);
/// How often old rows go: expired sessions, audit events past their retention, old mail,
/// uploads never sent.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60 * 60);

/// Forget what is past keeping, now and every [`HOUSEKEEPING_EVERY`] (every server does it;
/// the deletes are idempotent).
async fn keep_house(state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        ticks.tick().await;
        let pool = &state.pool;
        let retention = match state.instance_settings().await {
            Ok(settings) => settings.audit_retention_days,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the settings for housekeeping");
                continue;
            }
        };
        let (sessions, events, mail, uploads) = tokio::join!(
            sambung_db::auth::purge_expired_sessions(pool),
            sambung_db::audit::purge(pool, retention),
            sambung_db::mail::purge(pool),
            sambung_db::files::sweep_unattached(pool, UNSENT_UPLOADS_KEPT),
        );
        for (what, done) in [
            ("sessions", sessions),
            ("audit events", events),
            ("mail", mail),
            ("uploads never sent", uploads),
        ] {
            match done {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, what, "forgot what is past keeping"),
                Err(e) => tracing::warn!(error = %e, what, "housekeeping failed"),
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "SambungChat API", description = "Better Auth's email-and-password contract under /api/auth, the JSON API under /api/v1 (errors are {code, message, field?}), and the OpenAI-compatible endpoint under /v1 (errors in OpenAI's shape)."),
    components(schemas(error::ErrorBody)),
    modifiers(&SessionSecurity),
    security(("session_cookie" = []), ("bearer" = []))
)]
struct ApiDoc;

struct SessionSecurity;

impl Modify for SessionSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                auth::cookie::SESSION_TOKEN,
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, each with its OpenAPI description (a route cannot exist undocumented).
fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/auth", auth::routes::router())
        .nest("/api/v1", api::router().routes(routes!(openapi_json)))
        .nest("/api", api::generate::transport_router())
        .merge(openai::router())
        .routes(routes!(health))
}

/// The OpenAPI 3.1 document of the server, generated from the handlers' own types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

static OPENAPI: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(openapi);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    Json(&*OPENAPI).into_response()
}

#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`, or `unavailable` when the database does not answer.
    status: &'static str,
    database: &'static str,
    /// Each streaming replica (`DATABASE_READ_URL`) as last checked.
    replicas: Vec<ReplicaStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ReplicaStatus {
    address: String,
    #[serde(flatten)]
    health: replicas::ReplicaHealth,
}

/// For load balancers: 200 while the database answers, else 503.
#[utoipa::path(get, path = "/health", tag = "meta", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(_))
    );
    let replicas = state
        .replicas
        .list
        .iter()
        .map(|r| ReplicaStatus {
            address: r.address.clone(),
            health: r.health(),
        })
        .collect();
    let (status, health, database) = match up {
        true => (StatusCode::OK, "ok", "ok"),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unreachable",
        ),
    };
    (
        status,
        Json(Health {
            status: health,
            database,
            replicas,
        }),
    )
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "no such endpoint")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not take that method",
    )
}

/// How long a request body may pause between two of its pieces.
const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(30);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: routes, then (inside out) the session, origin check, rate limits,
/// OpenAI's error shape on `/v1`, the reader's language, body limit, compression, security headers, access log and request ids.
pub fn router(state: Arc<AppState>) -> Router {
    let (router, _) = routes().split_for_parts();
    let api = Router::new()
        .merge(router)
        .merge(web::router())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::account_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::origin_check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::rate_limit,
        ))
        .layer(axum::middleware::from_fn(openai::in_openai_shape))
        .layer(axum::middleware::from_fn(i18n::localize_errors))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        // A body that stops arriving ends the request instead of holding its handler.
        .layer(RequestBodyTimeoutLayer::new(BODY_STALL_TIMEOUT))
        .with_state(state);
    api.layer(CompressionLayer::new())
        // Pages add their Content Security Policy themselves (`web`).
        .layer(axum::middleware::map_response(|response: Response| async {
            sambung_http::edge::with_security_headers(response, None)
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    // The route, not the path: paths carry share and invitation tokens, and a
                    // query may hold search words; neither belongs in a log.
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("(no route)", MatchedPath::as_str)
                        .to_owned();
                    tracing::info_span!("request", id, method = %request.method(), route)
                })
                .on_response(
                    |response: &Response, latency: Duration, _: &tracing::Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            ms = latency.as_secs_f64() * 1000.0,
                            "served"
                        );
                    },
                ),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}
