//! `sambung db migrate|rollback|status|schema|drop` and `up` against real PostgreSQL.

use crate::common;

use common::{Run, Sambung};
use sambung_testkit::{ScratchCluster, TestDb};

#[tokio::test]
async fn migrate_status_rollback_through_the_command_line() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());

    let status = sambung.run(["db", "status"]).success();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("0001_initial ") && l.trim_end().ends_with("pending")),
        "{status}"
    );
    let migrations = sambung_schema::Migrator::embedded().migrations().to_vec();
    let last = &migrations.last().unwrap().name;
    assert!(
        status
            .stdout
            .contains(&format!("0 applied, {} pending", migrations.len())),
        "{status}"
    );

    let migrated = sambung.run(["db", "migrate"]).success();
    assert!(
        migrated.stdout.starts_with("Applied 0001_initial (")
            && migrated.stdout.contains(&format!("Applied {last}")),
        "{migrated}"
    );
    let again = sambung.run(["db", "migrate"]).success();
    assert!(again.stdout.contains("up to date"), "{again}");

    let json = sambung.run(["db", "status", "--json"]).success();
    let status: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("status --json is JSON");
    assert_eq!(status["migrations"][0]["name"], "0001_initial");
    assert_eq!(status["migrations"][0]["state"], "applied");
    assert!(status["migrations"][0]["applied_at"].is_string());
    assert_eq!(status["drift"]["checked"], true);
    assert_eq!(status["drift"]["differences"].as_array().unwrap().len(), 0);

    let schema_before = sambung.run(["db", "schema", "--json"]).success().stdout;
    let rolled = sambung.run(["db", "rollback"]).success();
    assert!(
        rolled.stdout.contains(&format!("Rolled back {last}"))
            && !rolled.stdout.contains("0001_initial"),
        "one step by default: {rolled}"
    );
    // The rest, however many migrations there are.
    let rest = (status["migrations"].as_array().unwrap().len() - 1).to_string();
    let rolled = sambung
        .run(["db", "rollback", "--steps", rest.as_str()])
        .success();
    assert!(
        rolled.stdout.contains("Rolled back 0001_initial"),
        "{rolled}"
    );
    let empty: serde_json::Value =
        serde_json::from_str(&sambung.run(["db", "schema", "--json"]).success().stdout).unwrap();
    assert_eq!(empty["tables"].as_array().unwrap().len(), 0);
    let nothing = sambung.run(["db", "rollback", "--steps", "3"]).success();
    assert!(nothing.stdout.contains("Nothing to roll back"), "{nothing}");
    sambung.run(["db", "migrate"]).success();
    let schema_after = sambung.run(["db", "schema", "--json"]).success().stdout;
    assert_eq!(
        schema_before, schema_after,
        "migrate, rollback, migrate changed the schema"
    );

    let zero = sambung.run(["db", "rollback", "--steps", "0"]);
    assert_eq!(zero.code, Some(2), "--steps 0 is a usage error: {zero}");
}

#[tokio::test]
async fn schema_prints_text_json_and_mermaid() {
    let db = TestDb::migrated().await;
    let sambung = Sambung::with_database(&db.url());
    let text = sambung.run(["db", "schema"]).success();
    assert!(text.stdout.contains("table team_members"), "{text}");
    assert!(
        text.stdout
            .contains("index CREATE UNIQUE INDEX team_slug_idx ON public.teams USING btree (slug)"),
        "{text}"
    );
    let mermaid = sambung.run(["db", "schema", "--mermaid"]).success();
    assert!(
        mermaid.stdout.starts_with("erDiagram\n")
            && mermaid
                .stdout
                .contains("teams ||--o{ team_members : \"team_id\""),
        "{mermaid}"
    );
    let both = sambung.run(["db", "schema", "--json", "--mermaid"]);
    assert_eq!(both.code, Some(2), "{both}");
}

