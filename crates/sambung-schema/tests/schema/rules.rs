//! The schema's rules as executable facts, on a migrated database: every CHECK rejects what it
//! must, every cascade and SET NULL happens, every uniqueness holds, updated_at follows updates.

use sambung_testkit::TestDb;
use sqlx::{PgPool, Row};

/// Ids travel as text: the tests need no uuid type of their own.
type Uuid = String;

async fn user(pool: &PgPool, email: &str) -> Uuid {
    sambung_testkit::insert_user(pool, email).await.to_string()
}

async fn team(pool: &PgPool, slug: &str, creator: &Uuid) -> Uuid {
    sqlx::query_scalar("INSERT INTO teams (name, slug, created_by) VALUES ('Team', $1, $2::uuid) RETURNING id::text")
        .bind(slug)
        .bind(creator)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn chat(pool: &PgPool, owner: &Uuid, team: Option<&Uuid>, folder: Option<&Uuid>) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO chats (user_id, team_id, folder_id, title, model, provider)
         VALUES ($1::uuid, $2::uuid, $3::uuid, 'Hello AI', 'gpt-4', 'openai') RETURNING id::text",
    )
    .bind(owner)
    .bind(team)
    .bind(folder)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Run `sql` and return the name of the constraint that refused it.
async fn violated(pool: &PgPool, sql: &str) -> String {
    let err = sqlx::raw_sql(sql).execute(pool).await.expect_err(sql);
    let db = err
        .as_database_error()
        .unwrap_or_else(|| panic!("{sql}: {err}"));
    db.constraint()
        .unwrap_or_else(|| panic!("{sql}: no constraint in {db}"))
        .to_owned()
}

