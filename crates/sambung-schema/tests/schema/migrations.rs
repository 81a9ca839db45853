//! The migration engine against real PostgreSQL.

use sambung_config::Hint as _;
use std::time::Duration;

use sambung_schema::{
    introspect, objects_to_drop, schema_files, MigrateError, Migration, MigrationState, Migrator,
    Schema, NO_TRANSACTION,
};
use sambung_testkit::TestDb;
use sqlx::{Connection, PgPool};

async fn schema_of(pool: &PgPool) -> Schema {
    introspect(&mut pool.acquire().await.unwrap())
        .await
        .unwrap()
}

fn migration(name: &str, up: &str, down: &str) -> Migration {
    Migration::new(name, up, down).unwrap()
}

/// The embedded migrations plus `extra`.
fn with_extra(extra: Vec<Migration>) -> Migrator {
    let mut all = Migration::embedded();
    all.extend(extra);
    Migrator::new(all).unwrap()
}

async fn table_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_rollback_migrate_gives_the_same_schema_and_rollback_leaves_nothing() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    let migrator = Migrator::embedded();

    let applied = migrator.migrate(pool).await.unwrap();
    assert_eq!(applied.len(), migrator.migrations().len());
    let first = schema_of(pool).await;
    assert_eq!(
        first.tables.len(),
        32,
        "{:?}",
        first.tables.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    assert!(
        migrator.migrate(pool).await.unwrap().is_empty(),
        "a second migrate must do nothing"
    );

    let rolled_back = migrator.rollback(pool, usize::MAX).await.unwrap();
    assert_eq!(rolled_back.len(), applied.len());
    assert!(schema_of(pool).await.is_empty());
    let mut conn = pool.acquire().await.unwrap();
    let left: Vec<String> = objects_to_drop(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    assert_eq!(
        left,
        vec!["table _sambung_migrations"],
        "rollback left objects behind"
    );
    drop(conn);
    assert!(
        migrator.rollback(pool, 1).await.unwrap().is_empty(),
        "nothing left to roll back"
    );

    migrator.migrate(pool).await.unwrap();
    let again = schema_of(pool).await;
    assert_eq!(
        serde_json::to_string_pretty(&first).unwrap(),
        serde_json::to_string_pretty(&again).unwrap()
    );
}

#[tokio::test]
async fn the_migrations_build_exactly_what_the_schema_files_describe() {
    let migrated = TestDb::migrated().await;
    let declared = TestDb::empty().await;
    let mut conn = declared.pool().acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    for (name, sql) in schema_files() {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    tx.commit().await.unwrap();
    drop(conn);
    let from_migrations = serde_json::to_string_pretty(&schema_of(migrated.pool()).await).unwrap();
    let from_files = serde_json::to_string_pretty(&schema_of(declared.pool()).await).unwrap();
    assert_eq!(
        from_migrations, from_files,
        "the schema files and the migrations disagree"
    );
}

#[tokio::test]
async fn rollback_steps_undo_newest_first() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    let migrator = with_extra(vec![
        migration(
            "9001_add_notes",
            "CREATE TABLE notes (id int PRIMARY KEY);",
            "DROP TABLE notes;",
        ),
        migration(
            "9002_add_labels",
            "CREATE TABLE labels (id int PRIMARY KEY);",
            "DROP TABLE labels;",
        ),
    ]);
    migrator.migrate(pool).await.unwrap();
    let undone = migrator.rollback(pool, 1).await.unwrap();
    assert_eq!(
        undone.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["9002_add_labels"]
    );
    assert!(!table_exists(pool, "labels").await && table_exists(pool, "notes").await);
    let undone = migrator.rollback(pool, 1).await.unwrap();
    assert_eq!(undone[0].name, "9001_add_notes");
    assert!(table_exists(pool, "users").await);
    let status = migrator.status(pool).await.unwrap();
    let states: Vec<_> = status.iter().map(|s| (s.name.as_str(), s.state)).collect();
    assert_eq!(
        states.last().unwrap(),
        &("9002_add_labels", MigrationState::Pending)
    );
    assert_eq!(states[0], ("0001_initial", MigrationState::Applied));
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_half_applied_and_names_the_statement() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let broken = migration(
        "9001_broken",
        "CREATE TABLE half (id int);\n\nALTER TABLE users\n  ADD COLUMN nickname text;\nINSERT INTO users (name, email) VALUES ('x', 'x@example.com');\nSELECT no_such_column FROM users;\n",
        "",
    );
    let err = with_extra(vec![broken]).migrate(pool).await.unwrap_err();
    match &err {
        MigrateError::Failed {
            name,
            statement,
            line,
            column,
            message,
            sql,
            transactional,
        } => {
            assert!(transactional);
            assert_eq!(name, "migration 9001_broken");
            assert_eq!(*statement, 4);
            assert_eq!((*line, *column), (6, 8));
            assert!(message.contains("no_such_column"), "{message}");
            assert_eq!(sql, "SELECT no_such_column FROM users");
        }
        other => panic!("expected a failed migration, got {other:?}"),
    }
    assert!(
        err.to_string().contains("statement 4 at line 6, column 8"),
        "{err}"
    );
    assert!(
        !table_exists(pool, "half").await,
        "the failed migration's table was kept"
    );
    let nickname: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!nickname, "the failed migration's column was kept");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let status = Migrator::new(Migration::embedded())
        .unwrap()
        .status(pool)
        .await
        .unwrap();
    assert!(status.iter().all(|s| s.state == MigrationState::Applied));
}

