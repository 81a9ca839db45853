//! The schema diff through `generate`, on real PostgreSQL: a matrix of schema edits, each
//! turned into a migration whose up script is verified to give the target schema exactly and
//! whose down script gives the source back exactly (`generate` refuses otherwise).

use sambung_schema::{
    ambiguities, apply_push, apply_schema_files, generate, leftover_scratch_databases, live_schema,
    plan_push, GeneratedMigration, Renames, ScratchDb, Shadows, SourceTree, WorkflowError,
};
use sambung_testkit::TestDb;
use sqlx::PgPool;
use tokio::sync::Mutex;

/// Tests here look for leftover scratch databases: they must not see each other's.
static SHADOW_LOCK: Mutex<()> = Mutex::const_new(());

const BASE: &str = "
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TABLE authors (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE notes (
  id bigint PRIMARY KEY,
  author_id bigint,
  body text,
  score integer DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT notes_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE CASCADE
);
CREATE INDEX notes_author_idx ON notes (author_id);
CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
";

/// A source tree whose only migration creates `source` and whose schema file says `target`.
fn tree(source: &str, target: &str) -> (tempfile::TempDir, SourceTree) {
    let dir = tempfile::tempdir().unwrap();
    let tree = SourceTree {
        schema_dir: dir.path().join("schema"),
        migrations_dir: dir.path().join("migrations"),
    };
    std::fs::create_dir_all(tree.migrations_dir.join("0001_base")).unwrap();
    std::fs::create_dir_all(&tree.schema_dir).unwrap();
    std::fs::write(tree.migrations_dir.join("0001_base/up.sql"), source).unwrap();
    std::fs::write(tree.migrations_dir.join("0001_base/down.sql"), "").unwrap();
    std::fs::write(tree.schema_dir.join("schema.sql"), target).unwrap();
    (dir, tree)
}

async fn generated(
    admin: &TestDb,
    source: &str,
    target: &str,
    renames: &Renames,
) -> Option<GeneratedMigration> {
    let (_dir, tree) = tree(source, target);
    let shadows = Shadows::build(admin.connect_options(), &tree)
        .await
        .unwrap();
    let result = generate(&shadows, &tree.migrations().unwrap(), "edit", renames).await;
    shadows.remove().await.unwrap();
    result.unwrap_or_else(|e| panic!("generate failed: {e}\nsource:\n{source}\ntarget:\n{target}"))
}

fn edit(find: &str, replace: &str) -> String {
    assert!(BASE.contains(find), "{find}");
    BASE.replacen(find, replace, 1)
}

async fn assert_no_scratch_left(admin: &TestDb, context: &str) {
    let mut conn = admin.pool().acquire().await.unwrap();
    let left = leftover_scratch_databases(&mut conn).await.unwrap();
    assert!(left.is_empty(), "{context}: {left:?}");
}

/// BASE without notes' foreign key to authors.
fn without_foreign_key() -> String {
    edit(
        "now(),\n  CONSTRAINT notes_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE CASCADE\n",
        "now()\n",
    )
}

struct Case {
    name: &'static str,
    target: String,
    renames: Renames,
    /// Something the up script must say.
    expect_sql: &'static str,
    hazard: bool,
    lint: Option<&'static str>,
}

fn case(name: &'static str, target: String, expect_sql: &'static str) -> Case {
    Case {
        name,
        target,
        renames: Renames::default(),
        expect_sql,
        hazard: false,
        lint: None,
    }
}

fn cases() -> Vec<Case> {
    let rename = |hints: &[&str]| {
        Renames::parse(
            &hints.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            false,
        )
        .unwrap()
    };
    let mut cases = vec![
        case("add a table", format!("{BASE}\nCREATE TABLE tags (id bigint PRIMARY KEY, label text NOT NULL UNIQUE);"), "CREATE TABLE tags"),
        Case {
            hazard: true,
            ..case(
                "drop a table",
                without_foreign_key().replace("CREATE TABLE authors (\n  id bigint PRIMARY KEY,\n  name text NOT NULL,\n  updated_at timestamptz NOT NULL DEFAULT now()\n);\n", ""),
                "DROP TABLE authors",
            )
        },
        Case {
            renames: rename(&["authors=writers"]),
            ..case("rename a table", BASE.replace("authors", "writers"), "ALTER TABLE authors RENAME TO writers")
        },
        case("add a nullable column", edit("  body text,\n", "  body text,\n  title text,\n"), "ADD COLUMN title text"),
        Case {
            lint: Some("adding-stored-generated-column"),
            ..case("add a generated column", edit("  body text,\n", "  body text,\n  body_length integer GENERATED ALWAYS AS (length(body)) STORED,\n"), "GENERATED ALWAYS AS (length(body)) STORED")
        },
        Case { hazard: true, lint: Some("adding-required-field"), ..case("add a NOT NULL column without default", edit("  body text,\n", "  body text,\n  title text NOT NULL,\n"), "ADD COLUMN title text NOT NULL") },
        case("add a NOT NULL column with a default", edit("  body text,\n", "  body text,\n  title text NOT NULL DEFAULT 'untitled',\n"), "DEFAULT 'untitled'::text NOT NULL"),
        Case { hazard: true, ..case("drop a column", edit("  body text,\n", ""), "DROP COLUMN body") },
        Case {
            renames: rename(&["notes.body=content"]),
            ..case("rename a column", edit("  body text,\n", "  content text,\n") + "\nCREATE INDEX notes_body_trgm ON notes USING gin (content gin_trgm_ops);", "RENAME COLUMN body TO content")
        },
        Case { lint: Some("changing-column-type"), ..case("widen a type", edit("  score integer DEFAULT 0,", "  score bigint DEFAULT 0,"), "TYPE bigint") },
        Case { hazard: true, ..case("narrow a type", edit("  body text,", "  body varchar(20),"), "TYPE character varying(20)") },
        case("change a default", edit("score integer DEFAULT 0", "score integer DEFAULT 10"), "SET DEFAULT 10"),
        case("drop a default", edit("score integer DEFAULT 0", "score integer"), "DROP DEFAULT"),
        Case { hazard: true, lint: Some("adding-not-nullable-field"), ..case("make a column NOT NULL", edit("  body text,", "  body text NOT NULL,"), "SET NOT NULL") },
        case("make a column nullable", edit("  name text NOT NULL,", "  name text,"), "DROP NOT NULL"),
        case("drop a foreign key", without_foreign_key(), "DROP CONSTRAINT notes_author_id_fkey"),
        Case { hazard: true, ..case("add a check", edit("  updated_at timestamptz NOT NULL DEFAULT now(),\n  CONSTRAINT notes_author", "  updated_at timestamptz NOT NULL DEFAULT now(),\n  CONSTRAINT notes_score_check CHECK (score >= 0),\n  CONSTRAINT notes_author"), "ADD CONSTRAINT notes_score_check CHECK (score >= 0)") },
        Case { hazard: true, ..case("add a unique constraint", edit("  name text NOT NULL,", "  name text NOT NULL UNIQUE,"), "ADD CONSTRAINT authors_name_key UNIQUE (name)") },
        Case { lint: Some("require-concurrent-index-creation"), ..case("add a partial index", format!("{BASE}\nCREATE INDEX notes_scored_idx ON notes (score) WHERE score > 0;"), "WHERE (score > 0)") },
        case("add an expression index", format!("{BASE}\nCREATE INDEX notes_lower_body_idx ON notes (lower(body));"), "lower(body)"),
        case("add a GIN index", format!("{BASE}\nCREATE INDEX notes_body_search_idx ON notes USING gin (to_tsvector('simple', body));"), "USING gin"),
        case("drop an index", edit("CREATE INDEX notes_author_idx ON notes (author_id);\n", ""), "DROP INDEX notes_author_idx"),
        case("change an index", edit("CREATE INDEX notes_author_idx ON notes (author_id);", "CREATE INDEX notes_author_idx ON notes (author_id, updated_at);"), "(author_id, updated_at)"),
        case("change a trigger function", edit("NEW.updated_at := now();", "NEW.updated_at := clock_timestamp();"), "clock_timestamp()"),
        case("change a trigger", edit("BEFORE UPDATE ON notes FOR EACH ROW", "BEFORE INSERT OR UPDATE ON notes FOR EACH ROW"), "BEFORE INSERT OR UPDATE"),
        case("drop an extension", edit("CREATE EXTENSION IF NOT EXISTS pg_trgm;", ""), "DROP EXTENSION pg_trgm"),
        // Key words of every category as table, column, index and constraint names.
        case(
            "key words as names",
            format!("{BASE}\nCREATE TABLE \"window\" (\"current_user\" text PRIMARY KEY, \"true\" text, \"between\" int, \"left\" text, \"json\" jsonb, CONSTRAINT \"check\" CHECK (\"between\" > 0));\nCREATE INDEX \"null\" ON \"window\" (\"left\");"),
            "CREATE TABLE \"window\"",
        ),
        case("add a key-word column", edit("  body text,\n", "  body text,\n  \"current_date\" text,\n"), "ADD COLUMN \"current_date\" text"),
    ];
    for action in [
        "CASCADE",
        "SET NULL",
        "RESTRICT",
        "NO ACTION",
        "SET DEFAULT",
    ] {
        let target = edit(
            "  CONSTRAINT notes_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE CASCADE\n",
            &format!("  CONSTRAINT notes_author_id_fkey FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE {action},\n  CONSTRAINT notes_extra_fkey FOREIGN KEY (id) REFERENCES authors (id) ON DELETE {action}\n"),
        );
        let mut c = case(
            "a foreign key per ON DELETE action",
            target,
            "ADD CONSTRAINT notes_extra_fkey FOREIGN KEY (id) REFERENCES authors(id)",
        );
        c.lint = Some("adding-foreign-key-constraint");
        cases.push(c);
    }
    // Storage parameters: set (and reset by the down script), on a table kept and on a new one.
    cases.push(case(
        "set a table's storage parameters",
        edit(
            "ON DELETE CASCADE\n);",
            "ON DELETE CASCADE\n) WITH (autovacuum_analyze_threshold = 5000, fillfactor = 90);",
        ),
        "ALTER TABLE notes SET (autovacuum_analyze_threshold=5000, fillfactor=90)",
    ));
    cases.push(case(
        "a new table with storage parameters",
        format!(
            "{BASE}\nCREATE TABLE tags (id bigint PRIMARY KEY) WITH (autovacuum_enabled = false);"
        ),
        "ALTER TABLE tags SET (autovacuum_enabled=false)",
    ));
    cases
}

#[tokio::test]
async fn a_changed_storage_parameter_is_set_and_a_gone_one_reset() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let with = |options: &str| {
        edit(
            "ON DELETE CASCADE\n);",
            &format!("ON DELETE CASCADE\n) WITH ({options});"),
        )
    };
    let migration = generated(
        &admin,
        &with("fillfactor = 90, autovacuum_enabled = false"),
        &with("fillfactor = 80"),
        &Renames::default(),
    )
    .await
    .expect("a change");
    assert!(
        migration
            .up
            .contains("ALTER TABLE notes SET (fillfactor=80)"),
        "{}",
        migration.up
    );
    assert!(
        migration
            .up
            .contains("ALTER TABLE notes RESET (autovacuum_enabled)"),
        "{}",
        migration.up
    );
    assert!(
        migration
            .down
            .contains("ALTER TABLE notes SET (autovacuum_enabled=false, fillfactor=90)"),
        "{}",
        migration.down
    );
    assert!(!migration.down.contains("RESET"), "{}", migration.down);
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}

