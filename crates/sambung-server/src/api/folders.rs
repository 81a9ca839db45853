//! Folders: personal or a team's, nested.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::folders::{self as db, Folder, Scope};
use sambung_db::{FolderId, TeamId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{nullable, ListQuery, Page};
use crate::auth::SignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_folders, create_folder))
        .routes(routes!(update_folder, delete_folder))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderOut {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Folder> for FolderOut {
    fn from(f: Folder) -> Self {
        FolderOut {
            id: f.id.0,
            name: f.name,
            parent_id: f.parent_id.map(|p| p.0),
            user_id: f.user_id.map(|u| u.0),
            team_id: f.team_id.map(|t| t.0),
            created_at: f.created_at.into(),
            updated_at: f.updated_at.into(),
        }
    }
}

/// `?team=`: a team's instead of the user's own; `?cursor=&limit=` page through.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    pub team: Option<Uuid>,
    pub cursor: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
}

impl ScopeQuery {
    pub fn list(&self) -> ListQuery {
        ListQuery {
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }
}

pub fn scope_of(actor: UserId, team: Option<Uuid>) -> Scope {
    match team {
        Some(team) => Scope::Team(TeamId(team)),
        None => Scope::Personal(actor),
    }
}

/// The user's folders, or a team's (`?team=`), by name.
#[utoipa::path(get, path = "/folders", tag = "folders", params(ScopeQuery),
    responses((status = 200, body = Page<FolderOut>), (status = 404, body = ErrorBody)))]
async fn list_folders(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> ApiResult<Json<Page<FolderOut>>> {
    let folders = db::list_folders(&state.pool, me.user.id, scope_of(me.user.id, q.team)).await?;
    let folders = folders.into_iter().map(FolderOut::from).collect();
    Ok(Json(Page::after_key(
        folders,
        |f: &FolderOut| (f.name.clone(), f.id),
        &q.list(),
    )?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFolder {
    pub name: String,
    pub parent_id: Option<Uuid>,
    /// A team's folder (members may create them).
    pub team: Option<Uuid>,
}

/// Create a folder, at the top or inside another of the same scope.
#[utoipa::path(post, path = "/folders", tag = "folders", request_body = NewFolder,
    responses((status = 201, body = FolderOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_folder(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<NewFolder>,
) -> ApiResult<(StatusCode, Json<FolderOut>)> {
    let scope = scope_of(me.user.id, body.team);
    let folder = db::create_folder(
        &state.pool,
        me.user.id,
        scope,
        &body.name,
        body.parent_id.map(FolderId),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(folder.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FolderChanges {
    pub name: Option<String>,
    /// Move it: into another folder of its scope, or `null` for the top.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

/// Rename or move a folder (no folder goes inside itself).
#[utoipa::path(patch, path = "/folders/{id}", tag = "folders", params(("id" = Uuid, Path)), request_body = FolderChanges,
    responses((status = 200, body = FolderOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_folder(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<FolderChanges>,
) -> ApiResult<Json<FolderOut>> {
    let (actor, folder) = (me.user.id, FolderId(id));
    let mut current = db::get_folder(&state.pool, actor, folder).await?;
    if let Some(name) = body.name {
        current = db::rename_folder(&state.pool, actor, folder, &name).await?;
    }
    if let Some(parent) = body.parent_id {
        current = db::move_folder(&state.pool, actor, folder, parent.map(FolderId)).await?;
    }
    Ok(Json(current.into()))
}

/// Delete a folder and the folders inside it; their chats stay, outside any folder.
#[utoipa::path(delete, path = "/folders/{id}", tag = "folders", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_folder(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_folder(&state.pool, me.user.id, FolderId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
