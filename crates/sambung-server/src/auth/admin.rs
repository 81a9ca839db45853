//! Better Auth 1.7.25's admin plugin under `/api/auth/admin` (SPEC section 12), with its
//! bodies, answers and `ADMIN_ERROR_CODES`, so its `adminClient()` works unchanged. Every
//! route authorises by permission through the two roles this instance knows (`admin`: every
//! permission but impersonating admins; `user`: none), as the plugin's default roles do.
//! What protects the instance (the last admin, one's own account) is the data layer's rule.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use sambung_db::admin::{self, Condition, Operator, UserChanges, UserField, UserQuery};
use sambung_db::audit::Action;
use sambung_db::auth::{self as db, User, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use sambung_db::{DomainError, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cookie::{ADMIN_SESSION, DONT_REMEMBER, SESSION_DATA, SESSION_TOKEN};
use super::routes::{with_cookies, SessionOut, Success, UserOut};
use super::{ClientIp, MaybeSignedIn, SignedIn, SESSION_LIFETIME};
use crate::audit::{self, Actor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(create_user))
        .routes(routes!(update_user))
        .routes(routes!(set_role))
        .routes(routes!(ban_user))
        .routes(routes!(unban_user))
        .routes(routes!(list_user_sessions))
        .routes(routes!(revoke_user_session))
        .routes(routes!(revoke_user_sessions))
        .routes(routes!(set_user_password))
        .routes(routes!(remove_user))
        .routes(routes!(impersonate_user))
        .routes(routes!(stop_impersonating))
        .routes(routes!(has_permission))
}

/// How long an admin acts as a user (Better Auth's `impersonationSessionDuration`).
const IMPERSONATION_LIFETIME: Duration = Duration::hours(1);

/// What the `admin` role may do, per resource (Better Auth's `adminAc`); `user` may do nothing.
const ADMIN_PERMISSIONS: [(&str, &[&str]); 2] = [
    (
        "user",
        &[
            "create",
            "list",
            "set-role",
            "ban",
            "impersonate",
            "delete",
            "set-password",
            "set-email",
            "set-phone",
            "get",
            "update",
        ],
    ),
    ("session", &["list", "revoke", "delete"]),
];

/// Whether one of `role`'s roles grants every action asked of every resource (`connector`
/// `OR`: any of a resource's actions).
fn role_grants(role: &str, permissions: &[(String, Vec<String>, bool)]) -> bool {
    if permissions.is_empty() {
        return false;
    }
    role.split(',').any(|role| {
        role == db::ADMIN_ROLE
            && permissions.iter().all(|(resource, actions, any)| {
                let Some((_, granted)) = ADMIN_PERMISSIONS.iter().find(|(r, _)| r == resource)
                else {
                    return false;
                };
                let has = |a: &String| granted.contains(&a.as_str());
                !actions.is_empty()
                    && match any {
                        true => actions.iter().any(has),
                        false => actions.iter().all(has),
                    }
            })
    })
}

/// A permission an admin route needs, and the plugin's code and message when it is missing.
struct Needed {
    resource: &'static str,
    action: &'static str,
    code: &'static str,
    message: &'static str,
}

const LIST_USERS: Needed = Needed {
    resource: "user",
    action: "list",
    code: "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS",
    message: "You are not allowed to list users",
};
const GET_USER: Needed = Needed {
    resource: "user",
    action: "get",
    code: "YOU_ARE_NOT_ALLOWED_TO_GET_USER",
    message: "You are not allowed to get user",
};
const CREATE_USERS: Needed = Needed {
    resource: "user",
    action: "create",
    code: "YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS",
    message: "You are not allowed to create users",
};
const CHANGE_USERS_ROLE: Needed = Needed {
    resource: "user",
    action: "set-role",
    code: "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE",
    message: "You are not allowed to change users role",
};
const BAN_USERS: Needed = Needed {
    resource: "user",
    action: "ban",
    code: "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS",
    message: "You are not allowed to ban users",
};
const UPDATE_USERS: Needed = Needed {
    resource: "user",
    action: "update",
    code: "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS",
    message: "You are not allowed to update users",
};
const SET_USERS_EMAIL: Needed = Needed {
    resource: "user",
    action: "set-email",
    code: "YOU_ARE_NOT_ALLOWED_TO_SET_USERS_EMAIL",
    message: "You are not allowed to update users email",
};
const LIST_USERS_SESSIONS: Needed = Needed {
    resource: "session",
    action: "list",
    code: "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS_SESSIONS",
    message: "You are not allowed to list users sessions",
};
const REVOKE_USERS_SESSIONS: Needed = Needed {
    resource: "session",
    action: "revoke",
    code: "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS",
    message: "You are not allowed to revoke users sessions",
};
const SET_USERS_PASSWORD: Needed = Needed {
    resource: "user",
    action: "set-password",
    code: "YOU_ARE_NOT_ALLOWED_TO_SET_USERS_PASSWORD",
    message: "You are not allowed to set users password",
};
const DELETE_USERS: Needed = Needed {
    resource: "user",
    action: "delete",
    code: "YOU_ARE_NOT_ALLOWED_TO_DELETE_USERS",
    message: "You are not allowed to delete users",
};
const IMPERSONATE_USERS: Needed = Needed {
    resource: "user",
    action: "impersonate",
    code: "YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS",
    message: "You are not allowed to impersonate users",
};

/// The signed-in user's permission `needed`, else 403 with the plugin's code for it.
fn require(me: &SignedIn, needed: &Needed) -> ApiResult<()> {
    let asked = [(
        needed.resource.to_owned(),
        vec![needed.action.to_owned()],
        false,
    )];
    match role_grants(&me.user.role, &asked) {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            needed.code,
            needed.message,
        )),
    }
}