#[tokio::test]
async fn every_edit_generates_a_verified_migration() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    for (number, case) in cases().into_iter().enumerate() {
        let migration = generated(&admin, BASE, &case.target, &case.renames)
            .await
            .unwrap_or_else(|| panic!("{}: no changes found", case.name));
        assert_eq!(migration.name, "0002_edit");
        // The whole migration, up and down, as a snapshot to review when the differ changes.
        insta::assert_snapshot!(
            format!("{number:02} {}", case.name),
            format!("{}\n-- down --\n{}", migration.up, migration.down)
        );
        assert!(
            migration.up.contains(case.expect_sql),
            "{}: up lacks {:?}:\n{}",
            case.name,
            case.expect_sql,
            migration.up
        );
        assert_eq!(
            !migration.hazards.is_empty(),
            case.hazard,
            "{}: hazards {:?}",
            case.name,
            migration.hazards
        );
        assert_eq!(
            migration.up.contains("-- WARNING"),
            case.hazard,
            "{}:\n{}",
            case.name,
            migration.up
        );
        if let Some(rule) = case.lint {
            assert!(
                migration.lints.iter().any(|l| l.rule == rule),
                "{}: no {rule} in {:?}",
                case.name,
                migration.lints
            );
            assert!(
                migration.up.contains(rule),
                "{}:\n{}",
                case.name,
                migration.up
            );
        }
    }
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}