#[tokio::test]
async fn a_modified_applied_migration_stops_everything() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    with_extra(vec![migration(
        "9001_notes",
        "CREATE TABLE notes (id int);",
        "DROP TABLE notes;",
    )])
    .migrate(pool)
    .await
    .unwrap();
    let tampered = with_extra(vec![
        migration(
            "9001_notes",
            "CREATE TABLE notes (id bigint);",
            "DROP TABLE notes;",
        ),
        migration(
            "9002_more",
            "CREATE TABLE more (id int);",
            "DROP TABLE more;",
        ),
    ]);
    let err = tampered.migrate(pool).await.unwrap_err();
    assert!(
        matches!(&err, MigrateError::Modified { name, .. } if name == "9001_notes"),
        "{err:?}"
    );
    assert!(
        !table_exists(pool, "more").await,
        "a later migration ran despite the modified one"
    );
    let status = tampered.status(pool).await.unwrap();
    let notes = status.iter().find(|s| s.name == "9001_notes").unwrap();
    assert_eq!(notes.state, MigrationState::Modified);
    assert!(notes.applied_at.is_some());
}

#[tokio::test]
async fn migrations_unknown_to_this_binary_are_reported_and_block_migrate() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    with_extra(vec![migration(
        "9001_future",
        "CREATE TABLE future (id int);",
        "DROP TABLE future;",
    )])
    .migrate(pool)
    .await
    .unwrap();
    let older = Migrator::embedded();
    let status = older.status(pool).await.unwrap();
    let future = status.iter().find(|s| s.version == 9001).unwrap();
    assert_eq!(
        (future.name.as_str(), future.state),
        ("9001_future", MigrationState::Unknown)
    );
    assert!(matches!(
        older.migrate(pool).await.unwrap_err(),
        MigrateError::Unknown { version: 9001, .. }
    ));
    assert!(matches!(
        older.rollback(pool, 1).await.unwrap_err(),
        MigrateError::Unknown { version: 9001, .. }
    ));
    assert!(table_exists(pool, "future").await);
}

#[tokio::test]
async fn status_of_a_fresh_database_is_all_pending_and_creates_nothing() {
    let db = TestDb::empty().await;
    let status = Migrator::embedded().status(db.pool()).await.unwrap();
    assert!(status
        .iter()
        .all(|s| s.state == MigrationState::Pending && s.applied_at.is_none()));
    assert!(
        !table_exists(db.pool(), "_sambung_migrations").await,
        "status must not write"
    );
}

#[tokio::test]
async fn a_migration_blocked_by_a_long_transaction_times_out_clearly() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let mut blocker = sqlx::PgConnection::connect_with(db.connect_options())
        .await
        .unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS SHARE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();

    let migrator = with_extra(vec![migration(
        "9001_alter_users",
        "ALTER TABLE users ADD COLUMN timezone text;",
        "",
    )])
    .with_lock_timeout(Duration::from_millis(300));
    let err = migrator.migrate(pool).await.unwrap_err();
    assert!(
        matches!(&err, MigrateError::LockTimeout { name, statement: 1, .. } if name == "migration 9001_alter_users"),
        "{err:?}"
    );
    tx.rollback().await.unwrap();
    migrator
        .migrate(pool)
        .await
        .expect("applies once the lock is gone");
}