fn bad_request(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", "User not found")
}

/// A `userId` as the client sends it (a string, or a number it coerces): an id that cannot be
/// a user's is no user.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserIdIn {
    Text(String),
    Number(serde_json::Number),
}

impl UserIdIn {
    fn user(&self) -> Option<UserId> {
        match self {
            UserIdIn::Text(text) => text.trim().parse::<uuid::Uuid>().ok().map(UserId),
            UserIdIn::Number(_) => None,
        }
    }

    fn existing(&self) -> ApiResult<UserId> {
        self.user().ok_or_else(user_not_found)
    }
}

/// The data layer's refusals in the plugin's terms.
fn admin_error(error: DomainError) -> ApiError {
    match error {
        DomainError::NotFound { entity: "user" } => user_not_found(),
        DomainError::Conflict(_) => bad_request(
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
            "User already exists. Use another email.",
        ),
        DomainError::Invalid { field: "email", .. } => {
            bad_request("INVALID_EMAIL", "Invalid email")
        }
        DomainError::Invalid {
            field: "role",
            reason,
        } => ApiError {
            field: Some("role".into()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE",
                format!("You are not allowed to set a non-existent role value ({reason})"),
            )
        },
        DomainError::Forbidden { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "YOU_CANNOT_IMPERSONATE_ADMINS",
            "You cannot impersonate admins",
        ),
        other => other.into(),
    }
}

/// A role as sent: a string, or a list the plugin joins with commas.
fn role_text(role: &Value) -> ApiResult<String> {
    match role {
        Value::String(role) => Ok(role.clone()),
        Value::Array(roles) => roles
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|roles| roles.join(","))
            .ok_or_else(|| bad_request("INVALID_ROLE_TYPE", "Invalid role type")),
        _ => Err(bad_request("INVALID_ROLE_TYPE", "Invalid role type")),
    }
}