#[tokio::test]
async fn identical_schemas_give_no_migration() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    assert!(generated(&admin, BASE, BASE, &Renames::default())
        .await
        .is_none());
    // The repository's own migrations and schema files agree (what `db check` verifies).
    let repo = SourceTree::at(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    let shadows = Shadows::build(admin.connect_options(), &repo)
        .await
        .unwrap();
    let none = generate(
        &shadows,
        &repo.migrations().unwrap(),
        "x",
        &Renames::default(),
    )
    .await
    .unwrap();
    shadows.remove().await.unwrap();
    assert!(
        none.is_none(),
        "the schema files changed without a migration: {:?}",
        none.map(|m| m.up)
    );
}

#[tokio::test]
async fn a_disappearing_and_appearing_column_is_ambiguous_until_a_hint_decides() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let (_dir, tree) = tree(BASE, &edit("  body text,\n", "  content text,\n"));
    let shadows = Shadows::build(admin.connect_options(), &tree)
        .await
        .unwrap();
    let found = ambiguities(
        &shadows.migrated_schema,
        &shadows.declared_schema,
        &Renames::default(),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        "in table notes, column(s) body disappear while content appear"
    );
    let renamed = Renames::parse(&["notes.body=content".into()], false).unwrap();
    assert!(ambiguities(&shadows.migrated_schema, &shadows.declared_schema, &renamed).is_empty());
    let dropped = Renames::parse(&[], true).unwrap();
    assert!(ambiguities(&shadows.migrated_schema, &shadows.declared_schema, &dropped).is_empty());
    let migration = generate(&shadows, &tree.migrations().unwrap(), "drop", &dropped)
        .await
        .unwrap()
        .unwrap();
    assert!(
        migration.up.contains("DROP COLUMN body")
            && migration.up.contains("ADD COLUMN content text"),
        "{}",
        migration.up
    );
    shadows.remove().await.unwrap();
}

