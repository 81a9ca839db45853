//! The prompt library: the user's own templates and public ones.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::prompts::{self as db, Prompt, PromptCursor, PromptVersion};
use sambung_db::{PromptId, PromptVersionId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{decode_cursor, encode_cursor, page_limit, Page};
use crate::auth::SignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_prompts, create_prompt))
        .routes(routes!(get_prompt, update_prompt, delete_prompt))
        .routes(routes!(prompt_versions))
        .routes(routes!(restore_prompt_version))
        .routes(routes!(duplicate_prompt))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptOut {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub content: String,
    /// The `{name}` placeholders of the content, in order.
    pub variables: Vec<String>,
    pub category: String,
    pub is_public: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Prompt> for PromptOut {
    fn from(p: Prompt) -> Self {
        PromptOut {
            id: p.id.0,
            user_id: p.user_id.0,
            name: p.name,
            content: p.content,
            variables: p.variables.0,
            category: p.category,
            is_public: p.is_public,
            created_at: p.created_at.into(),
            updated_at: p.updated_at.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PromptQuery {
    /// Search names and contents (best matches first; one page).
    pub q: Option<String>,
    /// Only the user's own prompts.
    pub mine: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 100 (default 20 for a search, 50 otherwise).
    pub limit: Option<i64>,
}

/// The user's prompts and the public ones, most recently changed first; with `q`, a search.
#[utoipa::path(get, path = "/prompts", tag = "prompts", params(PromptQuery),
    responses((status = 200, body = Page<PromptOut>), (status = 400, body = ErrorBody)))]
async fn list_prompts(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<PromptQuery>,
) -> ApiResult<Json<Page<PromptOut>>> {
    if let Some(text) = q.q.filter(|t| !t.trim().is_empty()) {
        let limit = page_limit(q.limit, 20, 100)?;
        let found = db::search_prompts(state.read_pool(), me.user.id, &text, limit).await?;
        let mine_only = q.mine == Some(true);
        return Ok(Json(Page::all(
            found
                .into_iter()
                .filter(|p| !mine_only || p.user_id == me.user.id)
                .map(Into::into)
                .collect(),
        )));
    }
    let after = q
        .cursor
        .as_deref()
        .map(decode_cursor::<PromptCursor>)
        .transpose()?;
    let limit = page_limit(q.limit, 50, 100)?;
    let page = db::list_prompts(
        state.read_pool(),
        me.user.id,
        q.mine == Some(true),
        after,
        limit,
    )
    .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPrompt {
    pub name: String,
    /// The template; `{name}` placeholders become its variables.
    pub content: String,
    /// `general` when left out.
    pub category: Option<String>,
    pub is_public: Option<bool>,
}

/// Save a prompt template.
#[utoipa::path(post, path = "/prompts", tag = "prompts", request_body = NewPrompt,
    responses((status = 201, body = PromptOut), (status = 400, body = ErrorBody)))]
async fn create_prompt(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<NewPrompt>,
) -> ApiResult<(StatusCode, Json<PromptOut>)> {
    let prompt = db::create_prompt(
        &state.pool,
        me.user.id,
        db::NewPrompt {
            name: &body.name,
            content: &body.content,
            category: body.category.as_deref(),
            is_public: body.is_public.unwrap_or(false),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(prompt.into())))
}

/// A prompt of the user's own, or a public one.
#[utoipa::path(get, path = "/prompts/{id}", tag = "prompts", params(("id" = Uuid, Path)),
    responses((status = 200, body = PromptOut), (status = 404, body = ErrorBody)))]
async fn get_prompt(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PromptOut>> {
    Ok(Json(
        db::get_prompt(&state.pool, me.user.id, PromptId(id))
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptChanges {
    pub name: Option<String>,
    pub content: Option<String>,
    pub category: Option<String>,
    pub is_public: Option<bool>,
}

/// Change a prompt of the user's own (a public prompt of someone else's is 403).
#[utoipa::path(patch, path = "/prompts/{id}", tag = "prompts", params(("id" = Uuid, Path)), request_body = PromptChanges,
    responses((status = 200, body = PromptOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_prompt(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PromptChanges>,
) -> ApiResult<Json<PromptOut>> {
    let (actor, prompt) = (me.user.id, PromptId(id));
    let current = db::get_prompt(&state.pool, actor, prompt).await?;
    let updated = db::update_prompt(
        &state.pool,
        actor,
        prompt,
        db::NewPrompt {
            name: body.name.as_deref().unwrap_or(&current.name),
            content: body.content.as_deref().unwrap_or(&current.content),
            category: Some(body.category.as_deref().unwrap_or(&current.category)),
            is_public: body.is_public.unwrap_or(current.is_public),
        },
    )
    .await?;
    Ok(Json(updated.into()))
}

/// Delete a prompt of the user's own.
#[utoipa::path(delete, path = "/prompts/{id}", tag = "prompts", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_prompt(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_prompt(&state.pool, me.user.id, PromptId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptVersionOut {
    pub id: Uuid,
    pub name: String,
    pub content: String,
    pub category: String,
    /// When this text was replaced by the next.
    pub created_at: Timestamp,
}

impl From<PromptVersion> for PromptVersionOut {
    fn from(v: PromptVersion) -> Self {
        PromptVersionOut {
            id: v.id.0,
            name: v.name,
            content: v.content,
            category: v.category,
            created_at: v.created_at.into(),
        }
    }
}

/// The earlier texts of one's own prompt (kept at each edit), newest first, at most 100.
#[utoipa::path(get, path = "/prompts/{id}/versions", tag = "prompts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<PromptVersionOut>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn prompt_versions(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Page<PromptVersionOut>>> {
    let versions = db::prompt_versions(&state.pool, me.user.id, PromptId(id)).await?;
    Ok(Json(Page::all(
        versions.into_iter().map(Into::into).collect(),
    )))
}

/// Bring an earlier text of one's own prompt back; the text it replaces becomes a version.
#[utoipa::path(post, path = "/prompts/{id}/versions/{version}/restore", tag = "prompts",
    params(("id" = Uuid, Path), ("version" = Uuid, Path)),
    responses((status = 200, body = PromptOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn restore_prompt_version(
    State(state): Shared,
    me: SignedIn,
    ApiPath((id, version)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<PromptOut>> {
    let restored = db::restore_prompt_version(
        &state.pool,
        me.user.id,
        PromptId(id),
        PromptVersionId(version),
    )
    .await?;
    Ok(Json(restored.into()))
}

/// A private copy of a prompt one may use, as one's own ("Name (copy)").
#[utoipa::path(post, path = "/prompts/{id}/duplicate", tag = "prompts", params(("id" = Uuid, Path)),
    responses((status = 201, body = PromptOut), (status = 404, body = ErrorBody)))]
async fn duplicate_prompt(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<PromptOut>)> {
    let copy = db::duplicate_prompt(&state.pool, me.user.id, PromptId(id)).await?;
    Ok((StatusCode::CREATED, Json(copy.into())))
}
