//! The HTTP server: the embedded page and the JSON API behind it, all behind the guard.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::browse::{self, ExportFormat, View};
use crate::catalog::{self, Catalog};
use crate::console;
use crate::edit::{self, CellRef, CellUpdate, NewRow, RowKeys};
use crate::error::ApiError;
use crate::guard::{self, Guard};

/// How long Studio's statements wait for a lock the application holds.
const LOCK_TIMEOUT: &str = "5s";

/// How Studio is served.
#[derive(Debug, Clone)]
pub struct StudioSettings {
    /// The address to listen on; loopback unless the user says otherwise.
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Every statement runs in a read-only transaction; edits are refused.
    pub read_only: bool,
    /// Longest a statement (page, edit, console) may run.
    pub statement_timeout: Duration,
}

impl Default for StudioSettings {
    fn default() -> StudioSettings {
        StudioSettings {
            host: "127.0.0.1".to_owned(),
            port: 4983,
            read_only: false,
            statement_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StudioError {
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Studio's server failed")]
    Serve(#[source] std::io::Error),
}

impl sambung_config::Hint for StudioError {
    fn hint(&self) -> Option<String> {
        match self {
            StudioError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                Some("is another Studio running there? choose another port with --port".into())
            }
            StudioError::Bind { .. } => {
                Some("check --host: it must be an address of this machine".into())
            }
            StudioError::Serve(_) => None,
        }
    }
}

pub struct AppState {
    pub pool: PgPool,
    /// The pool's connection settings, for the console's own connections.
    pub options: PgConnectOptions,
    pub catalog: Catalog,
    pub guard: Guard,
    pub read_only: bool,
    pub statement_timeout: Duration,
    /// Console runs in progress, each on a connection of its own.
    pub console_runs: tokio::sync::Semaphore,
}

/// Console runs at once (beside the browsing pool's connections).
pub const CONSOLE_RUNS: usize = 4;
/// How long a console run waits for its turn before it is refused as busy.
const CONSOLE_QUEUE_WAIT: Duration = Duration::from_secs(30);

/// `Content-Disposition` for a download named `name`, whatever it holds (RFC 6266): an ASCII
/// fallback for old clients and the exact name percent-encoded in `filename*`.
fn attachment_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// A Studio bound to its address, ready to serve.
pub struct Studio {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    address: SocketAddr,
    url: String,
}

impl Studio {
    /// Listen on the settings' address. Connections to the database are made when needed.
    pub async fn bind(
        database: PgConnectOptions,
        settings: &StudioSettings,
    ) -> Result<Studio, StudioError> {
        let bind_host = settings.host.trim_matches(['[', ']']).to_owned();
        let listener = tokio::net::TcpListener::bind((bind_host.as_str(), settings.port))
            .await
            .map_err(|source| StudioError::Bind {
                address: format!("{}:{}", settings.host, settings.port),
                source,
            })?;
        let address = listener.local_addr().map_err(StudioError::Serve)?;
        // Studio never waits long for a lock the application holds (its edits fail instead).
        let mut options = database.application_name("sambung studio").options([
            (
                "statement_timeout",
                console::timeout_setting(settings.statement_timeout),
            ),
            ("lock_timeout", LOCK_TIMEOUT.into()),
        ]);
        if settings.read_only {
            options = options.options([("default_transaction_read_only", "on")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone());
        let guard = Guard::new(&settings.host, address.port());
        // A wildcard address is reached through loopback on this machine.
        let shown_host = match address.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = format!(
            "http://{shown_host}:{}/?token={}",
            address.port(),
            guard.token()
        );
        Ok(Studio {
            listener,
            state: Arc::new(AppState {
                pool,
                options,
                catalog: Catalog::default(),
                guard,
                read_only: settings.read_only,
                statement_timeout: settings.statement_timeout,
                console_runs: tokio::sync::Semaphore::new(CONSOLE_RUNS),
            }),
            address,
            url,
        })
    }

    /// The URL to open: it carries the access token.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn token(&self) -> &str {
        self.state.guard.token()
    }

    /// Serve until `shutdown` completes, then close the database connections.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StudioError> {
        let pool = self.state.pool.clone();
        let router = router(self.state);
        let served = sambung_http::serve(
            self.listener,
            router,
            sambung_http::Limits::default(),
            shutdown,
        )
        .await
        .map_err(StudioError::Serve);
        pool.close().await;
        served
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(crate::assets::index))
        .route("/app.js", get(crate::assets::script))
        .route("/app.css", get(crate::assets::style))
        .route("/api/info", get(info))
        .route("/api/schema", get(schema))
        .route("/api/tables", get(tables))
        .route(
            "/api/tables/{table}/rows",
            get(rows).post(insert).patch(update).delete(delete),
        )
        .route("/api/tables/{table}/export", get(export))
        .route("/api/tables/{table}/cell", get(cell))
        .route("/api/tables/{table}/count", get(count))
        .route("/api/sql", post(sql))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

type Shared = State<Arc<AppState>>;

async fn info(State(state): Shared) -> Result<Response, ApiError> {
    let (database, version): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_setting('server_version')")
            .fetch_one(&state.pool)
            .await?;
    Ok(Json(serde_json::json!({
        "database": database,
        "server_version": version,
        "read_only": state.read_only,
        "statement_timeout_ms": state.statement_timeout.as_millis() as u64,
        "max_grid_rows": console::MAX_GRID_ROWS,
    }))
    .into_response())
}

async fn schema(State(state): Shared) -> Result<Response, ApiError> {
    // Reading the schema page is the user's way to see changes made elsewhere.
    state.catalog.invalidate().await;
    let schema = state.catalog.schema(&state.pool).await?;
    Ok(Json(&*schema).into_response())
}

async fn tables(State(state): Shared) -> Result<Response, ApiError> {
    // The table list (and the page loading it) is where changes made elsewhere, by `db push`
    // or psql, should show up: read the catalog again.
    state.catalog.invalidate().await;
    let schema = state.catalog.schema(&state.pool).await?;
    Ok(Json(catalog::table_counts(&state.pool, &schema).await?).into_response())
}

#[derive(Deserialize)]
struct ViewQuery {
    view: Option<String>,
    format: Option<ExportFormat>,
}

impl ViewQuery {
    fn view(&self) -> Result<View, ApiError> {
        match &self.view {
            None => Ok(View::default()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("This view is not understood: {e}"))),
        }
    }
}

/// Query parameters, or why they were refused (as Studio's JSON error, not axum's text).
type QueryOf<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query_params<T>(query: QueryOf<T>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

async fn rows(
    State(state): Shared,
    Path(table): Path<String>,
    query: QueryOf<ViewQuery>,
) -> Result<Response, ApiError> {
    let view = query_params(query)?.view()?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let page = browse::page(&state.pool, table.get(), &view).await?;
    let timing = format!("db;dur={:.2}", page.elapsed_ms);
    Ok(([("server-timing", timing)], Json(page)).into_response())
}

async fn count(
    State(state): Shared,
    Path(table): Path<String>,
    query: QueryOf<ViewQuery>,
) -> Result<Response, ApiError> {
    let view = query_params(query)?.view()?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let rows = browse::count(&state.pool, table.get(), &view).await?;
    Ok(Json(serde_json::json!({ "rows": rows })).into_response())
}

async fn cell(
    State(state): Shared,
    Path(table): Path<String>,
    query: QueryOf<CellRef>,
) -> Result<Response, ApiError> {
    let cell = query_params(query)?;
    let key: Vec<Option<String>> = serde_json::from_str(&cell.key)
        .map_err(|e| ApiError::bad_request(format!("This row key is not understood: {e}")))?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let value = edit::cell(&state.pool, table.get(), &key, &cell.column).await?;
    Ok(Json(serde_json::json!({ "value": value })).into_response())
}

async fn export(
    State(state): Shared,
    Path(table): Path<String>,
    query: QueryOf<ViewQuery>,
) -> Result<Response, ApiError> {
    let query = query_params(query)?;
    let view = query.view()?;
    let format = query
        .format
        .ok_or_else(|| ApiError::bad_request("Choose an export format: csv or json"))?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let mut chunks = browse::export(state.pool.clone(), table.get(), &view, format)?;
    // The first chunk comes once the query runs: a bad filter is still a proper error here.
    let first = match chunks.recv().await {
        Some(chunk) => chunk?,
        None => String::new(),
    };
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        let chunk = chunk.map_err(|e| std::io::Error::other(e.error));
        Some((chunk, chunks))
    });
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(rest);
    let disposition =
        attachment_disposition(&format!("{}.{}", table.get().name, format.extension()));
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn writable(state: &AppState) -> Result<(), ApiError> {
    if state.read_only {
        Err(ApiError::read_only())
    } else {
        Ok(())
    }
}

async fn insert(
    State(state): Shared,
    Path(table): Path<String>,
    body: Result<Json<NewRow>, JsonRejection>,
) -> Result<Response, ApiError> {
    writable(&state)?;
    let row = json_body(body)?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let stored = edit::insert_row(&state.pool, table.get(), &row).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

async fn update(
    State(state): Shared,
    Path(table): Path<String>,
    body: Result<Json<CellUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    writable(&state)?;
    let update = json_body(body)?;
    let table = state.catalog.table(&state.pool, &table).await?;
    Ok(Json(edit::update_cell(&state.pool, table.get(), &update).await?).into_response())
}

async fn delete(
    State(state): Shared,
    Path(table): Path<String>,
    body: Result<Json<RowKeys>, JsonRejection>,
) -> Result<Response, ApiError> {
    writable(&state)?;
    let keys = json_body(body)?;
    let table = state.catalog.table(&state.pool, &table).await?;
    let deleted = edit::delete_rows(&state.pool, table.get(), &keys).await?;
    Ok(Json(serde_json::json!({ "deleted": deleted })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    sql: String,
}

async fn sql(
    State(state): Shared,
    body: Result<Json<Script>, JsonRejection>,
) -> Result<Response, ApiError> {
    let script = json_body(body)?;
    // Each run has a connection of its own: at most CONSOLE_RUNS at once, so a flood of
    // console requests waits here instead of exhausting the server's connections.
    let _slot = tokio::time::timeout(CONSOLE_QUEUE_WAIT, state.console_runs.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console is busy with other runs; try again",
            )
        })?
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Studio is stopping"))?;
    let run = console::run(&state.options, &script.sql, state.read_only).await?;
    // The script may have changed the schema.
    state.catalog.invalidate().await;
    Ok(Json(run).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(
            attachment_disposition("a\"b\r\nX: y/ü.csv"),
            "attachment; filename=\"a_b__X__y__.csv\"; filename*=UTF-8''a%22b%0D%0AX%3A%20y%2F%C3%BC%2Ecsv"
        );
        assert!(axum::http::HeaderValue::from_str(&attachment_disposition("\u{0}\n")).is_ok());
    }
}