#[tokio::test]
async fn a_broken_schema_file_is_named_and_leaves_no_scratch_database() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let (_dir, tree) = tree(
        BASE,
        &format!("{BASE}\nCREATE TABLE broken (id bigint REFERENCES nowhere (id));"),
    );
    let err = Shadows::build(admin.connect_options(), &tree)
        .await
        .err()
        .expect("a broken schema file must fail");
    assert!(matches!(err, WorkflowError::Apply(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("schema file schema.sql failed in statement 7 at line 20"),
        "{err}"
    );
    assert_no_scratch_left(&admin, "a failed build left a scratch database").await;
}

async fn declared(admin: &TestDb, schema: &str) -> sambung_schema::Schema {
    let scratch = ScratchDb::create(admin.connect_options(), "declared")
        .await
        .unwrap();
    apply_schema_files(scratch.pool(), &[("schema.sql".into(), schema.into())])
        .await
        .unwrap();
    let schema = live_schema(scratch.pool()).await.unwrap();
    scratch.remove().await.unwrap();
    schema
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn push_counts_what_it_would_destroy_and_then_does_exactly_that() {
    let _lock = SHADOW_LOCK.lock().await;
    let live = TestDb::empty().await;
    sqlx::raw_sql(&format!(
        "{BASE}
         INSERT INTO authors (id, name) VALUES (1, 'Ana'), (2, 'Budi');
         INSERT INTO notes (id, author_id, body) VALUES (1, 1, 'hello'), (2, 2, NULL), (3, 2, 'again');"
    ))
    .execute(live.pool())
    .await
    .unwrap();
    let target = declared(
        &live,
        &edit("  body text,\n", "").replace(
            "  name text NOT NULL,",
            "  name text NOT NULL,\n  bio text,",
        ),
    )
    .await;
    let plan = plan_push(live.pool(), &target, &Renames::default())
        .await
        .unwrap();
    assert!(plan.loses_data());
    let drop_body = plan
        .hazards
        .iter()
        .find(|(h, _)| h.description.contains("notes.body"))
        .unwrap();
    assert_eq!(drop_body.1, 2, "two rows hold a body");
    // Planning touched nothing.
    assert_eq!(count(live.pool(), "SELECT count(body) FROM notes").await, 2);

    apply_push(live.pool(), &plan).await.unwrap();
    let after = live_schema(live.pool()).await.unwrap();
    assert!(sambung_schema::differences(&after, &target).is_empty());
    assert_eq!(
        count(live.pool(), "SELECT count(*) FROM notes").await,
        3,
        "rows were lost beyond the dropped column"
    );
    assert_eq!(
        count(
            live.pool(),
            "SELECT count(*) FROM authors WHERE bio IS NULL"
        )
        .await,
        2
    );

    // A check that existing rows violate: counted, and the push fails whole.
    let strict = declared(&live, &edit("  body text,\n", "").replace("  name text NOT NULL,", "  name text NOT NULL CONSTRAINT authors_short_name CHECK (length(name) < 4),\n  bio text,")).await;
    let plan = plan_push(live.pool(), &strict, &Renames::default())
        .await
        .unwrap();
    assert_eq!(plan.hazards.len(), 1);
    assert_eq!(plan.hazards[0].1, 1, "'Budi' violates the check");
    assert!(apply_push(live.pool(), &plan).await.is_err());
    assert_eq!(count(live.pool(), "SELECT count(*) FROM authors").await, 2);
}

#[tokio::test]
async fn enum_types_are_created_extended_and_rebuilt_both_ways() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let with_mood = |labels: &str| {
        format!("{BASE}\nCREATE TYPE mood AS ENUM ({labels});\nALTER TABLE notes ADD COLUMN mood mood DEFAULT 'happy', ADD COLUMN moods mood[];")
    };
    let expect = |migration: &GeneratedMigration, sql: &str| {
        assert!(
            migration.up.contains(sql),
            "up lacks {sql:?}:\n{}",
            migration.up
        );
    };

    // A new type and columns using it (down drops them, then the type).
    let created = generated(
        &admin,
        BASE,
        &with_mood("'happy', 'sad'"),
        &Renames::default(),
    )
    .await
    .unwrap();
    expect(&created, "CREATE TYPE mood AS ENUM ('happy', 'sad')");
    assert!(created.down.contains("DROP TYPE mood"), "{}", created.down);

    // A label added in the middle: in place (and its down rebuilds the type without it).
    let added = generated(
        &admin,
        &with_mood("'happy', 'sad'"),
        &with_mood("'happy', 'meh', 'sad'"),
        &Renames::default(),
    )
    .await
    .unwrap();
    expect(&added, "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'sad'");
    assert!(added
        .lints
        .iter()
        .any(|l| l.rule == "enum-value-in-same-transaction"));
    assert!(added.hazards.is_empty(), "{:?}", added.hazards);
    assert!(
        added.down.contains("ALTER TYPE mood RENAME TO mood__old"),
        "{}",
        added.down
    );

    // A label removed: the type is rebuilt and the columns converted, which rows can refuse.
    let removed = generated(
        &admin,
        &with_mood("'happy', 'sad'"),
        &with_mood("'happy'"),
        &Renames::default(),
    )
    .await
    .unwrap();
    expect(&removed, "ALTER TYPE mood RENAME TO mood__old");
    expect(&removed, "CREATE TYPE mood AS ENUM ('happy')");
    expect(
        &removed,
        "ALTER TABLE notes ALTER COLUMN moods TYPE mood[] USING moods::text[]::mood[]",
    );
    expect(&removed, "DROP TYPE mood__old");
    assert_eq!(removed.hazards.len(), 2, "{:?}", removed.hazards);
    // The hazards count the rows that would refuse.
    let live = TestDb::empty().await;
    sqlx::raw_sql(&with_mood("'happy', 'sad'"))
        .execute(live.pool())
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO notes (id, mood, moods) VALUES (1, 'sad', '{happy}'), (2, 'happy', '{sad,happy}'), (3, 'sad', NULL)",
    )
    .execute(live.pool())
    .await
    .unwrap();
    let mut counts = Vec::new();
    for hazard in &removed.hazards {
        let count: i64 = sqlx::query_scalar(&hazard.count_sql)
            .fetch_one(live.pool())
            .await
            .unwrap();
        counts.push(count);
    }
    assert_eq!(counts, [2, 1], "{:?}", removed.hazards);
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}

