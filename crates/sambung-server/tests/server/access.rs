//! The access matrix over HTTP: {owner, team member, team admin, outsider, removed member,
//! anonymous} × every resource's reads and changes, each cell's status checked against a
//! rule table written from SPEC sections 4 and 7 (404 for what one may not see, 403 for what
//! one sees but may not change, 401 without a session), not derived from the code.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Client, TestApp, User};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Member,
    Admin,
    Outsider,
    Removed,
    Anonymous,
}

const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Member,
    Actor::Admin,
    Actor::Outsider,
    Actor::Removed,
    Actor::Anonymous,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thing {
    PersonalChat,
    TeamChat,
    PersonalFolder,
    TeamFolder,
    PersonalTag,
    TeamTag,
    PrivatePrompt,
    PublicPrompt,
    ApiKey,
    Team,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    List,
    Append,
    Change,
    Delete,
    Share,
    Invite,
    SetRole,
}

/// The cells that exist: (thing, action).
const CELLS: &[(Thing, Action)] = &[
    (Thing::PersonalChat, Action::Read),
    (Thing::PersonalChat, Action::List),
    (Thing::PersonalChat, Action::Append),
    (Thing::PersonalChat, Action::Change),
    (Thing::PersonalChat, Action::Delete),
    (Thing::PersonalChat, Action::Share),
    (Thing::TeamChat, Action::Read),
    (Thing::TeamChat, Action::List),
    (Thing::TeamChat, Action::Append),
    (Thing::TeamChat, Action::Change),
    (Thing::TeamChat, Action::Delete),
    (Thing::TeamChat, Action::Share),
    (Thing::PersonalFolder, Action::Change),
    (Thing::PersonalFolder, Action::Delete),
    (Thing::TeamFolder, Action::List),
    (Thing::TeamFolder, Action::Change),
    (Thing::TeamFolder, Action::Delete),
    (Thing::PersonalTag, Action::Change),
    (Thing::PersonalTag, Action::Delete),
    (Thing::TeamTag, Action::List),
    (Thing::TeamTag, Action::Change),
    (Thing::TeamTag, Action::Delete),
    (Thing::PrivatePrompt, Action::Read),
    (Thing::PrivatePrompt, Action::Change),
    (Thing::PrivatePrompt, Action::Delete),
    (Thing::PublicPrompt, Action::Read),
    (Thing::PublicPrompt, Action::Change),
    (Thing::PublicPrompt, Action::Delete),
    (Thing::ApiKey, Action::Change),
    (Thing::ApiKey, Action::Delete),
    (Thing::Team, Action::Read),
    (Thing::Team, Action::List),
    (Thing::Team, Action::Change),
    (Thing::Team, Action::Invite),
    (Thing::Team, Action::SetRole),
    (Thing::Team, Action::Delete),
];

/// SPEC sections 4 and 7 as a table: the status `actor` gets for `action` on `thing`.
fn expected(thing: Thing, action: Action, actor: Actor) -> u16 {
    use Actor::*;
    if actor == Anonymous {
        return 401;
    }
    let success = match action {
        Action::Append => 201,
        Action::Delete | Action::SetRole => 204,
        Action::Invite => 201,
        _ => 200,
    };
    let in_team = matches!(actor, Owner | Member | Admin);
    match thing {
        // Personal things are their owner's alone; everyone else is told they do not exist.
        Thing::PersonalChat
        | Thing::PersonalFolder
        | Thing::PersonalTag
        | Thing::PrivatePrompt
        | Thing::ApiKey => {
            if actor == Owner {
                success
            } else {
                404
            }
        }
        // Members read and post; the chat's creator (Owner) and admins change it.
        Thing::TeamChat => match (in_team, action) {
            (false, _) => 404,
            (true, Action::Read | Action::List | Action::Append) => success,
            (true, _) if matches!(actor, Owner | Admin) => success,
            (true, _) => 403,
        },
        // A team's folders and tags are its members' to organise.
        Thing::TeamFolder | Thing::TeamTag => {
            if in_team {
                success
            } else {
                404
            }
        }
        // Public prompts are read by everyone signed in and changed by their author only.
        Thing::PublicPrompt => match (actor, action) {
            (_, Action::Read) | (Owner, _) => success,
            _ => 403,
        },
        Thing::Team => match (in_team, action) {
            (false, _) => 404,
            (true, Action::Read | Action::List) => success,
            (true, _) if actor == Admin => success,
            (true, _) => 403,
        },
    }
}

struct World {
    /// Keeps the server running.
    _app: TestApp,
    owner: User,
    member: User,
    admin: User,
    outsider: User,
    removed: User,
    anonymous: Client,
}

static TEAMS: AtomicUsize = AtomicUsize::new(0);

impl World {
    async fn new() -> World {
        let app = TestApp::start().await;
        let owner = app.user("owner").await;
        let member = app.user("member").await;
        let admin = app.user("admin").await;
        let outsider = app.user("outsider").await;
        let removed = app.user("removed").await;
        let anonymous = app.anonymous();
        World {
            _app: app,
            owner,
            member,
            admin,
            outsider,
            removed,
            anonymous,
        }
    }

