//! The web UI's routes: the application's page at `/` (and at `/invites/{token}`, the links
//! team invitations send), its files under `/assets/`, and the public page of a shared chat
//! at `/share/{token}`. Every page carries a strict Content
//! Security Policy: only this server's own script, style and API.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sambung_web::assets::{self, Asset, CONTENT_SECURITY_POLICY};
use sambung_web::share::{self, SharedFile, SharedMessage};

use crate::i18n::Reader;
use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        // An invitation link opens the application, which offers to join.
        .route("/invites/{token}", get(index))
        .route("/assets/{name}", get(asset))
        .route("/assets/locales/{file}", get(catalogue))
        .route(
            "/manifest.webmanifest",
            get(|| async { serve(assets::MANIFEST) }),
        )
        .route("/sw.js", get(|| async { serve(assets::SERVICE_WORKER) }))
        .route("/share/{token}", get(shared_chat))
        .route("/share/{token}/files/{file}", get(shared_file))
        .route(
            "/share/{token}/files/{file}/thumbnail",
            get(shared_thumbnail),
        )
}

fn page_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn serve(asset: Asset) -> Response {
    // The file is the binary's own: served as it is, never copied.
    let mut response = page_response(StatusCode::OK, asset.content_type, asset.body);
    let headers = response.headers_mut();
    // The application's small files are asked for again each time (a new binary serves new
    // ones at once); a vendored library keeps for a day.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.vendored {
            "public, max-age=86400"
        } else {
            "no-cache"
        }),
    );
    response
}

async fn index() -> Response {
    serve(assets::INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    assets::asset(&name).map_or_else(no_such_file, serve)
}

async fn catalogue(Path(file): Path<String>) -> Response {
    assets::catalogue(&file).map_or_else(no_such_file, serve)
}

fn no_such_file() -> Response {
    page_response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "no such file",
    )
}

#[derive(Debug, serde::Deserialize)]
struct SharePageQuery {
    /// Where the previous page ended.
    after: Option<String>,
}

/// How many messages a page of a shared chat shows (fewer when they are long).
const SHARED_PAGE_MESSAGES: i64 = 50;

/// A shared chat's read-only page, for anyone with the link, a page of messages at a time;
/// 404 once it is no longer shared.
async fn shared_chat(
    State(state): State<Arc<AppState>>,
    Reader(locale): Reader,
    Path(token): Path<String>,
    Query(query): Query<SharePageQuery>,
) -> Response {
    let after = query
        .after
        .as_deref()
        .and_then(|cursor| crate::api::decode_cursor(cursor).ok());
    let read =
        sambung_db::chats::get_public_chat(state.read_pool(), &token, after, SHARED_PAGE_MESSAGES)
            .await;
    let mut response = match read {
        Ok((chat, page)) => {
            let html = state
                .renderer
                .html_of_each(page.items.iter().map(|m| m.content.as_str()))
                .await;
            let ids = sambung_db::chats::carrying_files(&page.items);
            let mut carried = std::collections::HashMap::<_, Vec<SharedFile>>::new();
            match sambung_db::files::files_of(state.read_pool(), &ids).await {
                Ok(found) => {
                    for (message, file) in found {
                        let url = format!("/share/{token}/files/{}", file.id);
                        carried.entry(message).or_default().push(SharedFile {
                            thumbnail: file.has_thumbnail.then(|| format!("{url}/thumbnail")),
                            url,
                            name: file.name,
                            size: file.size,
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read a shared chat's files"),
            }
            let shown: Vec<SharedMessage<'_>> = page
                .items
                .iter()
                .zip(&html)
                .map(|(m, html)| SharedMessage {
                    role: m.role.as_str(),
                    html,
                    model: m
                        .metadata
                        .as_ref()
                        .and_then(|meta| meta.get("model"))
                        .and_then(|model| model.as_str()),
                    files: carried.remove(&m.id).unwrap_or_default(),
                })
                .collect();
            let later = page
                .next
                .as_ref()
                .map(|next| format!("/share/{token}?after={}", crate::api::encode_cursor(next)));
            // A chat not named yet is called what the reader calls a new chat.
            let title = match chat.title.as_str() {
                sambung_db::chats::NEW_CHAT_TITLE => sambung_i18n::text(locale, "chat.new", &[]),
                title => title.to_owned(),
            };
            page_response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                share::page(locale, &title, &shown, later.as_deref()),
            )
        }
        Err(sambung_db::DomainError::NotFound { .. }) => page_response(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            share::not_shared(locale),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a shared chat");
            page_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                sambung_i18n::text(locale, "share.unreadable", &[]),
            )
        }
    };
    crate::i18n::told_in(&mut response, locale);
    response
}

/// A file a shared chat's message carries, for anyone with the link (404 once it is not
/// shared, or for a file the chat does not carry).
async fn shared_file(
    State(state): State<Arc<AppState>>,
    Path((token, file)): Path<(String, uuid::Uuid)>,
) -> Result<Response, crate::error::ApiError> {
    let file =
        sambung_db::files::shared_file(&state.pool, &token, sambung_db::FileId(file)).await?;
    Ok(crate::api::files::file_response(state.pool.clone(), file))
}

/// The thumbnail of an image a shared chat carries.
async fn shared_thumbnail(
    State(state): State<Arc<AppState>>,
    Path((token, file)): Path<(String, uuid::Uuid)>,
) -> Result<Response, crate::error::ApiError> {
    let file =
        sambung_db::files::shared_file(&state.pool, &token, sambung_db::FileId(file)).await?;
    crate::api::files::thumbnail_response(&state.pool, &file).await
}