#[tokio::test]
async fn views_are_created_changed_and_rebuilt_around_the_columns_they_read() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let view = |select: &str| format!("{BASE}\nCREATE VIEW scored_notes AS {select};");
    let plain = view("SELECT id, score FROM notes WHERE score > 0");

    let created = generated(&admin, BASE, &plain, &Renames::default())
        .await
        .unwrap();
    assert!(
        created.up.contains("CREATE VIEW scored_notes AS SELECT"),
        "{}",
        created.up
    );
    assert!(
        created.down.contains("DROP VIEW scored_notes"),
        "{}",
        created.down
    );

    let changed = generated(
        &admin,
        &plain,
        &view("SELECT id, score, body FROM notes WHERE score > 0"),
        &Renames::default(),
    )
    .await
    .unwrap();
    assert!(
        changed.up.contains("DROP VIEW scored_notes"),
        "{}",
        changed.up
    );
    assert!(changed.up.contains("body"), "{}", changed.up);

    // PostgreSQL refuses to change the type of a column a view reads: the view steps aside.
    let widened = generated(
        &admin,
        &plain,
        &plain.replace("  score integer DEFAULT 0,", "  score bigint DEFAULT 0,"),
        &Renames::default(),
    )
    .await
    .unwrap();
    let drop_at = widened.up.find("DROP VIEW scored_notes").unwrap();
    let alter_at = widened.up.find("TYPE bigint").unwrap();
    let create_at = widened.up.find("CREATE VIEW scored_notes").unwrap();
    assert!(drop_at < alter_at && alter_at < create_at, "{}", widened.up);

    // A view over a view: made after it, and rebuilt with it (dropped first, made last).
    let stacked = format!(
        "{plain}\nCREATE VIEW a_top_notes AS SELECT id FROM scored_notes WHERE score > 10;"
    );
    let made = generated(&admin, &plain, &stacked, &Renames::default())
        .await
        .unwrap();
    assert!(made.up.contains("CREATE VIEW a_top_notes"), "{}", made.up);
    let changed = generated(
        &admin,
        &stacked,
        &stacked.replace("WHERE score > 0", "WHERE score > 1"),
        &Renames::default(),
    )
    .await
    .unwrap();
    let order = |sql: &str, steps: [&str; 4]| {
        steps.map(|step| sql.find(step).unwrap_or_else(|| panic!("{step}:\n{sql}")))
    };
    let [drop_top, drop_scored, make_scored, make_top] = order(
        &changed.up,
        [
            "DROP VIEW a_top_notes",
            "DROP VIEW scored_notes",
            "CREATE VIEW scored_notes",
            "CREATE VIEW a_top_notes",
        ],
    );
    assert!(
        drop_top < drop_scored && drop_scored < make_scored && make_scored < make_top,
        "{}",
        changed.up
    );
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}

