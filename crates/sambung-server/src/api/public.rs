//! Shared chats, readable by anyone with the link while they are shared.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chats::Role;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiPath;
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
    pub messages: Vec<PublicMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicMessage {
    pub role: Role,
    pub content: String,
    pub created_at: Timestamp,
}

/// A shared chat, without signing in.
#[utoipa::path(get, path = "/public/chats/{token}", tag = "public", params(("token" = String, Path)),
    responses((status = 200, body = PublicChat), (status = 404, body = ErrorBody)), security(()))]
async fn public_chat(
    State(state): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<PublicChat>> {
    let (chat, messages) = sambung_db::chats::get_public_chat(state.read_pool(), &token).await?;
    Ok(Json(PublicChat {
        title: chat.title,
        model: chat.model,
        created_at: chat.created_at.into(),
        updated_at: chat.updated_at.into(),
        messages: messages
            .into_iter()
            .map(|m| PublicMessage {
                role: m.role.into(),
                content: m.content,
                created_at: m.created_at.into(),
            })
            .collect(),
    }))
}
