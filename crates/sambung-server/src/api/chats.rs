//! Chats, their messages, sharing and message search.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::chats::{
    self as db, Chat, ChatCursor, ChatQuery, ChatScope, Message, MessageCursor, MessageRole,
};
use sambung_db::tags::{self, Tag};
use sambung_db::{ChatId, FolderId, MessageId, TagId, TeamId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::files::FileOut;
use super::tags::TagOut;
use super::{decode_cursor, encode_cursor, nullable, page_limit, Page};
use crate::auth::{Requester, SignedIn};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::i18n::Reader;
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_chats, create_chat))
        .routes(routes!(get_chat, update_chat, delete_chat))
        .routes(routes!(share_chat, unshare_chat))
        .routes(routes!(list_messages, append_message))
        .routes(routes!(show_branch))
        .routes(routes!(search_messages))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatOut {
    pub id: Uuid,
    pub user_id: Uuid,
    pub team_id: Option<Uuid>,
    pub folder_id: Option<Uuid>,
    pub title: String,
    pub model: String,
    pub provider: String,
    pub settings: serde_json::Value,
    pub is_public: bool,
    /// The share link's token while the chat is public.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_token: Option<String>,
    pub pinned_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_count: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ChatOut {
    pub fn new(c: Chat, message_count: Option<i64>) -> Self {
        ChatOut {
            id: c.id.0,
            user_id: c.user_id.0,
            team_id: c.team_id.map(|t| t.0),
            folder_id: c.folder_id.map(|f| f.0),
            title: c.title,
            model: c.model,
            provider: c.provider,
            settings: c.settings,
            is_public: c.is_public,
            public_token: c.public_token,
            pinned_at: c.pinned_at.map(Into::into),
            archived_at: c.archived_at.map(Into::into),
            message_count,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl From<MessageRole> for Role {
    fn from(role: MessageRole) -> Self {
        match role {
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
            MessageRole::System => Role::System,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub role: Role,
    pub content: String,
    /// `{model, tokens, finishReason, ...}` for replies.
    pub metadata: Option<serde_json::Value>,
    pub created_at: Timestamp,
    /// The message it follows in the chat's tree, in a chat's pages (`null` there: a first
    /// question; elsewhere, as in search hits, it is not read).
    pub parent_id: Option<Uuid>,
    /// The versions of this message (itself among them), oldest first, when an edit or a
    /// regeneration made several: `POST .../messages/{id}/show` switches to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siblings: Option<Vec<Uuid>>,
    /// In the whole tree's pages (`branches=all`): true for a message off the shown path.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub off_path: bool,
    /// The content rendered from Markdown to sanitised HTML (only when asked: `html=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The chat's title, in search hits (a hit names where it was found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_title: Option<String>,
    /// The files the message carries, in a chat's pages (`GET /files/{id}` reads each).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileOut>,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        let mut metadata = m.metadata;
        // Which server writes a reply is the servers' business (`sambung_db::lease`).
        if let Some(object) = metadata.as_mut().and_then(|m| m.as_object_mut()) {
            object.remove("server");
        }
        MessageOut {
            id: m.id.0,
            chat_id: m.chat_id.0,
            role: m.role.into(),
            content: m.content,
            metadata,
            created_at: m.created_at.into(),
            parent_id: m.parent_id.map(|p| p.0),
            siblings: m.siblings,
            off_path: m.off_path,
            html: None,
            chat_title: None,
            files: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChatListQuery {
    /// A team's chats instead of the user's personal ones.
    pub team: Option<Uuid>,
    pub folder: Option<Uuid>,
    pub tag: Option<Uuid>,
    /// Only pinned chats (`true`) or only the others (`false`).
    pub pinned: Option<bool>,
    /// Archived chats instead of the others (`false` unless asked).
    pub archived: Option<bool>,
    /// Text the title contains.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// The user's personal chats, or a team's, newest first, with their message counts.
#[utoipa::path(get, path = "/chats", tag = "chats", params(ChatListQuery),
    responses((status = 200, body = Page<ChatOut>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_chats(
    State(state): Shared,
    me: Requester,
    ApiQuery(q): ApiQuery<ChatListQuery>,
) -> ApiResult<Json<Page<ChatOut>>> {
    let scope = match q.team {
        Some(team) => ChatScope::Team(TeamId(team)),
        None => ChatScope::Personal,
    };
    let mut query = ChatQuery::new(scope);
    query.folder_id = q.folder.map(FolderId);
    query.tag_id = q.tag.map(TagId);
    query.pinned = q.pinned;
    query.archived = Some(q.archived.unwrap_or(false));
    query.title_contains = q.q.filter(|t| !t.trim().is_empty());
    query.after = q
        .cursor
        .as_deref()
        .map(decode_cursor::<ChatCursor>)
        .transpose()?;
    query.limit = page_limit(q.limit, 50, 200)?;
    // A list may lag a little: a replica serves it when one is usable.
    let page = me
        .run(
            &state,
            |caller| db::list_chats(state.read_pool(), caller, &query),
            |page| !page.items.is_empty(),
        )
        .await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|s| ChatOut::new(s.chat, Some(s.message_count)))
            .collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChat {
    /// "New chat" when left out.
    pub title: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// A team chat (members may start them).
    pub team: Option<Uuid>,
    pub folder_id: Option<Uuid>,
    /// `{systemPrompt, temperature, maxTokens, topP}`: the chat's own, over its model's.
    pub settings: Option<serde_json::Value>,
}

/// Start a chat, personal or in a team.
#[utoipa::path(post, path = "/chats", tag = "chats", request_body = NewChat,
    responses((status = 201, body = ChatOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_chat(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<NewChat>,
) -> ApiResult<(StatusCode, Json<ChatOut>)> {
    let chat = db::create_chat(
        &state.pool,
        me.user.id,
        db::NewChat {
            team_id: body.team.map(TeamId),
            folder_id: body.folder_id.map(FolderId),
            title: body.title.as_deref().unwrap_or(db::NEW_CHAT_TITLE),
            model: body.model.as_deref().unwrap_or("default"),
            provider: body.provider.as_deref().unwrap_or("default"),
            settings: body.settings,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ChatOut::new(chat, Some(0)))))
}

/// How many messages `GET /chats/{id}` carries (fewer when they are long: a page holds at most
/// `MAX_PAGE_CONTENT_BYTES` of text); the rest come from `GET /chats/{id}/messages`.
const FIRST_PAGE_MESSAGES: i64 = 100;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatDetail {
    #[serde(flatten)]
    pub chat: ChatOut,
    pub tags: Vec<TagOut>,
    /// The first page of messages, oldest first (at most 100, and at most 4 MiB of text).
    pub messages: Vec<MessageOut>,
    /// Where `GET /chats/{id}/messages?cursor=` goes on.
    pub next_cursor: Option<String>,
}

/// A chat with its tags and (the first page of) its messages.
#[utoipa::path(get, path = "/chats/{id}", tag = "chats", params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatDetail), (status = 404, body = ErrorBody)))]
async fn get_chat(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ChatDetail>> {
    let (chat, page) = db::chat_with_messages(
        &state.pool,
        me.user.id,
        ChatId(id),
        None,
        FIRST_PAGE_MESSAGES,
    )
    .await?;
    let tags = tags::chat_tags(&state.pool, me.user.id, chat.id).await?;
    Ok(Json(detail(chat, tags, page.items, page.next)))
}

fn detail(
    chat: Chat,
    tags: Vec<Tag>,
    messages: Vec<Message>,
    next: Option<MessageCursor>,
) -> ChatDetail {
    ChatDetail {
        chat: ChatOut::new(chat, None),
        tags: tags.into_iter().map(Into::into).collect(),
        messages: messages.into_iter().map(Into::into).collect(),
        next_cursor: next.as_ref().map(encode_cursor),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatChanges {
    pub title: Option<String>,
    /// File it in a folder of its scope, or `null` to take it out.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub folder_id: Option<Option<Uuid>>,
    /// The chat's tags, all of them (each of its scope, or public).
    pub tags: Option<Vec<Uuid>>,
    pub pinned: Option<bool>,
    /// The model new replies use (with `provider`).
    pub model: Option<String>,
    pub provider: Option<String>,
    /// The chat's own `{systemPrompt, temperature, maxTokens, topP}` (all of them; `{}` for
    /// none), over its model's.
    pub settings: Option<serde_json::Value>,
    /// Archive the chat (out of the list, kept, found by search) or bring it back.
    pub archived: Option<bool>,
}

/// Change a chat (its creator, or an admin of its team).
#[utoipa::path(patch, path = "/chats/{id}", tag = "chats", params(("id" = Uuid, Path)), request_body = ChatChanges,
    responses((status = 200, body = ChatOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_chat(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ChatChanges>,
) -> ApiResult<Json<ChatOut>> {
    let (actor, chat) = (me.user.id, ChatId(id));
    let model = match (&body.model, &body.provider) {
        (Some(model), provider) => Some((model.as_str(), provider.as_deref().unwrap_or("default"))),
        (None, Some(_)) => {
            return Err(crate::error::ApiError::invalid(
                "model",
                "model: give the model with its provider",
            ))
        }
        (None, None) => None,
    };
    let updated = db::update_chat(
        &state.pool,
        actor,
        chat,
        db::ChatChanges {
            title: body.title.as_deref(),
            folder_id: body.folder_id.map(|f| f.map(FolderId)),
            pinned: body.pinned,
            model,
            settings: body.settings,
            archived: body.archived,
        },
    )
    .await?;
    if let Some(tag_ids) = body.tags {
        let tag_ids: Vec<TagId> = tag_ids.into_iter().map(TagId).collect();
        tags::set_chat_tags(&state.pool, actor, chat, &tag_ids).await?;
    }
    Ok(Json(ChatOut::new(updated, None)))
}

/// Delete a chat and its messages (its creator, or an admin of its team).
#[utoipa::path(delete, path = "/chats/{id}", tag = "chats", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_chat(
    State(state): Shared,
    me: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::delete_chat(&state.pool, me.user.id, ChatId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareLink {
    pub token: String,
    /// The public, read-only page.
    pub url: String,
}

/// Share a chat: a new public link (an earlier link stops working).
#[utoipa::path(post, path = "/chats/{id}/share", tag = "chats", params(("id" = Uuid, Path)),
    responses((status = 200, body = ShareLink), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn share_chat(
    State(state): Shared,
    me: SignedIn,
    client: crate::auth::ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ShareLink>> {
    let token = db::share_chat(&state.pool, me.user.id, ChatId(id)).await?;
    crate::audit::record(
        &state,
        crate::audit::Actor::Session(&me),
        client,
        sambung_db::audit::Action::ChatShared,
        Some(("chat", id.to_string())),
        serde_json::json!({}),
    )
    .await;
    Ok(Json(ShareLink {
        url: format!("{}/share/{token}", state.public_url),
        token,
    }))
}

/// Stop sharing a chat: its link stops working.
#[utoipa::path(delete, path = "/chats/{id}/share", tag = "chats", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unshare_chat(
    State(state): Shared,
    me: SignedIn,
    client: crate::auth::ClientIp,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    db::unshare_chat(&state.pool, me.user.id, ChatId(id)).await?;
    crate::audit::record(
        &state,
        crate::audit::Actor::Session(&me),
        client,
        sambung_db::audit::Action::ChatUnshared,
        Some(("chat", id.to_string())),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    pub cursor: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// Add each message's content as sanitised HTML (`html`), rendered from Markdown.
    pub html: Option<bool>,
    /// `all`: every message of the chat's tree, its branches too (`offPath` marks them);
    /// left out, the path the chat shows.
    pub branches: Option<Branches>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Branches {
    All,
}

/// A chat's messages, oldest first, a page at a time (at most `limit`, and 4 MiB of text).
#[utoipa::path(get, path = "/chats/{id}/messages", tag = "messages", params(("id" = Uuid, Path), MessagesQuery),
    responses((status = 200, body = Page<MessageOut>), (status = 404, body = ErrorBody)))]
async fn list_messages(
    State(state): Shared,
    me: Requester,
    Reader(locale): Reader,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> ApiResult<Json<Page<MessageOut>>> {
    let after = q
        .cursor
        .as_deref()
        .map(decode_cursor::<MessageCursor>)
        .transpose()?;
    let limit = page_limit(q.limit, 100, 500)?;
    let page = match q.branches {
        Some(Branches::All) => {
            me.run(
                &state,
                |caller| db::chat_tree(&state.pool, caller, ChatId(id), after, limit),
                |_| true,
            )
            .await?
        }
        None => {
            me.run(
                &state,
                |caller| db::chat_with_messages(&state.pool, caller, ChatId(id), after, limit),
                |_| true,
            )
            .await?
            .1
        }
    };
    let mut html = match q.html == Some(true) {
        true => state
            .renderer
            .html_of_each(page.items.iter().map(|m| m.content.as_str()))
            .await
            .into_iter()
            .map(|h| Some(h.to_string()))
            .collect(),
        false => Vec::new(),
    }
    .into_iter();
    let ids = db::carrying_files(&page.items);
    let mut carried: HashMap<MessageId, Vec<FileOut>> = HashMap::new();
    for (message, file) in sambung_db::files::files_of(&state.pool, &ids).await? {
        carried.entry(message).or_default().push(file.into());
    }
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|m| {
                let files = carried.remove(&m.id).unwrap_or_default();
                let mut out = MessageOut {
                    html: html.next().flatten(),
                    files,
                    ..m.into()
                };
                // A reply's error is kept as the server wrote it; each reader reads it in
                // their language.
                if let Some(error) = out
                    .metadata
                    .as_mut()
                    .and_then(|meta| meta.get_mut("error"))
                    .filter(|e| e.is_string())
                {
                    let told = sambung_i18n::error(locale, error.as_str().unwrap_or_default());
                    *error = serde_json::Value::String(told.into_owned());
                }
                out
            })
            .collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }))
}

/// Show the branch a message is on (one of a message's `siblings`): its ancestors, itself and
/// its latest replies become the chat's path, which the chat shows and sends to the model.
/// Whoever may change the chat, not while a reply is being written in it.
#[utoipa::path(post, path = "/chats/{id}/messages/{message}/show", tag = "messages",
    params(("id" = Uuid, Path), ("message" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn show_branch(
    State(state): Shared,
    me: SignedIn,
    ApiPath((id, message)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    db::show_branch(&state.pool, me.user.id, ChatId(id), MessageId(message)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message a user posts. Only user messages can be posted: the role, status and every other
/// field the server reads back are the server's own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// `user`, the only role a client may post (left out, it is `user` too).
    pub role: Option<PostedRole>,
    pub content: String,
    /// Whatever the client wants to keep beside the message (a JSON object of at most 16 KiB),
    /// stored as `metadata.annotations` and never interpreted by the server.
    pub annotations: Option<serde_json::Value>,
}

/// The role of a posted message.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostedRole {
    User,
}

/// Post a user message in a chat without calling a model (who may read the chat may post in
/// it).
#[utoipa::path(post, path = "/chats/{id}/messages", tag = "messages", params(("id" = Uuid, Path)), request_body = NewMessage,
    responses((status = 201, body = MessageOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn append_message(
    State(state): Shared,
    me: Requester,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewMessage>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let message = me
        .run(
            &state,
            |caller| {
                db::append_message(
                    &state.pool,
                    caller,
                    ChatId(id),
                    &body.content,
                    body.annotations.clone(),
                )
            },
            |_| true,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(message.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find.
    pub q: String,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

/// The newest messages containing the words, in every chat the user may read.
#[utoipa::path(get, path = "/search/messages", tag = "search", params(SearchQuery),
    responses((status = 200, body = Page<MessageOut>), (status = 400, body = ErrorBody)))]
async fn search_messages(
    State(state): Shared,
    me: Requester,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Page<MessageOut>>> {
    let limit = page_limit(q.limit, 20, 100)?;
    let found = me
        .run(
            &state,
            |caller| db::search_messages(state.read_pool(), caller, &q.q, limit),
            |found| !found.is_empty(),
        )
        .await?;
    Ok(Json(Page::all(
        found
            .into_iter()
            .map(|found| MessageOut {
                chat_title: Some(found.chat_title),
                ..found.message.into()
            })
            .collect(),
    )))
}
