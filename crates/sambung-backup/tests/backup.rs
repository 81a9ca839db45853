//! Backups and restores on real PostgreSQL: round trips that keep every row, and bad files that
//! change nothing.

use sambung_backup::{
    backup, physical_backup, physical_restore, restore, BackupError, Format, Manifest,
    RestoreOptions, Tools,
};
use sambung_config::DatabaseUrl;
use sambung_pg::PgBinaries;
use sambung_testkit::{ScratchCluster, TestDb};
use sqlx::PgPool;

/// The newest schema version this build knows.
fn known() -> i64 {
    sambung_schema::Migrator::embedded().latest_version()
}

/// A restore as `sambung db restore` makes it, with or without `--force`.
fn options(force: bool) -> RestoreOptions {
    RestoreOptions {
        force,
        known_schema_version: known(),
        statement_timeout: sambung_backup::RESTORE_STATEMENT_TIMEOUT,
    }
}

/// The client tools for the test server, as `sambung` picks them: the server's own, or the
/// newest found (a server-only package, 16 or 17, has none).
fn tools_for(url: &str) -> Tools {
    let server = PgBinaries::discover(Some(sambung_testkit::server_bin_dir()), None).unwrap();
    let cache = sambung_config::Config::load(&std::env::current_dir().unwrap())
        .unwrap()
        .pg_cache;
    let places = sambung_pg::SearchPlaces::of_this_machine(Some(&cache));
    let binaries = PgBinaries::client_tools(server.major(), Some(&server), &places).unwrap();
    Tools::new(
        &binaries,
        server.major(),
        DatabaseUrl::parse(url).unwrap().libpq_env(),
    )
    .unwrap()
}

/// Every table's row count and a digest of its rows.
async fn fingerprint(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND relkind = 'r' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        // The migrations table's applied_at/duration are what they were, so they compare too.
        let (rows, digest): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM public.{table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table, rows, digest.unwrap_or_default()));
    }
    out
}

async fn seeded() -> TestDb {
    let db = TestDb::migrated().await;
    sambung_db::seed::seed_sample(db.pool()).await.unwrap();
    sambung_db::seed::seed_scale(db.pool(), 0.1, &|_| {})
        .await
        .unwrap();
    db
}

#[tokio::test]
async fn both_formats_round_trip_every_row() {
    let source = seeded().await;
    let before = fingerprint(source.pool()).await;
    assert!(before
        .iter()
        .any(|(t, rows, _)| t == "messages" && *rows == 40_003));
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_for(&source.url());
    for (format, name) in [(Format::Custom, "backup.dump"), (Format::Sql, "backup.sql")] {
        let path = dir.path().join(name);
        let report = backup(source.pool(), &tools, &path, format, &|_| {})
            .await
            .unwrap();
        assert!(report.bytes > 100_000 && path.is_file());
        let manifest = Manifest::read(&path)
            .unwrap()
            .expect("a manifest beside the backup");
        assert_eq!(manifest.tables["messages"], 40_003);
        assert_eq!(manifest.schema_version, Some(known()));
        assert_eq!(manifest.format, format);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".sambung"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

        let target = TestDb::empty().await;
        let restored = restore(
            target.pool(),
            &tools_for(&target.url()),
            &path,
            options(false),
        )
        .await
        .unwrap();
        assert!(restored.verified);
        assert_eq!(
            fingerprint(target.pool()).await,
            before,
            "{format:?}: the restored data differs"
        );
    }
    // Over the original, with --force: replaced by the same content.
    restore(
        source.pool(),
        &tools,
        &dir.path().join("backup.dump"),
        RestoreOptions {
            known_schema_version: 1,
            ..options(true)
        },
    )
    .await
    .unwrap();
    assert_eq!(fingerprint(source.pool()).await, before);
}