    fn client(&self, actor: Actor) -> &Client {
        match actor {
            Actor::Owner => &self.owner,
            Actor::Member => &self.member,
            Actor::Admin => &self.admin,
            Actor::Outsider => &self.outsider,
            Actor::Removed => &self.removed,
            Actor::Anonymous => &self.anonymous,
        }
    }

    /// A fresh team: the admin made it; owner and member joined by invite; `removed` joined
    /// and was removed.
    async fn team(&self) -> String {
        let slug = format!("team-{}", TEAMS.fetch_add(1, Ordering::Relaxed));
        let team = ok(
            self.admin
                .post("/api/v1/teams", json!({"name": "Core", "slug": slug}))
                .await,
            201,
        );
        let id = team["id"].as_str().unwrap().to_owned();
        for user in [&self.owner, &self.member, &self.removed] {
            let invite = ok(
                self.admin
                    .post(
                        &format!("/api/v1/teams/{id}/invites"),
                        json!({"email": user.email}),
                    )
                    .await,
                201,
            );
            ok(
                user.post(
                    &format!(
                        "/api/v1/invites/{}/accept",
                        invite["token"].as_str().unwrap()
                    ),
                    json!({}),
                )
                .await,
                200,
            );
        }
        let gone = self
            .admin
            .delete(&format!("/api/v1/teams/{id}/members/{}", self.removed.id))
            .await;
        assert_eq!(gone.status, 204, "{gone:?}");
        id
    }

    /// Make `thing` afresh (as its creator) and return the request `action` on it makes.
    async fn request(
        &self,
        thing: Thing,
        action: Action,
    ) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method;
        let owner = &self.owner;
        let team = match thing {
            Thing::TeamChat | Thing::TeamFolder | Thing::TeamTag | Thing::Team => {
                Some(self.team().await)
            }
            _ => None,
        };
        match thing {
            Thing::PersonalChat | Thing::TeamChat => {
                let chat = ok(
                    owner
                        .post("/api/v1/chats", json!({"title": "Hello AI", "team": team}))
                        .await,
                    201,
                );
                let id = chat["id"].as_str().unwrap();
                ok(
                    owner
                        .post(
                            &format!("/api/v1/chats/{id}/messages"),
                            json!({"content": "Hello, AI!"}),
                        )
                        .await,
                    201,
                );
                let path = format!("/api/v1/chats/{id}");
                match action {
                    Action::Read => (Method::GET, path, None),
                    Action::List => (Method::GET, format!("{path}/messages"), None),
                    Action::Append => (
                        Method::POST,
                        format!("{path}/messages"),
                        Some(json!({"content": "Me too"})),
                    ),
                    Action::Change => (
                        Method::PATCH,
                        path,
                        Some(json!({"title": "Renamed", "pinned": true})),
                    ),
                    Action::Delete => (Method::DELETE, path, None),
                    Action::Share => (Method::POST, format!("{path}/share"), None),
                    _ => unreachable!(),
                }
            }
            Thing::PersonalFolder | Thing::TeamFolder => {
                let folder = ok(
                    owner
                        .post("/api/v1/folders", json!({"name": "Work", "team": team}))
                        .await,
                    201,
                );
                let path = format!("/api/v1/folders/{}", folder["id"].as_str().unwrap());
                match action {
                    Action::List => (
                        Method::GET,
                        format!("/api/v1/folders?team={}", team.unwrap()),
                        None,
                    ),
                    Action::Change => (Method::PATCH, path, Some(json!({"name": "Renamed"}))),
                    Action::Delete => (Method::DELETE, path, None),
                    _ => unreachable!(),
                }
            }
            Thing::PersonalTag | Thing::TeamTag => {
                let tag = ok(
                    owner
                        .post(
                            "/api/v1/tags",
                            json!({"name": "urgent", "color": "#ff0000", "team": team}),
                        )
                        .await,
                    201,
                );
                let path = format!("/api/v1/tags/{}", tag["id"].as_str().unwrap());
                match action {
                    Action::List => (
                        Method::GET,
                        format!("/api/v1/tags?team={}", team.unwrap()),
                        None,
                    ),
                    Action::Change => (Method::PATCH, path, Some(json!({"name": "later"}))),
                    Action::Delete => (Method::DELETE, path, None),
                    _ => unreachable!(),
                }
            }
            Thing::PrivatePrompt | Thing::PublicPrompt => {
                let public = thing == Thing::PublicPrompt;
                let prompt = ok(
                    owner.post("/api/v1/prompts", json!({"name": "Review", "content": "Review {code}", "isPublic": public})).await,
                    201,
                );
                let path = format!("/api/v1/prompts/{}", prompt["id"].as_str().unwrap());
                match action {
                    Action::Read => (Method::GET, path, None),
                    Action::Change => (Method::PATCH, path, Some(json!({"name": "Mine now"}))),
                    Action::Delete => (Method::DELETE, path, None),
                    _ => unreachable!(),
                }
            }
            Thing::ApiKey => {
                let key = ok(owner.post("/api/v1/api-keys", json!({"provider": "openai", "name": "work", "key": "sk-test-0123456789"})).await, 201);
                let path = format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap());
                match action {
                    Action::Change => (Method::PATCH, path, Some(json!({"name": "stolen"}))),
                    Action::Delete => (Method::DELETE, path, None),
                    _ => unreachable!(),
                }
            }
            Thing::Team => {
                let path = format!("/api/v1/teams/{}", team.unwrap());
                match action {
                    Action::Read => (Method::GET, path, None),
                    Action::List => (Method::GET, format!("{path}/members"), None),
                    Action::Change => (Method::PATCH, path, Some(json!({"name": "Renamed"}))),
                    Action::Invite => (
                        Method::POST,
                        format!("{path}/invites"),
                        Some(json!({"email": "new@example.com"})),
                    ),
                    Action::SetRole => (
                        Method::PATCH,
                        format!("{path}/members/{}", self.member.id),
                        Some(json!({"role": "admin"})),
                    ),
                    Action::Delete => (Method::DELETE, path, None),
                    _ => unreachable!(),
                }
            }
        }
    }
}

