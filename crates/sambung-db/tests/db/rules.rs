//! Every rule of SPEC section 4 through the data layer, with the inputs it must refuse.

use chrono::Duration;
use sambung_db::auth::{self, NewUser};
use sambung_db::chats::{
    self, ChatChanges, ChatCursor, ChatQuery, ChatScope, MessageRole, NewChat,
};
use sambung_db::folders::{self, Scope};
use sambung_db::prompts::{self, NewPrompt};
use sambung_db::tags::{self, TagScope};
use sambung_db::teams::{self, Role};
use sambung_db::{DomainError, UserId};
use sambung_testkit::TestDb;
use sqlx::PgPool;

async fn user(pool: &PgPool, email: &str) -> UserId {
    sambung_testkit::insert_user(pool, email).await.into()
}

fn chat<'a>(title: &'a str) -> NewChat<'a> {
    NewChat {
        title,
        model: "gpt-4",
        provider: "openai",
        ..NewChat::default()
    }
}

fn invalid(result: Result<impl std::fmt::Debug, DomainError>, field: &str) {
    match result {
        Err(DomainError::Invalid { field: f, .. }) if f == field => {}
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

fn conflict<T: std::fmt::Debug>(result: Result<T, DomainError>, words: &str) {
    match result {
        Err(DomainError::Conflict(message)) if message.contains(words) => {}
        other => panic!("expected a conflict about {words:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn chat_titles_are_checked_and_stored_verbatim() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    invalid(chats::create_chat(pool, ana, chat("")).await, "title");
    invalid(chats::create_chat(pool, ana, chat("   \t ")).await, "title");
    invalid(
        chats::create_chat(pool, ana, chat(&"x".repeat(201))).await,
        "title",
    );
    invalid(
        chats::create_chat(pool, ana, chat("nul\0byte")).await,
        "title",
    );
    invalid(
        chats::create_chat(
            pool,
            ana,
            NewChat {
                settings: Some(serde_json::json!([1])),
                ..chat("ok")
            },
        )
        .await,
        "settings",
    );
    for title in [
        "Selamat pagi 👋 — ñandú 中文",
        "'; DROP TABLE chats; --",
        "100% of _all_ \\ chats",
        &"é".repeat(200),
    ] {
        let created = chats::create_chat(pool, ana, chat(title)).await.unwrap();
        assert_eq!(
            chats::get_chat(pool, ana, created.id).await.unwrap().title,
            title.trim()
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM chats")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(count, 4, "refused chats must not be stored");
}

#[tokio::test]
async fn teams_slugs_redirects_and_the_last_admin() {
    let mut steps = sambung_testkit::Steps::new();
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    for bad in [
        "ab",
        "Core",
        "-core",
        "core-",
        "co--re",
        "api",
        "settings",
        "admin",
        "new",
        "c o r e",
        "core'; --",
    ] {
        invalid(
            teams::create_team(pool, ana, "Core", bad, None).await,
            "slug",
        );
    }
    let team = teams::create_team(pool, ana, "Core", "core", None)
        .await
        .unwrap();
    let members = teams::list_members(pool, ana, team.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id, members[0].role),
        (ana, Role::Admin),
        "the creator becomes admin"
    );
    conflict(
        teams::create_team(pool, budi, "Other", "core", None).await,
        "not available",
    );

    let renamed = teams::change_slug(pool, ana, team.id, "core-team")
        .await
        .unwrap();
    assert_eq!(renamed.slug, "core-team");
    assert_eq!(
        teams::find_team_by_slug(pool, "core")
            .await
            .unwrap()
            .unwrap()
            .id,
        team.id,
        "old slug redirects"
    );
    assert_eq!(
        teams::find_team_by_slug(pool, "core-team")
            .await
            .unwrap()
            .unwrap()
            .id,
        team.id
    );
    assert!(teams::find_team_by_slug(pool, "nope")
        .await
        .unwrap()
        .is_none());
    // The old slug stays the team's: another team can take it neither new nor by a change,
    // so its old links cannot lead elsewhere (and both are told alike, as for a taken slug).
    steps.at("The old slug stays the team's");
    conflict(
        teams::create_team(pool, budi, "New Core", "core", None).await,
        "not available",
    );
    let budis = teams::create_team(pool, budi, "Budi's", "budis", None)
        .await
        .unwrap();
    conflict(
        teams::change_slug(pool, budi, budis.id, "core").await,
        "not available",
    );
    conflict(
        teams::change_slug(pool, budi, budis.id, "core-team").await,
        "not available",
    );
    invalid(
        teams::change_slug(pool, ana, team.id, "Bad Slug").await,
        "slug",
    );
    // Its own old slug the team may take back.
    steps.at("Its own old slug the team may take back");
    let back = teams::change_slug(pool, ana, team.id, "core")
        .await
        .unwrap();
    assert_eq!(back.slug, "core");
    let again = teams::change_slug(pool, ana, team.id, "core-team")
        .await
        .unwrap();
    assert_eq!(again.slug, "core-team");

    // The last admin can neither leave nor be demoted.
    steps.at("The last admin can neither leave nor be demoted");
    conflict(
        teams::remove_member(pool, ana, team.id, ana).await,
        "at least one admin",
    );
    conflict(
        teams::set_role(pool, ana, team.id, ana, Role::Member).await,
        "at least one admin",
    );
    let invite = teams::invite(
        pool,
        ana,
        team.id,
        "BUDI@example.com ",
        Role::Member,
        teams::default_invite_lifetime(),
    )
    .await
    .unwrap();
    assert_eq!(invite.email, "budi@example.com");
    teams::accept_invite(pool, budi, &invite.token)
        .await
        .unwrap();
    assert!(matches!(
        teams::set_role(pool, budi, team.id, budi, Role::Admin).await,
        Err(DomainError::Forbidden { .. })
    ));
    assert!(matches!(
        teams::remove_member(pool, budi, team.id, ana).await,
        Err(DomainError::Forbidden { .. })
    ));
    teams::set_role(pool, ana, team.id, budi, Role::Admin)
        .await
        .unwrap();
    teams::remove_member(pool, ana, team.id, ana)
        .await
        .expect("another admin remains, so ana may leave");
    conflict(
        teams::remove_member(pool, budi, team.id, budi).await,
        "at least one admin",
    );
    assert!(
        matches!(
            teams::get_team(pool, ana, team.id).await,
            Err(DomainError::NotFound { .. })
        ),
        "ana left"
    );
}

/// A team is its members': deleting its maker's account (after they handed it over) keeps the
/// team and its chats; the only admin of a team with other members is refused until they
/// make someone else an admin; a team nobody else is in goes with its only member.
#[tokio::test]
async fn teams_outlive_their_makers() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let team = teams::create_team(pool, ana, "Core", "core", None)
        .await
        .unwrap();
    let invite = teams::invite(
        pool,
        ana,
        team.id,
        "budi@example.com",
        Role::Member,
        teams::default_invite_lifetime(),
    )
    .await
    .unwrap();
    teams::accept_invite(pool, budi, &invite.token)
        .await
        .unwrap();
    let team_chat = chats::create_chat(
        pool,
        budi,
        NewChat {
            team_id: Some(team.id),
            ..chat("plans")
        },
    )
    .await
    .unwrap();
    let alone = teams::create_team(pool, ana, "Solo", "solo", None)
        .await
        .unwrap();

    conflict(auth::delete_user(pool, ana).await, "only admin of Core");
    teams::get_team(pool, ana, team.id)
        .await
        .expect("nothing was deleted");

    teams::set_role(pool, ana, team.id, budi, Role::Admin)
        .await
        .unwrap();
    auth::delete_user(pool, ana).await.unwrap();
    let kept = teams::get_team(pool, budi, team.id).await.unwrap();
    assert_eq!(kept.created_by, None, "the team outlives its maker");
    chats::get_chat(pool, budi, team_chat.id)
        .await
        .expect("and keeps its chats");
    let solo: i64 = sqlx::query_scalar("SELECT count(*) FROM teams WHERE id = $1")
        .bind(alone.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(solo, 0, "a team of one goes with its member");
}

#[tokio::test]
async fn invites_are_single_use_expire_and_belong_to_one_email() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let admin = user(pool, "admin@example.com").await;
    let cita = user(pool, "cita@example.com").await;
    let dodi = user(pool, "dodi@example.com").await;
    let team = teams::create_team(pool, admin, "Team", "team-x", None)
        .await
        .unwrap();
    let invite = teams::invite(
        pool,
        admin,
        team.id,
        "cita@example.com",
        Role::Member,
        teams::default_invite_lifetime(),
    )
    .await
    .unwrap();
    assert_eq!(invite.token.len(), 43);
    let week = invite.expires_at - chrono::Utc::now();
    assert!(
        week > Duration::days(6) && week <= Duration::days(7),
        "default expiry is 7 days"
    );

    assert!(
        matches!(
            teams::accept_invite(pool, dodi, &invite.token).await,
            Err(DomainError::Forbidden { .. })
        ),
        "someone else's invite"
    );
    assert!(matches!(
        teams::accept_invite(pool, cita, "guessed-token").await,
        Err(DomainError::NotFound { .. })
    ));
    let member = teams::accept_invite(pool, cita, &invite.token)
        .await
        .unwrap();
    assert_eq!((member.user_id, member.role), (cita, Role::Member));
    conflict(
        teams::accept_invite(pool, cita, &invite.token).await,
        "used already",
    );

    let expired = teams::invite(
        pool,
        admin,
        team.id,
        "dodi@example.com",
        Role::Admin,
        Duration::seconds(-1),
    )
    .await
    .unwrap();
    conflict(
        teams::accept_invite(pool, dodi, &expired.token).await,
        "expired",
    );
    assert_eq!(
        teams::list_members(pool, admin, team.id)
            .await
            .unwrap()
            .len(),
        2,
        "a refused invite adds nobody"
    );
    let accepted: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT accepted_at FROM team_invites WHERE id = $1")
            .bind(expired.id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(accepted.is_none());
    assert!(
        matches!(
            teams::invite(
                pool,
                cita,
                team.id,
                "x@example.com",
                Role::Member,
                Duration::days(1)
            )
            .await,
            Err(DomainError::Forbidden { .. })
        ),
        "members cannot invite"
    );
    invalid(
        teams::invite(
            pool,
            admin,
            team.id,
            "not-an-email",
            Role::Member,
            Duration::days(1),
        )
        .await,
        "email",
    );
}

#[tokio::test]
async fn folders_nest_within_one_scope_without_cycles() {
    let mut steps = sambung_testkit::Steps::new();
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let team = teams::create_team(pool, ana, "T", "tim", None)
        .await
        .unwrap();
    let a = folders::create_folder(pool, ana, Scope::Personal(ana), "A", None)
        .await
        .unwrap();
    let b = folders::create_folder(pool, ana, Scope::Personal(ana), "B", Some(a.id))
        .await
        .unwrap();
    let c = folders::create_folder(pool, ana, Scope::Personal(ana), "C", Some(b.id))
        .await
        .unwrap();
    invalid(
        folders::move_folder(pool, ana, a.id, Some(c.id)).await,
        "parent_id",
    );
    invalid(
        folders::move_folder(pool, ana, a.id, Some(a.id)).await,
        "parent_id",
    );
    let team_folder = folders::create_folder(pool, ana, Scope::Team(team.id), "Shared", None)
        .await
        .unwrap();
    invalid(
        folders::create_folder(pool, ana, Scope::Team(team.id), "X", Some(a.id)).await,
        "parent_id",
    );
    invalid(
        folders::move_folder(pool, ana, c.id, Some(team_folder.id)).await,
        "parent_id",
    );
    assert!(
        matches!(
            folders::create_folder(pool, budi, Scope::Team(team.id), "X", None).await,
            Err(DomainError::NotFound { .. })
        ),
        "non-member"
    );
    assert!(matches!(
        folders::create_folder(pool, budi, Scope::Personal(ana), "X", None).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        folders::get_folder(pool, budi, a.id).await,
        Err(DomainError::NotFound { .. })
    ));
    invalid(
        folders::create_folder(pool, ana, Scope::Personal(ana), " ", None).await,
        "name",
    );
    folders::move_folder(pool, ana, c.id, None).await.unwrap();
    folders::move_folder(pool, ana, a.id, Some(c.id))
        .await
        .expect("no cycle once c left the tree");

    // A chat's folder and tags must fit its scope.
    steps.at("A chat's folder and tags must fit its scope");
    invalid(
        chats::create_chat(
            pool,
            ana,
            NewChat {
                folder_id: Some(team_folder.id),
                ..chat("personal")
            },
        )
        .await,
        "folder_id",
    );
    invalid(
        chats::create_chat(
            pool,
            budi,
            NewChat {
                folder_id: Some(a.id),
                ..chat("not yours")
            },
        )
        .await,
        "folder_id",
    );
    let team_chat = chats::create_chat(
        pool,
        ana,
        NewChat {
            team_id: Some(team.id),
            folder_id: Some(team_folder.id),
            ..chat("team")
        },
    )
    .await
    .unwrap();
    invalid(
        chats::update_chat(
            pool,
            ana,
            team_chat.id,
            ChatChanges {
                folder_id: Some(Some(a.id)),
                ..Default::default()
            },
        )
        .await,
        "folder_id",
    );
    assert!(matches!(
        chats::create_chat(
            pool,
            budi,
            NewChat {
                team_id: Some(team.id),
                ..chat("x")
            }
        )
        .await,
        Err(DomainError::NotFound { .. })
    ));

    let public = tags::create_tag(pool, None, TagScope::Public, "important", Some("#FF5733"))
        .await
        .unwrap();
    assert_eq!(public.color.as_deref(), Some("#ff5733"));
    let mine = tags::create_tag(pool, Some(ana), TagScope::Personal(ana), "mine", None)
        .await
        .unwrap();
    let ours = tags::create_tag(pool, Some(ana), TagScope::Team(team.id), "ours", None)
        .await
        .unwrap();
    let budis = tags::create_tag(pool, Some(budi), TagScope::Personal(budi), "budi's", None)
        .await
        .unwrap();
    invalid(
        tags::create_tag(pool, Some(ana), TagScope::Personal(ana), "bad", Some("red")).await,
        "color",
    );
    assert!(
        tags::create_tag(pool, Some(ana), TagScope::Public, "public by a user", None)
            .await
            .is_err()
    );
    assert!(
        tags::create_tag(pool, Some(budi), TagScope::Team(team.id), "x", None)
            .await
            .is_err()
    );
    let personal_chat = chats::create_chat(pool, ana, chat("mine")).await.unwrap();
    tags::tag_chat(pool, ana, personal_chat.id, public.id)
        .await
        .unwrap();
    tags::tag_chat(pool, ana, personal_chat.id, mine.id)
        .await
        .unwrap();
    tags::tag_chat(pool, ana, team_chat.id, ours.id)
        .await
        .unwrap();
    tags::tag_chat(pool, ana, team_chat.id, public.id)
        .await
        .unwrap();
    invalid(
        tags::tag_chat(pool, ana, personal_chat.id, ours.id).await,
        "tag_id",
    );
    invalid(
        tags::tag_chat(pool, ana, team_chat.id, mine.id).await,
        "tag_id",
    );
    invalid(
        tags::tag_chat(pool, ana, personal_chat.id, budis.id).await,
        "tag_id",
    );
    let on_chat: Vec<String> = tags::chat_tags(pool, ana, personal_chat.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(on_chat, ["important", "mine"]);
}

#[tokio::test]
async fn listing_chats_pages_by_keyset_with_filters_and_counts() {
    let mut steps = sambung_testkit::Steps::new();
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let folder = folders::create_folder(pool, ana, Scope::Personal(ana), "Work", None)
        .await
        .unwrap();
    let tag = tags::create_tag(pool, Some(ana), TagScope::Personal(ana), "t", None)
        .await
        .unwrap();
    let mut created = Vec::new();
    for i in 0..7 {
        let folder_id = (i % 2 == 0).then_some(folder.id);
        let c = chats::create_chat(
            pool,
            ana,
            NewChat {
                folder_id,
                ..chat(&format!("chat {i}"))
            },
        )
        .await
        .unwrap();
        for _ in 0..i {
            chats::append_message(pool, ana, c.id, "hi", None)
                .await
                .unwrap();
        }
        if i % 3 == 0 {
            tags::tag_chat(pool, ana, c.id, tag.id).await.unwrap();
        }
        created.push(c.id);
    }
    chats::create_chat(pool, budi, chat("not ana's"))
        .await
        .unwrap();

    let mut query = ChatQuery {
        limit: 3,
        ..ChatQuery::new(ChatScope::Personal)
    };
    let mut seen = Vec::new();
    loop {
        let page = chats::list_chats(pool, ana, &query).await.unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|s| (s.chat.id, s.message_count, s.chat.updated_at)),
        );
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every chat once: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].2 >= w[1].2), "newest first");
    for (i, id) in created.iter().enumerate() {
        let (_, count, _) = seen.iter().find(|(c, _, _)| c == id).unwrap();
        assert_eq!(*count, i as i64, "message count of chat {i}");
    }
    // How many of ana's personal chats a query with these filters lists.
    steps.at("How many of ana's personal chats a query with these filters lists");
    let listed = |filters: ChatQuery| async move {
        chats::list_chats(pool, ana, &filters)
            .await
            .unwrap()
            .items
            .len()
    };
    let personal = || ChatQuery::new(ChatScope::Personal);
    let in_folder = listed(ChatQuery {
        folder_id: Some(folder.id),
        ..personal()
    })
    .await;
    assert_eq!(in_folder, 4);
    let tagged = listed(ChatQuery {
        tag_id: Some(tag.id),
        ..personal()
    })
    .await;
    assert_eq!(tagged, 3);
    let future = listed(ChatQuery {
        updated_after: Some(chrono::Utc::now() + Duration::hours(1)),
        ..personal()
    })
    .await;
    assert_eq!(future, 0);
    let newest = seen[0].2;
    let before_newest = listed(ChatQuery {
        updated_before: Some(newest),
        ..personal()
    })
    .await;
    assert_eq!(before_newest, 6, "updated_before excludes the newest chat");
    let window = listed(ChatQuery {
        updated_after: Some(seen[3].2),
        updated_before: Some(newest),
        folder_id: Some(folder.id),
        ..personal()
    })
    .await;
    let expected = seen[1..=3]
        .iter()
        .filter(|(id, _, _)| {
            created
                .iter()
                .position(|c| c == id)
                .is_some_and(|i| i % 2 == 0)
        })
        .count();
    assert_eq!(window, expected, "date window and folder together");

    // A team's listing: its members see the team's chats (and only those), others nothing.
    steps.at("A team's listing");
    let team = teams::create_team(pool, ana, "Crew", "crew-list", None)
        .await
        .unwrap();
    let outsider = user(pool, "outsider@example.com").await;
    let team_chat = chats::create_chat(
        pool,
        ana,
        NewChat {
            team_id: Some(team.id),
            ..chat("team talk")
        },
    )
    .await
    .unwrap();
    let team_page = chats::list_chats(pool, ana, &ChatQuery::new(ChatScope::Team(team.id)))
        .await
        .unwrap();
    assert_eq!(
        team_page
            .items
            .iter()
            .map(|s| s.chat.id)
            .collect::<Vec<_>>(),
        vec![team_chat.id]
    );
    assert!(matches!(
        chats::list_chats(pool, outsider, &ChatQuery::new(ChatScope::Team(team.id))).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(listed(personal()).await, 7, "a team chat is not personal");

    let cursor = ChatCursor {
        updated_at: seen[0].2,
        id: seen[0].0,
    };
    let after_first = listed(ChatQuery {
        after: Some(cursor),
        ..personal()
    })
    .await;
    assert_eq!(after_first, 6);
    invalid(
        chats::list_chats(
            pool,
            ana,
            &ChatQuery {
                limit: 0,
                ..personal()
            },
        )
        .await,
        "limit",
    );

    // A chat's messages, in order, page by page; appending bumps the chat.
    steps.at("A chat's messages, in order, page by page");
    let long = created[6];
    let before = chats::get_chat(pool, ana, long).await.unwrap().updated_at;
    // What a client posts is a user message; what it adds is kept as annotations, never
    // where the server reads a reply's status or model.
    steps.at("What a client posts is a user message");
    let posted = chats::append_message(
        pool,
        ana,
        long,
        "last",
        Some(serde_json::json!({"status": "streaming", "server": "1", "pinnedBy": "ana"})),
    )
    .await
    .unwrap();
    assert_eq!(posted.role, MessageRole::User);
    assert_eq!(
        posted.metadata,
        Some(
            serde_json::json!({"annotations": {"status": "streaming", "server": "1", "pinnedBy": "ana"}})
        )
    );
    assert!(chats::get_chat(pool, ana, long).await.unwrap().updated_at > before);
    invalid(
        chats::append_message(pool, ana, long, "x", Some(serde_json::json!("str"))).await,
        "annotations",
    );
    let huge = serde_json::json!({ "note": "x".repeat(chats::MAX_ANNOTATION_BYTES) });
    invalid(
        chats::append_message(pool, ana, long, "x", Some(huge)).await,
        "annotations",
    );
    let (_, first) = chats::chat_with_messages(pool, ana, long, None, 4)
        .await
        .unwrap();
    let (_, second) = chats::chat_with_messages(pool, ana, long, first.next, 4)
        .await
        .unwrap();
    assert_eq!(first.items.len() + second.items.len(), 7);
    assert_eq!(second.items.last().unwrap().content, "last");
    assert_eq!(second.items.last().unwrap().role, MessageRole::User);
    assert!(second.next.is_none(), "the last page says so");
    // However long the messages, a page holds at most MAX_PAGE_CONTENT_BYTES of text (those
    // that begin within it): 40 messages of 1 MiB come four to a page.
    steps.at("However long the messages, a page holds at most MAX_PAGE_CONTENT_BYTES of text (those that begin ...");
    let big = chats::create_chat(pool, ana, chat("big")).await.unwrap();
    let mebibyte = "m".repeat(chats::MAX_MESSAGE_BYTES);
    for _ in 0..6 {
        chats::append_message(pool, ana, big.id, &mebibyte, None)
            .await
            .unwrap();
    }
    let (_, page) = chats::chat_with_messages(pool, ana, big.id, None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    let (_, rest) = chats::chat_with_messages(pool, ana, big.id, page.next, 100)
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.next), (2, None));
    assert!(matches!(
        chats::chat_with_messages(pool, budi, long, None, 4).await,
        Err(DomainError::NotFound { .. })
    ));
}

#[tokio::test]
async fn prompt_variables_and_search() {
    let mut steps = sambung_testkit::Steps::new();
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let review = prompts::create_prompt(
        pool,
        ana,
        NewPrompt {
            name: "Code Review",
            content: "Review this code:\n```\n{code}\n```",
            category: Some("coding"),
            is_public: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(review.variables.0, ["code"]);
    prompts::create_prompt(
        pool,
        ana,
        NewPrompt {
            name: "Translate",
            content: "Translate {text} into {language}",
            category: None,
            is_public: true,
        },
    )
    .await
    .unwrap();
    prompts::create_prompt(
        pool,
        budi,
        NewPrompt {
            name: "Budi's secret review",
            content: "review {x}",
            category: None,
            is_public: false,
        },
    )
    .await
    .unwrap();
    prompts::create_prompt(
        pool,
        budi,
        NewPrompt {
            name: "Codebase tour",
            content: "Walk through {repo}",
            category: None,
            is_public: true,
        },
    )
    .await
    .unwrap();
    invalid(
        prompts::create_prompt(
            pool,
            ana,
            NewPrompt {
                name: "",
                content: "x",
                category: None,
                is_public: false,
            },
        )
        .await,
        "name",
    );

    let names = |found: Vec<prompts::Prompt>| found.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            prompts::search_prompts(pool, ana, "review", 20)
                .await
                .unwrap()
        ),
        ["Code Review"],
        "budi's private prompt stays private"
    );
    // "code" is a word of Code Review; "Codebase" only contains it: ranked first, then substring.
    steps.at("\"code\" is a word of Code Review");
    assert_eq!(
        names(
            prompts::search_prompts(pool, ana, "code", 20)
                .await
                .unwrap()
        ),
        ["Code Review", "Codebase tour"]
    );
    assert_eq!(
        names(
            prompts::search_prompts(pool, budi, "language", 20)
                .await
                .unwrap()
        ),
        ["Translate"]
    );
    assert!(
        prompts::search_prompts(pool, ana, "100%_", 20)
            .await
            .unwrap()
            .is_empty(),
        "LIKE wildcards are literal"
    );
    let updated = prompts::update_prompt(
        pool,
        ana,
        review.id,
        NewPrompt {
            name: "Code Review",
            content: "Review {code} in {lang}",
            category: Some("coding"),
            is_public: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(updated.variables.0, ["code", "lang"]);
    assert!(
        matches!(
            prompts::update_prompt(
                pool,
                budi,
                review.id,
                NewPrompt {
                    name: "x",
                    content: "y",
                    category: None,
                    is_public: true
                }
            )
            .await,
            Err(DomainError::Forbidden { .. })
        ),
        "someone else's public prompt is seen, not changed"
    );
    assert!(matches!(
        prompts::delete_prompt(pool, budi, review.id).await,
        Err(DomainError::Forbidden { .. })
    ));
    assert_eq!(
        prompts::get_prompt(pool, budi, review.id).await.unwrap().id,
        review.id,
        "public now"
    );
}

#[tokio::test]
async fn message_search_covers_only_readable_chats() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let team = teams::create_team(pool, ana, "T", "tim", None)
        .await
        .unwrap();
    let mine = chats::create_chat(pool, ana, chat("mine")).await.unwrap();
    let team_chat = chats::create_chat(
        pool,
        ana,
        NewChat {
            team_id: Some(team.id),
            ..chat("team")
        },
    )
    .await
    .unwrap();
    let budis = chats::create_chat(pool, budi, chat("budi")).await.unwrap();
    chats::append_message(pool, ana, mine.id, "nasi goreng recipe please", None)
        .await
        .unwrap();
    chats::append_message(pool, ana, team_chat.id, "team nasi goreng lunch", None)
        .await
        .unwrap();
    chats::append_message(pool, budi, budis.id, "secret nasi goreng", None)
        .await
        .unwrap();
    let found = chats::search_messages(pool, ana, "nasi goreng", 20)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(
        (
            found[0].message.content.as_str(),
            found[0].chat_title.as_str()
        ),
        ("team nasi goreng lunch", team_chat.title.as_str()),
        "newest first, with its chat's title"
    );
    assert_eq!(
        chats::search_messages(pool, budi, "goreng", 20)
            .await
            .unwrap()
            .len(),
        1
    );
    invalid(chats::search_messages(pool, ana, "  ", 20).await, "query");
}

#[tokio::test]
async fn sign_up_passwords_sessions_and_verifications() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let settings = sambung_db::instance::InstanceSettings::default();
    let open = auth::SignupGate {
        policy: sambung_db::instance::SignupPolicy::Open,
        settings: &settings,
        invitation: None,
    };
    let ana = auth::sign_up(
        pool,
        NewUser {
            name: "Ana",
            email: "  Ana@Example.COM ",
            password: "long enough",
        },
        open,
    )
    .await
    .unwrap();
    assert_eq!(ana.email, "ana@example.com");
    conflict(
        auth::sign_up(
            pool,
            NewUser {
                name: "Again",
                email: "ANA@example.com",
                password: "long enough",
            },
            open,
        )
        .await,
        "exists already",
    );
    invalid(
        auth::sign_up(
            pool,
            NewUser {
                name: "B",
                email: "b@example.com",
                password: "short",
            },
            open,
        )
        .await,
        "password",
    );
    invalid(
        auth::sign_up(
            pool,
            NewUser {
                name: "B",
                email: "no at sign",
                password: "long enough",
            },
            open,
        )
        .await,
        "email",
    );
    let stored: String = sqlx::query_scalar(
        "SELECT password FROM accounts WHERE user_id = $1 AND provider_id = 'credential'",
    )
    .bind(ana.id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("long enough"));
    assert_eq!(
        auth::check_password(pool, "ana@EXAMPLE.com", "long enough")
            .await
            .unwrap()
            .unwrap()
            .id,
        ana.id
    );
    assert!(
        auth::check_password(pool, "ana@example.com", "wrong password")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        auth::check_password(pool, "nobody@example.com", "long enough")
            .await
            .unwrap()
            .is_none()
    );

    let (session, token) = auth::create_session(
        pool,
        ana.id,
        Duration::days(30),
        Some("127.0.0.1"),
        Some("test"),
    )
    .await
    .unwrap();
    let raw_stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE token_hash = $1")
        .bind(&token)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(raw_stored, 0, "the raw token must never be stored");
    assert_eq!(
        auth::authenticate(pool, &token)
            .await
            .unwrap()
            .unwrap()
            .1
            .id,
        ana.id
    );
    assert!(auth::authenticate(pool, "forged").await.unwrap().is_none());
    let (_, expired_token) = auth::create_session(pool, ana.id, Duration::seconds(-1), None, None)
        .await
        .unwrap();
    assert!(auth::authenticate(pool, &expired_token)
        .await
        .unwrap()
        .is_none());
    assert_eq!(auth::list_sessions(pool, ana.id).await.unwrap().len(), 1);
    assert_eq!(auth::purge_expired_sessions(pool).await.unwrap(), 1);
    let budi = user(pool, "budi@example.com").await;
    assert!(matches!(
        auth::revoke_session(pool, budi, session.id).await,
        Err(DomainError::NotFound { .. })
    ));
    auth::revoke_session(pool, ana.id, session.id)
        .await
        .unwrap();
    assert!(auth::authenticate(pool, &token).await.unwrap().is_none());

    auth::create_verification(pool, "ana@example.com", "123456", Duration::minutes(10))
        .await
        .unwrap();
    assert!(
        !auth::consume_verification(pool, "ana@example.com", "654321")
            .await
            .unwrap()
    );
    assert!(
        auth::consume_verification(pool, "ana@example.com", "123456")
            .await
            .unwrap()
    );
    assert!(
        !auth::consume_verification(pool, "ana@example.com", "123456")
            .await
            .unwrap(),
        "used once"
    );
    auth::create_verification(pool, "ana@example.com", "999", Duration::seconds(-1))
        .await
        .unwrap();
    assert!(
        !auth::consume_verification(pool, "ana@example.com", "999")
            .await
            .unwrap(),
        "expired"
    );
}

/// Messages written at once into one chat take turns: each follows the one before it, so the
/// shown path stays one chain (without the chat's lock two of them took the same parent).
#[tokio::test]
async fn messages_written_at_once_follow_one_another() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let talk = chats::create_chat(pool, ana, chat("Ramai")).await.unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..24 {
        let pool = pool.clone();
        writes.spawn(async move {
            chats::append_message(&pool, ana, talk.id, &format!("pesan {i}"), None)
                .await
                .map(drop)
        });
    }
    while let Some(written) = writes.join_next().await {
        written.unwrap().unwrap();
    }
    let (messages, parents, roots): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT parent_id), count(*) FILTER (WHERE parent_id IS NULL)
           FROM messages WHERE chat_id = $1 AND NOT off_path",
    )
    .bind(talk.id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((messages, parents, roots), (24, 23, 1), "one chain");
}

/// A file of `bytes` kept for `owner` (a text file: the server decides types; here any will do).
async fn keep_file(
    pool: &PgPool,
    owner: UserId,
    bytes: &[u8],
    storage: Option<i64>,
) -> Result<sambung_db::files::File, DomainError> {
    use sha2::Digest;
    let new = sambung_db::files::NewFile {
        name: "notes.txt",
        media_type: "text/plain",
        size: bytes.len() as i64,
        sha256: sha2::Sha256::digest(bytes).into(),
        width: None,
        height: None,
        thumbnail: None,
        text: None,
    };
    sambung_db::files::store_file(
        pool,
        owner,
        new,
        storage,
        &mut std::io::Cursor::new(bytes.to_vec()),
    )
    .await
}

#[tokio::test]
async fn files_are_kept_once_counted_attached_by_their_owner_and_go_with_their_chat() {
    use sambung_db::files;
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;

    // Three megabytes and a bit: four chunks, read back whole.
    let big: Vec<u8> = (0..3 * files::CHUNK_BYTES + 10)
        .map(|i| (i % 251) as u8)
        .collect();
    let kept = keep_file(pool, ana, &big, None).await.unwrap();
    assert_eq!(kept.chunks(), 4);
    assert_eq!(files::file_bytes(pool, kept.id).await.unwrap(), big);
    // The same bytes: the same file; another owner's copy is their own.
    assert_eq!(keep_file(pool, ana, &big, None).await.unwrap().id, kept.id);
    let theirs = keep_file(pool, budi, &big, None).await.unwrap();
    assert_ne!(theirs.id, kept.id);

    // Storage counted before anything is written.
    let used = files::storage_used(pool, ana).await.unwrap();
    match keep_file(pool, ana, b"one more", Some(used + 3)).await {
        Err(DomainError::StorageFull { allowed, used: u }) => {
            assert_eq!((allowed, u), (used + 3, used))
        }
        other => panic!("expected storage full, got {other:?}"),
    }

    // Attached by their owner only, each once.
    let c = chats::create_chat(pool, ana, chat("Files")).await.unwrap();
    let message = chats::append_message(pool, ana, c.id, "see attached", None)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(matches!(
        files::attach(&mut conn, ana, message.id, &[theirs.id]).await,
        Err(DomainError::NotFound { entity: "file" })
    ));
    assert!(matches!(
        files::own_files(pool, ana, &[kept.id, theirs.id]).await,
        Err(DomainError::NotFound { entity: "file" })
    ));
    invalid(
        files::attach(&mut conn, ana, message.id, &[kept.id, kept.id]).await,
        "files",
    );
    files::attach(&mut conn, ana, message.id, &[kept.id])
        .await
        .unwrap();
    drop(conn);
    let carried = files::files_of(pool, &[message.id]).await.unwrap();
    assert_eq!(carried, vec![(message.id, kept.clone())]);

    // Budi reads it once he may read the chat, not before.
    assert!(files::readable_file(pool, budi, kept.id).await.is_err());
    assert_eq!(
        files::readable_file(pool, ana, kept.id).await.unwrap().id,
        kept.id
    );

    // An upload never sent is swept; one a message carries is not.
    let unsent = keep_file(pool, ana, b"never sent", None).await.unwrap();
    assert_eq!(
        files::sweep_unattached(pool, Duration::zero())
            .await
            .unwrap(),
        2
    ); // Budi's too
    assert!(files::readable_file(pool, ana, unsent.id).await.is_err());
    assert!(files::readable_file(pool, ana, kept.id).await.is_ok());

    // Deleting the chat takes the file and its bytes with it.
    chats::delete_chat(pool, ana, c.id).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM file_chunks")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(files::readable_file(pool, ana, kept.id).await.is_err());
}

/// A file being given to a message in a transaction not yet committed (an import's, the
/// same bytes uploaded again) holds a lock on the file: deleting the last message that carried
/// it, or sweeping unsent uploads, neither waits for that transaction nor deletes the file
/// from under the message it is getting.
#[tokio::test]
async fn a_file_being_attached_is_neither_waited_for_nor_deleted() {
    use sambung_db::files;
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let shared = keep_file(pool, ana, b"shared bytes", None).await.unwrap();
    let unsent = keep_file(pool, ana, b"unsent bytes", None).await.unwrap();
    let c = chats::create_chat(pool, ana, chat("Files")).await.unwrap();
    let first = chats::append_message(pool, ana, c.id, "first", None)
        .await
        .unwrap();
    let second = chats::append_message(pool, ana, c.id, "second", None)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    files::attach(&mut conn, ana, first.id, &[shared.id])
        .await
        .unwrap();
    drop(conn);

    // Another transaction gives both files to the second message, and has not committed.
    let mut attaching = pool.begin().await.unwrap();
    files::attach(&mut attaching, ana, second.id, &[shared.id, unsent.id])
        .await
        .unwrap();
    let gone = sqlx::query("DELETE FROM message_files WHERE message_id = $1")
        .bind(first.id)
        .execute(pool);
    without_waiting("the delete", gone).await;
    let swept = without_waiting("the sweep", files::sweep_unattached(pool, Duration::zero())).await;
    assert_eq!(swept, 0);
    attaching.commit().await.unwrap();
    let carried = files::files_of(pool, &[second.id]).await.unwrap();
    assert_eq!(carried.len(), 2, "{carried:?}");
}

/// `work`'s outcome, which must not wait for another transaction (5 s is waiting).
async fn without_waiting<T, E: std::fmt::Debug>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(5), work)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for another transaction"))
        .unwrap()
}