#[tokio::test]
async fn concurrent_migrators_never_interleave() {
    let db = TestDb::empty().await;
    // A slow first migration, so that the second migrator surely arrives while it runs.
    let migrator = with_extra(vec![migration("9001_slow", "SELECT pg_sleep(0.5);", "")]);
    let other_pool = sqlx::PgPool::connect_with(db.connect_options().clone())
        .await
        .unwrap();
    let (a, b) = tokio::join!(migrator.migrate(db.pool()), migrator.migrate(&other_pool));
    let (a, b) = (a.unwrap(), b.unwrap());
    let total = migrator.migrations().len();
    assert!(
        (a.len() == total && b.is_empty()) || (b.len() == total && a.is_empty()),
        "both migrators applied something: {a:?} / {b:?}"
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM _sambung_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(recorded, total as i64);
}

#[tokio::test]
async fn every_index_the_design_names_exists() {
    let db = TestDb::migrated().await;
    let schema = schema_of(db.pool()).await;
    let designed = [
        ("teams", "team_slug_idx"),
        ("teams", "team_created_by_idx"),
        ("team_members", "team_member_team_id_idx"),
        ("team_members", "team_member_user_id_idx"),
        ("team_members", "team_member_team_user_idx"),
        ("team_invites", "team_invite_token_idx"),
        ("team_invites", "team_invite_email_idx"),
        ("slug_redirects", "slug_redirect_old_slug_idx"),
        ("chats", "chat_user_id_idx"),
        ("chats", "chat_team_id_idx"),
        ("chats", "chat_user_team_idx"),
        ("chats", "chat_folder_id_idx"),
        ("chats", "chat_updated_at_idx"),
        ("chats", "chat_public_token_idx"),
        ("messages", "message_chat_id_idx"),
        ("messages", "message_created_at_idx"),
        ("prompts", "prompt_user_id_idx"),
        ("prompts", "prompt_category_idx"),
        ("prompts", "prompt_is_public_idx"),
        ("api_keys", "api_key_user_id_idx"),
        ("api_keys", "api_key_provider_idx"),
        ("folders", "folder_user_id_idx"),
        ("folders", "folder_team_id_idx"),
        ("folders", "folder_parent_id_idx"),
        ("tags", "tag_user_id_idx"),
        ("tags", "tag_team_id_idx"),
        ("tags", "tag_name_idx"),
        ("chat_tags", "chat_tag_chat_id_idx"),
        ("chat_tags", "chat_tag_tag_id_idx"),
    ];
    for (table, index) in designed {
        let found = schema
            .table(table)
            .and_then(|t| t.indexes.iter().find(|i| i.name == index));
        assert!(found.is_some(), "{table}.{index} is missing");
    }
    let partial = |table: &str, index: &str| {
        schema
            .table(table)
            .unwrap()
            .indexes
            .iter()
            .find(|i| i.name == index)
            .unwrap()
            .predicate
            .clone()
    };
    assert_eq!(
        partial("chats", "chat_public_token_idx").as_deref(),
        Some("(is_public = true)")
    );
    assert_eq!(
        partial("folders", "folder_user_id_idx").as_deref(),
        Some("(team_id IS NULL)")
    );
    assert_eq!(
        partial("tags", "tag_team_id_idx").as_deref(),
        Some("(user_id IS NULL)")
    );
    // Every foreign key's actions as designed.
    let on_delete = |table: &str, column: &str| {
        let fk = schema
            .table(table)
            .unwrap()
            .foreign_keys
            .iter()
            .find(|fk| fk.columns == [column])
            .unwrap();
        fk.on_delete.clone()
    };
    assert_eq!(on_delete("chats", "folder_id"), "set null");
    assert_eq!(on_delete("messages", "chat_id"), "cascade");
    assert_eq!(on_delete("folders", "parent_id"), "cascade");
    assert_eq!(
        schema
            .table("messages")
            .unwrap()
            .column("chat_id")
            .unwrap()
            .data_type,
        "uuid"
    );
    let timestamps_ok = schema
        .tables
        .iter()
        .flat_map(|t| &t.columns)
        .filter(|c| c.name.ends_with("_at"))
        .all(|c| c.data_type == "timestamp with time zone");
    assert!(timestamps_ok, "every timestamp is timestamptz");
}

/// EXPLAIN of the text searches on a few thousand rows of realistic text (about 300
/// characters of words, as SPEC section 6 sizes messages) uses the text indexes.
#[tokio::test]
async fn message_and_prompt_search_use_an_index() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    // Sentences drawn from a vocabulary; "xylophone" is in one row of 500. VACUUM merges the
    // GIN pending lists, as autovacuum does on a live database.
    sqlx::raw_sql(
        "CREATE TEMP TABLE vocabulary AS SELECT string_to_array('review code essay plan summary translate explain python rust postgres database query index table column write story poem email letter report meeting notes agenda bug fix test deploy server client browser network security password token session user team chat message prompt model answer question idea draft outline chapter section paragraph sentence word grammar style tone voice audience market product price customer support ticket refund order invoice payment budget forecast sales growth strategy vision mission goal task project deadline schedule calendar travel hotel flight recipe cooking garden music movie book game sport health fitness', ' ') AS w;
         CREATE TEMP TABLE sentences AS
           SELECT g, (SELECT string_agg(w[1 + abs(hashint4(g * 64 + i)) % array_length(w, 1)], ' ') FROM generate_series(1, 45) i)
                     || CASE WHEN g % 500 = 0 THEN ' xylophone' ELSE '' END AS text
             FROM vocabulary, generate_series(1, 5000) g;
         INSERT INTO users (name, email) VALUES ('u', 'u@example.com');
         INSERT INTO chats (user_id, title, model, provider) SELECT id, 'c' || g, 'm', 'p' FROM users, generate_series(1, 50) g;
         INSERT INTO messages (chat_id, role, content)
           SELECT c.id, 'user', s.text FROM (SELECT id, row_number() OVER () AS n FROM chats) c
             JOIN sentences s ON s.g % 50 = c.n - 1;
         INSERT INTO prompts (user_id, name, content, is_public) SELECT u.id, 'prompt ' || s.g, s.text, true FROM users u, sentences s;
",
    )
    .execute(pool)
    .await
    .unwrap();
    for vacuum in ["VACUUM ANALYZE messages", "VACUUM ANALYZE prompts"] {
        sqlx::raw_sql(vacuum).execute(pool).await.unwrap();
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(count, 5000);
    let plan = |sql: &'static str| async move {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        rows.join("\n")
    };
    // The search predicate itself; how the data layer orders and limits the hits (newest
    // first, per user) is planned and measured with the workloads.
    let messages = plan(
        "EXPLAIN SELECT id, created_at FROM messages WHERE content_tsv @@ plainto_tsquery('simple', 'xylophone')",
    )
    .await;
    assert!(
        messages.contains("message_content_search_idx"),
        "{messages}"
    );
    let ranked = plan(
        "EXPLAIN SELECT id FROM prompts WHERE is_public AND search_tsv @@ plainto_tsquery('simple', 'xylophone')
          ORDER BY ts_rank(search_tsv, plainto_tsquery('simple', 'xylophone')) DESC LIMIT 20",
    )
    .await;
    assert!(ranked.contains("prompt_search_idx"), "{ranked}");
    let substring =
        plan("EXPLAIN SELECT id FROM prompts WHERE (name || ' ' || content) ILIKE '%ylophon%'")
            .await;
    assert!(substring.contains("prompt_search_trgm_idx"), "{substring}");
    for plan in [&messages, &ranked, &substring] {
        assert!(
            !plan.contains("Seq Scan on messages") && !plan.contains("Seq Scan on prompts"),
            "{plan}"
        );
    }
}