fn ok(reply: common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    reply.body
}

#[tokio::test]
async fn every_cell_of_the_access_matrix_over_http() {
    let world = World::new().await;
    let mut wrong = Vec::new();
    for &(thing, action) in CELLS {
        for actor in ACTORS {
            let (method, path, body) = world.request(thing, action).await;
            let client = world.client(actor);
            let mut request = client.http.request(method.clone(), client.url(&path));
            if let Some(body) = &body {
                request = request.json(body);
            }
            let reply = client.send(request).await;
            let want = expected(thing, action, actor);
            if reply.status != want {
                wrong.push(format!(
                    "{actor:?} {action:?} {thing:?} ({method} {path}): {} {}, want {want}",
                    reply.status, reply.text
                ));
            } else if want >= 400 {
                let code = reply.code();
                let expected_code = match want {
                    401 => "UNAUTHORIZED",
                    403 => "FORBIDDEN",
                    _ => "NOT_FOUND",
                };
                if code != expected_code {
                    wrong.push(format!(
                        "{actor:?} {action:?} {thing:?}: code {code}, want {expected_code}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn lists_show_only_what_each_user_may_see() {
    let world = World::new().await;
    let team = world.team().await;
    let owner = &world.owner;
    let personal = ok(
        owner.post("/api/v1/chats", json!({"title": "mine"})).await,
        201,
    );
    let team_chat = ok(
        owner
            .post("/api/v1/chats", json!({"title": "ours", "team": team}))
            .await,
        201,
    );
    ok(
        owner
            .post(
                "/api/v1/api-keys",
                json!({"provider": "groq", "key": "gsk-abcdefgh1234"}),
            )
            .await,
        201,
    );
    for (actor, personal_seen, team_seen, keys) in [
        (Actor::Owner, true, true, 1),
        (Actor::Member, false, true, 0),
        (Actor::Admin, false, true, 0),
        (Actor::Outsider, false, false, 0),
        (Actor::Removed, false, false, 0),
    ] {
        let client = world.client(actor);
        let mine = client.get("/api/v1/chats").await;
        let ids: Vec<&str> = mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.contains(&personal["id"].as_str().unwrap()),
            personal_seen,
            "{actor:?}"
        );
        let ours = client.get(&format!("/api/v1/chats?team={team}")).await;
        if team_seen {
            assert_eq!(ours.body["items"][0]["id"], team_chat["id"], "{actor:?}");
        } else {
            assert_eq!(ours.status, 404, "{actor:?}");
        }
        let found = client.get("/api/v1/search/messages?q=anything").await;
        assert_eq!(found.status, 200);
        assert_eq!(
            client.get("/api/v1/api-keys").await.body["items"]
                .as_array()
                .unwrap()
                .len(),
            keys,
            "{actor:?}"
        );
        let teams = client.get("/api/v1/teams").await;
        assert_eq!(
            teams.body["items"].as_array().unwrap().len(),
            usize::from(team_seen),
            "{actor:?}"
        );
    }
    // A team is found by its slug, and by its old slug after a rename.
    let before = ok(
        world.member.get(&format!("/api/v1/teams/{team}")).await,
        200,
    );
    let old = before["slug"].as_str().unwrap();
    assert_eq!(
        ok(world.member.get(&format!("/api/v1/teams/{old}")).await, 200)["id"],
        team.as_str()
    );
    let renamed = ok(
        world
            .admin
            .patch(
                &format!("/api/v1/teams/{team}"),
                json!({"slug": "renamed-core"}),
            )
            .await,
        200,
    );
    assert_eq!(renamed["slug"], "renamed-core");
    let by_old = ok(world.member.get(&format!("/api/v1/teams/{old}")).await, 200);
    assert_eq!(
        (by_old["id"].as_str(), by_old["slug"].as_str()),
        (Some(team.as_str()), Some("renamed-core"))
    );
    assert_eq!(
        world
            .outsider
            .get(&format!("/api/v1/teams/{old}"))
            .await
            .status,
        404
    );
}
