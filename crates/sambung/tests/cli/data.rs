//! `sambung db seed` and `sambung keys` through the command line.

use crate::common;

use base64::Engine as _;
use common::Sambung;
use sambung_db::api_keys::{self, Provider};
use sambung_db::secret::Cipher;
use sambung_testkit::{ScratchCluster, TestDb};

#[tokio::test]
async fn seed_prints_the_demo_login_once_and_loads_a_scale() {
    let db = TestDb::migrated().await;
    let sambung = Sambung::with_database(&db.url());
    let first = sambung.run(["db", "seed"]).success();
    assert!(
        first
            .stdout
            .contains("Sign in as demo@sambung.chat with password sambung-demo"),
        "{first}"
    );
    let again = sambung.run(["db", "seed"]).success();
    assert!(again.stdout.contains("there already"), "{again}");
    let scaled = sambung.run(["db", "seed", "--scale", "0.02"]).success();
    assert!(
        scaled
            .stdout
            .contains("20 users, 2 teams, 400 chats, 8000 messages"),
        "{scaled}"
    );
    assert!(scaled.stdout.contains("rows/s"), "{scaled}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(users, 22);
    let bad = sambung.run(["db", "seed", "--scale=0"]).failure();
    assert!(bad.stderr.contains("invalid scale"), "{bad}");
}

#[tokio::test]
async fn keys_rotate_re_encrypts_and_a_wrong_key_changes_nothing() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let user: sambung_db::UserId = sqlx::query_scalar(
        "INSERT INTO users (name, email) VALUES ('u', 'u@example.com') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let old = [3u8; 32];
    let key = api_keys::add_api_key(
        pool,
        &Cipher::new(&old),
        user,
        Provider::Openai,
        "work",
        "sk-test-0123456789",
    )
    .await
    .unwrap();
    let generated = Sambung::with_database(&db.url())
        .run(["keys", "generate"])
        .success();
    let new_key = generated.stdout.trim().to_owned();
    let new = base64::engine::general_purpose::STANDARD
        .decode(&new_key)
        .unwrap();
    assert_eq!(new.len(), 32);
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);

    let missing = Sambung::with_database(&db.url())
        .run(["keys", "rotate"])
        .failure();
    assert!(
        missing.stderr.contains("ENCRYPTION_KEY is not set"),
        "{missing}"
    );
    let wrong = Sambung::with_database(&db.url())
        .env("ENCRYPTION_KEY", &b64(&[9u8; 32]))
        .env("NEW_ENCRYPTION_KEY", &new_key)
        .run(["keys", "rotate"])
        .failure();
    assert!(
        wrong.stderr.contains("cannot decrypt") && wrong.stderr.contains("hint: "),
        "{wrong}"
    );
    assert_eq!(
        api_keys::reveal_api_key(pool, &Cipher::new(&old), user, key.id)
            .await
            .unwrap(),
        "sk-test-0123456789"
    );

    // The instance's connections are sealed under the same key, and rotated with it.
    let connection = sambung_db::connections::add_connection(
        pool,
        user,
        sambung_db::connections::ConnectionFields {
            name: "Shared",
            provider: "openai",
            base_url: None,
        },
        Some((&Cipher::new(&old), "sk-instance-0123456789")),
    )
    .await
    .unwrap();
    let rotated = Sambung::with_database(&db.url())
        .env("ENCRYPTION_KEY", &b64(&old))
        .env("NEW_ENCRYPTION_KEY", &new_key)
        .run(["keys", "rotate"])
        .success();
    assert!(
        rotated.stdout.contains("Re-encrypted 2 API keys"),
        "{rotated}"
    );
    let new: [u8; 32] = new.try_into().unwrap();
    assert_eq!(
        api_keys::reveal_api_key(pool, &Cipher::new(&new), user, key.id)
            .await
            .unwrap(),
        "sk-test-0123456789"
    );
    let (_, key) =
        sambung_db::connections::reveal_connection(pool, Some(&Cipher::new(&new)), connection.id)
            .await
            .unwrap();
    assert_eq!(key.as_deref(), Some("sk-instance-0123456789"));
}

