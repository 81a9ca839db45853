//! The JSON API under `/api/v1`, one module per resource: each handler parses, calls the data
//! layer (where every access rule lives) and maps its errors (`crate::error`).

pub mod admin;
pub mod api_keys;
pub mod chats;
pub mod files;
pub mod folders;
pub mod generate;
pub mod identity_providers;
pub mod instance;
pub mod me;
pub mod models;
pub mod prompts;
pub mod providers;
pub mod public;
pub mod tags;
pub mod teams;
pub mod tokens;
pub mod transfer;
pub mod usage;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .merge(me::router())
        .merge(teams::router())
        .merge(folders::router())
        .merge(tags::router())
        .merge(chats::router())
        .merge(files::router())
        .merge(prompts::router())
        .merge(api_keys::router())
        .merge(models::router())
        .merge(providers::router())
        .merge(generate::router())
        .merge(public::router())
        .merge(instance::router())
        .merge(usage::router())
        .merge(admin::router())
        .merge(identity_providers::router())
        .merge(transfer::router())
        .merge(tokens::router())
}

/// One page of a list and the cursor of the next (`null` on the last page).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// A complete list in one page (search results: the best matches, `limit` of them).
    pub fn all(items: Vec<T>) -> Self {
        Page {
            items,
            next_cursor: None,
        }
    }

    /// A page of a short list read whole (a user's teams, folders, tags, keys, models):
    /// ordered by `key` (a sort value and the id, unique), starting after the cursor's key, so
    /// pages neither skip nor repeat items when others come and go.
    pub fn after_key(
        mut items: Vec<T>,
        key: impl Fn(&T) -> (String, Uuid),
        query: &ListQuery,
    ) -> ApiResult<Self> {
        let limit = page_limit(query.limit, 100, 500)?;
        let after: Option<(String, Uuid)> =
            query.cursor.as_deref().map(decode_cursor).transpose()?;
        items.sort_by_key(|item| key(item));
        let start = after.map_or(0, |after| items.partition_point(|item| key(item) <= after));
        let mut rest: Vec<T> = items.into_iter().skip(start).collect();
        let more = rest.len() as i64 > limit;
        rest.truncate(limit as usize);
        let next_cursor = more
            .then(|| rest.last().map(|item| encode_cursor(&key(item))))
            .flatten();
        Ok(Page {
            items: rest,
            next_cursor,
        })
    }
}

/// `?cursor=&limit=` of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub cursor: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A keyset cursor as an opaque string: the data layer's cursor as base64url JSON.
pub fn encode_cursor<C: Serialize>(cursor: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

pub fn decode_cursor<C: DeserializeOwned>(text: &str) -> ApiResult<C> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::invalid("cursor", "cursor: not a cursor this API gave out"))
}

/// A page size: `default` when not given, else 1 to `max`.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("limit", format!("limit: 1 to {max}"))),
    }
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
