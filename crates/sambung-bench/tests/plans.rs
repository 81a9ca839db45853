//! The plans, not the times: at scale 0.1, every workload's queries reach messages, chats and
//! prompts through an index, never a sequential scan; and every workload runs without errors
//! through both code paths.

use sambung_config::Hint as _;
use std::time::Duration;

use sambung_bench::{compare, run_once, Inputs, Mode, Run, Workload};
use sambung_db::{chats, prompts};
use sambung_studio::browse::{self, Filter, FilterOp, Sort, View};
use sambung_testkit::TestDb;
use sqlx::PgPool;

async fn plan(pool: &PgPool, sql: &str, binds: &[&str]) -> String {
    // Typed literals in place of the parameters: EXPLAIN of a custom plan, as the app gets.
    let mut text = sql.to_owned();
    for (i, value) in binds.iter().enumerate().rev() {
        text = text.replace(&format!("${}", i + 1), value);
    }
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {text}"))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.join("\n")
}

/// The plan of Studio's page query for `view` of messages.
async fn studio_plan(pool: &PgPool, inputs: &Inputs, view: View) -> String {
    let sql = browse::page_query(&inputs.messages, &view).unwrap();
    let literals: Vec<String> = sql
        .args
        .iter()
        .map(|a| format!("'{}'", a.as_deref().unwrap_or_default()))
        .collect();
    let literals: Vec<&str> = literals.iter().map(String::as_str).collect();
    plan(pool, &sql.text, &literals).await
}

fn uses_a_prompt_index(plan: &str) -> bool {
    plan.contains("Index Scan on prompt_") || plan.contains("using prompt_")
}

/// The access decision looks the chat up once by its key and the user's membership of its
/// team at most once (the view's two branches once probed the chat twice).
fn probes_the_chat_once(workload: &str, plan: &str) {
    assert_eq!(
        plan.matches(" on chats ").count(),
        1,
        "{workload}: the chat probed once:\n{plan}"
    );
    assert!(plan.contains("using chats_pkey"), "{workload}:\n{plan}");
    assert!(
        plan.matches(" on team_members ").count() <= 1,
        "{workload}: the membership probed once at most:\n{plan}"
    );
    // `sambung_chat_reader` inlined into the statement: a function scan would run it apart,
    // its rows materialized, and hide its join from the planner.
    assert!(
        !plan.contains("Function Scan"),
        "{workload}: the access rule not inlined:\n{plan}"
    );
}

/// The decision alone is one join of the chat and the membership: no `Append` of branches
/// (the `LATERAL` `UNION ALL` it replaced cost a tenth of its throughput).
fn decides_in_one_join(workload: &str, plan: &str) {
    probes_the_chat_once(workload, plan);
    assert!(!plan.contains("Append"), "{workload}: branches:\n{plan}");
}

fn no_seq_scans(workload: &str, plan: &str) {
    for table in ["messages", "chats", "prompts"] {
        assert!(
            !plan.contains(&format!("Seq Scan on {table}")),
            "{workload}: sequential scan of {table}:\n{plan}"
        );
    }
}

/// A database with the synthetic dataset at scale 0.1, and the benchmark's inputs from it.
async fn seeded() -> (TestDb, Inputs) {
    let db = TestDb::migrated().await;
    sambung_db::seed::seed_scale(db.pool(), 0.1, &|_| {})
        .await
        .unwrap();
    let inputs = Inputs::sample(db.pool()).await.unwrap();
    (db, inputs)
}

