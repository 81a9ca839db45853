//! Every refusal and failure as the HTTP status and `{code, message, field?}` body the API
//! promises: the one place a domain error becomes a status.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sambung_db::DomainError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: status, a stable machine-readable code, a sentence for people, and the
/// request field at fault when there is one.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub field: Option<String>,
    /// More about the error, in the body beside `code` (a quota's `limit` and `resetsAt`).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable (`NOT_FOUND`, `VALIDATION_ERROR`, Better Auth's codes...).
    pub code: String,
    pub message: String,
    /// The request field at fault, in the request's own spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// More about some errors: `QUOTA_EXCEEDED` says which `limit`, how much it `allowed`,
    /// and when it `resetsAt`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            field: None,
            details: None,
        }
    }

    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized")
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "Internal server error",
        )
    }
}

/// What a banned user is told when they try to sign in (Better Auth's `bannedUserMessage`).
pub const BANNED_MESSAGE: &str =
    "You have been banned from this application. Please contact support if you believe this is an error.";

/// `folder_id` → `folderId`: fields are named as the request spells them.
pub fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NotFound { entity } => ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{entity} not found"),
            ),
            DomainError::Forbidden { action } => ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("not allowed to {action}"),
            ),
            DomainError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
            }
            DomainError::Invalid { field, reason } => ApiError::invalid(
                camel_case(field),
                format!("invalid {}: {reason}", camel_case(field)),
            ),
            error @ DomainError::LastAdmin { .. } => {
                ApiError::new(StatusCode::CONFLICT, "LAST_ADMIN", error.to_string())
            }
            DomainError::SignupRefused(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "EMAIL_PASSWORD_SIGN_UP_DISABLED",
                format!("Email and password sign up is not enabled: {reason}"),
            ),
            DomainError::Banned { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "BANNED_USER", BANNED_MESSAGE)
            }
            ref quota @ DomainError::QuotaExceeded {
                limit,
                allowed,
                resets_at,
            } => {
                let mut details = serde_json::Map::new();
                details.insert("limit".into(), limit.into());
                details.insert("allowed".into(), allowed.into());
                details.insert(
                    "resetsAt".into(),
                    resets_at.map_or(serde_json::Value::Null, |at| {
                        serde_json::to_value(crate::time::Timestamp::from(at)).unwrap_or_default()
                    }),
                );
                ApiError {
                    details: Some(details),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "QUOTA_EXCEEDED",
                        quota.to_string(),
                    )
                }
            }
            ref full @ DomainError::StorageFull { allowed, used } => {
                let mut details = serde_json::Map::new();
                details.insert("allowed".into(), allowed.into());
                details.insert("used".into(), used.into());
                ApiError {
                    details: Some(details),
                    ..ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "STORAGE_FULL",
                        full.to_string(),
                    )
                }
            }
            DomainError::Decrypt => {
                tracing::error!("{}", DomainError::Decrypt);
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "DECRYPT_FAILED",
                    "the server cannot decrypt stored API keys (is ENCRYPTION_KEY the one they were stored under?)",
                )
            }
            DomainError::Database(error) => database_error(error),
        }
    }
}

/// A provider's error: the URL refused or the model misconfigured is the user's to fix (400);
/// the provider failing is a bad gateway (502) with a code saying how.
impl From<sambung_ai::ProviderError> for ApiError {
    fn from(error: sambung_ai::ProviderError) -> Self {
        use sambung_ai::ProviderError as P;
        let code = match &error {
            P::Blocked(_) => "BASE_URL_NOT_ALLOWED",
            P::Config(_) => "MODEL_MISCONFIGURED",
            P::InvalidKey => "PROVIDER_INVALID_KEY",
            P::RateLimited => "PROVIDER_RATE_LIMITED",
            P::ModelNotFound => "PROVIDER_MODEL_NOT_FOUND",
            P::Overloaded => "PROVIDER_OVERLOADED",
            P::Timeout(_) => "PROVIDER_TIMEOUT",
            P::Network(_) => "PROVIDER_UNREACHABLE",
            P::Http { .. } | P::Protocol(_) => "PROVIDER_ERROR",
        };
        let status = match error {
            P::Blocked(_) | P::Config(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<sambung_chat::TurnError> for ApiError {
    fn from(error: sambung_chat::TurnError) -> Self {
        use sambung_chat::TurnError as T;
        match error {
            T::Domain(e) => e.into(),
            T::Provider(e) => e.into(),
            T::NoModel => ApiError::new(StatusCode::BAD_REQUEST, "NO_MODEL", error.to_string()),
            T::NoEncryptionKey => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ENCRYPTION_KEY_MISSING",
                error.to_string(),
            ),
            T::FileNotTaken(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "FILE_NOT_TAKEN", error.to_string())
            }
            T::PersonalKeysOff => ApiError::new(
                StatusCode::FORBIDDEN,
                "PERSONAL_KEYS_DISABLED",
                error.to_string(),
            ),
        }
    }
}

/// Database errors that bad input can still provoke get a 4xx; anything else is logged and
/// answered without details.
fn database_error(error: sqlx::Error) -> ApiError {
    use sambung_http::edge::DatabaseRefusal;
    match DatabaseRefusal::of(&error) {
        DatabaseRefusal::Conflict => ApiError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            "the change conflicts with existing data",
        ),
        DatabaseRefusal::Invalid => ApiError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "a value is out of range or malformed",
        ),
        DatabaseRefusal::Unavailable => {
            tracing::error!(error = %error, "database unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
                "the database is unavailable, try again shortly",
            )
        }
        // The app's own statements are never read-only or wrong: a bug, logged.
        DatabaseRefusal::ReadOnly | DatabaseRefusal::Other => {
            tracing::error!(error = %error, "database error");
            ApiError::internal()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.into_owned(),
            message: self.message,
            field: self.field,
            details: self.details,
        };
        let untold = crate::i18n::Untold(std::sync::Arc::new(body.clone()));
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(untold);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
