//! API-key encryption against the database, and the seeds.

use sambung_db::api_keys::{self, Provider};
use sambung_db::secret::Cipher;
use sambung_db::seed::{self, ScaleCounts};
use sambung_db::{DomainError, UserId};
use sambung_testkit::TestDb;
use sqlx::PgPool;

async fn user(pool: &PgPool, email: &str) -> UserId {
    sambung_testkit::insert_user(pool, email).await.into()
}

async fn live_schema(pool: &sqlx::PgPool) -> sambung_schema::Schema {
    let mut conn = pool.acquire().await.unwrap();
    sambung_schema::introspect(&mut conn).await.unwrap()
}

#[tokio::test]
async fn api_keys_are_sealed_shown_by_last4_and_rotated_all_or_nothing() {
    let mut steps = sambung_testkit::Steps::new();
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ana = user(pool, "ana@example.com").await;
    let budi = user(pool, "budi@example.com").await;
    let old = Cipher::new(&[1; 32]);
    let key = api_keys::add_api_key(
        pool,
        &old,
        ana,
        Provider::Openai,
        "work",
        "sk-live-abcdef123456",
    )
    .await
    .unwrap();
    api_keys::add_api_key(
        pool,
        &old,
        budi,
        Provider::Anthropic,
        "work",
        "sk-ant-zyxwvu987654",
    )
    .await
    .unwrap();
    assert_eq!((key.key_last4.as_str(), key.key_version), ("3456", 1));
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT encrypted_key FROM api_keys WHERE id = $1")
        .bind(key.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(
        !sealed.windows(6).any(|w| w == b"abcdef"),
        "plaintext stored"
    );
    assert_eq!(
        api_keys::reveal_api_key(pool, &old, ana, key.id)
            .await
            .unwrap(),
        "sk-live-abcdef123456"
    );
    assert!(matches!(
        api_keys::reveal_api_key(pool, &old, budi, key.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(api_keys::list_api_keys(pool, ana).await.unwrap().len(), 1);
    assert!(api_keys::provider("mistral").is_err());
    assert!(
        api_keys::add_api_key(pool, &old, ana, Provider::Groq, "work", "short")
            .await
            .is_err()
    );

    // A wrong current key: refused, nothing rewritten.
    steps.at("A wrong current key");
    let new = Cipher::new(&[2; 32]);
    assert!(matches!(
        api_keys::rotate_master_key(pool, &Cipher::new(&[9; 32]), &new).await,
        Err(DomainError::Decrypt)
    ));
    let unchanged: Vec<u8> = sqlx::query_scalar("SELECT encrypted_key FROM api_keys WHERE id = $1")
        .bind(key.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(unchanged, sealed);
    assert_eq!(
        api_keys::rotate_master_key(pool, &old, &new).await.unwrap(),
        2
    );
    assert_eq!(
        api_keys::reveal_api_key(pool, &new, ana, key.id)
            .await
            .unwrap(),
        "sk-live-abcdef123456"
    );
    assert!(matches!(
        api_keys::reveal_api_key(pool, &old, ana, key.id).await,
        Err(DomainError::Decrypt)
    ));
    assert_eq!(
        api_keys::list_api_keys(pool, ana).await.unwrap()[0].key_version,
        2
    );

    // A tampered row, or one moved to another row, does not open.
    steps.at("A tampered row, or one moved to another row, does not open");
    sqlx::query("UPDATE api_keys SET encrypted_key = set_byte(encrypted_key, 20, get_byte(encrypted_key, 20) # 1) WHERE id = $1")
        .bind(key.id)
        .execute(pool)
        .await
        .unwrap();
    assert!(matches!(
        api_keys::reveal_api_key(pool, &new, ana, key.id).await,
        Err(DomainError::Decrypt)
    ));
    assert!(
        matches!(
            api_keys::rotate_master_key(pool, &new, &old).await,
            Err(DomainError::Decrypt)
        ),
        "one bad row stops the rotation"
    );
}

async fn counts(pool: &PgPool) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "teams",
        "team_members",
        "folders",
        "tags",
        "chats",
        "chat_tags",
        "messages",
        "prompts",
        "accounts",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((table.to_owned(), n));
    }
    out
}

/// A digest of every row of the synthetic tables, in id order.
async fn fingerprint(pool: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "users",
        "teams",
        "team_members",
        "folders",
        "tags",
        "chats",
        "chat_tags",
        "messages",
        "prompts",
    ] {
        let digest: String = sqlx::query_scalar(&format!(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push(format!("{table}:{digest}"));
    }
    out
}

#[tokio::test]
async fn the_sample_seed_is_idempotent_and_signs_in() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let first = seed::seed_sample(pool).await.unwrap();
    assert!(first.created);
    let after_first = counts(pool).await;
    assert!(!seed::seed_sample(pool).await.unwrap().created);
    assert_eq!(
        counts(pool).await,
        after_first,
        "a second seed changed rows"
    );
    let demo = sambung_db::auth::check_password(pool, first.email, first.password)
        .await
        .unwrap()
        .expect("the demo user signs in");
    let prompt: (String, serde_json::Value) =
        sqlx::query_as("SELECT content, variables FROM prompts WHERE name = 'Code Review'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(prompt.1, serde_json::json!(["code"]));
    let page = sambung_db::chats::list_chats(
        pool,
        demo.id,
        &sambung_db::chats::ChatQuery::new(sambung_db::chats::ChatScope::Personal),
    )
    .await
    .unwrap();
    assert_eq!(page.items[0].chat.title, "Sample Chat");
    assert_eq!(page.items[0].message_count, 2);
}

#[tokio::test]
async fn scale_seed_gives_exact_counts_and_the_same_data_twice() {
    let expected = ScaleCounts::for_scale(0.1).unwrap();
    assert_eq!(
        (
            expected.users,
            expected.teams,
            expected.team_members,
            expected.chats,
            expected.messages,
            expected.prompts,
            expected.folders,
            expected.tags
        ),
        (100, 10, 100, 2_000, 40_000, 500, 200, 100)
    );
    assert!(ScaleCounts::for_scale(0.0).is_err() && ScaleCounts::for_scale(f64::NAN).is_err());
    let a = TestDb::migrated().await;
    let b = TestDb::migrated().await;
    let schema_before = live_schema(a.pool()).await;
    let loaded = seed::seed_scale(a.pool(), 0.1, &|_| {}).await.unwrap();
    // The load drops foreign keys and indexes and makes them again: all of them, the same.
    assert_eq!(live_schema(a.pool()).await, schema_before);
    assert!(loaded.loaded);
    assert_eq!(loaded.rows, expected.total());
    seed::seed_scale(b.pool(), 0.1, &|_| {}).await.unwrap();
    let got = counts(a.pool()).await;
    let want = [
        ("users", expected.users),
        ("teams", expected.teams),
        ("team_members", expected.team_members),
        ("folders", expected.folders),
        ("tags", expected.tags),
        ("chats", expected.chats),
        ("chat_tags", expected.chat_tags),
        ("messages", expected.messages),
        ("prompts", expected.prompts),
        ("accounts", 0),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(t, n)| (t.to_string(), *n as i64))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        fingerprint(a.pool()).await,
        fingerprint(b.pool()).await,
        "the same scale gave different data"
    );
    let team_chats: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chats WHERE team_id IS NOT NULL")
            .fetch_one(a.pool())
            .await
            .unwrap();
    assert_eq!(team_chats, 400, "one chat in five is a team chat");
    let avg: f64 = sqlx::query_scalar("SELECT avg(length(content))::float8 FROM messages")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert!(
        (290.0..320.0).contains(&avg),
        "messages are about 300 characters: {avg}"
    );
    // Every team chat's owner is a member of its team (the data respects the domain rules).
    let outsiders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chats c WHERE c.team_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = c.team_id AND m.user_id = c.user_id)",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!(outsiders, 0);
    // The loader computes each message's words itself: exactly PostgreSQL's, on every row.
    let differing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE content_tsv IS DISTINCT FROM to_tsvector('simple', content)",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!(differing, 0);
    // And the trigger that computes them is on again: whatever a statement writes there, a
    // message's words follow its content.
    let message: uuid::Uuid = sqlx::query_scalar(
        "UPDATE messages SET content = 'edited words', content_tsv = 'forged'
          WHERE id = (SELECT id FROM messages ORDER BY id LIMIT 1) RETURNING id",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    let words: String = sqlx::query_scalar("SELECT content_tsv::text FROM messages WHERE id = $1")
        .bind(message)
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(words, "'edited':1 'words':2");
    let again = seed::seed_scale(a.pool(), 0.1, &|_| {}).await.unwrap();
    assert!(!again.loaded, "loading twice must change nothing");
    assert_eq!(counts(a.pool()).await, got);
}