#[tokio::test]
async fn checks_reject_what_they_must() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "ana@example.com").await;
    let t = team(pool, "core-team", &u).await;

    let cases: Vec<(String, &str)> = vec![
        (format!("INSERT INTO folders (user_id, team_id, name) VALUES ('{u}', '{t}', 'both')"), "folder_scope_check"),
        ("INSERT INTO folders (name) VALUES ('neither')".into(), "folder_scope_check"),
        (format!("INSERT INTO tags (user_id, team_id, name) VALUES ('{u}', '{t}', 'both')"), "tag_scope_check"),
        (format!("INSERT INTO tags (user_id, name, color) VALUES ('{u}', 'red', 'red')"), "tags_color_hex"),
        (format!("INSERT INTO team_members (team_id, user_id, role) VALUES ('{t}', '{u}', 'owner')"), "team_members_role_check"),
        (format!("INSERT INTO team_invites (team_id, email, role, token, invited_by, expires_at) VALUES ('{t}', 'b@example.com', 'root', 'tok', '{u}', now())"), "team_invites_role_check"),
        (format!("INSERT INTO api_keys (user_id, provider, encrypted_key, key_last4) VALUES ('{u}', 'mistral', decode(repeat('ab', 40), 'hex'), 'abcd')"), "api_keys_provider_check"),
        (format!("INSERT INTO api_keys (user_id, provider, encrypted_key, key_last4) VALUES ('{u}', 'openai', convert_to('sk-plain', 'UTF8'), 'lain')"), "api_keys_encrypted_shape"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('T', 'Bad_Slug', '{u}')"), "team_slug_format"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('T', 'ab', '{u}')"), "team_slug_format"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('T', '-edge', '{u}')"), "team_slug_format"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('T', 'double--hyphen', '{u}')"), "team_slug_format"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('T', '{}', '{u}')", "a".repeat(49)), "team_slug_format"),
        ("INSERT INTO users (name, email) VALUES ('X', 'Upper@Example.com')".into(), "users_email_normalised"),
        (format!("INSERT INTO messages (chat_id, role, content) VALUES ('{}', 'robot', 'hi')", chat(pool, &u, None, None).await), "messages_role_check"),
        (format!("INSERT INTO prompts (user_id, name, content, variables) VALUES ('{u}', 'p', 'c', '{{}}')"), "prompts_variables_array"),
        (format!("INSERT INTO accounts (user_id, account_id, provider_id) VALUES ('{u}', 'a', 'credential')"), "accounts_credential_password"),
        (format!("INSERT INTO chats (user_id, title, model, provider, is_public) VALUES ('{u}', 't', 'm', 'p', true)"), "chats_public_has_token"),
        (format!("INSERT INTO chats (user_id, title, model, provider) VALUES ('{u}', '   ', 'm', 'p')"), "chats_title_not_blank"),
    ];
    for (sql, constraint) in cases {
        assert_eq!(violated(pool, &sql).await, constraint, "{sql}");
    }

    // And the valid neighbours of those rows pass.
    sqlx::raw_sql(&format!(
        "INSERT INTO folders (user_id, name) VALUES ('{u}', 'personal');
         INSERT INTO folders (team_id, name) VALUES ('{t}', 'team');
         INSERT INTO tags (name, color) VALUES ('public', '#FF5733');
         INSERT INTO tags (user_id, name) VALUES ('{u}', 'mine');
         INSERT INTO tags (team_id, name) VALUES ('{t}', 'ours');
         INSERT INTO teams (name, slug, created_by) VALUES ('T', 'a1-b2-c3', '{u}');
         INSERT INTO api_keys (user_id, provider, encrypted_key, key_last4) VALUES ('{u}', 'ollama', decode(repeat('ab', 40), 'hex'), 'abcd');"
    ))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn deleting_a_user_cascades_to_everything_they_own() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "gone@example.com").await;
    let other = user(pool, "stays@example.com").await;
    let c = chat(pool, &u, None, None).await;
    let kept = chat(pool, &other, None, None).await;
    sqlx::raw_sql(&format!(
        "INSERT INTO messages (chat_id, role, content) VALUES ('{c}', 'user', 'Hello, AI!'), ('{kept}', 'user', 'kept');
         INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ('{u}', 'h1', now() + interval '1 day');
         INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ('{u}', '{u}', 'credential', '$argon2id$x');
         INSERT INTO api_keys (user_id, provider, encrypted_key, key_last4) VALUES ('{u}', 'openai', decode(repeat('ab', 40), 'hex'), 'wxyz');
         INSERT INTO prompts (user_id, name, content) VALUES ('{u}', 'Code Review', 'Review {{code}}');"
    ))
    .execute(pool)
    .await
    .unwrap();

    sqlx::query("DELETE FROM users WHERE id = $1::uuid")
        .bind(&u)
        .execute(pool)
        .await
        .unwrap();
    for table in ["chats", "sessions", "accounts", "api_keys", "prompts"] {
        let left = count(
            pool,
            &format!("SELECT count(*) FROM {table} WHERE user_id = '{u}'"),
        )
        .await;
        assert_eq!(left, 0, "{table} rows of a deleted user remain");
    }
    assert_eq!(
        count(
            pool,
            &format!("SELECT count(*) FROM messages WHERE chat_id = '{c}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM messages").await,
        1,
        "another user's message went too"
    );
    assert_eq!(count(pool, "SELECT count(*) FROM chats").await, 1);
}

#[tokio::test]
async fn deleting_a_folder_keeps_its_chats_and_removes_subfolders() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "f@example.com").await;
    let parent: Uuid = sqlx::query_scalar(&format!(
        "INSERT INTO folders (user_id, name) VALUES ('{u}', 'parent') RETURNING id::text"
    ))
    .fetch_one(pool)
    .await
    .unwrap();
    let child: Uuid = sqlx::query_scalar(&format!(
        "INSERT INTO folders (user_id, name, parent_id) VALUES ('{u}', 'child', '{parent}') RETURNING id::text"
    ))
    .fetch_one(pool)
    .await
    .unwrap();
    let in_parent = chat(pool, &u, None, Some(&parent)).await;
    let in_child = chat(pool, &u, None, Some(&child)).await;

    sqlx::query("DELETE FROM folders WHERE id = $1::uuid")
        .bind(&parent)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        count(pool, "SELECT count(*) FROM folders").await,
        0,
        "the subfolder must go with its parent"
    );
    let folders: Vec<Option<String>> =
        sqlx::query_scalar("SELECT folder_id::text FROM chats WHERE id IN ($1::uuid, $2::uuid)")
            .bind(&in_parent)
            .bind(&in_child)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        folders,
        vec![None, None],
        "chats must stay, out of any folder"
    );
}