#[tokio::test]
async fn the_operator_administers_accounts_when_no_admin_can_sign_in() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    sambung_db::seed::seed_sample(pool).await.unwrap();
    let sambung = Sambung::with_database(&db.url());
    let create = |email: &str, stdin: &str| {
        let mut child = sambung
            .command(["admin", "create-user", "--email", email])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        common::Run::from_output(child.wait_with_output().unwrap())
    };
    // The sample accounts are not people: the first account made is the admin.
    let made = create("Root@Example.com", "a-long-password\n").success();
    assert!(made.stdout.contains("root@example.com (admin)"), "{made}");
    let short = create("second@example.com", "short\n").failure();
    assert!(short.stderr.contains("password"), "{short}");
    let second = create("second@example.com", "another-password\n").success();
    assert!(second.stdout.contains("(user)"), "{second}");
    let taken = create("second@example.com", "another-password\n").failure();
    assert!(taken.stderr.contains("exists"), "{taken}");

    let last = sambung
        .run(["admin", "set-role", "root@example.com", "user"])
        .failure();
    assert!(last.stderr.contains("at least one admin"), "{last}");
    let wizard = sambung
        .run(["admin", "set-role", "second@example.com", "wizard"])
        .failure();
    assert!(wizard.stderr.contains("role"), "{wizard}");
    let nobody = sambung
        .run(["admin", "set-role", "nobody@example.com", "admin"])
        .failure();
    assert!(nobody.stderr.contains("no account"), "{nobody}");
    sambung
        .run(["admin", "set-role", "second@example.com", "admin"])
        .success();
    sambung
        .run(["admin", "set-role", "root@example.com", "user"])
        .success();

    // A lost phone: the operator turns the second factor off.
    let off = sambung
        .run(["admin", "disable-two-factor", "second@example.com"])
        .failure();
    assert!(off.stderr.contains("no two-factor sign-in"), "{off}");
    sqlx::query("UPDATE users SET two_factor_enabled = true WHERE email = 'second@example.com'")
        .execute(pool)
        .await
        .unwrap();
    let off = sambung
        .run(["admin", "disable-two-factor", "second@example.com"])
        .success();
    assert!(off.stdout.contains("is off"), "{off}");
    let enabled: bool = sqlx::query_scalar(
        "SELECT two_factor_enabled FROM users WHERE email = 'second@example.com'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!enabled);

    let reset = sambung
        .run([
            "admin",
            "reset-password",
            "root@example.com",
            "--url",
            "https://chat.example.org",
        ])
        .success();
    let link = reset.stdout.trim();
    assert!(
        link.starts_with("https://chat.example.org/api/auth/reset-password/"),
        "{reset}"
    );
    let token = link
        .trim_start_matches("https://chat.example.org/api/auth/reset-password/")
        .split('?')
        .next()
        .unwrap();
    let user = sambung_db::auth::reset_password(pool, token, "chosen-at-last")
        .await
        .unwrap();
    assert_eq!(user.email, "root@example.com");
    assert!(
        sambung_db::auth::check_password(pool, "root@example.com", "chosen-at-last")
            .await
            .unwrap()
            .is_some()
    );
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events ORDER BY at")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        actions.contains(&"admin.role-changed".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"admin.user-created".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn up_seeds_the_sample_data_on_first_run_only() {
    let scratch = ScratchCluster::new();
    let first = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(
        first.stdout.contains("Sign in as demo@sambung.chat"),
        "{first}"
    );
    let second = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(!second.stdout.contains("Seeded"), "{second}");
}

#[tokio::test]
async fn backup_and_restore_through_the_command_line() {
    let db = TestDb::migrated().await;
    sambung_db::seed::seed_sample(db.pool()).await.unwrap();
    // A file a user attached: its bytes are rows like any other, and come back with them.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    sqlx::query(
        "WITH f AS (INSERT INTO files (user_id, sha256, media_type, size, name)
                    SELECT id, sha256($1), 'text/plain', 3000, 'a.txt' FROM users LIMIT 1 RETURNING id)
         INSERT INTO file_chunks (file_id, seq, data) SELECT id, 0, $1 FROM f",
    )
    .bind(&bytes)
    .execute(db.pool())
    .await
    .unwrap();
    let sambung = Sambung::with_database(&db.url());
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let backed = sambung.run(["db", "backup"]).success();
    assert!(
        backed
            .stdout
            .starts_with(&format!("Backed up {tables} tables")),
        "{backed}"
    );
    let path = backed
        .stdout
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .to_owned();
    assert!(
        path.contains("/backups/sambungchat-") && path.ends_with(".dump"),
        "{path}"
    );
    let refused = sambung.run(["db", "restore", &path]).failure();
    assert!(
        refused.stderr.contains("already holds data") && refused.stderr.contains("--force"),
        "{refused}"
    );
    let restored = sambung.run(["db", "restore", &path, "--force"]).success();
    assert!(
        restored.stdout.contains("row counts match the manifest"),
        "{restored}"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(users, 2);
    let restored_file: Vec<u8> = sqlx::query_scalar("SELECT data FROM file_chunks")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(restored_file, bytes, "files come back with the backup");
    let physical = sambung
        .run(["db", "backup", "--physical", "/tmp/never"])
        .failure();
    assert!(physical.stderr.contains("managed cluster"), "{physical}");
}