/// A stored generated column made a plain one (written by a trigger instead) keeps its values
/// and its index; the way back makes the column again, computed, and its index with it.
#[tokio::test]
async fn a_generated_column_becomes_plain_and_back() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let computed = format!(
        "{BASE}\nALTER TABLE notes ADD COLUMN body_length integer GENERATED ALWAYS AS (length(body)) STORED;\nCREATE INDEX notes_length_idx ON notes (body_length);"
    );
    let written = format!(
        "{BASE}\nALTER TABLE notes ADD COLUMN body_length integer;\nCREATE INDEX notes_length_idx ON notes (body_length);\nCREATE FUNCTION measure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body_length := length(NEW.body); RETURN NEW; END $$;\nCREATE TRIGGER notes_measure BEFORE INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION measure();"
    );
    let migration = generated(&admin, &computed, &written, &Renames::default())
        .await
        .expect("a change");
    assert!(
        migration
            .up
            .contains("ALTER TABLE notes ALTER COLUMN body_length DROP EXPRESSION"),
        "{}",
        migration.up
    );
    assert!(
        !migration.up.contains("DROP INDEX notes_length_idx"),
        "{}",
        migration.up
    );
    assert!(migration.hazards.is_empty(), "{:?}", migration.hazards);
    // The down script (verified by generate to give the computed column back, index included).
    assert!(
        migration.down.contains("DROP COLUMN body_length")
            && migration
                .down
                .contains("GENERATED ALWAYS AS (length(body)) STORED")
            && migration.down.contains("CREATE INDEX notes_length_idx"),
        "{}",
        migration.down
    );
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}