/// Rows that name a user (an import's chats, not yet committed) hold a key-share lock on the
/// user's row: an admin's ban or demotion of that user does not wait for them; a change of
/// their email or their removal waits briefly, then is refused as busy.
#[tokio::test]
async fn an_admin_acts_on_a_user_whose_import_is_running() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let bo = user(pool, "bo@example.com").await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = ANY($1)")
        .bind([ana, bo])
        .execute(pool)
        .await
        .unwrap();
    let mut importing = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO chats (id, user_id, title, model, provider) VALUES ($1, $2, 'Imported', 'm', 'p')")
        .bind(uuid::Uuid::now_v7())
        .bind(ana)
        .execute(&mut *importing)
        .await
        .unwrap();
    let changed = |changes| sambung_db::admin::update_user(pool, bo, ana, changes);
    let demoted = changed(sambung_db::admin::UserChanges {
        role: Some("user".into()),
        ..Default::default()
    });
    without_waiting("the demotion", demoted).await;
    // The same email sent again with a change is no change of a key.
    let same_email = changed(sambung_db::admin::UserChanges {
        email: Some("ana@example.com".into()),
        name: Some("Ana".into()),
        ..Default::default()
    });
    without_waiting("an unchanged email", same_email).await;
    let banned = sambung_db::admin::ban_user(pool, bo, ana, Some("spam"), None);
    without_waiting("the ban", banned).await;
    // A new email (a key) and removing the account must wait for the import: briefly, then
    // they are refused as busy rather than holding their request for the import's length.
    let new_email = || sambung_db::admin::UserChanges {
        email: Some("ana.new@example.com".into()),
        ..Default::default()
    };
    let busy = sambung_db::admin::update_user(pool, bo, ana, new_email()).await;
    assert!(
        matches!(&busy, Err(DomainError::Conflict(m)) if m.contains("busy")),
        "{busy:?}"
    );
    let busy = sambung_db::admin::remove_user(pool, bo, ana).await;
    assert!(
        matches!(&busy, Err(DomainError::Conflict(m)) if m.contains("busy")),
        "{busy:?}"
    );
    importing.commit().await.unwrap();
    sambung_db::admin::update_user(pool, bo, ana, new_email())
        .await
        .unwrap();
}