#[tokio::test]
async fn deleting_a_team_removes_its_chats_folders_tags_invites_members_and_redirects() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "admin@example.com").await;
    let t = team(pool, "doomed", &u).await;
    let keep = team(pool, "kept", &u).await;
    let c = chat(pool, &u, Some(&t), None).await;
    chat(pool, &u, Some(&keep), None).await;
    sqlx::raw_sql(&format!(
        "INSERT INTO team_members (team_id, user_id, role) VALUES ('{t}', '{u}', 'admin'), ('{keep}', '{u}', 'admin');
         INSERT INTO team_invites (team_id, email, token, invited_by, expires_at) VALUES ('{t}', 'x@example.com', 'tok1', '{u}', now());
         INSERT INTO slug_redirects (old_slug, new_slug, team_id) VALUES ('old-doomed', 'doomed', '{t}');
         INSERT INTO folders (team_id, name) VALUES ('{t}', 'team folder');
         INSERT INTO tags (team_id, name) VALUES ('{t}', 'team tag');
         INSERT INTO messages (chat_id, role, content) VALUES ('{c}', 'user', 'hi');"
    ))
    .execute(pool)
    .await
    .unwrap();

    sqlx::query("DELETE FROM teams WHERE id = $1::uuid")
        .bind(&t)
        .execute(pool)
        .await
        .unwrap();
    for table in [
        "chats",
        "folders",
        "tags",
        "team_invites",
        "team_members",
        "slug_redirects",
    ] {
        let left = count(
            pool,
            &format!("SELECT count(*) FROM {table} WHERE team_id = '{t}'"),
        )
        .await;
        assert_eq!(left, 0, "{table} rows of a deleted team remain");
    }
    assert_eq!(count(pool, "SELECT count(*) FROM messages").await, 0);
    assert_eq!(
        count(
            pool,
            &format!("SELECT count(*) FROM chats WHERE team_id = '{keep}'")
        )
        .await,
        1
    );
    assert_eq!(count(pool, "SELECT count(*) FROM team_members").await, 1);
    assert_eq!(
        count(pool, "SELECT count(*) FROM users").await,
        1,
        "the creator must survive"
    );
}

