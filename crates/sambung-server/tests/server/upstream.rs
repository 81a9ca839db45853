//! An upstream SambungChat database imported: one in the final shape (as `drizzle-kit push`
//! builds it from upstream's schema), filled the way upstream's code writes rows, and one
//! stopped at upstream's first migration; then an old password signs in and an old chat reads.

use sambung_db::secret::Cipher;
use sambung_db::upstream::{self, Options, Report, UpstreamError};
use sambung_files::fixtures::png;
use sambung_testkit::TestDb;
use serde_json::json;

use crate::common::TestApp;

/// Better Auth's scrypt hash of `correct horse`, as upstream stores it.
const OLD_HASH: &str = "0123456789abcdef0123456789abcdef:c967f8a4438e68448871a4fbb9b41b2aacaa6d9d98bf76d9740467af6a3305c6601235ae3706eaeaafd4c037201f630b3c3670caf74d8be1d22256672828773e";
/// Upstream's ENCRYPTION_KEY, and `sk-test-1234567890abcdef` sealed by its encryption.ts.
const UPSTREAM_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const SEALED_KEY: &str = "AAECAwQFBgcICQoLZHrJYtO1QqRy/Da7cDbrqIzfWKd+5SG+iEXy3wN3A7QV5wxTd3MBPQ==";

/// The test server's own key (common/mod.rs).
fn our_cipher() -> Cipher {
    Cipher::new(&[0xab; 32])
}