fn checked_role(role: &Value) -> ApiResult<String> {
    let role = role_text(role)?;
    admin::validate_role(&role).map_err(admin_error)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswer {
    pub user: UserOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserOut>,
    pub total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// The query of `list-users`, read as the client writes it (a repeated `filterValue` is a
/// list).
fn user_query(raw: Option<&str>) -> ApiResult<Option<UserQuery>> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let one = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let enumerated = |key: &str, allowed: &[&str], default: &'static str| -> ApiResult<String> {
        match one(key) {
            None => Ok(default.to_owned()),
            Some(v) if allowed.contains(&v) => Ok(v.to_owned()),
            Some(_) => Err(ApiError::invalid(
                key,
                format!("[query.{key}] must be one of {}", allowed.join(", ")),
            )),
        }
    };
    let number = |key: &str| {
        one(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 1.0)
            .map(|n| n as i64)
    };
    let search_field = enumerated("searchField", &["email", "name"], "email")?;
    let search_operator = enumerated(
        "searchOperator",
        &["contains", "starts_with", "ends_with"],
        "contains",
    )?;
    let sort_direction = enumerated("sortDirection", &["asc", "desc"], "asc")?;
    let filter_operator = enumerated(
        "filterOperator",
        &[
            "eq",
            "ne",
            "lt",
            "lte",
            "gt",
            "gte",
            "in",
            "not_in",
            "contains",
            "starts_with",
            "ends_with",
        ],
        "eq",
    )?;
    let mut conditions = Vec::new();
    if let Some(value) = one("searchValue").filter(|v| !v.is_empty()) {
        let (Some(field), Some(operator)) = (
            UserField::parse(&search_field),
            Operator::parse(&search_operator),
        ) else {
            return Ok(None);
        };
        conditions.push(Condition {
            field,
            operator,
            values: vec![value.to_owned()],
        });
    }
    let filter_values: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "filterValue")
        .map(|(_, v)| v.clone())
        .collect();
    if !filter_values.is_empty() {
        let field = one("filterField").unwrap_or("email");
        // An unknown field matches nothing, as the plugin answers when its adapter refuses.
        let (Some(field), Some(operator)) =
            (UserField::parse(field), Operator::parse(&filter_operator))
        else {
            return Ok(None);
        };
        conditions.push(Condition {
            field,
            operator,
            values: filter_values,
        });
    }
    let sort = match one("sortBy") {
        None => None,
        Some(field) => match UserField::parse(field) {
            Some(field) => Some((field, sort_direction == "desc")),
            None => return Ok(None),
        },
    };
    Ok(Some(UserQuery {
        conditions,
        sort,
        limit: number("limit").unwrap_or(100).min(admin::MAX_USERS_PAGE),
        offset: number("offset").unwrap_or(0),
    }))
}