#[tokio::test]
async fn bench_reports_json_with_a_baseline() {
    let db = TestDb::migrated().await;
    let sambung = Sambung::with_database(&db.url());
    let refused = sambung.run(["bench", "--seconds", "0.2"]).failure();
    assert!(
        refused.stderr.contains("no synthetic dataset")
            && refused.stderr.contains("db seed --scale"),
        "{refused}"
    );
    sambung.run(["db", "seed", "--scale", "0.02"]).success();
    let run = sambung
        .run([
            "bench",
            "--workload",
            "can-access-chat",
            "--seconds",
            "0.3",
            "--concurrency",
            "2",
            "--baseline",
            "--json",
        ])
        .success();
    let line: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    for key in [
        "workload",
        "ops",
        "seconds",
        "ops_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "errors",
    ] {
        assert!(line.get(key).is_some(), "{key} missing: {line}");
    }
    assert_eq!(line["workload"], "can-access-chat");
    assert_eq!(line["errors"], 0);
    assert!(line["ops"].as_u64().unwrap() > 0);
    assert!(
        line["ratio"].as_f64().unwrap() > 0.0 && line["baseline"]["ops"].as_u64().unwrap() > 0,
        "{line}"
    );
    // Through a server whose pool follows the concurrency: one connection must do (the
    // server's lease and listener once took it for good, and every request timed out).
    let served = sambung
        .run([
            "bench",
            "--workload",
            "http-list-chats",
            "--seconds",
            "0.3",
            "--concurrency",
            "1",
            "--json",
        ])
        .success();
    let line: serde_json::Value =
        serde_json::from_str(served.stdout.trim()).expect("one JSON object");
    assert_eq!(line["errors"], 0, "{line}");
    assert!(line["ops"].as_u64().unwrap() > 0, "{line}");
    let unknown = sambung.run(["bench", "--workload", "nope"]).failure();
    assert!(unknown.stderr.contains("unknown workload"), "{unknown}");
}

/// `sambung db restore` killed with SIGKILL midway commits nothing: the restore's transaction
/// lives on its own connection, which dies with it, and no child goes on without it.
#[tokio::test]
async fn a_killed_restore_commits_nothing() {
    let db = TestDb::migrated().await;
    sambung_db::seed::seed_sample(db.pool()).await.unwrap();
    let sambung = Sambung::with_database(&db.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.sql");
    sambung
        .run(["db", "backup", path.to_str().unwrap(), "--format", "sql"])
        .success();
    // The same backup, made slow after its tables were dropped and recreated.
    let text = std::fs::read_to_string(&path).unwrap();
    let slow = text.replacen("\nCOPY ", "\nSELECT pg_sleep(3);\nCOPY ", 1);
    assert_ne!(slow, text);
    std::fs::write(&path, slow).unwrap();
    // A row the backup lacks: a restore that committed would take it away.
    sqlx::query("INSERT INTO users (name, email) VALUES ('Late', 'late@example.com')")
        .execute(db.pool())
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();

    let mut child = sambung
        .command(["db", "restore", path.to_str().unwrap(), "--force"])
        .spawn()
        .unwrap();
    // Wait until the restore sleeps inside its transaction, then kill it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let sleeping: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3)%')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        if sleeping {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never reached its sleep"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // PostgreSQL notices the closed connection and rolls back; nothing is left working on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let working: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state <> 'idle'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        if working == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed restore's session lives on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn serve_never_makes_a_new_encryption_key_for_keys_sealed_under_another() {
    let db = TestDb::migrated().await;
    let user = sambung_testkit::insert_user(db.pool(), "u@example.com").await;
    api_keys::add_api_key(
        db.pool(),
        &Cipher::new(&[9u8; 32]),
        user.into(),
        Provider::Anthropic,
        "work",
        "sk-ant-0123456789",
    )
    .await
    .unwrap();
    let sambung = Sambung::with_database(&db.url());
    let refused = sambung.run(["serve", "--port", "0"]).failure();
    assert!(
        refused
            .stderr
            .contains("sealed under an ENCRYPTION_KEY this server does not have"),
        "{refused}"
    );
    let secrets = sambung.work_dir().join(".sambung/secrets.env");
    assert!(!secrets.exists(), "no key was generated");
}