/// A function whose result type changes cannot be replaced in place: it is dropped and made
/// again, once (the drop of what nothing needs any more once dropped the new one too).
#[tokio::test]
async fn a_function_whose_result_changes_is_made_again() {
    let _lock = SHADOW_LOCK.lock().await;
    let admin = TestDb::empty().await;
    let ids = format!("{BASE}\nCREATE FUNCTION notes_of(author bigint) RETURNS SETOF bigint LANGUAGE sql STABLE AS $$ SELECT id FROM notes WHERE author_id = author $$;");
    let rows = format!("{BASE}\nCREATE FUNCTION notes_of(author bigint) RETURNS SETOF notes LANGUAGE sql STABLE AS $$ SELECT * FROM notes WHERE author_id = author $$;");
    let changed = generated(&admin, &ids, &rows, &Renames::default())
        .await
        .expect("a change");
    assert_eq!(
        changed.up.matches("DROP FUNCTION").count(),
        1,
        "{}",
        changed.up
    );
    let dropped = changed
        .up
        .find("DROP FUNCTION notes_of(author bigint) CASCADE")
        .unwrap();
    let made = changed.up.find("FUNCTION public.notes_of").unwrap();
    assert!(dropped < made, "{}", changed.up);
    assert_no_scratch_left(&admin, "a scratch database was left").await;
}