/// Users, searched, filtered, sorted and paged (query as `authClient.admin.listUsers` sends
/// it: `searchValue`, `searchField`, `searchOperator`, `filterField`, `filterValue`,
/// `filterOperator`, `sortBy`, `sortDirection`, `limit` (at most 500), `offset`).
#[utoipa::path(get, path = "/admin/list-users", tag = "admin",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): Shared,
    me: SignedIn,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<UserList>> {
    require(&me, &LIST_USERS)?;
    let query = user_query(raw.as_deref())?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let echo = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .filter(|n| *n != 0.0 && n.is_finite())
            .map(|n| n as i64)
    };
    let (users, total) = match query {
        Some(query) => match admin::list_users(&state.pool, &query).await {
            Ok(found) => found,
            Err(DomainError::Invalid { .. }) => (Vec::new(), 0),
            Err(e) => return Err(e.into()),
        },
        None => (Vec::new(), 0),
    };
    Ok(Json(UserList {
        users: users.into_iter().map(UserOut::from).collect(),
        total,
        limit: echo("limit"),
        offset: echo("offset"),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetUserQuery {
    pub id: String,
}

/// One user (the bare user, as the plugin answers).
#[utoipa::path(get, path = "/admin/get-user", tag = "admin", params(GetUserQuery),
    responses((status = 200, body = UserOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): Shared,
    me: SignedIn,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<GetUserQuery>,
) -> ApiResult<Json<UserOut>> {
    require(&me, &GET_USER)?;
    let id = UserIdIn::Text(q.id).existing()?;
    let user = db::get_user(&state.pool, id).await.map_err(admin_error)?;
    Ok(Json(user.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserBody {
    pub email: String,
    pub password: Option<String>,
    pub name: String,
    /// A role or a list of roles (`user`, `admin`).
    #[schema(value_type = Option<Object>)]
    pub role: Option<Value>,
    /// More fields: `emailVerified`, `image`, `role`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, Value>>,
}

/// Make an account (admitted at once; with a password or none).
#[utoipa::path(post, path = "/admin/create-user", tag = "admin", request_body = CreateUserBody,
    responses((status = 200, body = UserAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> ApiResult<Json<UserAnswer>> {
    require(&me, &CREATE_USERS)?;
    let mut data = body.data.unwrap_or_default();
    // The top-level fields win over the same ones in `data`, as in the plugin.
    let data_role = data.remove("role");
    data.remove("email");
    data.remove("name");
    let requested_role = body.role.or(data_role);
    let role = match &requested_role {
        Some(role) => {
            require(&me, &CHANGE_USERS_ROLE)?;
            Some(checked_role(role)?)
        }
        None => None,
    };
    if ["banned", "banReason", "banExpires"]
        .iter()
        .any(|k| data.contains_key(*k))
    {
        require(&me, &BAN_USERS)?;
    }
    if db::normalize_email(&body.email).is_err() {
        return Err(bad_request("INVALID_EMAIL", "Invalid email"));
    }
    if let Some(password) = &body.password {
        if password.chars().count() > MAX_PASSWORD_LEN {
            return Err(bad_request("PASSWORD_TOO_LONG", "Password too long"));
        }
    }
    // `data` is checked before the account is made: a refusal leaves nothing behind.
    let checked = changes_from(&data, &me, None)?;
    if let Some(changes) = &checked {
        admin::check_changes(changes).map_err(admin_error)?;
    }
    let password = body.password.as_deref().filter(|p| !p.is_empty());
    let user = admin::create_user(
        &state.pool,
        &body.name,
        &body.email,
        password,
        role.as_deref(),
    )
    .await
    .map_err(admin_error)?;
    let user = match checked {
        Some(changes) => admin::update_user(&state.pool, me.user.id, user.id, changes)
            .await
            .map_err(admin_error)?,
        None => user,
    };
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::UserCreated,
        Some(("user", user.id.to_string())),
        json!({"email": user.email, "role": user.role}),
    )
    .await;
    Ok(Json(UserAnswer { user: user.into() }))
}

/// A date as the client sends one (an ISO string, or milliseconds since 1970).
fn date(value: &Value, field: &str) -> ApiResult<Option<DateTime<Utc>>> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| ApiError::invalid(field, format!("{field}: an ISO 8601 date"))),
        Value::Number(n) => n
            .as_i64()
            .and_then(DateTime::from_timestamp_millis)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, format!("{field}: a date"))),
        _ => Err(ApiError::invalid(field, format!("{field}: a date"))),
    }
}

/// The changes `data` asks for (fields this instance keeps; others are dropped, as the
/// plugin's adapter drops them) of the user `target` (`None`: one not made yet); `None` when
/// there are none.
fn changes_from(
    data: &serde_json::Map<String, Value>,
    me: &SignedIn,
    target: Option<UserId>,
) -> ApiResult<Option<UserChanges>> {
    let text = |key: &str| -> ApiResult<Option<String>> {
        match data.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid(key, format!("{key}: a string"))),
        }
    };
    let flag = |key: &str| -> ApiResult<Option<bool>> {
        match data.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(key, format!("{key}: true or false"))),
        }
    };
    let mut changes = UserChanges {
        name: text("name")?,
        email: text("email")?,
        email_verified: flag("emailVerified")?,
        image: match data.get("image") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => return Err(ApiError::invalid("image", "image: a string or null")),
        },
        role: data.get("role").map(checked_role).transpose()?,
        ban: None,
        approved: flag("approved")?,
    };
    match flag("banned")? {
        Some(true) => {
            if target == Some(me.user.id) {
                return Err(bad_request(
                    "YOU_CANNOT_BAN_YOURSELF",
                    "You cannot ban yourself",
                ));
            }
            let expires = data
                .get("banExpires")
                .map(|v| date(v, "banExpires"))
                .transpose()?
                .flatten();
            changes.ban = Some(Some((text("banReason")?, expires)));
        }
        Some(false) => changes.ban = Some(None),
        None => {}
    }
    let none = changes.name.is_none()
        && changes.email.is_none()
        && changes.email_verified.is_none()
        && changes.image.is_none()
        && changes.role.is_none()
        && changes.ban.is_none()
        && changes.approved.is_none();
    Ok((!none).then_some(changes))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserBody {
    #[schema(value_type = String)]
    pub user_id: UserIdIn,
    /// Fields to change: `name`, `email`, `emailVerified`, `image`, `role`, `banned`,
    /// `banReason`, `banExpires`, and this instance's `approved`.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, Value>,
}