#[tokio::test]
async fn every_workload_uses_indexes_and_runs_in_both_modes() {
    let mut steps = sambung_testkit::Steps::new();
    let (db, inputs) = seeded().await;
    let pool = db.pool();
    let (owner, chat) = inputs.personal_chats[0];
    let (member, team_chat) = inputs.team_chats[0];
    let q = |id: &dyn std::fmt::Display| format!("'{id}'::uuid");
    let (owner, chat, member, team_chat) = (q(&owner), q(&chat), q(&member), q(&team_chat));

    let list = plan(
        pool,
        &chats::list_chats_sql(false),
        &[&owner, "NULL", "NULL", "50"],
    )
    .await;
    assert!(
        list.contains("chat_user_team_idx") || list.contains("chat_user_id_idx"),
        "{list}"
    );
    assert!(
        list.contains("message_chat_id_idx"),
        "message counts through the index:\n{list}"
    );
    no_seq_scans("list-chats", &list);
    // A request's session checked inside the statement: the lookup inlined into it (its
    // token's index, no function run apart on every call).
    let by_session = plan(
        pool,
        &chats::list_chats_sql(false),
        &["NULL", "'a token hash'", "NULL", "50"],
    )
    .await;
    assert!(
        by_session.contains("using sessions_token_hash_key"),
        "the session's lookup inlined:\n{by_session}"
    );
    no_seq_scans("list-chats (a session)", &by_session);
    // A team's listing: its chats through the team index.
    steps.at("A team's listing");
    let team: String =
        sqlx::query_scalar("SELECT team_id::text FROM chats WHERE team_id IS NOT NULL LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
    let team_list = plan(pool, &chats::list_chats_sql(true), &[&q(&team), "50"]).await;
    assert!(team_list.contains("chat_team_id_idx"), "{team_list}");
    no_seq_scans("list-chats (team)", &team_list);

    let messages = plan(
        pool,
        chats::MESSAGES_PAGE_SQL,
        &[&chat, "NULL", "NULL", "1000", "4194304"],
    )
    .await;
    assert!(messages.contains("message_chat_id_idx"), "{messages}");
    no_seq_scans("chat-messages", &messages);
    // What the product sends: the access decision, the chat and its page in one statement.
    let chat_page = plan(
        pool,
        &chats::chat_page_sql(chats::MESSAGES_PAGE_SQL),
        &[
            &chat, "NULL", "NULL", "1000", "4194304", &owner, "NULL", "NULL",
        ],
    )
    .await;
    assert!(chat_page.contains("message_chat_id_idx"), "{chat_page}");
    probes_the_chat_once("chat-messages (with the chat)", &chat_page);
    no_seq_scans("chat-messages (with the chat)", &chat_page);

    let access = plan(pool, chats::CHAT_ACCESS_SQL, &[&team_chat, &member]).await;
    decides_in_one_join("can-access-chat", &access);
    no_seq_scans("can-access-chat", &access);
    // And so when prepared, in the plan every value gets.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let generic = sambung_testkit::explain_prepared(
        &mut conn,
        "chat_access",
        chats::CHAT_ACCESS_SQL,
        &[],
        &[&team_chat, &member],
    )
    .await;
    decides_in_one_join("can-access-chat (generic)", &generic);
    drop(conn);

    for word in ["'rust'", "'xylophone'"] {
        let search = plan(
            pool,
            &chats::search_messages_sql(),
            &[&owner, "NULL", "NULL", word, "20"],
        )
        .await;
        assert!(search.contains("using message_chat_id_idx"), "{search}");
        no_seq_scans("search-messages", &search);
        let ranked = plan(
            pool,
            &prompts::SEARCH_PROMPTS_RANKED_SQL,
            &[&owner, word, "20"],
        )
        .await;
        // Which index depends on the word's frequency and the table's size; an index it is.
        assert!(uses_a_prompt_index(&ranked), "{ranked}");
        no_seq_scans("search-prompts", &ranked);
    }
    let substring = plan(
        pool,
        &prompts::SEARCH_PROMPTS_SUBSTRING_SQL,
        &[&owner, "'ylophon'", "ARRAY[]::uuid[]", "20"],
    )
    .await;
    assert!(substring.contains("prompt_user_id_idx"), "{substring}");
    no_seq_scans("search-prompts (substring)", &substring);

    // Studio's pages: the first one walks the primary key, a chat's messages its index.
    steps.at("Studio's pages");
    let first_page = studio_plan(pool, &inputs, View::default()).await;
    assert!(
        first_page.contains("Index Scan using messages_pkey"),
        "{first_page}"
    );
    no_seq_scans("studio-first-page", &first_page);
    let one_chat = studio_plan(
        pool,
        &inputs,
        View {
            filters: vec![Filter {
                column: "chat_id".into(),
                op: FilterOp::Eq,
                value: Some(inputs.personal_chats[0].1.to_string()),
            }],
            sort: Some(Sort {
                column: "created_at".into(),
                descending: true,
            }),
            ..View::default()
        },
    )
    .await;
    assert!(one_chat.contains("message_chat_id_idx"), "{one_chat}");
    no_seq_scans("studio-filtered-page", &one_chat);

    // The http-* workloads go through a server started for them, with sessions of their own.
    steps.at(
        "The http-* workloads go through a server started for them, with sessions of their own",
    );
    let mut inputs = inputs;
    inputs
        .serve(pool, 2, &sambung_bench::http::Topology::default())
        .await
        .unwrap();
    for workload in Workload::ALL {
        let modes: &[Mode] = match workload.direct() {
            Some(_) => &[Mode::Http, Mode::DataLayer],
            None => &[Mode::DataLayer, Mode::Baseline],
        };
        for &mode in modes {
            run_once(pool, &inputs, workload, mode, 7)
                .await
                .unwrap_or_else(|e| panic!("{workload:?} {mode:?}: {e}"));
        }
        let run = Run {
            seconds: 0.2,
            concurrency: 2,
            warmup: Duration::from_millis(50),
        };
        let (ours, baseline) = compare(pool, &inputs, workload, run).await;
        for stats in [ours, baseline] {
            assert!(stats.ops > 0 && stats.errors == 0, "{stats:?}");
            assert!(
                stats.p50_ms <= stats.p95_ms && stats.p95_ms <= stats.p99_ms,
                "{stats:?}"
            );
        }
    }
    inputs.close().await.unwrap();
    // Files through the server: whole both ways, and 20 uploads at once streamed, not held.
    steps.at("Files through the server");
    let files = sambung_bench::files::run(pool, 0.0).await.unwrap();
    assert!(files.rounds >= 3 && files.errors == 0, "{files:?}");
    assert!(
        files.rss_peak_mb - files.rss_before_mb
            < files.file_mb * sambung_bench::files::AT_ONCE as f64 / 2.0,
        "20 uploads at once must not hold their files in memory: {files:?}"
    );
    assert!(
        files.image_turns == 5 && files.image_mb > 4.0 && files.image_base64_ms > 0.0,
        "turns with an image and without, and the server's part: {files:?}"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the benchmark's files are gone with its user");
    // Turns through the server against the built-in fake provider.
    steps.at("Turns through the server against the built-in fake provider");
    let run = sambung_bench::generate::GenerateRun {
        turns: 6,
        warmup: 2,
        concurrency: 2,
        streams: 8,
        pace: Duration::from_millis(5),
    };
    let report = sambung_bench::generate::run(pool, &inputs.personal_chats, run)
        .await
        .unwrap();
    assert_eq!(
        (report.turns, report.streams, report.errors),
        (6, 8, 0),
        "{report:?}"
    );
    // Eight turns one after another on two tasks and eight streams at once: the turns reuse
    // the provider connections the previous turns left open.
    assert!(report.provider_connections < 16, "{report:?}");
    // The fake's own time includes its 5 ms pace; every turn's first token at the client comes
    // after the fake's, so each percentile of the difference is positive.
    steps.at("The fake's own time includes its 5 ms pace");
    assert!(report.provider_first_token_p50_ms >= 5.0, "{report:?}");
    assert!(
        report.added_first_token_p50_ms > 0.0 && report.added_first_token_p95_ms > 0.0,
        "{report:?}"
    );
    // Turns on two tasks cannot be paired with the provider's requests by their order.
    assert!(report.split.is_none(), "{report:?}");
    // One after another they can: the time to the provider's request and the relay back.
    steps.at("One after another, the added time split in two");
    let one_at_a_time = sambung_bench::generate::GenerateRun {
        turns: 4,
        warmup: 1,
        concurrency: 1,
        streams: 1,
        ..run
    };
    let report = sambung_bench::generate::run(pool, &inputs.personal_chats, one_at_a_time)
        .await
        .unwrap();
    assert_eq!((report.turns, report.errors), (4, 0), "{report:?}");
    let split = report.split.clone().unwrap_or_else(|| panic!("{report:?}"));
    assert!(
        split.to_provider_p50_ms > 0.0 && split.relay_p50_ms > 0.0,
        "{report:?}"
    );
    let models: i64 = sqlx::query_scalar("SELECT count(*) FROM models")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(models, 0, "the benchmark's models are removed");
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "the benchmark's sessions are ended");
}

