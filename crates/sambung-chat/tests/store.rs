//! A turn's data against a real PostgreSQL: leases (a dead server's replies are marked
//! incomplete by the others, one turn at a time across servers) and the conversation a turn
//! previews before its transaction against what it stores.

use sambung_chat::lease::{self, ServerLease};
use sambung_chat::store;
use sambung_chat::{TurnKind, TurnReads};
use sambung_db::chats::{self, Message, MessageRole, NewChat};
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

#[tokio::test]
async fn replies_whose_server_died_are_marked_incomplete_by_the_others() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let first = ServerLease::acquire(pool).await.unwrap();
    let second = ServerLease::acquire(pool).await.unwrap();
    assert_ne!(first.number(), second.number());
    let busy_chat = chats::create_chat(pool, ana, chat("busy")).await.unwrap();
    let ask = TurnKind::Ask {
        content: "hello",
        files: &[],
    };
    let turn = store::begin_turn(
        pool,
        &first,
        ana,
        busy_chat.id,
        ask.clone(),
        serde_json::json!({}),
        None,
    )
    .await
    .unwrap()
    .commit()
    .await
    .unwrap();
    assert_eq!(turn.reply.metadata.as_ref().unwrap()["status"], "streaming");
    let status = |id| async move {
        let status: Option<String> =
            sqlx::query_scalar("SELECT metadata->>'status' FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap();
        status.unwrap()
    };

    // While its writer lives, the reply blocks the chat on every server.
    assert!(matches!(
        store::begin_turn(
            pool,
            &second,
            ana,
            busy_chat.id,
            ask.clone(),
            serde_json::json!({}),
            None,
        )
        .await
        .map(|_| ()),
        Err(DomainError::Conflict(message)) if message.contains("being generated")
    ));

    // Replies with no live writer: one from before leases, one with a hostile `server`.
    let mut orphans = Vec::new();
    for metadata in [
        serde_json::json!({"status": "streaming"}),
        serde_json::json!({"status": "streaming", "server": "1' OR '1'='1"}),
    ] {
        let other = chats::create_chat(pool, ana, chat("other")).await.unwrap();
        let id: sambung_db::MessageId = sqlx::query_scalar(
            "INSERT INTO messages (chat_id, role, content, metadata) VALUES ($1, 'assistant', 'par', $2) RETURNING id",
        )
        .bind(other.id)
        .bind(metadata)
        .fetch_one(pool)
        .await
        .unwrap();
        orphans.push(id);
    }
    assert_eq!(lease::sweep(pool).await.unwrap(), 2);
    for id in orphans {
        assert_eq!(status(id).await, "incomplete");
    }
    assert_eq!(status(turn.reply.id).await, "streaming");

    // The writer dies (its connection closes): the next sweep marks its reply.
    drop(first);
    let mut swept = 0;
    for _ in 0..100 {
        swept = lease::sweep(pool).await.unwrap();
        if swept > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(swept, 1);
    assert_eq!(status(turn.reply.id).await, "incomplete");
    store::begin_turn(
        pool,
        &second,
        ana,
        busy_chat.id,
        ask,
        serde_json::json!({}),
        None,
    )
    .await
    .unwrap()
    .commit()
    .await
    .unwrap();
}

#[tokio::test]
async fn a_turns_preview_is_the_conversation_it_stores_unless_the_chat_changed_meanwhile() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let eve = user(pool, "eve@example.com").await;
    let lease = ServerLease::acquire(pool).await.unwrap();
    let c = chats::create_chat(pool, ana, chat("preview"))
        .await
        .unwrap();
    let model = sambung_db::models::create_model(
        pool,
        ana,
        None,
        sambung_db::models::ModelFields {
            provider: "openai",
            model_id: "gpt-4",
            name: "GPT-4",
            base_url: None,
            api_key_id: None,
            settings: serde_json::json!({}),
            is_default: false,
        },
    )
    .await
    .unwrap();
    let model = &model;
    let said = |history: &[Message]| -> Vec<(MessageRole, String)> {
        history
            .iter()
            .map(|m| (m.role, m.content.clone()))
            .collect()
    };
    let reads = |caller: UserId, kind: TurnKind<'static>| async move {
        TurnReads::read(pool, caller.into(), c.id, &kind, None).await
    };
    let previewed = |kind: TurnKind<'static>| async move {
        let reads = reads(ana, kind).await.unwrap();
        reads.preview().unwrap().to_vec()
    };
    let turn = |kind: TurnKind<'static>| {
        let lease = &lease;
        async move {
            let preview = previewed(kind.clone()).await;
            let stored =
                store::begin_turn(pool, lease, ana, c.id, kind, serde_json::json!({}), None)
                    .await
                    .unwrap();
            let history = stored.turn.history.clone();
            let reply = stored.turn.reply.id;
            stored.commit().await.unwrap();
            store::finish_turn(
                pool,
                Some(reply),
                "answer",
                serde_json::json!({"status": "complete"}),
                &store::Usage {
                    user: ana,
                    team: None,
                    model,
                    input_tokens: 10,
                    output_tokens: 5,
                    duration: std::time::Duration::from_millis(30),
                },
            )
            .await
            .unwrap();
            (said(&preview), said(&history))
        }
    };
    let (preview, stored) = turn(TurnKind::Ask {
        content: "one",
        files: &[],
    })
    .await;
    assert_eq!(preview, stored);
    assert_eq!(preview, [(MessageRole::User, "one".to_owned())]);
    let (preview, stored) = turn(TurnKind::Ask {
        content: "two",
        files: &[],
    })
    .await;
    assert_eq!((preview.len(), preview == stored), (3, true));
    let (preview, stored) = turn(TurnKind::Regenerate).await;
    assert_eq!((preview.len(), preview == stored), (3, true));
    let history = previewed(TurnKind::Regenerate).await;
    let first = history[0].id;
    let edit = TurnKind::Edit {
        message: first,
        content: "one, edited",
    };
    let preview = previewed(edit).await;
    assert_eq!(
        said(&preview),
        [(MessageRole::User, "one, edited".to_owned())]
    );

    // A message arrives between the preview and the turn: the stored conversation differs.
    let early = previewed(TurnKind::Ask {
        content: "three",
        files: &[],
    })
    .await;
    chats::append_message(pool, ana, c.id, "meanwhile", None)
        .await
        .unwrap();
    let stored = store::begin_turn(
        pool,
        &lease,
        ana,
        c.id,
        TurnKind::Ask {
            content: "three",
            files: &[],
        },
        serde_json::json!({}),
        None,
    )
    .await
    .unwrap();
    assert_ne!(said(&early), said(&stored.turn.history));
    assert_eq!(stored.turn.history.len(), early.len() + 1);
    stored.commit().await.unwrap();

    // A live writer's reply refuses the preview; so does bad input; a stranger is told the
    // chat is not found, nothing of its conversation.
    let busy = reads(
        ana,
        TurnKind::Ask {
            content: "four",
            files: &[],
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        busy.preview(),
        Err(DomainError::Conflict(message)) if message.contains("being generated")
    ));
    let blank = reads(
        ana,
        TurnKind::Ask {
            content: "  ",
            files: &[],
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        blank.preview(),
        Err(DomainError::Invalid {
            field: "content",
            ..
        })
    ));
    assert!(matches!(
        reads(eve, TurnKind::Regenerate).await,
        Err(DomainError::NotFound { entity: "chat" })
    ));
}
