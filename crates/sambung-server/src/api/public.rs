//! Shared chats, readable by anyone with the link while they are shared.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chats::Role;
use super::{decode_cursor, encode_cursor, page_limit};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(public_chat))
}

/// What a shared chat shows: no owner, team, folder or settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicChat {
    pub title: String,
    pub model: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// A page of messages, oldest first (at most `limit`, and 4 MiB of text).
    pub messages: Vec<PublicMessage>,
    /// Where `?cursor=` goes on; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    pub cursor: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicMessage {
    pub role: Role,
    pub content: String,
    pub created_at: Timestamp,
}

/// A shared chat, without signing in.
#[utoipa::path(get, path = "/public/chats/{token}", tag = "public", params(("token" = String, Path), PublicQuery),
    responses((status = 200, body = PublicChat), (status = 404, body = ErrorBody)), security(()))]
async fn public_chat(
    State(state): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PublicQuery>,
) -> ApiResult<Json<PublicChat>> {
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = page_limit(q.limit, 100, 500)?;
    let (chat, page) =
        sambung_db::chats::get_public_chat(state.read_pool(), &token, after, limit).await?;
    Ok(Json(PublicChat {
        title: chat.title,
        model: chat.model,
        created_at: chat.created_at.into(),
        updated_at: chat.updated_at.into(),
        messages: page
            .items
            .into_iter()
            .map(|m| PublicMessage {
                role: m.role.into(),
                content: m.content,
                created_at: m.created_at.into(),
            })
            .collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }))
}