/// Change a user (the bare user, as the plugin answers).
#[utoipa::path(post, path = "/admin/update-user", tag = "admin", request_body = UpdateUserBody,
    responses((status = 200, body = UserOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<UserOut>> {
    require(&me, &UPDATE_USERS)?;
    let data = body.data;
    if data.is_empty() {
        return Err(bad_request("NO_DATA_TO_UPDATE", "No data to update"));
    }
    if data.contains_key("password") {
        return Err(bad_request(
            "PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER",
            "Password cannot be updated through update-user. Use the set-user-password endpoint instead",
        ));
    }
    if data.contains_key("id") {
        return Err(bad_request(
            "USER_ID_CANNOT_BE_UPDATED",
            "User id cannot be updated",
        ));
    }
    if data.contains_key("role") {
        require(&me, &CHANGE_USERS_ROLE)?;
        role_text(&data["role"])?;
    }
    if ["banned", "banReason", "banExpires"]
        .iter()
        .any(|k| data.contains_key(*k))
    {
        require(&me, &BAN_USERS)?;
    }
    if data.contains_key("email") || data.contains_key("emailVerified") {
        require(&me, &SET_USERS_EMAIL)?;
        if let Some(email) = data.get("email") {
            if email
                .as_str()
                .is_none_or(|e| db::normalize_email(e).is_err())
            {
                return Err(bad_request("INVALID_EMAIL", "Invalid email"));
            }
        }
    }
    let target = body.user_id.existing()?;
    let before = db::get_user(&state.pool, target)
        .await
        .map_err(admin_error)?;
    let Some(changes) = changes_from(&data, &me, Some(target))? else {
        return Ok(Json(before.into()));
    };
    let user = admin::update_user(&state.pool, me.user.id, target, changes)
        .await
        .map_err(admin_error)?;
    audit_changes(&state, &me, client, &before, &user).await;
    Ok(Json(user.into()))
}

/// An admin's change to an account, audited as what it changed.
async fn change_user(
    state: &AppState,
    me: &SignedIn,
    client: ClientIp,
    target: UserId,
    changes: UserChanges,
) -> ApiResult<User> {
    let before = db::get_user(&state.pool, target)
        .await
        .map_err(admin_error)?;
    let user = admin::update_user(&state.pool, me.user.id, target, changes)
        .await
        .map_err(admin_error)?;
    audit_changes(state, me, client, &before, &user).await;
    Ok(user)
}

/// Audit what an admin changed of an account: its role, its ban, its approval, the rest.
async fn audit_changes(
    state: &AppState,
    me: &SignedIn,
    client: ClientIp,
    before: &User,
    after: &User,
) {
    let target = Some(("user", after.id.to_string()));
    let mut events = Vec::new();
    if before.role != after.role {
        events.push((
            Action::RoleChanged,
            json!({"from": before.role, "to": after.role}),
        ));
    }
    if before.banned != after.banned || before.ban_expires != after.ban_expires {
        events.push(match after.banned {
            true => (
                Action::UserBanned,
                json!({"reason": after.ban_reason, "expires": after.ban_expires}),
            ),
            false => (Action::UserUnbanned, json!({})),
        });
    }
    if !before.approved && after.approved {
        events.push((Action::UserApproved, json!({})));
    }
    if before.name != after.name
        || before.email != after.email
        || before.email_verified != after.email_verified
        || before.image != after.image
    {
        events.push((
            Action::UserUpdated,
            json!({"emailFrom": before.email, "emailTo": after.email}),
        ));
    }
    for (action, detail) in events {
        audit::record(
            state,
            Actor::Session(me),
            client,
            action,
            target.clone(),
            detail,
        )
        .await;
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetRoleBody {
    #[schema(value_type = String)]
    pub user_id: UserIdIn,
    /// `user` or `admin` (or a list of them).
    #[schema(value_type = Object)]
    pub role: Value,
}

/// Set a user's role; the last admin stays one.
#[utoipa::path(post, path = "/admin/set-role", tag = "admin", request_body = SetRoleBody,
    responses((status = 200, body = UserAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_role(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<SetRoleBody>,
) -> ApiResult<Json<UserAnswer>> {
    require(&me, &CHANGE_USERS_ROLE)?;
    let role = checked_role(&body.role)?;
    let target = body.user_id.existing()?;
    let changes = UserChanges {
        role: Some(role),
        ..UserChanges::default()
    };
    let user = change_user(&state, &me, client, target, changes).await?;
    Ok(Json(UserAnswer { user: user.into() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanBody {
    #[schema(value_type = String)]
    pub user_id: UserIdIn,
    pub ban_reason: Option<String>,
    /// Seconds until the ban ends (none: until lifted).
    pub ban_expires_in: Option<f64>,
}

/// Ban a user: their sessions end at once; signing in answers `BANNED_USER`.
#[utoipa::path(post, path = "/admin/ban-user", tag = "admin", request_body = BanBody,
    responses((status = 200, body = UserAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn ban_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<BanBody>,
) -> ApiResult<Json<UserAnswer>> {
    require(&me, &BAN_USERS)?;
    let target = body.user_id.existing()?;
    let before = db::get_user(&state.pool, target)
        .await
        .map_err(admin_error)?;
    if target == me.user.id {
        return Err(bad_request(
            "YOU_CANNOT_BAN_YOURSELF",
            "You cannot ban yourself",
        ));
    }
    let expires = match body.ban_expires_in {
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
            let seconds = seconds.min(100.0 * 365.0 * 86_400.0) as i64;
            Some(Utc::now() + Duration::seconds(seconds))
        }
        _ => None,
    };
    let reason = body.ban_reason.as_deref().filter(|r| !r.trim().is_empty());
    let user = admin::ban_user(&state.pool, me.user.id, target, reason, expires)
        .await
        .map_err(admin_error)?;
    audit_changes(&state, &me, client, &before, &user).await;
    Ok(Json(UserAnswer { user: user.into() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserIdBody {
    #[schema(value_type = String)]
    pub user_id: UserIdIn,
}

/// Lift a user's ban.
#[utoipa::path(post, path = "/admin/unban-user", tag = "admin", request_body = UserIdBody,
    responses((status = 200, body = UserAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unban_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<UserIdBody>,
) -> ApiResult<Json<UserAnswer>> {
    require(&me, &BAN_USERS)?;
    let target = body.user_id.existing()?;
    let changes = UserChanges {
        ban: Some(None),
        ..UserChanges::default()
    };
    let user = change_user(&state, &me, client, target, changes).await?;
    Ok(Json(UserAnswer { user: user.into() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionOut>,
}

/// A user's sessions, expired and impersonation ones too (their id stands for their token).
#[utoipa::path(post, path = "/admin/list-user-sessions", tag = "admin", request_body = UserIdBody,
    responses((status = 200, body = SessionList), (status = 403, body = ErrorBody)))]
async fn list_user_sessions(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<UserIdBody>,
) -> ApiResult<Json<SessionList>> {
    require(&me, &LIST_USERS_SESSIONS)?;
    let sessions = match body.user_id.user() {
        Some(user) => admin::list_user_sessions(&state.pool, user).await?,
        None => Vec::new(),
    };
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(SessionOut::listed).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeSessionBody {
    /// A session's token, or its id as listings show it.
    pub session_token: String,
}

/// End one session, whoever's.
#[utoipa::path(post, path = "/admin/revoke-user-session", tag = "admin", request_body = RevokeSessionBody,
    responses((status = 200, body = Success), (status = 403, body = ErrorBody)))]
async fn revoke_user_session(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<RevokeSessionBody>,
) -> ApiResult<Json<Success>> {
    require(&me, &REVOKE_USERS_SESSIONS)?;
    if let Some(owner) = admin::revoke_session(&state.pool, &body.session_token).await? {
        audit::record(
            &state,
            Actor::Session(&me),
            client,
            Action::SessionRevoked,
            Some(("user", owner.to_string())),
            json!({}),
        )
        .await;
    }
    Ok(Json(Success {
        success: true,
        message: None,
    }))
}

/// End every session of a user, and their access tokens.
#[utoipa::path(post, path = "/admin/revoke-user-sessions", tag = "admin", request_body = UserIdBody,
    responses((status = 200, body = Success), (status = 403, body = ErrorBody)))]
async fn revoke_user_sessions(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<UserIdBody>,
) -> ApiResult<Json<Success>> {
    require(&me, &REVOKE_USERS_SESSIONS)?;
    if let Some(user) = body.user_id.user() {
        let ended = admin::revoke_user_sessions(&state.pool, user).await?;
        audit::record(
            &state,
            Actor::Session(&me),
            client,
            Action::SessionsRevoked,
            Some(("user", user.to_string())),
            json!({"sessions": ended.sessions, "tokens": ended.tokens}),
        )
        .await;
    }
    Ok(Json(Success {
        success: true,
        message: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetPasswordBody {
    #[schema(value_type = String)]
    pub user_id: UserIdIn,
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    pub status: bool,
}

/// Set a user's password (their sessions go on).
#[utoipa::path(post, path = "/admin/set-user-password", tag = "admin", request_body = SetPasswordBody,
    responses((status = 200, body = StatusAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_user_password(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<SetPasswordBody>,
) -> ApiResult<Json<StatusAnswer>> {
    if body.new_password.is_empty() {
        return Err(ApiError::invalid(
            "newPassword",
            "[body.newPassword] newPassword cannot be empty",
        ));
    }
    if matches!(&body.user_id, UserIdIn::Text(id) if id.is_empty()) {
        return Err(ApiError::invalid(
            "userId",
            "[body.userId] userId cannot be empty",
        ));
    }
    require(&me, &SET_USERS_PASSWORD)?;
    let length = body.new_password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(bad_request("PASSWORD_TOO_SHORT", "Password too short"));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(bad_request("PASSWORD_TOO_LONG", "Password too long"));
    }
    let target = body.user_id.existing()?;
    admin::set_password(&state.pool, target, &body.new_password)
        .await
        .map_err(admin_error)?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::PasswordSet,
        Some(("user", target.to_string())),
        json!({}),
    )
    .await;
    Ok(Json(StatusAnswer { status: true }))
}

/// Remove a user and what they own, in one transaction (never oneself, never the last admin).
#[utoipa::path(post, path = "/admin/remove-user", tag = "admin", request_body = UserIdBody,
    responses((status = 200, body = Success), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    ApiJson(body): ApiJson<UserIdBody>,
) -> ApiResult<Json<Success>> {
    require(&me, &DELETE_USERS)?;
    if body.user_id.user() == Some(me.user.id) {
        return Err(bad_request(
            "YOU_CANNOT_REMOVE_YOURSELF",
            "You cannot remove yourself",
        ));
    }
    let target = body.user_id.existing()?;
    let gone = db::get_user(&state.pool, target)
        .await
        .map_err(admin_error)?;
    admin::remove_user(&state.pool, me.user.id, target)
        .await
        .map_err(|e| match e {
            // A team only they administer would lose its admin: said as it is.
            DomainError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
            }
            other => admin_error(other),
        })?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::UserRemoved,
        Some(("user", target.to_string())),
        json!({"email": gone.email}),
    )
    .await;
    Ok(Json(Success {
        success: true,
        message: None,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAndUser {
    pub session: SessionOut,
    pub user: UserOut,
}

/// Act as a user for an hour (never as another admin): the session is marked, the admin's
/// own is kept in the `admin_session` cookie until `stop-impersonating`.
#[utoipa::path(post, path = "/admin/impersonate-user", tag = "admin", request_body = UserIdBody,
    responses((status = 200, body = SessionAndUser), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn impersonate_user(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UserIdBody>,
) -> ApiResult<Response> {
    require(&me, &IMPERSONATE_USERS)?;
    let target = body.user_id.existing()?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect::<String>());
    let ip = client.0.map(|ip| ip.to_string());
    let (session, token, user) = admin::impersonate(
        &state.pool,
        me.user.id,
        target,
        IMPERSONATION_LIFETIME,
        ip.as_deref(),
        agent.as_deref(),
    )
    .await
    .map_err(admin_error)?;
    audit::record(
        &state,
        Actor::Session(&me),
        client,
        Action::ImpersonationStarted,
        Some(("user", user.id.to_string())),
        json!({"email": user.email}),
    )
    .await;
    let cookies = &state.cookies;
    let kept = format!(
        "{}:{}",
        me.token,
        if me.dont_remember { "true" } else { "" }
    );
    let set: Vec<HeaderValue> = [SESSION_TOKEN, SESSION_DATA, DONT_REMEMBER]
        .into_iter()
        .map(|name| cookies.expire(name))
        .chain([
            cookies.set(ADMIN_SESSION, &kept, Some(SESSION_LIFETIME.num_seconds())),
            cookies.set(SESSION_TOKEN, &token, None),
            cookies.set(DONT_REMEMBER, "true", None),
        ])
        .collect();
    Ok(with_cookies(
        Json(SessionAndUser {
            session: SessionOut::new(session, token),
            user: user.into(),
        }),
        set,
    ))
}

fn admin_session_lost() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ADMIN_SESSION_NOT_FOUND",
        "Failed to find admin session",
    )
}

/// Stop acting as a user: back to the admin's own session.
#[utoipa::path(post, path = "/admin/stop-impersonating", tag = "admin",
    responses((status = 200, body = SessionAndUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn stop_impersonating(
    State(state): Shared,
    me: SignedIn,
    client: ClientIp,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(admin_id) = me.session.impersonated_by else {
        return Err(bad_request(
            "NOT_IMPERSONATING",
            "You are not impersonating anyone",
        ));
    };
    let kept = state
        .cookies
        .read(&headers, ADMIN_SESSION)
        .ok_or_else(admin_session_lost)?;
    let (admin_token, dont_remember) = kept.rsplit_once(':').ok_or_else(admin_session_lost)?;
    let (admin_session, admin_user) = db::authenticate(&state.pool, admin_token)
        .await?
        .filter(|(session, _)| session.user_id == admin_id)
        .ok_or_else(admin_session_lost)?;
    admin::stop_impersonating(&state.pool, me.session.id).await?;
    audit::record(
        &state,
        Actor::User(&admin_user),
        client,
        Action::ImpersonationStopped,
        Some(("user", me.user.id.to_string())),
        json!({"email": me.user.email}),
    )
    .await;
    let cookies = &state.cookies;
    let remembered = dont_remember.is_empty();
    let mut set = vec![cookies.set(
        SESSION_TOKEN,
        admin_token,
        remembered.then(|| SESSION_LIFETIME.num_seconds()),
    )];
    set.push(match remembered {
        true => cookies.expire(DONT_REMEMBER),
        false => cookies.set(DONT_REMEMBER, "true", None),
    });
    set.push(cookies.expire(ADMIN_SESSION));
    Ok(with_cookies(
        Json(SessionAndUser {
            session: SessionOut::new(admin_session, admin_token.to_owned()),
            user: admin_user.into(),
        }),
        set,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HasPermissionBody {
    /// Per resource, the actions asked (a list, or `{actions, connector: "OR"|"AND"}`). Over
    /// HTTP the signed-in user's role is what is checked (`userId` and `role` are ignored, as
    /// Better Auth ignores them; the deprecated `permission` is refused).
    #[schema(value_type = Option<Object>)]
    pub permissions: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionAnswer {
    #[schema(value_type = Option<String>)]
    pub error: Option<()>,
    pub success: bool,
}

/// Whether the signed-in user's role grants `permissions`.
#[utoipa::path(post, path = "/admin/has-permission", tag = "admin", request_body = HasPermissionBody,
    responses((status = 200, body = PermissionAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn has_permission(
    MaybeSignedIn(me): MaybeSignedIn,
    ApiJson(body): ApiJson<HasPermissionBody>,
) -> ApiResult<Json<PermissionAnswer>> {
    let Some(permissions) = body.permissions else {
        return Err(bad_request(
            "VALIDATION_ERROR",
            "invalid permission check. no permission(s) were passed.",
        ));
    };
    let me = me.ok_or_else(ApiError::unauthorized)?;
    let mut asked = Vec::new();
    for (resource, actions) in permissions {
        let (list, any) = match &actions {
            Value::Array(list) => (list.clone(), false),
            Value::Object(spec) => (
                spec.get("actions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                spec.get("connector").and_then(Value::as_str) == Some("OR"),
            ),
            _ => (Vec::new(), false),
        };
        let list = list
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid("permissions", "permissions: lists of action names")
            })?;
        asked.push((resource, list, any));
    }
    Ok(Json(PermissionAnswer {
        error: None,
        success: role_grants(&me.user.role, &asked),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(resource: &str, actions: &[&str], any: bool) -> Vec<(String, Vec<String>, bool)> {
        vec![(
            resource.to_owned(),
            actions.iter().map(|a| a.to_string()).collect(),
            any,
        )]
    }

    #[test]
    fn admins_may_all_but_impersonate_admins_and_users_nothing() {
        assert!(role_grants(
            "admin",
            &asked("user", &["list", "ban"], false)
        ));
        assert!(role_grants(
            "user,admin",
            &asked("session", &["revoke"], false)
        ));
        assert!(!role_grants(
            "admin",
            &asked("user", &["impersonate-admins"], false)
        ));
        assert!(role_grants(
            "admin",
            &asked("user", &["impersonate-admins", "list"], true)
        ));
        assert!(!role_grants("user", &asked("user", &["list"], false)));
        assert!(!role_grants("admin", &asked("chat", &["list"], false)));
        assert!(!role_grants("admin", &asked("user", &[], false)));
        assert!(!role_grants("admin", &[]));
        // Better Auth does not trim: " admin" is no role.
        assert!(!role_grants(
            "user, admin",
            &asked("user", &["list"], false)
        ));
    }
}