/// Two people importing the same export of ours at once: the first claims its chat's and
/// messages' ids, the second gets new ones without waiting for the first (it waited, then
/// failed whole on the duplicate key).
#[tokio::test]
async fn the_same_export_imported_by_two_people_at_once_takes_new_ids_for_the_second() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let bo = user(pool, "bo@example.com").await;
    let (chat, message) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let export = serde_json::json!({
        "format": sambung_transfer::ours::CHAT_FORMAT, "version": 1, "id": chat, "title": "Shared",
        "model": "m", "provider": "p", "settings": {}, "tags": [], "pinned": false, "archived": false,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "messages": [{"id": message, "parentId": null, "role": "user", "content": "hi",
                      "createdAt": "2026-01-01T00:00:00Z", "onPath": true, "files": []}]
    });
    let mut read = Vec::new();
    sambung_transfer::read_conversations(
        export.to_string().as_bytes(),
        &sambung_transfer::Limits::default(),
        |c| {
            read.push(c.unwrap());
            true
        },
    )
    .unwrap();
    let conversation = &read[0];
    let mut first = pool.begin().await.unwrap();
    let mut notes = Vec::new();
    sambung_db::imports::import_conversation(&mut first, ana, conversation, &[vec![]], &mut notes)
        .await
        .unwrap();
    let mut second = pool.begin().await.unwrap();
    let no_files = [vec![]];
    let imported = sambung_db::imports::import_conversation(
        &mut second,
        bo,
        conversation,
        &no_files,
        &mut notes,
    );
    without_waiting("the second import", imported).await;
    second.commit().await.unwrap();
    first.commit().await.unwrap();
    let ids: Vec<(uuid::Uuid, UserId)> =
        sqlx::query_as("SELECT id, user_id FROM chats ORDER BY user_id = $1 DESC")
            .bind(ana)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], (chat, ana), "the first keeps the export's id");
    assert_ne!(ids[1].0, chat);
}

