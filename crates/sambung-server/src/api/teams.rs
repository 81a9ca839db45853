//! Teams, their members and invites.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sambung_db::teams::{self as db, Invite, Membership, Role, Team, TeamMember};
use sambung_db::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{nullable, ListQuery, Page};
use crate::auth::SignedIn;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::i18n::{Locale, Reader};
use crate::state::AppState;
use crate::time::Timestamp;

type Shared = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(list_members))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(create_invite))
        .routes(routes!(get_invite))
        .routes(routes!(accept_invite))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Member,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleName::Admin,
            Role::Member => RoleName::Member,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Role::Admin,
            RoleName::Member => Role::Member,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamOut {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Who made the team; `null` once their account is gone.
    pub created_by: Option<Uuid>,
    /// The signed-in user's role, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleName>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TeamOut {
    fn new(t: Team, role: Option<Role>) -> Self {
        TeamOut {
            id: t.id.0,
            name: t.name,
            slug: t.slug,
            description: t.description,
            created_by: t.created_by.map(|u| u.0),
            role: role.map(Into::into),
            created_at: t.created_at.into(),
            updated_at: t.updated_at.into(),
        }
    }
}

impl From<Membership> for TeamOut {
    fn from(m: Membership) -> Self {
        TeamOut::new(m.team, Some(m.role))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberOut {
    pub user_id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: RoleName,
    pub joined_at: Timestamp,
}

impl From<TeamMember> for MemberOut {
    fn from(m: TeamMember) -> Self {
        MemberOut {
            user_id: m.user_id.0,
            team_id: m.team_id.0,
            name: m.name,
            email: m.email,
            role: m.role.into(),
            joined_at: m.joined_at.into(),
        }
    }
}

/// The teams the user belongs to, with their role.
#[utoipa::path(get, path = "/teams", tag = "teams", params(ListQuery), responses((status = 200, body = Page<TeamOut>), (status = 401, body = ErrorBody)))]
async fn list_teams(
    State(state): Shared,
    me: SignedIn,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<TeamOut>>> {
    let teams = db::list_teams(&state.pool, me.user.id).await?;
    let teams = teams.into_iter().map(TeamOut::from).collect();
    Ok(Json(Page::after_key(
        teams,
        |t: &TeamOut| (t.name.clone(), t.id),
        &q,
    )?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    /// 3-48 of a-z, 0-9 and single hyphens.
    pub slug: String,
    pub description: Option<String>,
}

/// Create a team; its creator becomes its admin.
#[utoipa::path(post, path = "/teams", tag = "teams", request_body = NewTeam,
    responses((status = 201, body = TeamOut), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_team(
    State(state): Shared,
    me: SignedIn,
    ApiJson(body): ApiJson<NewTeam>,
) -> ApiResult<(StatusCode, Json<TeamOut>)> {
    let team = db::create_team(
        &state.pool,
        me.user.id,
        &body.name,
        &body.slug,
        body.description.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TeamOut::new(team, Some(Role::Admin))),
    ))
}

/// A team the user belongs to, by id or slug (an old slug finds it too).
#[utoipa::path(get, path = "/teams/{team}", tag = "teams", params(("team" = String, Path, description = "id or slug")),
    responses((status = 200, body = TeamOut), (status = 404, body = ErrorBody)))]
async fn get_team(
    State(state): Shared,
    me: SignedIn,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<TeamOut>> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    Ok(Json(TeamOut::new(team, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// A new slug; the old one keeps finding the team.
    pub slug: Option<String>,
}

/// Rename a team, change its description or slug (admins).
#[utoipa::path(patch, path = "/teams/{team}", tag = "teams", params(("team" = String, Path, description = "id or slug")), request_body = TeamChanges,
    responses((status = 200, body = TeamOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_team(
    State(state): Shared,
    me: SignedIn,
    ApiPath(team): ApiPath<String>,
    ApiJson(body): ApiJson<TeamChanges>,
) -> ApiResult<Json<TeamOut>> {
    let actor = me.user.id;
    let mut current = db::find_team(&state.pool, actor, &team).await?;
    if body.name.is_some() || body.description.is_some() {
        let name = body.name.unwrap_or(current.name);
        let description = body.description.unwrap_or(current.description);
        current = db::update_team(
            &state.pool,
            actor,
            current.id,
            &name,
            description.as_deref(),
        )
        .await?;
    }
    if let Some(slug) = body.slug {
        current = db::change_slug(&state.pool, actor, current.id, &slug).await?;
    }
    Ok(Json(TeamOut::new(current, None)))
}

/// Delete a team with its chats, folders and tags (admins).
#[utoipa::path(delete, path = "/teams/{team}", tag = "teams", params(("team" = String, Path, description = "id or slug")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_team(
    State(state): Shared,
    me: SignedIn,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    db::delete_team(&state.pool, me.user.id, team.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A team's members (for its members).
#[utoipa::path(get, path = "/teams/{team}/members", tag = "teams", params(("team" = String, Path, description = "id or slug"), ListQuery),
    responses((status = 200, body = Page<MemberOut>), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(state): Shared,
    me: SignedIn,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<MemberOut>>> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    let members = db::list_members(&state.pool, me.user.id, team.id).await?;
    let members = members.into_iter().map(MemberOut::from).collect();
    let key = |m: &MemberOut| (m.joined_at.0.to_rfc3339(), m.user_id);
    Ok(Json(Page::after_key(members, key, &q)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChanges {
    pub role: RoleName,
}

/// Change a member's role (admins; a team keeps at least one admin).
#[utoipa::path(patch, path = "/teams/{team}/members/{user}", tag = "teams",
    params(("team" = String, Path, description = "id or slug"), ("user" = Uuid, Path)), request_body = MemberChanges,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_member(
    State(state): Shared,
    me: SignedIn,
    client: crate::auth::ClientIp,
    ApiPath((team, user)): ApiPath<(String, Uuid)>,
    ApiJson(body): ApiJson<MemberChanges>,
) -> ApiResult<StatusCode> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    let role: db::Role = body.role.into();
    db::set_role(&state.pool, me.user.id, team.id, UserId(user), role).await?;
    crate::audit::record(
        &state,
        crate::audit::Actor::Session(&me),
        client,
        sambung_db::audit::Action::TeamRoleChanged,
        Some(("user", user.to_string())),
        serde_json::json!({"team": team.id.to_string(), "role": role.as_str()}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (admins), or leave the team (anyone, themselves).
#[utoipa::path(delete, path = "/teams/{team}/members/{user}", tag = "teams",
    params(("team" = String, Path, description = "id or slug"), ("user" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_member(
    State(state): Shared,
    me: SignedIn,
    ApiPath((team, user)): ApiPath<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    db::remove_member(&state.pool, me.user.id, team.id, UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    pub email: String,
    pub role: Option<RoleName>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteOut {
    pub id: Uuid,
    pub team_id: Uuid,
    pub email: String,
    pub role: RoleName,
    pub token: String,
    /// The link to send the invitee.
    pub link: String,
    pub expires_at: Timestamp,
    /// `sent` when the mail server took the invitation, `unsent` without one (pass the link
    /// on), `failed` when it refused it.
    pub mail: &'static str,
}

impl InviteOut {
    fn new(i: Invite, public_url: &str) -> Self {
        InviteOut {
            id: i.id.0,
            team_id: i.team_id.0,
            email: i.email,
            role: i.role.into(),
            link: format!("{public_url}/invites/{}", i.token),
            token: i.token,
            expires_at: i.expires_at.into(),
            mail: "unsent",
        }
    }
}

/// Invite someone by email (admins): the answer holds the link to send them.
#[utoipa::path(post, path = "/teams/{team}/invites", tag = "teams", params(("team" = String, Path, description = "id or slug")), request_body = NewInvite,
    responses((status = 201, body = InviteOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_invite(
    State(state): Shared,
    me: SignedIn,
    Reader(inviters): Reader,
    ApiPath(team): ApiPath<String>,
    ApiJson(body): ApiJson<NewInvite>,
) -> ApiResult<(StatusCode, Json<InviteOut>)> {
    let team = db::find_team(&state.pool, me.user.id, &team).await?;
    let role = body.role.unwrap_or(RoleName::Member).into();
    let invite = db::invite(
        &state.pool,
        me.user.id,
        team.id,
        &body.email,
        role,
        db::default_invite_lifetime(),
    )
    .await?;
    let mut out = InviteOut::new(invite, &state.public_url);
    // In the invitee's language when they have an account that chose one, else the inviter's.
    let locale = sambung_db::auth::get_user_by_email(&state.pool, &out.email)
        .await?
        .and_then(|invitee| invitee.locale.as_deref().and_then(Locale::parse))
        .unwrap_or(inviters);
    let mail = sambung_mail::invitation(
        locale,
        &out.email,
        &crate::mail::instance_name(&state, locale),
        &me.user.name,
        &sambung_mail::team_invitation(locale, &team.name),
        &out.link,
    );
    out.mail = crate::mail::deliver(
        &state,
        sambung_db::mail::MailKind::TeamInvite,
        &mail,
        &out.link,
        Some(out.expires_at.0),
    )
    .await
    .map_or("failed", |delivery| delivery.as_str());
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOut {
    pub team_id: Uuid,
    pub team_name: String,
    pub team_slug: String,
    /// The name of who invited them (`null` once that account is gone).
    pub invited_by: Option<String>,
    pub role: String,
    pub expires_at: Timestamp,
}

/// What an invitation is to (the team, who sent it, the role), for the signed-in user it was
/// sent to: 404 for anyone else, 409 once used or expired.
#[utoipa::path(get, path = "/invites/{token}", tag = "teams", params(("token" = String, Path)),
    responses((status = 200, body = InvitationOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn get_invite(
    State(state): Shared,
    me: SignedIn,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<InvitationOut>> {
    let invite = db::invite_details(&state.pool, me.user.id, &token).await?;
    Ok(Json(InvitationOut {
        team_id: invite.team_id.0,
        team_name: invite.team_name,
        team_slug: invite.team_slug,
        invited_by: invite.invited_by,
        role: invite.role,
        expires_at: invite.expires_at.into(),
    }))
}

/// Accept an invite: it must be for the signed-in user's email, unexpired and unused.
#[utoipa::path(post, path = "/invites/{token}/accept", tag = "teams", params(("token" = String, Path)),
    responses((status = 200, body = MemberOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_invite(
    State(state): Shared,
    me: SignedIn,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<MemberOut>> {
    let member = db::accept_invite(&state.pool, me.user.id, &token).await?;
    Ok(Json(member.into()))
}