async fn index_exists(pool: &PgPool, name: &str) -> bool {
    table_exists(pool, name).await
}

#[tokio::test]
async fn a_migration_marked_no_transaction_runs_statement_by_statement() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    let notes = migration(
        "9001_notes",
        "CREATE TABLE notes (id int, body text);",
        "DROP TABLE notes;",
    );
    let concurrently = |up: &str, down: &str| migration("9002_notes_indexes", up, down);

    // In the migration's transaction PostgreSQL refuses CONCURRENTLY; the hint says what to do.
    let refused = with_extra(vec![
        notes.clone(),
        concurrently(
            "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);",
            "",
        ),
    ])
    .migrate(pool)
    .await
    .unwrap_err();
    assert!(
        matches!(
            refused,
            MigrateError::Failed {
                transactional: true,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.hint().unwrap().contains(NO_TRANSACTION),
        "{refused:?}"
    );
    assert!(!index_exists(pool, "notes_body_idx").await);

    let marked = with_extra(vec![
        notes.clone(),
        concurrently(
            &format!("{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\nCREATE INDEX CONCURRENTLY notes_id_idx ON notes (id);"),
            &format!("{NO_TRANSACTION}\nDROP INDEX CONCURRENTLY notes_id_idx;\nDROP INDEX CONCURRENTLY notes_body_idx;"),
        ),
    ]);
    let runs = marked.migrate(pool).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(index_exists(pool, "notes_body_idx").await && index_exists(pool, "notes_id_idx").await);
    let status = marked.status(pool).await.unwrap();
    assert_eq!(status.last().unwrap().state, MigrationState::Applied);
    marked.rollback(pool, 1).await.unwrap();
    assert!(
        !index_exists(pool, "notes_body_idx").await && !index_exists(pool, "notes_id_idx").await
    );

    // Failing halfway, what ran stays, the migration stays pending, and the hint says so.
    let halfway = with_extra(vec![
        notes,
        concurrently(
            &format!("{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\nCREATE INDEX CONCURRENTLY nope_idx ON nope (id);"),
            "",
        ),
    ]);
    let failed = halfway.migrate(pool).await.unwrap_err();
    assert!(
        matches!(
            failed,
            MigrateError::Failed {
                transactional: false,
                statement: 2,
                ..
            }
        ),
        "{failed}"
    );
    assert!(
        failed.hint().unwrap().contains("not recorded"),
        "{failed:?}"
    );
    assert!(index_exists(pool, "notes_body_idx").await);
    let status = halfway.status(pool).await.unwrap();
    assert_eq!(status.last().unwrap().state, MigrationState::Pending);
}

/// Migration 0013: chats written before branches become single paths (each message following
/// the one before it), and rolling it back leaves each chat its shown path.
#[tokio::test]
async fn chats_before_branches_become_single_paths_and_roll_back_to_their_path() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    let all = Migration::embedded();
    let at = all
        .iter()
        .position(|m| m.name == "0013_message_branches")
        .expect("the branches migration");
    Migrator::new(all[..at].to_vec())
        .unwrap()
        .migrate(pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO users (id, name, email) VALUES ('00000000-0000-7000-8000-000000000001', 'Ana', 'ana@example.com');
         INSERT INTO chats (id, user_id, title, model, provider) VALUES
           ('00000000-0000-7000-8000-0000000000c1', '00000000-0000-7000-8000-000000000001', 'One', 'm', 'p'),
           ('00000000-0000-7000-8000-0000000000c2', '00000000-0000-7000-8000-000000000001', 'Two', 'm', 'p');
         INSERT INTO messages (id, chat_id, role, content, created_at) VALUES
           ('00000000-0000-7000-8000-000000000a01', '00000000-0000-7000-8000-0000000000c1', 'user', 'q1', '2026-01-01 10:00'),
           ('00000000-0000-7000-8000-000000000a02', '00000000-0000-7000-8000-0000000000c1', 'assistant', 'a1', '2026-01-01 10:01'),
           ('00000000-0000-7000-8000-000000000a03', '00000000-0000-7000-8000-0000000000c1', 'user', 'q2', '2026-01-01 10:02'),
           ('00000000-0000-7000-8000-000000000b01', '00000000-0000-7000-8000-0000000000c2', 'user', 'other', '2026-01-01 09:00');",
    )
    .execute(pool)
    .await
    .unwrap();
    let migrator = Migrator::embedded();
    migrator.migrate(pool).await.unwrap();
    let parents: Vec<(String, Option<String>, bool)> = sqlx::query_as(
        "SELECT m.content, p.content, m.off_path FROM messages m LEFT JOIN messages p ON p.id = m.parent_id
          ORDER BY m.chat_id, m.created_at",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let parents: Vec<(&str, Option<&str>, bool)> = parents
        .iter()
        .map(|(m, p, off)| (m.as_str(), p.as_deref(), *off))
        .collect();
    assert_eq!(
        parents,
        [
            ("q1", None, false),
            ("a1", Some("q1"), false),
            ("q2", Some("a1"), false),
            ("other", None, false)
        ]
    );
    // A message written now follows the path's last one; a branch left beside it goes with
    // the rollback, the path stays.
    sqlx::raw_sql(
        "INSERT INTO messages (chat_id, role, content) VALUES ('00000000-0000-7000-8000-0000000000c1', 'assistant', 'a2');
         INSERT INTO messages (chat_id, role, content, parent_id, off_path) VALUES
           ('00000000-0000-7000-8000-0000000000c1', 'user', 'q2 before the edit', '00000000-0000-7000-8000-000000000a02', true);",
    )
    .execute(pool)
    .await
    .unwrap();
    let follows: Option<String> = sqlx::query_scalar(
        "SELECT p.content FROM messages m JOIN messages p ON p.id = m.parent_id WHERE m.content = 'a2'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(follows.as_deref(), Some("q2"));
    // Back to before 0013 (and the migrations after it).
    migrator.rollback(pool, all.len() - at).await.unwrap();
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT content FROM messages WHERE chat_id = '00000000-0000-7000-8000-0000000000c1' ORDER BY created_at",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(left, ["q1", "a1", "q2", "a2"]);
}
