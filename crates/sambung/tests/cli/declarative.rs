//! `sambung db generate|push|check` through the command line, on copies of the repository's
//! schema files and migrations.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Run, Sambung};
use sambung_testkit::TestDb;
use sqlx::PgPool;

/// A copy of the repository's schema files and migrations to edit.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn copy() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sambung-schema");
        for sub in ["schema", "migrations"] {
            copy_dir(&source.join(sub), &dir.path().join(sub));
        }
        Tree { dir }
    }

    fn schema_dir(&self) -> PathBuf {
        self.dir.path().join("schema")
    }

    fn migrations_dir(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--schema-dir".into(),
            self.schema_dir().display().to_string(),
            "--migrations-dir".into(),
            self.migrations_dir().display().to_string(),
        ]
    }

    /// Edit one schema file.
    fn edit(&self, file: &str, find: &str, replace: &str) {
        let path = self.schema_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(find), "{file} lacks {find:?}");
        std::fs::write(&path, text.replacen(find, replace, 1)).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn run(sambung: &Sambung, command: &[&str], tree: &Tree, extra: &[&str]) -> Run {
    let args = tree.args();
    let all: Vec<&str> = command
        .iter()
        .copied()
        .chain(args.iter().map(String::as_str))
        .chain(extra.iter().copied())
        .collect();
    sambung.run(all)
}

/// How many migrations the repository has.
fn embedded_migrations() -> usize {
    sambung_schema::Migrator::embedded().migrations().len()
}

/// The name `generate` gives the next migration called `name`.
fn next(name: &str) -> String {
    format!("{:04}_{name}", embedded_migrations() + 1)
}

async fn scratch_databases_of(pool: &PgPool, pid: u32) -> Vec<String> {
    sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
        .bind(format!("sambung_scratch_{pid}_"))
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn check_passes_on_the_repository_and_fails_on_an_unmigrated_edit() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());
    let tree = Tree::copy();
    let ok = run(&sambung, &["db", "check"], &tree, &[]).success();
    assert!(
        ok.stdout.starts_with(&format!(
            "OK: the {} migrations build exactly",
            embedded_migrations()
        )),
        "{ok}"
    );

    tree.edit(
        "08_prompt.sql",
        "  is_public  boolean",
        "  pinned     boolean NOT NULL DEFAULT false,\n  is_public  boolean",
    );
    let failed = run(&sambung, &["db", "check"], &tree, &[]).failure();
    assert!(
        failed.stderr.contains("disagree") && failed.stderr.contains("+ column prompts.pinned"),
        "{failed}"
    );
    assert!(failed.stderr.contains("sambung db generate"), "{failed}");
}

#[tokio::test]
async fn generate_writes_a_verified_migration_once() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());
    let tree = Tree::copy();
    let none = run(&sambung, &["db", "generate"], &tree, &[]).success();
    assert!(none.stdout.contains("No schema changes"), "{none}");

    tree.edit(
        "01_auth.sql",
        "  image          text,\n",
        "  image          text,\n  timezone       text NOT NULL DEFAULT 'UTC',\n",
    );
    tree.edit(
        "07_message.sql",
        "CREATE INDEX message_created_at_idx",
        "CREATE INDEX message_role_idx ON messages (role);\nCREATE INDEX message_created_at_idx",
    );
    let wrote = run(
        &sambung,
        &["db", "generate"],
        &tree,
        &["--name", "User timezone"],
    )
    .success();
    assert!(
        wrote.stdout.contains(&next("user_timezone")) && wrote.stdout.contains("verified"),
        "{wrote}"
    );
    assert!(
        wrote
            .stdout
            .contains("lint [require-concurrent-index-creation]"),
        "{wrote}"
    );
    let up = std::fs::read_to_string(
        tree.migrations_dir()
            .join(next("user_timezone"))
            .join("up.sql"),
    )
    .unwrap();
    let down = std::fs::read_to_string(
        tree.migrations_dir()
            .join(next("user_timezone"))
            .join("down.sql"),
    )
    .unwrap();
    assert!(
        up.contains("ALTER TABLE users ADD COLUMN timezone text DEFAULT 'UTC'::text NOT NULL;"),
        "{up}"
    );
    assert!(
        up.contains("CREATE INDEX message_role_idx ON public.messages USING btree (role);"),
        "{up}"
    );
    assert!(
        down.contains("DROP INDEX message_role_idx;")
            && down.contains("ALTER TABLE users DROP COLUMN timezone;"),
        "{down}"
    );

    let again = run(&sambung, &["db", "generate"], &tree, &[]).success();
    assert!(again.stdout.contains("No schema changes"), "{again}");
    run(&sambung, &["db", "check"], &tree, &[]).success();
}

