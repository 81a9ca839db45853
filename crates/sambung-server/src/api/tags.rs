//! Tags: public, personal or a team's.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::tags::{self as db, Tag, TagScope};
use sambung_db::{TagId, TeamId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::folders::ScopeQuery;
use super::{nullable, Page};
use crate::auth::SignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(update_tag, delete_tag))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagOut {
    pub id: Uuid,
    pub name: String,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// Both `null`: a public tag, usable on every chat.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub created_at: Timestamp,
}

impl From<Tag> for TagOut {
    fn from(t: Tag) -> Self {
        TagOut {
            id: t.id.0,
            name: t.name,
            color: t.color,
            user_id: t.user_id.map(|u| u.0),
            team_id: t.team_id.map(|t| t.0),
            created_at: t.created_at.into(),
        }
    }
}

/// The tags usable on the user's chats, or a team's (`?team=`): the public ones and the
/// scope's own.
#[utoipa::path(get, path = "/tags", tag = "tags", params(ScopeQuery),
    responses((status = 200, body = Page<TagOut>), (status = 404, body = ErrorBody)))]
async fn list_tags(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> ApiResult<Json<Page<TagOut>>> {
    let tags = db::list_tags(&state.pool, me.user.id, q.team.map(TeamId)).await?;
    let tags = tags.into_iter().map(TagOut::from).collect();
    Ok(Json(Page::after_key(
        tags,
        |t: &TagOut| (t.name.clone(), t.id),
        &q.list(),
    )?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    pub name: String,
    pub color: Option<String>,
    /// A team's tag (members may create them).
    pub team: Option<Uuid>,
}

/// Create a personal tag, or a team's.
#[utoipa::path(post, path = "/tags", tag = "tags", request_body = NewTag,
    responses((status = 201, body = TagOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_tag(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<NewTag>,
) -> ApiResult<(StatusCode, Json<TagOut>)> {
    let scope = match body.team {
        Some(team) => TagScope::Team(TeamId(team)),
        None => TagScope::Personal(me.user.id),
    };
    let tag = db::create_tag(
        &state.pool,
        Some(me.user.id),
        scope,
        &body.name,
        body.color.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(tag.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub color: Option<Option<String>>,
}

/// Rename or recolour a tag of the user's own or of their team.
#[utoipa::path(patch, path = "/tags/{id}", tag = "tags", params(("id" = Uuid, Path)), request_body = TagChanges,
    responses((status = 200, body = TagOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_tag(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TagChanges>,
) -> ApiResult<Json<TagOut>> {
    let color = body.color.as_ref().map(|c| c.as_deref());
    let tag = db::update_tag(
        &state.pool,
        me.user.id,
        TagId(id),
        body.name.as_deref(),
        color,
    )
    .await?;
    Ok(Json(tag.into()))
}

/// Delete a tag of the user's own or of their team; it comes off every chat.
#[utoipa::path(delete, path = "/tags/{id}", tag = "tags", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_tag(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_tag(&state.pool, me.user.id, TagId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