#[tokio::test]
async fn two_concurrent_migrate_processes_apply_once() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());
    let children: Vec<_> = (0..2)
        .map(|_| {
            sambung
                .command(["db", "migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from_output(c.wait_with_output().unwrap()).success())
        .collect();
    let applied = runs
        .iter()
        .filter(|r| r.stdout.contains("Applied 0001_initial"))
        .count();
    let waited = runs
        .iter()
        .filter(|r| r.stdout.contains("up to date"))
        .count();
    assert_eq!((applied, waited), (1, 1), "{}\n{}", runs[0], runs[1]);
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(tables, 33, "32 tables and the migrations table");
}

#[tokio::test]
async fn drop_needs_force_without_a_terminal_and_then_drops_everything() {
    let db = TestDb::migrated().await;
    sqlx::query("INSERT INTO users (name, email) VALUES ('Keep', 'keep@example.com')")
        .execute(db.pool())
        .await
        .unwrap();
    let sambung = Sambung::with_database(&db.url());
    let refused = sambung.run(["db", "drop"]).failure();
    assert!(
        refused.stderr.contains("without confirmation") && refused.stderr.contains("--force"),
        "{refused}"
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(users, 1, "a refused drop must not touch the data");

    let dropped = sambung.run(["db", "drop", "--force"]).success();
    assert!(dropped.stdout.contains("Dropped"), "{dropped}");
    let objects: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(objects, 0);
    let again = sambung.run(["db", "drop", "--force"]).success();
    assert!(again.stdout.contains("Nothing to drop"), "{again}");
}

#[tokio::test]
async fn a_modified_migration_is_reported_by_status_and_stops_migrate() {
    let db = TestDb::migrated().await;
    sqlx::query("UPDATE _sambung_migrations SET checksum = 'tampered' WHERE version = 1")
        .execute(db.pool())
        .await
        .unwrap();
    let sambung = Sambung::with_database(&db.url());
    let status = sambung.run(["db", "status"]).success();
    assert!(
        status.stdout.contains("MODIFIED since applied") && status.stdout.contains("1 modified"),
        "{status}"
    );
    let failed = sambung.run(["db", "migrate"]).failure();
    assert!(
        failed
            .stderr
            .starts_with("error: applied migration 0001_initial has been modified"),
        "{failed}"
    );
    assert!(failed.stderr.contains("hint: "), "{failed}");
}

#[tokio::test]
async fn up_starts_and_migrates_the_managed_cluster() {
    let scratch = ScratchCluster::new();
    let up = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(
        up.stdout.contains("PostgreSQL started") && up.stdout.contains("Applied 0001_initial"),
        "{up}"
    );
    let again = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(again.stdout.contains("up to date"), "{again}");
    let status = Sambung::managed(&scratch).run(["db", "status"]).success();
    let migrations = sambung_schema::Migrator::embedded().migrations().len();
    assert!(
        status
            .stdout
            .contains(&format!("{migrations} applied, 0 pending")),
        "{status}"
    );
}

#[tokio::test]
async fn status_reports_drift_from_the_applied_migrations() {
    let db = TestDb::migrated().await;
    sqlx::raw_sql("ALTER TABLE users ADD COLUMN hack text; DROP INDEX tag_name_idx;")
        .execute(db.pool())
        .await
        .unwrap();
    let status = Sambung::with_database(&db.url())
        .run(["db", "status"])
        .success();
    assert!(status.stdout.contains("DRIFT"), "{status}");
    assert!(status.stdout.contains("+ column users.hack"), "{status}");
    assert!(status.stdout.contains("- index tag_name_idx"), "{status}");
}

/// Output to a closed pipe ends quietly, to a full disk with one clear line: never a panic.
#[tokio::test]
async fn unwritable_output_ends_cleanly() {
    let db = TestDb::migrated().await;
    let sambung = Sambung::with_database(&db.url());
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let closed = sambung
        .command(["db", "schema", "--json"])
        .stdout(std::process::Stdio::from(write_end))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let full = sambung
        .command(["db", "schema", "--json"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write the output: No space left on device"),
        "{stderr}"
    );
}