#[tokio::test]
async fn bad_files_and_refusals_leave_the_database_as_it_was() {
    let mut steps = sambung_testkit::Steps::new();
    let source = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_for(&source.url());
    let dump = dir.path().join("good.dump");
    let sql = dir.path().join("good.sql");
    backup(source.pool(), &tools, &dump, Format::Custom, &|_| {})
        .await
        .unwrap();
    backup(source.pool(), &tools, &sql, Format::Sql, &|_| {})
        .await
        .unwrap();

    // The target holds data of its own, which every failed restore must keep.
    steps.at("The target holds data of its own, which every failed restore must keep");
    let target = TestDb::migrated().await;
    sambung_db::seed::seed_sample(target.pool()).await.unwrap();
    let target_tools = tools_for(&target.url());
    let before = fingerprint(target.pool()).await;

    let bytes = std::fs::read(&dump).unwrap();
    let write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let truncated = write("truncated.dump", &bytes[..bytes.len() / 2]);
    std::fs::copy(Manifest::path_for(&dump), Manifest::path_for(&truncated)).unwrap();
    let mut flipped = bytes.clone();
    for i in (bytes.len() / 3..bytes.len() / 3 + 64).step_by(4) {
        flipped[i] ^= 0x5a;
    }
    let corrupted = write("corrupted.dump", &flipped);
    let not_a_backup = write("notes.txt", b"just some text, not a dump\n");
    let text = std::fs::read_to_string(&sql).unwrap();
    let truncated_sql = write("truncated.sql", &text.as_bytes()[..text.len() / 2]);
    // A plain dump that is complete but whose data breaks a constraint midway.
    steps.at("A plain dump that is complete but whose data breaks a constraint midway");
    let broken_sql = write(
        "broken.sql",
        text.replacen("\tuser\t", "\tnot-a-role\t", 1).as_bytes(),
    );
    // A manifest whose counts do not match what the file holds.
    steps.at("A manifest whose counts do not match what the file holds");
    let mismatched = write("mismatched.dump", &bytes);
    let mut manifest = Manifest::read(&dump).unwrap().unwrap();
    *manifest.tables.get_mut("messages").unwrap() += 1;
    std::fs::write(
        Manifest::path_for(&mismatched),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    let newer = write("newer.dump", &bytes);
    manifest = Manifest::read(&dump).unwrap().unwrap();
    manifest.schema_version = Some(999);
    std::fs::write(
        Manifest::path_for(&newer),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();

    for (path, expect) in [
        (&truncated, "damaged"),
        (&corrupted, "damaged"),
        (&not_a_backup, "not a backup"),
        (&truncated_sql, "damaged"),
        (&broken_sql, "rolled back"),
        (&mismatched, "rolled back"),
    ] {
        let err = restore(target.pool(), &target_tools, path, options(true))
            .await
            .expect_err(&path.display().to_string());
        let matches = match expect {
            "damaged" => matches!(err, BackupError::Damaged { .. }),
            "not a backup" => matches!(err, BackupError::NotABackup { .. }),
            _ => matches!(err, BackupError::RestoreFailed { .. }),
        };
        assert!(matches, "{}: {err}", path.display());
        assert_eq!(
            fingerprint(target.pool()).await,
            before,
            "{} changed the database",
            path.display()
        );
    }
    let err = restore(target.pool(), &target_tools, &mismatched, options(true))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("restore verification: table messages"),
        "{err}"
    );

    assert!(matches!(
        restore(target.pool(), &target_tools, &dump, options(false)).await,
        Err(BackupError::NotEmpty { .. })
    ));
    assert!(
        restore(target.pool(), &target_tools, &newer, options(true))
            .await
            .is_ok(),
        "--force restores a newer schema"
    );
    let fresh = TestDb::empty().await;
    assert!(matches!(
        restore(fresh.pool(), &tools_for(&fresh.url()), &newer, options(false)).await,
        Err(BackupError::NewerSchema { backup: 999, known: k }) if k == known()
    ));
    assert_eq!(fingerprint(fresh.pool()).await, Vec::new());
}

#[tokio::test]
async fn a_physical_backup_restored_into_a_new_data_directory_holds_the_same_data() {
    let scratch = ScratchCluster::new();
    let cluster = scratch.cluster();
    cluster.start().await.unwrap();
    let url = cluster.database_url("sambungchat").unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    sambung_schema::Migrator::embedded()
        .migrate(&pool)
        .await
        .unwrap();
    sambung_db::seed::seed_sample(&pool).await.unwrap();
    let before = fingerprint(&pool).await;
    pool.close().await;
    let backup_dir = scratch.work_dir().join("physical");
    let tools = tools_for(&url);
    if tools.major() != cluster.binaries().major() {
        // A server-only package (16, 17): its files can only be verified by its own tools.
        let err = physical_backup(&cluster, &tools, &backup_dir)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("the cluster's own version"),
            "{err}"
        );
        assert!(!backup_dir.exists(), "a refused backup wrote files");
        cluster.stop().await.unwrap();
        return;
    }
    physical_backup(&cluster, &tools, &backup_dir)
        .await
        .unwrap();
    assert!(
        matches!(
            physical_backup(&cluster, &tools_for(&url), &backup_dir).await,
            Err(BackupError::Physical(_))
        ),
        "not into a used directory"
    );
    cluster.stop().await.unwrap();

    let other = ScratchCluster::new();
    let restored = other.cluster();
    physical_restore(&restored, &backup_dir, false)
        .await
        .unwrap();
    let pool = PgPool::connect(&restored.database_url("sambungchat").unwrap())
        .await
        .unwrap();
    assert_eq!(fingerprint(&pool).await, before);
    pool.close().await;
    restored.stop().await.unwrap();
    assert!(
        matches!(
            physical_restore(&restored, &backup_dir, false).await,
            Err(BackupError::Physical(_))
        ),
        "an existing cluster needs --force"
    );
    physical_restore(&restored, &backup_dir, true)
        .await
        .unwrap();
    let kept_aside = std::fs::read_dir(other.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("pgdata.replaced-")
        });
    assert!(kept_aside, "the replaced data directory must be kept");
}