/// A statement that checks the request's session itself serves a live session's user, and
/// nobody for a session that is gone, expired, banned, not approved or due to be renewed:
/// its reads find nothing and its writes write nothing.
#[tokio::test]
async fn a_statement_checks_the_session_it_serves() {
    use sambung_db::auth::Caller;
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let mine = chats::create_chat(pool, ana, chat("mine")).await.unwrap();
    chats::append_message(pool, ana, mine.id, "nasi goreng", None)
        .await
        .unwrap();
    let session = |hours: i64| auth::create_session(pool, ana, Duration::hours(hours), None, None);
    let serves = |caller: Caller| async move {
        let listed = chats::list_chats(pool, caller.clone(), &ChatQuery::new(ChatScope::Personal))
            .await
            .unwrap()
            .items
            .len();
        let read = chats::chat_with_messages(pool, caller.clone(), mine.id, None, 10)
            .await
            .is_ok();
        let found = chats::search_messages(pool, caller.clone(), "goreng", 20)
            .await
            .unwrap()
            .len();
        let wrote = chats::append_message(pool, caller, mine.id, "more", None)
            .await
            .is_ok();
        (listed, read, found, wrote)
    };
    let (live, token) = session(2).await.unwrap();
    assert_eq!(
        serves(Caller::session(&token, None)).await,
        (1, true, 1, true)
    );
    // Renewed the long way once it ends within the given time.
    let soon = chrono::Utc::now() + Duration::hours(3);
    assert_eq!(
        serves(Caller::session(&token, Some(soon))).await,
        (0, false, 0, false)
    );
    let (_, expired) = session(-1).await.unwrap();
    let nobody = (0, false, 0, false);
    assert_eq!(serves(Caller::session(&expired, None)).await, nobody);
    assert_eq!(serves(Caller::session("forged", None)).await, nobody);
    for (change, undo) in [
        (
            "UPDATE users SET banned = true WHERE id = $1",
            "UPDATE users SET banned = false WHERE id = $1",
        ),
        (
            "UPDATE users SET approved = false WHERE id = $1",
            "UPDATE users SET approved = true WHERE id = $1",
        ),
    ] {
        sqlx::query(change).bind(ana).execute(pool).await.unwrap();
        assert_eq!(
            serves(Caller::session(&token, None)).await,
            nobody,
            "{change}"
        );
        sqlx::query(undo).bind(ana).execute(pool).await.unwrap();
    }
    auth::revoke_session(pool, ana, live.id).await.unwrap();
    assert_eq!(serves(Caller::session(&token, None)).await, nobody);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE chat_id = $1")
        .bind(mine.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(written, 2, "only the live session wrote");
}

/// A quota counts what was used today (UTC): the user's across every chat, the team's by
/// every member, neither yesterday's nor, for the team, its members' personal chats.
#[tokio::test]
async fn quotas_count_what_the_user_and_the_team_used_today() {
    use sambung_db::quotas::{self, QuotaLimits, QuotaSubject};
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let bob = user(pool, "bob@example.com").await;
    let team = teams::create_team(pool, ana, "Kopi", "kopi", None)
        .await
        .unwrap()
        .id;
    let used = |who: UserId, team: uuid::Uuid, days_ago: i32, requests: i64| async move {
        sqlx::query(
            "INSERT INTO usage_daily (day, user_id, team_id, model, provider, requests, input_tokens)
             VALUES ((now() AT TIME ZONE 'UTC')::date - $1, $2, $3, 'm', 'openai', $4, $4 * 10)",
        )
        .bind(days_ago)
        .bind(who)
        .bind(team)
        .bind(requests)
        .execute(pool)
        .await
        .unwrap();
    };
    used(ana, team.0, 0, 1).await;
    used(bob, team.0, 0, 1).await;
    used(bob, team.0, 1, 50).await; // yesterday
    used(ana, uuid::Uuid::nil(), 0, 3).await; // her personal chats
    let limit = |requests| QuotaLimits {
        requests_per_day: Some(requests),
        ..QuotaLimits::default()
    };
    let refused = |result: sambung_db::Result<quotas::Allowance>, which: &str| match result {
        Err(DomainError::QuotaExceeded { limit, .. }) => assert_eq!(limit, which),
        other => panic!("expected {which}: {other:?}"),
    };

    // The team used 2 today (ana's 1 and bob's 1).
    quotas::set_quota(pool, QuotaSubject::Team(team), limit(2))
        .await
        .unwrap();
    refused(
        quotas::check_turn(pool, bob, Some(team)).await,
        "teamRequestsPerDay",
    );
    quotas::check_turn(pool, bob, None).await.unwrap();
    quotas::set_quota(pool, QuotaSubject::Team(team), limit(3))
        .await
        .unwrap();
    quotas::check_turn(pool, bob, Some(team)).await.unwrap();

    // Ana used 4 today (1 in the team, 3 of her own); bob 1 (his 50 were yesterday).
    quotas::set_quota(pool, QuotaSubject::User(ana), limit(4))
        .await
        .unwrap();
    refused(
        quotas::check_turn(pool, ana, None).await,
        "userRequestsPerDay",
    );
    quotas::set_quota(pool, QuotaSubject::User(bob), limit(2))
        .await
        .unwrap();
    quotas::check_turn(pool, bob, None).await.unwrap();
}
