//! The access matrix in full: {owner, other user, team member, team admin, non-member, removed
//! member} × {personal chat, team chat, public chat read by token, chat read by a revoked token}
//! × {read, append a message, change, delete, share}.

use sambung_db::chats::{self, ChatChanges, NewChat};
use sambung_db::{teams, ChatId, DomainError, TeamId, UserId};
use sambung_testkit::TestDb;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Other,
    Member,
    Admin,
    NonMember,
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Personal,
    Team,
    /// A team chat that is shared: readable by its token.
    Public,
    /// A personal chat that was shared, then unshared.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    /// Post a message (what a conversation in a team chat needs).
    Append,
    Change,
    Delete,
    Share,
}

/// SPEC section 4, as a table.
fn allowed(actor: Actor, kind: Kind, action: Action) -> bool {
    use Actor::*;
    match (kind, action) {
        // Anyone holding the token reads a public chat; a revoked token reads nothing.
        (Kind::Public, Action::Read) => true,
        (Kind::Revoked, Action::Read) => false,
        (Kind::Personal | Kind::Revoked, _) => actor == Owner,
        (Kind::Team, Action::Read) => matches!(actor, Owner | Member | Admin),
        // Every member takes part in a team chat's conversation; holding its public token
        // (an outsider, a removed member) only lets one read it.
        (Kind::Team | Kind::Public, Action::Append) => matches!(actor, Owner | Member | Admin),
        (Kind::Team | Kind::Public, _) => matches!(actor, Owner | Admin),
    }
}

async fn user(pool: &PgPool, email: &str) -> UserId {
    sambung_testkit::insert_user(pool, email).await.into()
}

struct World {
    users: Vec<(Actor, UserId)>,
    owner: UserId,
    team: TeamId,
}

impl World {
    async fn new(pool: &PgPool) -> World {
        let owner = user(pool, "owner@example.com").await;
        let other = user(pool, "other@example.com").await;
        let member = user(pool, "member@example.com").await;
        let admin = user(pool, "admin@example.com").await;
        let non_member = user(pool, "nonmember@example.com").await;
        let removed = user(pool, "removed@example.com").await;
        let team = teams::create_team(pool, admin, "Core", "core", None)
            .await
            .unwrap();
        for (who, email) in [
            (owner, "owner@example.com"),
            (member, "member@example.com"),
            (removed, "removed@example.com"),
        ] {
            let invite = teams::invite(
                pool,
                admin,
                team.id,
                email,
                teams::Role::Member,
                teams::default_invite_lifetime(),
            )
            .await
            .unwrap();
            teams::accept_invite(pool, who, &invite.token)
                .await
                .unwrap();
        }
        teams::remove_member(pool, admin, team.id, removed)
            .await
            .unwrap();
        World {
            users: vec![
                (Actor::Owner, owner),
                (Actor::Other, other),
                (Actor::Member, member),
                (Actor::Admin, admin),
                (Actor::NonMember, non_member),
                (Actor::Removed, removed),
            ],
            owner,
            team: team.id,
        }
    }

    /// A fresh chat of `kind`, and its token for the token kinds.
    async fn chat(&self, pool: &PgPool, kind: Kind) -> (ChatId, Option<String>) {
        let team = matches!(kind, Kind::Team | Kind::Public).then_some(self.team);
        let chat = chats::create_chat(
            pool,
            self.owner,
            NewChat {
                team_id: team,
                title: "Hello AI",
                model: "gpt-4",
                provider: "openai",
                ..NewChat::default()
            },
        )
        .await
        .unwrap();
        chats::append_message(pool, self.owner, chat.id, "Hello, AI!", None)
            .await
            .unwrap();
        let token = match kind {
            Kind::Public => Some(chats::share_chat(pool, self.owner, chat.id).await.unwrap()),
            Kind::Revoked => {
                let token = chats::share_chat(pool, self.owner, chat.id).await.unwrap();
                chats::unshare_chat(pool, self.owner, chat.id)
                    .await
                    .unwrap();
                Some(token)
            }
            _ => None,
        };
        (chat.id, token)
    }
}