/// A file whose statement never ends (after switching the timeout off, as every dump does,
/// then once more by another spelling) is cut off at the restore's statement timeout, and the
/// target stays as it was.
#[tokio::test]
async fn a_statement_that_never_ends_is_cut_off() {
    let target = TestDb::migrated().await;
    sambung_db::seed::seed_sample(target.pool()).await.unwrap();
    let tools = tools_for(&target.url());
    let before = fingerprint(target.pool()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sleep.sql");
    std::fs::write(
        &path,
        "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\
         DROP TABLE IF EXISTS public.messages CASCADE;\n\
         SELECT pg_catalog.set_config(chr(115) || 'tatement_timeout', '0', false);\n\
         SELECT pg_sleep(600);\n-- PostgreSQL database dump complete\n",
    )
    .unwrap();
    let options = RestoreOptions {
        statement_timeout: std::time::Duration::from_secs(1),
        ..options(true)
    };
    let err = restore(target.pool(), &tools, &path, options)
        .await
        .expect_err("the sleep is cut off");
    assert!(
        matches!(&err, BackupError::RestoreFailed { detail } if detail.contains("line 8") && detail.contains("statement timeout")),
        "{err}"
    );
    assert_eq!(fingerprint(target.pool()).await, before);
}

/// A plain file made to attack the restorer: each is refused before anything runs, runs no
/// command and leaves the target exactly as it was.
#[tokio::test]
async fn hostile_files_are_refused_before_anything_runs() {
    let target = TestDb::migrated().await;
    sambung_db::seed::seed_sample(target.pool()).await.unwrap();
    let tools = tools_for(&target.url());
    let before = fingerprint(target.pool()).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let marker_text = marker.display().to_string();
    let head = "--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\nDROP TABLE IF EXISTS public.messages CASCADE;\n";
    for (name, body, reason) in [
        (
            "shell.sql",
            format!("\\! touch {marker_text}\n"),
            "meta-command \\!",
        ),
        (
            "midway-shell.sql",
            format!("SELECT 1\n\\! touch {marker_text}\n;\n"),
            "meta-command",
        ),
        (
            "program.sql",
            format!("CREATE TABLE x (a text);\nCOPY x FROM PROGRAM 'touch {marker_text}';\n"),
            "a file or a program",
        ),
        (
            "commit.sql",
            "COMMIT;\nDROP TABLE public.users CASCADE;\n".into(),
            "COMMIT",
        ),
        ("rollback.sql", "ROLLBACK;\n".into(), "ROLLBACK"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("{head}{body}-- PostgreSQL database dump complete\n"),
        )
        .unwrap();
        let err = restore(target.pool(), &tools, &path, options(true))
            .await
            .expect_err(name);
        assert!(
            matches!(&err, BackupError::Refused { reason: r, .. } if r.contains(reason)),
            "{name}: {err}"
        );
        assert!(!marker.exists(), "{name} ran a command");
        assert_eq!(
            fingerprint(target.pool()).await,
            before,
            "{name} changed the database"
        );
    }
}

/// Tables named like the code of the old restore script: an honest backup of them restores,
/// and neither they nor a forged manifest key run anything.
#[tokio::test]
async fn names_that_look_like_code_back_up_and_restore() {
    let source = TestDb::empty().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let evil = format!("x$sambung_verify$ \\! touch {} #", marker.display());
    for table in [
        evil.as_str(),
        "x$sambung_verify$y",
        "current_user",
        "null",
        "window",
    ] {
        let quoted = sambung_sql::quote_ident(table);
        sqlx::raw_sql(&format!(
            "CREATE TABLE {quoted} (id int PRIMARY KEY, \"current_user\" text, \"true\" text);
             INSERT INTO {quoted} VALUES (1, 'a', 'b'), (2, 'c', 'd');"
        ))
        .execute(source.pool())
        .await
        .unwrap();
    }
    let tools = tools_for(&source.url());
    for (format, name) in [(Format::Custom, "odd.dump"), (Format::Sql, "odd.sql")] {
        let path = dir.path().join(name);
        let report = backup(source.pool(), &tools, &path, format, &|_| {})
            .await
            .unwrap();
        assert_eq!(report.manifest.tables.len(), 5);
        assert!(
            report.manifest.tables.values().all(|&rows| rows == 2),
            "{:?}",
            report.manifest.tables
        );
        let target = TestDb::empty().await;
        let restored = restore(
            target.pool(),
            &tools_for(&target.url()),
            &path,
            options(false),
        )
        .await
        .unwrap();
        assert!(restored.verified);
        assert_eq!(restored.tables.len(), 5);
        assert!(restored.tables.values().all(|&rows| rows == 2));
        let value: String =
            sqlx::query_scalar("SELECT \"current_user\" FROM \"current_user\" WHERE id = 1")
                .fetch_one(target.pool())
                .await
                .unwrap();
        assert_eq!(value, "a");

        // A manifest that names a table the backup does not hold fails verification.
        let mut manifest = Manifest::read(&path).unwrap().unwrap();
        manifest.tables.insert(
            format!("y$sambung_verify$ \\! touch {} #", marker.display()),
            0,
        );
        std::fs::write(
            Manifest::path_for(&path),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        let other = TestDb::empty().await;
        let err = restore(
            other.pool(),
            &tools_for(&other.url()),
            &path,
            options(false),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("restore verification"), "{err}");
        assert_eq!(fingerprint(other.pool()).await, Vec::new());
    }
    assert!(!marker.exists(), "a name ran a command");
}