#[tokio::test]
async fn uniqueness_holds() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "one@example.com").await;
    let t = team(pool, "unique-slug", &u).await;
    let c1 = chat(pool, &u, None, None).await;
    let c2 = chat(pool, &u, None, None).await;
    sqlx::raw_sql(&format!(
        "INSERT INTO team_members (team_id, user_id) VALUES ('{t}', '{u}');
         INSERT INTO team_invites (team_id, email, token, invited_by, expires_at) VALUES ('{t}', 'a@example.com', 'same-token', '{u}', now());
         UPDATE chats SET public_token = 'same-public', is_public = true WHERE id = '{c1}';
         INSERT INTO tags (user_id, name) VALUES ('{u}', 't');
         INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ('{u}', 'acc', 'credential', 'h');"
    ))
    .execute(pool)
    .await
    .unwrap();
    let tag: Uuid = sqlx::query_scalar("SELECT id::text FROM tags")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO chat_tags (chat_id, tag_id) VALUES ($1::uuid, $2::uuid)")
        .bind(&c1)
        .bind(&tag)
        .execute(pool)
        .await
        .unwrap();

    let cases = [
        ("INSERT INTO users (name, email) VALUES ('Dup', 'one@example.com')".to_owned(), "users_email_key"),
        (format!("INSERT INTO teams (name, slug, created_by) VALUES ('Dup', 'unique-slug', '{u}')"), "team_slug_idx"),
        (format!("INSERT INTO team_members (team_id, user_id, role) VALUES ('{t}', '{u}', 'admin')"), "team_member_team_user_idx"),
        (format!("INSERT INTO team_invites (team_id, email, token, invited_by, expires_at) VALUES ('{t}', 'b@example.com', 'same-token', '{u}', now())"), "team_invite_token_idx"),
        (format!("UPDATE chats SET public_token = 'same-public' WHERE id = '{c2}'"), "chats_public_token_key"),
        (format!("INSERT INTO chat_tags (chat_id, tag_id) VALUES ('{c1}', '{tag}')"), "chat_tags_pkey"),
        (format!("INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ('{u}', 'acc', 'credential', 'h2')"), "accounts_provider_account_key"),
        (format!("INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ('{u}', 'x', now()), ('{u}', 'x', now())"), "sessions_token_hash_key"),
    ];
    for (sql, constraint) in cases {
        assert_eq!(violated(pool, &sql).await, constraint, "{sql}");
    }
}

#[tokio::test]
async fn updated_at_follows_every_real_update() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let u = user(pool, "time@example.com").await;
    let c = chat(pool, &u, None, None).await;
    // Backdate, as an old row would be.
    sqlx::query("ALTER TABLE chats DISABLE TRIGGER chats_set_updated_at")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE chats SET updated_at = '2020-01-01' WHERE id = $1::uuid")
        .bind(&c)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE chats ENABLE TRIGGER chats_set_updated_at")
        .execute(pool)
        .await
        .unwrap();

    let stamp = |pool: PgPool, c: String| async move {
        sqlx::query(
            "SELECT updated_at < now() - interval '1 year' AS old FROM chats WHERE id = $1::uuid",
        )
        .bind(c)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<bool, _>("old")
    };
    sqlx::query("UPDATE chats SET title = title WHERE id = $1::uuid")
        .bind(&c)
        .execute(pool)
        .await
        .unwrap();
    assert!(
        stamp(pool.clone(), c.clone()).await,
        "a no-op update must keep updated_at"
    );
    sqlx::query("UPDATE chats SET title = 'Renamed' WHERE id = $1::uuid")
        .bind(&c)
        .execute(pool)
        .await
        .unwrap();
    assert!(
        !stamp(pool.clone(), c.clone()).await,
        "a real update must bump updated_at"
    );

    let tables_with_trigger: i64 = count(
        pool,
        "SELECT count(*) FROM information_schema.columns c
          JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE c.table_schema = current_schema() AND c.column_name = 'updated_at'
            AND t.table_type = 'BASE TABLE'
            AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.table_name::regclass
                             AND t.tgname = c.table_name || '_set_updated_at')",
    )
    .await;
    assert_eq!(
        tables_with_trigger, 0,
        "a table with updated_at lacks its trigger"
    );
}

#[tokio::test]
async fn ids_default_to_time_ordered_uuid_v7() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT sambung_uuid_v7()::text FROM generate_series(1, 50)")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(
        ids.iter().all(|id| id.as_bytes()[14] == b'7'),
        "not version 7: {ids:?}"
    );
    assert!(
        ids.iter()
            .all(|id| matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b')),
        "wrong variant: {ids:?}"
    );
    // The first 48 bits are the time in ms: ids made later never sort earlier.
    let prefixes: Vec<&str> = ids.iter().map(|id| &id[..13]).collect();
    assert!(
        prefixes.windows(2).all(|w| w[0] <= w[1]),
        "not time-ordered: {prefixes:?}"
    );
    let u = user(pool, "v7@example.com").await;
    assert_eq!(u.as_bytes()[14], b'7', "a plain INSERT must get a v7 id");
}