#[tokio::test]
async fn an_ambiguous_rename_is_refused_without_a_hint_and_done_with_one() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());
    let tree = Tree::copy();
    tree.edit("04_tag.sql", "  color      text,", "  colour     text,");
    tree.edit("04_tag.sql", "CHECK (color ~", "CHECK (colour ~");
    let refused = run(&sambung, &["db", "generate"], &tree, &[]).failure();
    assert!(
        refused.stderr.contains("ambiguous")
            && refused
                .stderr
                .contains("column(s) color disappear while colour appear"),
        "{refused}"
    );
    assert!(refused.stderr.contains("--rename"), "{refused}");
    assert_eq!(
        std::fs::read_dir(tree.migrations_dir()).unwrap().count(),
        embedded_migrations(),
        "a refused generate wrote a migration"
    );

    let renamed = run(
        &sambung,
        &["db", "generate"],
        &tree,
        &["--rename", "tags.color=colour", "--name", "colour"],
    )
    .success();
    assert!(renamed.stdout.contains(&next("colour")), "{renamed}");
    let up =
        std::fs::read_to_string(tree.migrations_dir().join(next("colour")).join("up.sql")).unwrap();
    assert!(
        up.contains("ALTER TABLE tags RENAME COLUMN color TO colour;"),
        "{up}"
    );
    assert!(!up.contains("DROP COLUMN"), "{up}");
}

fn spawn_generate(sambung: &Sambung, tree: &Tree) -> std::process::Child {
    let args = tree.args();
    sambung
        .command(
            ["db", "generate"]
                .into_iter()
                .chain(args.iter().map(String::as_str)),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn generate_leaves_no_scratch_database_on_error_or_interrupt() {
    let db = TestDb::empty().await;
    let sambung = Sambung::with_database(&db.url());
    let tree = Tree::copy();
    tree.edit(
        "09_api_key.sql",
        "CREATE INDEX api_key_user_id_idx",
        "CREATE INDEX broken_idx ON no_such_table (x);\nCREATE INDEX api_key_user_id_idx",
    );
    let child = spawn_generate(&sambung, &tree);
    let pid = child.id();
    let failed = Run::from_output(child.wait_with_output().unwrap()).failure();
    assert!(
        failed.stderr.contains("schema file 09_api_key.sql failed")
            && failed.stderr.contains("no_such_table"),
        "{failed}"
    );
    assert!(
        scratch_databases_of(db.pool(), pid).await.is_empty(),
        "an error left scratch databases"
    );

    // A slow schema file, interrupted with Ctrl-C (SIGINT) while it runs.
    let slow = Tree::copy();
    slow.edit(
        "09_api_key.sql",
        "CREATE INDEX api_key_user_id_idx",
        "SELECT pg_sleep(5);\nCREATE INDEX api_key_user_id_idx",
    );
    let child = spawn_generate(&sambung, &slow);
    let pid = child.id();
    let mut seen = false;
    for _ in 0..100 {
        if !scratch_databases_of(db.pool(), pid).await.is_empty() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the scratch databases never appeared");
    tokio::time::sleep(Duration::from_millis(300)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = Run::from_output(child.wait_with_output().unwrap()).failure();
    assert!(interrupted.stderr.contains("interrupted"), "{interrupted}");
    let left = scratch_databases_of(db.pool(), pid).await;
    assert!(
        left.is_empty(),
        "Ctrl-C left scratch databases {left:?}: {interrupted}"
    );
}

#[tokio::test]
async fn push_refuses_to_lose_data_without_force_and_then_does_what_it_printed() {
    let db = TestDb::migrated().await;
    sqlx::raw_sql(
        "INSERT INTO users (name, email, image) VALUES ('Ana', 'ana@example.com', 'a.png'), ('Budi', 'budi@example.com', NULL);",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let sambung = Sambung::with_database(&db.url());
    let tree = Tree::copy();
    tree.edit("01_auth.sql", "  image          text,\n", "");
    let schema_dir = tree.schema_dir().display().to_string();
    let push = |extra: &[&str]| {
        let args: Vec<&str> = ["db", "push", "--schema-dir", &schema_dir]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        sambung.run(args)
    };

    let refused = push(&[]).failure();
    assert!(
        refused
            .stdout
            .contains("warning: drops column users.image and its values (1 rows concerned)"),
        "{refused}"
    );
    assert!(
        refused.stderr.contains("refusing to push") && refused.stderr.contains("--force"),
        "{refused}"
    );
    let images: i64 = sqlx::query_scalar("SELECT count(image) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(images, 1, "a refused push changed the data");

    let dry = push(&["--dry-run"]).success();
    assert!(
        dry.stdout.contains("ALTER TABLE users DROP COLUMN image;"),
        "{dry}"
    );
    let images: i64 = sqlx::query_scalar("SELECT count(image) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(images, 1, "a dry run changed the data");

    let forced = push(&["--force"]).success();
    assert!(forced.stdout.contains("Pushed 1 changes"), "{forced}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(users, 2, "push lost rows");
    let column: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'image')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(!column);
    let nothing = push(&[]).success();
    assert!(nothing.stdout.contains("No changes"), "{nothing}");
}
