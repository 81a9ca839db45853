//! What Studio answers when something goes wrong: a status and a JSON body that says, in plain
//! words, what PostgreSQL refused and why, with PostgreSQL's own message beside it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sambung_http::edge::DatabaseRefusal;
use serde::Serialize;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::PgPool;

/// An error as the browser sees it.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// The explanation shown first.
    pub error: String,
    /// The rest, boxed: errors travel through every `Result` of Studio and should stay small.
    #[serde(flatten)]
    pub details: Box<Details>,
}

#[derive(Debug, Default, Serialize)]
pub struct Details {
    /// PostgreSQL's own message, when the error came from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The SQLSTATE, e.g. `23514`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The column the error is about, when PostgreSQL or Studio knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// 1-based character offset into the statement, for syntax and similar errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// The value the row holds now, for an edit that lost to another change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Option<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            details: Box::default(),
        }
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error)
    }

    pub fn read_only() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Studio was started with --read-only: changes are refused",
        )
    }

    pub fn read_only_locks() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Studio was started with --read-only: LOCK and advisory locks are refused (they would hold up the application)",
        )
    }

    pub fn read_only_run_ended() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "This statement ended Studio's read-only transaction or changed its statement \
             timeout; the run was stopped",
        )
    }

    pub fn with_column(mut self, column: &str) -> ApiError {
        self.details.column = Some(column.to_owned());
        self
    }

    /// An error from the database, explained. A CHECK violation is explained with the rule it
    /// broke, which is looked up in the catalog (best effort: the lookup may fail too).
    pub async fn explain(pool: &PgPool, error: sqlx::Error) -> ApiError {
        let mut api = ApiError::from(error);
        if api.details.code.as_deref() == Some("23514") {
            if let Some(constraint) = &api.details.constraint {
                let rule: Option<String> = sqlx::query_scalar(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
                     WHERE conname = $1 AND connamespace = current_schema()::regnamespace LIMIT 1",
                )
                .bind(constraint)
                .fetch_optional(pool)
                .await
                .ok()
                .flatten();
                if let Some(rule) = rule {
                    api.error = format!("The row breaks the rule {constraint}: {rule}");
                }
            }
        }
        api
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        let refusal = DatabaseRefusal::of(&error);
        let Some(pg) = error
            .as_database_error()
            .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        else {
            return match refusal {
                DatabaseRefusal::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("The database could not be reached: {error}"),
                ),
                _ => {
                    tracing::warn!("database: {error}");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Studio could not do this: {error}"),
                    )
                }
            };
        };
        let code = pg.code();
        let message = pg.message();
        let column = pg.column().map(str::to_owned);
        let plain = match code {
            "23514" => format!(
                "The row breaks the rule {}",
                pg.constraint().unwrap_or("of a CHECK constraint")
            ),
            "23503" => "The value must be the key of an existing row in the referenced table \
                        (or the row is still referenced)"
                .to_owned(),
            "23505" => "Another row already has this value, which must be unique".to_owned(),
            "23502" => format!(
                "{} cannot be NULL",
                column
                    .as_deref()
                    .map_or("This column".to_owned(), |c| format!("Column {c}"))
            ),
            "22P02" | "22007" | "22008" | "22003" | "22001" | "22023" | "22P05" | "22021" => {
                format!("Not a valid value: {message}")
            }
            "25006" => format!("Read-only: {message}"),
            "57014" => {
                "The statement ran longer than the statement timeout and was cancelled".to_owned()
            }
            "42601" => format!("Syntax error: {message}"),
            _ => message.to_owned(),
        };
        // Whatever else fails is the user's own SQL (the console, a filter): 400.
        let status = refusal.status().unwrap_or(StatusCode::BAD_REQUEST);
        ApiError {
            status,
            error: plain,
            details: Box::new(Details {
                message: Some(message.to_owned()),
                detail: pg.detail().map(str::to_owned),
                hint: pg.hint().map(str::to_owned),
                code: Some(code.to_owned()),
                constraint: pg.constraint().map(str::to_owned),
                column,
                position: match pg.position() {
                    Some(PgErrorPosition::Original(position)) => Some(position),
                    _ => None,
                },
                current: None,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(&self)).into_response()
    }
}