/// Perform `action`; Ok(true) when done, Ok(false) when refused with NotFound or Forbidden.
async fn attempt(
    pool: &PgPool,
    actor: UserId,
    kind: Kind,
    chat: ChatId,
    token: Option<&str>,
    action: Action,
) -> bool {
    let result =
        match (action, token) {
            (Action::Read, Some(token)) => chats::get_public_chat(pool, token, None, 100)
                .await
                .map(|(c, page)| {
                    assert_eq!(c.id, chat);
                    assert_eq!(page.items.len(), 1);
                }),
            (Action::Read, None) => chats::get_chat(pool, actor, chat).await.map(drop),
            (Action::Append, _) => chats::append_message(pool, actor, chat, "Me too", None)
                .await
                .map(drop),
            (Action::Change, _) => chats::update_chat(
                pool,
                actor,
                chat,
                ChatChanges {
                    title: Some("Renamed"),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
            (Action::Delete, _) => chats::delete_chat(pool, actor, chat).await,
            (Action::Share, _) => chats::share_chat(pool, actor, chat).await.map(drop),
        };
    match result {
        Ok(()) => true,
        Err(DomainError::NotFound { .. }) => false,
        Err(DomainError::Forbidden { .. }) => {
            assert!(
                matches!(kind, Kind::Team | Kind::Public) && action != Action::Read,
                "Forbidden is for who can read but not change"
            );
            false
        }
        Err(other) => panic!("{kind:?} {action:?}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_access_matrix_holds_in_full() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let world = World::new(pool).await;
    let mut checked = 0;
    for kind in [Kind::Personal, Kind::Team, Kind::Public, Kind::Revoked] {
        for &(actor, id) in &world.users {
            for action in [
                Action::Read,
                Action::Append,
                Action::Change,
                Action::Delete,
                Action::Share,
            ] {
                // A fresh chat for every case: a delete or share must not leak into the next.
                let (chat, token) = world.chat(pool, kind).await;
                let done = attempt(pool, id, kind, chat, token.as_deref(), action).await;
                assert_eq!(
                    done,
                    allowed(actor, kind, action),
                    "{actor:?} {action:?} on a {kind:?} chat"
                );
                // The decision function agrees with the operations.
                if token.is_none() && action != Action::Delete {
                    let mut conn = pool.acquire().await.unwrap();
                    let access = chats::chat_access(&mut conn, id, chat).await.unwrap();
                    assert_eq!(
                        access.is_some(),
                        allowed(actor, kind, Action::Read),
                        "{actor:?} read decision on {kind:?}"
                    );
                    assert_eq!(
                        access.is_some_and(|a| a.change),
                        allowed(actor, kind, Action::Change),
                        "{actor:?} change decision on {kind:?}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 120);
    // The rule from the user's side (`sambung_chats_of`, which search reads) gives each user
    // the very chats `sambung_chat_reader` gives them, over all the chats made above (some
    // deleted, shared, unshared).
    for &(actor, id) in &world.users {
        let from_the_user: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM sambung_chats_of($1) ORDER BY id")
                .bind(id)
                .fetch_all(pool)
                .await
                .unwrap();
        let from_the_chat: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT r.id FROM chats c, sambung_chat_reader(c.id, $1) r ORDER BY r.id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(from_the_user, from_the_chat, "{actor:?}");
    }
}

#[tokio::test]
async fn a_refused_change_changes_nothing_and_resharing_revokes_the_old_token() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let world = World::new(pool).await;
    let member = world
        .users
        .iter()
        .find(|(a, _)| *a == Actor::Member)
        .unwrap()
        .1;
    let (chat, _) = world.chat(pool, Kind::Team).await;
    assert!(matches!(
        chats::update_chat(
            pool,
            member,
            chat,
            ChatChanges {
                title: Some("Hijacked"),
                ..Default::default()
            }
        )
        .await,
        Err(DomainError::Forbidden { .. })
    ));
    assert_eq!(
        chats::get_chat(pool, member, chat).await.unwrap().title,
        "Hello AI"
    );
    let first = chats::share_chat(pool, world.owner, chat).await.unwrap();
    let second = chats::share_chat(pool, world.owner, chat).await.unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        chats::get_public_chat(pool, &first, None, 100).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(chats::get_public_chat(pool, &second, None, 100)
        .await
        .is_ok());
}
