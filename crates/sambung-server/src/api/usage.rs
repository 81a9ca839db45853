//! `GET /usage`: what replies used (tokens, requests, time, cost) over a range of days,
//! grouped by day, model, team or user: a user's own, or (an admin's) everyone's; and the
//! same as a chart drawn on the server (`/usage/chart.svg`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, NaiveDate, Utc};
use sambung_db::usage::{self, GroupBy, UsageRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SignedIn;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::i18n::Reader;
use crate::state::AppState;
use sambung_i18n::text;
use sambung_web::chart::Theme;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(get_usage))
        .routes(routes!(usage_chart))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// First day (UTC, `YYYY-MM-DD`); default: 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, included; default: today.
    pub to: Option<NaiveDate>,
    /// `day` (default), `model`, `team` or `user`.
    pub group_by: Option<String>,
    /// `mine` (default for users) or `all` (default for admins; admins only).
    pub scope: Option<String>,
    /// For the chart: `tokens` (default), `requests` or `cost`.
    pub metric: Option<String>,
    /// For the chart: `system` (default: the reader's device decides), `light` or `dark`
    /// (the theme the user chose in the page that shows it).
    pub theme: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    /// The group: a day, `provider/model`, a team's id (`personal` for chats of no team), a
    /// user's id.
    pub key: String,
    /// The group for people.
    pub label: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub duration_ms: i64,
    /// From the models' prices (0 where none is set).
    pub cost: f64,
}

impl From<UsageRow> for UsageGroup {
    fn from(r: UsageRow) -> Self {
        UsageGroup {
            key: r.key,
            label: r.label,
            requests: r.requests,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            duration_ms: r.duration_ms,
            cost: r.cost,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: String,
    /// `mine` or `all`.
    pub scope: &'static str,
    pub groups: Vec<UsageGroup>,
}

/// The question the parameters ask, checked.
fn question(me: &SignedIn, q: &UsageParams) -> ApiResult<(NaiveDate, NaiveDate, GroupBy, bool)> {
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - Duration::days(29));
    let group_by = q.group_by.as_deref().unwrap_or("day");
    let group = GroupBy::parse(group_by)
        .ok_or_else(|| ApiError::invalid("groupBy", "groupBy: day, model, team or user"))?;
    let admin = me.administers();
    let all = match q.scope.as_deref() {
        None => admin,
        Some("mine") => false,
        Some("all") if admin => true,
        Some("all") => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ADMIN_ONLY",
                "only the instance's admins see everyone's usage",
            ))
        }
        Some(_) => return Err(ApiError::invalid("scope", "scope: mine or all")),
    };
    Ok((from, to, group, all))
}

async fn groups(state: &AppState, me: &SignedIn, q: &UsageParams) -> ApiResult<UsageOut> {
    let (from, to, group, all) = question(me, q)?;
    let rows = usage::usage(
        state.read_pool(),
        from,
        to,
        group,
        (!all).then_some(me.user.id),
    )
    .await?;
    Ok(UsageOut {
        from,
        to,
        group_by: q.group_by.clone().unwrap_or_else(|| "day".into()),
        scope: if all { "all" } else { "mine" },
        groups: rows.into_iter().map(Into::into).collect(),
    })
}

/// What replies used, grouped.
#[utoipa::path(get, path = "/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsageOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_usage(
    State(state): State<Arc<AppState>>,
    me: SignedIn,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Json<UsageOut>> {
    Ok(Json(groups(&state, &me, &q).await?))
}

/// The same as a bar chart, drawn on the server (SVG).
#[utoipa::path(get, path = "/usage/chart.svg", tag = "usage", params(UsageParams),
    responses((status = 200, description = "An SVG bar chart", content_type = "image/svg+xml"), (status = 400, body = ErrorBody)))]
async fn usage_chart(
    State(state): State<Arc<AppState>>,
    me: SignedIn,
    Reader(locale): Reader,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Response> {
    let out = groups(&state, &me, &q).await?;
    let metric = q.metric.as_deref().unwrap_or("tokens");
    let value = |g: &UsageGroup| -> ApiResult<f64> {
        Ok(match metric {
            "tokens" => (g.input_tokens + g.output_tokens) as f64,
            "requests" => g.requests as f64,
            "cost" => g.cost,
            _ => {
                return Err(ApiError::invalid(
                    "metric",
                    "metric: tokens, requests or cost",
                ))
            }
        })
    };
    let bars = out
        .groups
        .iter()
        .map(|g| {
            Ok(sambung_web::chart::Bar {
                label: g.label.clone(),
                value: value(g)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let said = |kind: &str, word: &str| text(locale, &format!("chart.{kind}.{word}"), &[]);
    let unit = said("metric", metric);
    let title = text(
        locale,
        "chart.title",
        &[
            ("metric", &unit),
            ("group", &said("group", &out.group_by)),
            ("from", &out.from),
            ("to", &out.to),
        ],
    );
    let theme = match q.theme.as_deref() {
        None | Some("system") => Theme::System,
        Some("light") => Theme::Light,
        Some("dark") => Theme::Dark,
        Some(_) => return Err(ApiError::invalid("theme", "theme: system, light or dark")),
    };
    let svg = sambung_web::chart::bar_chart(locale, theme, &title, &unit, &bars);
    let mut response = svg.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    // Opened on its own, an SVG is a document: it may run nothing and load nothing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    crate::i18n::told_in(&mut response, locale);
    Ok(response)
}