/// A picture as upstream's avatar upload keeps it.
fn picture(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

async fn final_shape() -> TestDb {
    let db = TestDb::empty().await;
    sqlx::raw_sql(include_str!(
        "../../../sambung-db/tests/fixtures/upstream-schema.sql"
    ))
    .execute(db.pool())
    .await
    .unwrap();
    // Rows as upstream's code writes them: Better Auth ids, lowercase ULIDs (and an older
    // uppercase one), an email in mixed case, times in UTC without a zone, pictures uploaded
    // as data URLs (a small one, and one of upstream's 2 MB that ours does not take).
    let (small, large) = (picture(&png(4, 4)), picture(&vec![7u8; 300 << 10]));
    sqlx::raw_sql(&format!(
        r#"
        INSERT INTO "user" (id, name, email, email_verified, image, created_at, updated_at) VALUES
          ('aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Rina', 'Rina.Old@Example.COM', true, '{small}', '2026-01-20 08:00:00', '2026-01-20 08:00:00'),
          ('zY8xW6vU4tS2rQ0pO8nM6lK4jI2hG0fE', 'Budi', 'budi@example.com', false, '{large}', '2026-01-21 08:00:00', '2026-01-21 08:00:00');
        INSERT INTO account (id, account_id, provider_id, user_id, password, created_at, updated_at) VALUES
          ('acc1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'credential', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', '{OLD_HASH}', now(), now()),
          ('acc2', 'keycloak-sub-budi', 'keycloak', 'zY8xW6vU4tS2rQ0pO8nM6lK4jI2hG0fE', NULL, now(), now());
        INSERT INTO folders (id, user_id, name, created_at) VALUES
          ('01kf0000000000000000000f01', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Work', '2026-01-20 08:01:00');
        INSERT INTO api_keys (id, user_id, provider, name, encrypted_key, key_last4, is_active, created_at, updated_at) VALUES
          ('01kf00000000000000000000k1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'openai', 'Personal', '{SEALED_KEY}', 'cdef', true, now(), now());
        INSERT INTO models (id, user_id, provider, model_id, name, api_key_id, is_active, settings, created_at, updated_at) VALUES
          ('01kf00000000000000000000m1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'openai', 'gpt-4o-mini', 'Mini', '01kf00000000000000000000k1', true, '{{"temperature": 0.4, "maxTokens": 2048, "topP": 1, "topK": 0, "frequencyPenalty": 0, "presencePenalty": 0}}', now(), now());
        INSERT INTO chats (id, user_id, title, model_id, folder_id, pinned, created_at, updated_at) VALUES
          ('01kf00000000000000000000c1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Trip to Bali', '01kf00000000000000000000m1', '01kf0000000000000000000f01', true, '2026-01-20 09:00:00', '2026-01-20 09:05:00'),
          ('01KF00000000000000000000C2', 'zY8xW6vU4tS2rQ0pO8nM6lK4jI2hG0fE', 'Budi''s chat', 'gpt-4o-mini', NULL, false, '2026-01-21 09:00:00', '2026-01-21 09:00:00'),
          ('01kf00000000000000000000c3', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Packing list', 'gpt-4o-mini', NULL, false, '2026-01-22 09:00:00', '2026-01-22 09:00:00');
        INSERT INTO messages (id, chat_id, role, content, metadata, created_at) VALUES
          ('01kf0000000000000000000m01', '01kf00000000000000000000c1', 'user', 'Where should we stay?', NULL, '2026-01-20 09:00:01'),
          ('01kf0000000000000000000m02', '01kf00000000000000000000c1', 'assistant', 'Ubud is calm.', '{{"model": "gpt-4o-mini", "tokens": 42, "finishReason": "stop"}}', '2026-01-20 09:00:05'),
          ('01kf0000000000000000000m03', '01kf00000000000000000000c1', 'user', 'And for surfing?', NULL, '2026-01-20 09:01:00'),
          ('01KF0000000000000000000M04', '01KF00000000000000000000C2', 'user', 'Halo', NULL, '2026-01-21 09:00:01');
        INSERT INTO prompts (id, user_id, name, content, variables, category, is_public, created_at, updated_at) VALUES
          ('01kf00000000000000000000p1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Translate', 'Translate {{text}} into {{language}}', '["text","language"]', 'writing', false, now(), now()),
          ('01kf00000000000000000000p2', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Summarise', 'Summarise {{text}}', '["text"]', 'writing', false, now(), now());
        -- Upstream saves version 1 as a prompt is made, and the state before each edit as the
        -- next: "Translate" was edited once, "Summarise" never.
        INSERT INTO prompt_versions (id, prompt_id, user_id, name, content, variables, category, version_number, change_reason, created_at) VALUES
          ('01kf0000000000000000000v01', '01kf00000000000000000000p1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Translate', 'Translate {{text}}', '["text"]', 'writing', 1, 'Initial version', '2026-01-20 08:30:00'),
          ('01kf0000000000000000000v02', '01kf00000000000000000000p1', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Translate', 'Translate {{text}}', '["text"]', 'writing', 2, 'Before edit', '2026-01-20 08:40:00'),
          ('01kf0000000000000000000v03', '01kf00000000000000000000p2', 'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH', 'Summarise', 'Summarise {{text}}', '["text"]', 'writing', 1, 'Initial version', '2026-01-20 08:50:00');
        "#
    ))
    .execute(db.pool())
    .await
    .unwrap();
    db
}

fn options(cipher: &Cipher) -> Options<'_> {
    Options {
        upstream_key: Some(UPSTREAM_KEY),
        cipher: Some(cipher),
        merge: false,
        dry_run: false,
    }
}

#[tokio::test]
async fn an_upstream_database_comes_in_whole_and_its_people_sign_in_with_old_passwords() {
    let app = TestApp::start().await;
    let upstream_db = final_shape().await;
    let cipher = our_cipher();

    let dry = upstream::import(
        upstream_db.pool(),
        app.pool(),
        &Options {
            dry_run: true,
            ..options(&cipher)
        },
    )
    .await
    .unwrap();
    assert_eq!((dry.users, dry.chats, dry.messages), (2, 3, 4));
    assert_eq!(
        app.row_counts()
            .await
            .iter()
            .find(|(t, _)| t == "users")
            .unwrap()
            .1,
        0,
        "a dry run keeps nothing"
    );

    let report = upstream::import(upstream_db.pool(), app.pool(), &options(&cipher))
        .await
        .unwrap();
    assert_eq!(
        report,
        Report {
            users: 2,
            accounts: 2,
            folders: 1,
            chats: 3,
            messages: 4,
            prompts: 2,
            prompt_versions: 1,
            api_keys: 1,
            models: 1,
            left_out: vec![
                (
                    "a model's setting this instance has not (topK, frequencyPenalty, presencePenalty) or out of range"
                        .into(),
                    1
                ),
                (
                    "a user's picture (larger than 100 KiB, or not a picture this instance shows)"
                        .into(),
                    1
                ),
            ],
            ..Report::default()
        }
    );
    let pictures: Vec<Option<String>> =
        sqlx::query_scalar("SELECT image FROM users ORDER BY name DESC")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        pictures,
        [Some(picture(&png(4, 4))), None],
        "a picture whole, or none"
    );
    let settings: serde_json::Value = sqlx::query_scalar("SELECT settings FROM models")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(
        settings,
        json!({"temperature": 0.4, "maxTokens": 2048, "topP": 1})
    );

    // The old password signs in (its scrypt hash as upstream stored it); the email is ours now.
    let rina = app.anonymous();
    let signed = rina
        .sign_in(json!({"email": "rina.old@example.com", "password": "correct horse"}))
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let chats = rina.get("/api/v1/chats?limit=50").await;
    let chat = chats.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "Trip to Bali")
        .cloned()
        .unwrap_or_else(|| panic!("{}", chats.text));
    assert!(chat["pinnedAt"].is_string(), "{chat}");
    let page = rina
        .get(&format!("/api/v1/chats/{}", chat["id"].as_str().unwrap()))
        .await;
    let said: Vec<&str> = page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        said,
        ["Where should we stay?", "Ubud is calm.", "And for surfing?"]
    );
    assert_eq!(page.body["messages"][1]["metadata"]["tokens"], 42);
    // The chat names the imported model (upstream named it by its id), which has its key.
    let models = rina.get("/api/v1/models").await;
    let model = &models.body["items"][0];
    assert_eq!(
        (model["name"].as_str(), model["isDefault"].as_bool()),
        (Some("Mini"), Some(true)),
        "{}",
        models.text
    );
    assert_eq!(page.body["model"], model["id"], "{}", page.text);
    // A chat naming it by its model string (as upstream's page does) names it too.
    let packing: String =
        sqlx::query_scalar("SELECT model FROM chats WHERE title = 'Packing list'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(packing, model["id"].as_str().unwrap());
    let keys = rina.get("/api/v1/api-keys").await;
    assert_eq!(keys.body["items"][0]["last4"], "cdef", "{}", keys.text);
    let (id, sealed): (uuid::Uuid, Vec<u8>) =
        sqlx::query_as("SELECT id, encrypted_key FROM api_keys")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        cipher.decrypt(&sealed, id.as_bytes()).unwrap(),
        b"sk-test-1234567890abcdef",
        "sealed again with our key"
    );
    let folder: String = sqlx::query_scalar("SELECT f.name FROM chats c JOIN folders f ON f.id = c.folder_id WHERE c.title = 'Trip to Bali'").fetch_one(app.pool()).await.unwrap();
    assert_eq!(folder, "Work");
    let versions: Vec<String> = sqlx::query_scalar("SELECT content FROM prompt_versions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(versions, ["Translate {text}"]);
    // The hash was rehashed at sign-in (Argon2id now).
    let hash: String = sqlx::query_scalar("SELECT a.password FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.email = 'rina.old@example.com'").fetch_one(app.pool()).await.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // Again: nothing new. Then upstream gains a message: only it comes.
    let before = app.row_counts().await;
    let again = upstream::import(upstream_db.pool(), app.pool(), &options(&cipher))
        .await
        .unwrap();
    assert_eq!(
        (again.users, again.chats, again.messages, again.api_keys),
        (0, 0, 0, 0),
        "{again:?}"
    );
    assert!(again.already_imported >= 12, "{again:?}");
    assert_eq!(app.row_counts().await, before);
    sqlx::query("INSERT INTO messages (id, chat_id, role, content, created_at) VALUES ('01kf0000000000000000000m05', '01kf00000000000000000000c1', 'assistant', 'Canggu.', '2026-01-20 09:01:30')")
        .execute(upstream_db.pool())
        .await
        .unwrap();
    let more = upstream::import(upstream_db.pool(), app.pool(), &options(&cipher))
        .await
        .unwrap();
    assert_eq!((more.chats, more.messages), (0, 1), "{more:?}");
    let page = rina
        .get(&format!("/api/v1/chats/{}", chat["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        page.body["messages"].as_array().unwrap().last().unwrap()["content"],
        "Canggu."
    );
    // What Rina deleted here stays deleted, and nothing refers to it.
    let chat_id = chat["id"].as_str().unwrap();
    assert_eq!(
        rina.delete(&format!("/api/v1/chats/{chat_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        rina.delete(&format!("/api/v1/api-keys/{id}")).await.status,
        204
    );
    let after = upstream::import(upstream_db.pool(), app.pool(), &options(&cipher))
        .await
        .unwrap();
    assert_eq!(
        (after.chats, after.messages, after.api_keys),
        (0, 0, 0),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_target_with_other_accounts_needs_merge_and_keys_need_upstreams_key() {
    let app = TestApp::start().await;
    let upstream_db = final_shape().await;
    let cipher = our_cipher();
    // Budi has an account here already.
    let budi = app.anonymous();
    let made = budi
        .post(
            "/api/auth/sign-up/email",
            json!({"name": "Budi", "email": "budi@example.com", "password": "password-of-budi"}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text);

    let refused = upstream::import(upstream_db.pool(), app.pool(), &options(&cipher)).await;
    assert!(
        matches!(refused, Err(UpstreamError::TargetHasData(1))),
        "{refused:?}"
    );

    let merged = upstream::import(
        upstream_db.pool(),
        app.pool(),
        &Options {
            merge: true,
            upstream_key: None,
            ..options(&cipher)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (merged.users, merged.users_merged, merged.api_keys),
        (1, 1, 0),
        "{merged:?}"
    );
    assert!(
        merged
            .left_out
            .iter()
            .any(|(why, n)| why.contains("no --encryption-key") && *n == 1),
        "{merged:?}"
    );
    // Budi's upstream chat joined his account; his password here still signs in.
    let signed = budi
        .sign_in(json!({"email": "budi@example.com", "password": "password-of-budi"}))
        .await;
    assert_eq!(signed.status, 200);
    let chats = budi.get("/api/v1/chats?limit=50").await;
    assert!(chats.text.contains("Budi's chat"), "{}", chats.text);
    // The account here keeps its own ways to sign in: upstream's are not added to it.
    let methods: Vec<String> = sqlx::query_scalar("SELECT a.provider_id FROM accounts a JOIN users u ON u.id = a.user_id WHERE u.email = 'budi@example.com'")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(methods, ["credential"]);
    assert!(
        merged
            .left_out
            .iter()
            .any(|(why, _)| why.contains("merged")),
        "{merged:?}"
    );

    // A key that is not upstream's is said to be so, before anything is written.
    let wrong = upstream::import(
        upstream_db.pool(),
        app.pool(),
        &Options {
            upstream_key: Some("c2hvcnQ="),
            merge: true,
            ..options(&cipher)
        },
    )
    .await;
    assert!(matches!(wrong, Err(UpstreamError::BadKey(_))), "{wrong:?}");
    // Not an upstream database at all.
    let ours = upstream::import(app.pool(), app.pool(), &options(&cipher)).await;
    assert!(
        matches!(ours, Err(UpstreamError::NotUpstream("user"))),
        "{ours:?}"
    );
}

/// A database stopped at upstream's first migration (serial ids, `messages.metadata` as
/// text, no folders, models or prompt versions, api_keys without a name): what is missing is
/// data absent, not an error.
#[tokio::test]
async fn a_database_from_early_in_upstreams_history_imports_what_it_has() {
    let app = TestApp::start().await;
    let early = TestDb::empty().await;
    sqlx::raw_sql(&format!(
        r#"
        CREATE TABLE "user" (id text PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, email_verified boolean NOT NULL DEFAULT false,
                             image text, created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
        CREATE TABLE account (id text PRIMARY KEY, account_id text NOT NULL, provider_id text NOT NULL, user_id text NOT NULL, password text,
                              created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL);
        CREATE TABLE api_keys (id serial PRIMARY KEY, user_id text NOT NULL, provider text NOT NULL, encrypted_key text NOT NULL, key_last4 text NOT NULL,
                               created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
        CREATE TABLE chats (id serial PRIMARY KEY, user_id text NOT NULL, title text NOT NULL, model_id text NOT NULL,
                            created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
        CREATE TABLE messages (id serial PRIMARY KEY, chat_id serial NOT NULL, role text NOT NULL, content text NOT NULL, metadata text,
                               created_at timestamp NOT NULL DEFAULT now());
        CREATE TABLE prompts (id serial PRIMARY KEY, user_id text NOT NULL, name text NOT NULL, content text NOT NULL, variables text DEFAULT '[]' NOT NULL,
                              category text DEFAULT 'general', is_public boolean DEFAULT false NOT NULL,
                              created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
        INSERT INTO "user" (id, name, email) VALUES ('u1', '', 'Early@Example.com');
        INSERT INTO account (id, account_id, provider_id, user_id, password, updated_at) VALUES ('a1', 'u1', 'credential', 'u1', '{OLD_HASH}', now());
        INSERT INTO api_keys (user_id, provider, encrypted_key, key_last4) VALUES ('u1', 'other', '{SEALED_KEY}', 'cdef');
        INSERT INTO chats (user_id, title, model_id) VALUES ('u1', '   ', 'gpt-4');
        INSERT INTO messages (chat_id, role, content, metadata, created_at) VALUES
          (1, 'user', 'First', '', '2026-01-12 10:00:00'),
          (1, 'assistant', 'Second', '{{"model":"gpt-4"}}', '2026-01-12 10:00:02'),
          (1, 'tool', 'Third', 'not json', '2026-01-12 10:00:03');
        INSERT INTO prompts (user_id, name, content, category) VALUES ('u1', 'Old', 'Say {{x}}', NULL);
        "#
    ))
    .execute(early.pool())
    .await
    .unwrap();
    let cipher = our_cipher();
    let report = upstream::import(early.pool(), app.pool(), &options(&cipher))
        .await
        .unwrap();
    assert_eq!(
        (
            report.users,
            report.chats,
            report.messages,
            report.prompts,
            report.api_keys,
            report.folders,
            report.models
        ),
        (1, 1, 2, 1, 1, 0, 0),
        "{report:?}"
    );
    assert!(
        report.left_out.iter().any(|(why, _)| why.contains("role")),
        "{report:?}"
    );
    let early_user = app.anonymous();
    let signed = early_user
        .sign_in(json!({"email": "early@example.com", "password": "correct horse"}))
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let chats = early_user.get("/api/v1/chats?limit=50").await;
    assert_eq!(
        chats.body["items"][0]["title"], "Imported chat",
        "{}",
        chats.text
    );
    let (provider, name): (String, String) = sqlx::query_as("SELECT provider, name FROM api_keys")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(
        (provider.as_str(), name.starts_with("API Key ")),
        ("custom", true)
    );
    let user_name: String = sqlx::query_scalar("SELECT name FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(user_name, "early");
}

/// The command line: a dry run reports and keeps nothing; upstream's database is opened read
/// only.
#[tokio::test]
async fn the_command_reports_a_dry_run() {
    let app = TestApp::start().await;
    let upstream_db = final_shape().await;
    let output = std::process::Command::new(sambung_testkit::sambung_executable())
        .args([
            "import",
            "upstream",
            "--from",
            &upstream_db.url(),
            "--dry-run",
        ])
        .env("DATABASE_URL", app.db.url())
        .env("UPSTREAM_ENCRYPTION_KEY", UPSTREAM_KEY)
        .env("ENCRYPTION_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Would import: 2 users"), "{stdout}");
    assert!(stdout.contains("1 API keys"), "{stdout}");
    assert!(stdout.contains("Dry run: nothing was kept."), "{stdout}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(users, 0);
}
