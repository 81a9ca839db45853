//! The plans of a turn's statements on a seeded database as a long-lived connection runs
//! them: generic plans (PostgreSQL's choice from a statement's sixth run on), which cannot see
//! the values. None may fall back to reading every message.

use sambung_testkit::TestDb;
use sqlx::PgConnection;

use crate::{lease, turn};

/// `EXPLAIN` of `sql`'s generic plan, with `args` its values.
async fn generic_plan(conn: &mut PgConnection, sql: &str, args: &str) -> String {
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan = sambung_testkit::explain_prepared(conn, "probe", sql, &[], &[args]).await;
    sqlx::raw_sql("DEALLOCATE probe; RESET plan_cache_mode")
        .execute(&mut *conn)
        .await
        .unwrap();
    plan
}

#[tokio::test]
async fn a_turns_statements_keep_to_their_indexes_in_generic_plans() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    sambung_db::seed::seed_scale(pool, 0.1, &|_| {})
        .await
        .unwrap();
    let (user, chat): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT user_id, id FROM chats WHERE team_id IS NULL LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
    let (member, team_chat): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT tm.user_id, c.id FROM chats c JOIN team_members tm ON tm.team_id = c.team_id
          LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();

    // Whether a reply is running: through the partial index of running replies (a status
    // given as a parameter once made this plan read every message).
    let busy = generic_plan(
        &mut conn,
        &lease::CHAT_BUSY_SQL,
        &format!("'{chat}', 'incomplete', '{user}'"),
    )
    .await;
    assert!(!busy.contains("Seq Scan on messages"), "{busy}");
    assert!(busy.contains("message_streaming_idx"), "{busy}");

    // What a turn reads, in a personal chat or a team's (one generic plan, whether it names
    // its model or not): the chat once, by its key; its messages through their index; the
    // model named, and then the model chosen, each by its key.
    for (reader, chat) in [(user, chat), (member, team_chat)] {
        let reads = generic_plan(
            &mut conn,
            &turn::TURN_READS_SQL,
            &format!("'{reader}', NULL, NULL, '{chat}', NULL"),
        )
        .await;
        // (At this scale a team's members fit a page: scanning them is the cheaper plan.)
        for table in ["messages", "chats"] {
            assert!(!reads.contains(&format!("Seq Scan on {table}")), "{reads}");
        }
        assert_eq!(reads.matches(" on chats ").count(), 1, "{reads}");
        assert!(reads.contains("using chats_pkey"), "{reads}");
        assert!(reads.contains("message_chat_id_idx"), "{reads}");
        assert!(reads.matches("using models_pkey").count() >= 2, "{reads}");
        // The access rule inlined, not run apart as a function scan.
        assert!(
            !reads.contains("Function Scan on sambung_chat_reader"),
            "{reads}"
        );
    }
}

/// The conversation's busy check asks PostgreSQL's lock table only for a reply still
/// streaming: for messages without a status (`NULL AND …` is not false) it once read the
/// whole lock table in every turn's statement, a third of its execution.
#[tokio::test]
async fn the_lock_table_is_read_only_for_a_running_reply() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = sambung_db::UserId::from(sambung_testkit::insert_user(pool, "ana@example.com").await);
    let new_chat = sambung_db::chats::NewChat {
        title: "a chat",
        model: "gpt-4o",
        provider: "openai",
        ..Default::default()
    };
    let chat = sambung_db::chats::create_chat(pool, ana, new_chat)
        .await
        .unwrap();
    sambung_db::chats::append_message(pool, ana, chat.id, "a question", None)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(&format!("PREPARE reads AS {}", &*turn::TURN_READS_SQL))
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE reads('{ana}', NULL, NULL, '{}', NULL)",
        chat.id
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    let lock_table = plan
        .lines()
        .find(|line| line.contains("pg_lock_status"))
        .unwrap_or_else(|| panic!("no busy check in the plan:\n{plan}"));
    assert!(lock_table.contains("never executed"), "{plan}");
}