#[tokio::test]
async fn a_database_without_the_dataset_is_refused() {
    let db = TestDb::migrated().await;
    let err = Inputs::sample(db.pool()).await.unwrap_err();
    assert!(err.hint().unwrap().contains("db seed --scale"));
    assert!(Workload::parse("nope").is_err());
    assert_eq!(Workload::parse("all").unwrap().len(), Workload::ALL.len());
    // A search without a band runs all three; with one, that one.
    let names = |name| -> Vec<&str> {
        Workload::parse(name)
            .unwrap()
            .into_iter()
            .map(Workload::name)
            .collect()
    };
    assert_eq!(
        names("search-prompts"),
        [
            "search-prompts-common",
            "search-prompts-middling",
            "search-prompts-rare"
        ]
    );
    assert_eq!(names("search-messages-rare"), ["search-messages-rare"]);
    assert!(Workload::parse("search-messages-").is_err() && Workload::parse("search").is_err());
}

#[tokio::test]
async fn prepared_searches_keep_their_plans_for_every_word() {
    let (db, inputs) = seeded().await;
    let pool = db.pool();
    // A burst of appends first: the statistics lag behind the table, as on a busy server.
    for (i, (owner, chat)) in inputs.personal_chats.iter().take(200).enumerate() {
        let text = format!("{} appended {i}", inputs.words[0][i % 10]);
        chats::append_message(pool, *owner, *chat, &text, None)
            .await
            .unwrap();
    }
    let user = format!("'{}'::uuid", inputs.personal_chats[0].0);
    let quoted = |w: &str| format!("'{w}'");
    let [common, middling, rare] = &inputs.words;
    let words: Vec<String> = [common, middling, rare]
        .iter()
        .flat_map(|band| band.iter().take(4).map(|w| quoted(w)))
        .collect();
    let runs: Vec<Vec<&str>> = words
        .iter()
        .cycle()
        .take(10)
        .map(|w| vec![user.as_str(), w.as_str(), "20"])
        .collect();
    // The message search takes its caller as three parameters (a user, or a session to check).
    let caller_runs: Vec<Vec<&str>> = words
        .iter()
        .cycle()
        .take(10)
        .map(|w| vec![user.as_str(), "NULL", "NULL", w.as_str(), "20"])
        .collect();
    let search_sql = chats::search_messages_sql();
    let mut conn = pool.acquire().await.unwrap();
    for (i, word) in [&common[0], &rare[0]].into_iter().enumerate() {
        let word = quoted(word);
        let explain: &[&str] = &[&user, &word, "20"];
        let caller_explain: &[&str] = &[&user, "NULL", "NULL", &word, "20"];
        for mode in ["auto", "force_generic_plan"] {
            sqlx::raw_sql(&format!("SET plan_cache_mode = {mode}"))
                .execute(&mut *conn)
                .await
                .unwrap();
            let name = format!("search_messages_{mode}_{i}");
            let plan = sambung_testkit::explain_prepared(
                &mut conn,
                &name,
                &search_sql,
                &caller_runs,
                caller_explain,
            )
            .await;
            // Each readable chat's messages, newest first, through its index; never the
            // whole table's matches through the GIN index.
            assert!(
                plan.contains("Index Scan Backward using message_chat_id_idx"),
                "{mode} {word}:\n{plan}"
            );
            assert!(
                !plan.contains("message_content_search_idx"),
                "{mode} {word}:\n{plan}"
            );
            no_seq_scans("search-messages (prepared)", &plan);

            let name = format!("search_prompts_{mode}_{i}");
            let plan = sambung_testkit::explain_prepared(
                &mut conn,
                &name,
                &prompts::SEARCH_PROMPTS_RANKED_SQL,
                &runs,
                explain,
            )
            .await;
            assert!(uses_a_prompt_index(&plan), "{mode} {word}:\n{plan}");
            no_seq_scans("search-prompts (prepared)", &plan);
        }
    }
    // And the results are right: the newest matches first, only from readable chats.
    let (owner, _) = inputs.personal_chats[0];
    let found = chats::search_messages(pool, owner, inputs.words[0][0], 20)
        .await
        .unwrap();
    let expected: Vec<sambung_db::MessageId> = sqlx::query_scalar(
        "SELECT m.id FROM messages m, sambung_chat_reader(m.chat_id, $1) p
          WHERE m.content_tsv @@ plainto_tsquery('simple', $2)
          ORDER BY m.created_at DESC, m.id DESC LIMIT 20",
    )
    .bind(owner)
    .bind(inputs.words[0][0])
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        found.iter().map(|m| m.message.id).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(found.len(), 20, "a common word is in more than 20 messages");
}
