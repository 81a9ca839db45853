//! Introspection, its renderings, and dropping everything.

use sambung_schema::{drop_all, introspect, objects_to_drop, to_mermaid, to_text, Migrator};
use sambung_testkit::TestDb;

#[tokio::test]
async fn the_schema_reads_back_with_keys_defaults_and_triggers() {
    let db = TestDb::migrated().await;
    let schema = introspect(&mut db.pool().acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(schema.name, "public");
    assert_eq!(
        schema
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["pg_trgm"]
    );
    let functions: Vec<&str> = schema.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        functions,
        [
            "sambung_chat_reader",
            "sambung_chats_of",
            "sambung_file_follows_messages",
            "sambung_instance_model_serves",
            "sambung_message_follows_path",
            "sambung_message_words",
            "sambung_prompt_keeps_versions",
            "sambung_session_live",
            "sambung_session_user",
            "sambung_set_updated_at",
            "sambung_usable_by",
            "sambung_uuid_v7"
        ]
    );
    assert!(
        schema.table("_sambung_migrations").is_none(),
        "bookkeeping is not schema"
    );

    let chats = schema.table("chats").unwrap();
    let id = chats.column("id").unwrap();
    assert_eq!(
        (id.data_type.as_str(), id.nullable, id.default.as_deref()),
        ("uuid", false, Some("sambung_uuid_v7()"))
    );
    assert!(chats.column("team_id").unwrap().nullable);
    assert_eq!(
        chats.column("settings").unwrap().default.as_deref(),
        Some("'{}'::jsonb")
    );
    assert_eq!(chats.primary_key.as_ref().unwrap().columns, ["id"]);
    let folder_fk = chats
        .foreign_keys
        .iter()
        .find(|fk| fk.name == "chats_folder_id_fkey")
        .unwrap();
    assert_eq!(
        (
            folder_fk.referenced_table.as_str(),
            folder_fk.on_delete.as_str()
        ),
        ("folders", "set null")
    );
    assert_eq!(chats.triggers.len(), 1);
    assert_eq!(chats.triggers[0].function, "sambung_set_updated_at");
    let public_token = chats
        .indexes
        .iter()
        .find(|i| i.name == "chat_public_token_idx")
        .unwrap();
    assert!(!public_token.unique && public_token.predicate.is_some());
    let pkey = chats
        .indexes
        .iter()
        .find(|i| i.name == "chats_pkey")
        .unwrap();
    assert!(pkey.primary && pkey.constraint.as_deref() == Some("chats_pkey"));
    let chat_tags = schema.table("chat_tags").unwrap();
    assert_eq!(
        chat_tags.primary_key.as_ref().unwrap().columns,
        ["chat_id", "tag_id"]
    );
    let messages_search = schema
        .table("messages")
        .unwrap()
        .indexes
        .iter()
        .find(|i| i.name == "message_content_search_idx")
        .unwrap();
    assert_eq!(messages_search.method, "gin");
}

#[tokio::test]
async fn text_and_mermaid_show_tables_and_relations() {
    let db = TestDb::migrated().await;
    let schema = introspect(&mut db.pool().acquire().await.unwrap())
        .await
        .unwrap();
    let text = to_text(&schema);
    assert!(text.contains("\ntable users\n"), "{text}");
    assert!(
        text.contains(
            "foreign key chats_folder_id_fkey: (folder_id) -> folders(id) on delete set null"
        ),
        "{text}"
    );
    assert!(text.contains("check folder_scope_check: CHECK"), "{text}");

    let mermaid = to_mermaid(&schema);
    assert!(mermaid.starts_with("erDiagram\n"));
    assert!(
        mermaid.contains("    users ||--o{ chats : \"user_id\""),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    folders |o--o{ chats : \"folder_id\""),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("        timestamp_with_time_zone created_at"),
        "{mermaid}"
    );
    assert!(mermaid.contains("        uuid id PK"), "{mermaid}");
    assert!(mermaid.contains("        text slug UK"), "{mermaid}");
    let empty = TestDb::empty().await;
    let nothing = introspect(&mut empty.pool().acquire().await.unwrap())
        .await
        .unwrap();
    assert!(to_text(&nothing).contains("is empty"));
}

#[tokio::test]
async fn drop_all_removes_every_object_and_the_schema_migrates_again() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    sqlx::raw_sql(
        "CREATE VIEW recent_chats AS SELECT id FROM chats;
         CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE SEQUENCE loose_counter;
         CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 10);
         INSERT INTO users (name, email) VALUES ('u', 'u@example.com');",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let planned: Vec<String> = objects_to_drop(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    for expected in [
        "view recent_chats",
        "table users",
        "table _sambung_migrations",
        "sequence loose_counter",
        "function sambung_uuid_v7()",
        "type mood",
        "type short_text",
        "extension pg_trgm",
    ] {
        assert!(
            planned.contains(&expected.to_owned()),
            "{expected} missing from {planned:?}"
        );
    }
    let views = planned
        .iter()
        .take_while(|o| o.starts_with("view "))
        .count();
    assert_eq!(
        views,
        planned.iter().filter(|o| o.starts_with("view ")).count(),
        "views go first: {planned:?}"
    );
    let dropped = drop_all(&mut conn).await.unwrap();
    assert_eq!(dropped.len(), planned.len());
    assert!(objects_to_drop(&mut conn).await.unwrap().is_empty());
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
    drop(conn);
    Migrator::embedded()
        .migrate(pool)
        .await
        .expect("the schema migrates again after a drop");
}

/// docs/schema.md shows the schema's diagram: it must not fall behind the migrations.
#[tokio::test]
async fn the_documented_diagram_matches_the_schema() {
    let db = TestDb::migrated().await;
    let schema = introspect(&mut db.pool().acquire().await.unwrap())
        .await
        .unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md"))
        .unwrap();
    let documented = doc
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    assert_eq!(
        documented,
        to_mermaid(&schema),
        "docs/schema.md is stale: regenerate it with `sambung db schema --mermaid`"
    );
}
