//! Studio's HTTP API against a real database: who may call it, what pages hold, how edits,
//! the console and exports behave, and that hostile input never reaches SQL as SQL.

use crate::common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn chat_titles(running: &common::Running) -> Vec<String> {
    sqlx::query_scalar("SELECT title FROM chats ORDER BY title")
        .fetch_all(running.db.pool())
        .await
        .unwrap()
}

/// 120 more messages in the sample chat: some with metadata, some without, one empty.
async fn add_messages(running: &common::Running) {
    sqlx::query(
        "INSERT INTO messages (chat_id, role, content, metadata)
         SELECT (SELECT id FROM chats WHERE title = 'Sample Chat'), 'user',
                CASE WHEN g = 7 THEN '' ELSE 'note ' || lpad(g::text, 3, '0') END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE jsonb_build_object('n', g % 10) END
         FROM generate_series(1, 120) AS g",
    )
    .execute(running.db.pool())
    .await
    .unwrap();
}

/// One table's entry in `/api/tables`.
fn table_count(tables: &Value, name: &str) -> Value {
    tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()
        .clone()
}

/// Every page of a view, following the cursors; the rows' ids in order.
async fn all_pages(running: &common::Running, table: &str, mut view: Value) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let page = running.rows(table, view.clone()).await.ok();
        for row in page["rows"].as_array().unwrap() {
            ids.push(row[0].as_str().unwrap().to_owned());
        }
        if page["next"].is_null() {
            return ids;
        }
        view["after"] = page["next"].clone();
    }
    panic!("paging never ended");
}

#[tokio::test]
async fn only_token_holders_on_its_own_host_get_in_and_writes_must_be_same_site() {
    let mut steps = sambung_testkit::Steps::new();
    let running = common::start(false).await;
    let client = running.raw_client();
    let tables = format!("{}/api/tables", running.base);

    let status =
        |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status() };

    assert_eq!(status(client.get(&tables)).await, StatusCode::UNAUTHORIZED);
    let wrong = client.get(&tables).header("x-studio-token", "0".repeat(43));
    assert_eq!(status(wrong).await, StatusCode::UNAUTHORIZED);
    let wrong_link = client
        .get(format!("{}/?token=nope", running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_link.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong_link.headers().get("set-cookie").is_none());

    // Refusals carry the security headers too.
    steps.at("Refusals carry the security headers too");
    let refused = client.get(&tables).send().await.unwrap();
    assert_eq!(refused.headers()["x-frame-options"], "DENY");
    assert!(refused.headers().contains_key("content-security-policy"));
    // The token's redirect never leads to another site.
    steps.at("The token's redirect never leads to another site");
    for path in ["//evil.example/", "/\\evil.example/"] {
        let visit = client
            .get(format!("{}{path}?token={}", running.base, running.token))
            .send()
            .await
            .unwrap();
        assert_eq!(visit.status(), StatusCode::SEE_OTHER);
        let location = visit.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "{location}"
        );
    }

    // The printed URL trades its token for a cookie and sends the browser to a clean URL.
    steps.at("The printed URL trades its token for a cookie and sends the browser to a clean URL");
    let first_visit = client.get(&running.url).send().await.unwrap();
    assert_eq!(first_visit.status(), StatusCode::SEE_OTHER);
    assert_eq!(first_visit.headers()["location"], "/");
    let cookie = first_visit.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with(&format!(
        "sambung_studio_{}={}",
        running.port, running.token
    )));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = client
        .get(&tables)
        .header("cookie", format!("theme=dark; {cookie}"));
    assert_eq!(status(with_cookie).await, StatusCode::OK);

    // DNS rebinding: a foreign name for this address is refused, token or not.
    steps.at("DNS rebinding");
    for (host, expected) in [
        ("attacker.example", StatusCode::MISDIRECTED_REQUEST),
        ("localhost", StatusCode::OK),
    ] {
        let request = client
            .get(&tables)
            .header("host", format!("{host}:{}", running.port))
            .header("cookie", &cookie);
        assert_eq!(status(request).await, expected, "{host}");
    }

    // Cross-site writes, even carrying the cookie, change nothing.
    steps.at("Cross-site writes, even carrying the cookie, change nothing");
    let before = chat_titles(&running).await;
    let write = json!({ "sql": "UPDATE chats SET title = 'pwned'" });
    let post = || {
        client
            .post(format!("{}/api/sql", running.base))
            .header("cookie", &cookie)
    };
    for request in [
        post()
            .header("origin", "http://attacker.example")
            .json(&write),
        post().header("sec-fetch-site", "cross-site").json(&write),
        post()
            .header("content-type", "text/plain")
            .body(write.to_string()),
    ] {
        assert_eq!(status(request).await, StatusCode::FORBIDDEN);
    }
    assert_eq!(chat_titles(&running).await, before);

    // The page is self-contained: it loads nothing from anywhere else, and says so in its CSP.
    steps.at("The page is self-contained");
    let page = running.request(Method::GET, "/").send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    for asset in [
        html,
        running.get("/app.js").await.body.to_string(),
        running.get("/app.css").await.body.to_string(),
    ] {
        let external = asset
            .replace("http://www.w3.org/2000/svg", "")
            .contains("://");
        assert!(!external, "an asset refers to another site");
    }
    running.stop().await;
}

#[tokio::test]
async fn keyset_pages_cover_every_row_once_in_any_sort_and_filters_match_sql() {
    let mut steps = sambung_testkit::Steps::new();
    let running = common::start(false).await;
    add_messages(&running).await;
    let pool = running.db.pool();

    let tables = running.get("/api/tables").await.ok();
    let messages = table_count(&tables, "messages");
    assert_eq!(messages["rows"], 123);
    assert_eq!(messages["exact"], true);

    for (sort, order) in [
        (Value::Null, "id"),
        (
            json!({ "column": "content", "descending": true }),
            "content DESC, id DESC",
        ),
        // metadata has NULLs: they come last, and paging crosses them.
        (json!({ "column": "metadata" }), "metadata NULLS LAST, id"),
        (
            json!({ "column": "metadata", "descending": true }),
            "metadata DESC NULLS LAST, id DESC",
        ),
    ] {
        let mut view = json!({ "limit": 7 });
        if !sort.is_null() {
            view["sort"] = sort.clone();
        }
        let paged = all_pages(&running, "messages", view).await;
        let expected: Vec<String> =
            sqlx::query_scalar(&format!("SELECT id::text FROM messages ORDER BY {order}"))
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(paged, expected, "sorted by {sort}");
    }

    for (filter, condition) in [
        (
            json!({ "column": "content", "op": "eq", "value": "note 010" }),
            "content = 'note 010'",
        ),
        (
            json!({ "column": "content", "op": "ne", "value": "note 010" }),
            "content IS DISTINCT FROM 'note 010'",
        ),
        (
            json!({ "column": "content", "op": "lt", "value": "note 005" }),
            "content < 'note 005'",
        ),
        (
            json!({ "column": "created_at", "op": "gt", "value": "2000-01-01" }),
            "created_at > '2000-01-01'",
        ),
        (
            json!({ "column": "content", "op": "contains", "value": "E 01" }),
            "content ILIKE '%e 01%'",
        ),
        (
            json!({ "column": "metadata", "op": "is_null" }),
            "metadata IS NULL",
        ),
        (
            json!({ "column": "metadata", "op": "not_null" }),
            "metadata IS NOT NULL",
        ),
        (
            json!({ "column": "metadata", "op": "eq", "value": "{\"n\": 4}" }),
            "metadata = '{\"n\": 4}'",
        ),
        // LIKE's wildcards are searched for, not obeyed.
        (
            json!({ "column": "content", "op": "contains", "value": "%" }),
            "false",
        ),
    ] {
        let paged = all_pages(
            &running,
            "messages",
            json!({ "filters": [filter.clone()], "limit": 50 }),
        )
        .await;
        let expected: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id::text FROM messages WHERE {condition} ORDER BY id"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(paged, expected, "filter {filter}");
        let counted = running
            .send(
                running
                    .request(Method::GET, "/api/tables/messages/count")
                    .query(&[("view", json!({ "filters": [filter] }).to_string())]),
            )
            .await
            .ok();
        assert_eq!(counted["rows"], expected.len());
    }

    // NULL and the empty string are different values, on the page and in filters.
    steps.at("NULL and the empty string are different values, on the page and in filters");
    let empty = running
        .rows(
            "messages",
            json!({ "filters": [{ "column": "content", "op": "eq", "value": "" }] }),
        )
        .await
        .ok();
    assert_eq!(empty["rows"].as_array().unwrap().len(), 1);
    let content = empty["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "content")
        .unwrap();
    let metadata = empty["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "metadata")
        .unwrap();
    assert_eq!(empty["rows"][0][content], json!(""));
    let nulls = running
        .rows(
            "messages",
            json!({ "filters": [{ "column": "metadata", "op": "is_null" }], "limit": 1 }),
        )
        .await
        .ok();
    assert_eq!(nulls["rows"][0][metadata], Value::Null);

    // Composite primary keys page too.
    steps.at("Composite primary keys page too");
    let chat_tags = running.rows("chat_tags", json!({ "limit": 1 })).await.ok();
    assert_eq!(chat_tags["keys"][0].as_array().unwrap().len(), 2);
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_tags")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        all_pages(&running, "chat_tags", json!({ "limit": 1 }))
            .await
            .len() as i64,
        all
    );
    running.stop().await;
}

#[tokio::test]
async fn hostile_filters_and_sorts_get_clear_errors_and_never_run_as_sql() {
    let running = common::start(false).await;
    let before = chat_titles(&running).await;
    let cases = [
        (
            json!({ "filters": [{ "column": "title; DROP TABLE chats; --", "op": "eq", "value": "x" }] }),
            StatusCode::BAD_REQUEST,
            "has no column",
        ),
        (
            json!({ "sort": { "column": "id DESC; DELETE FROM chats" } }),
            StatusCode::BAD_REQUEST,
            "has no column",
        ),
        (
            json!({ "filters": [{ "column": "id", "op": "eq", "value": "not-a-uuid" }] }),
            StatusCode::BAD_REQUEST,
            "Not a valid value: invalid input syntax for type uuid",
        ),
        (
            json!({ "filters": [{ "column": "created_at", "op": "lt", "value": "yesterday-ish" }] }),
            StatusCode::BAD_REQUEST,
            "Not a valid value",
        ),
        (
            json!({ "filters": [{ "column": "title", "op": "drop", "value": "x" }] }),
            StatusCode::BAD_REQUEST,
            "unknown variant `drop`",
        ),
        (
            json!({ "filters": [{ "column": "title", "op": "eq" }] }),
            StatusCode::BAD_REQUEST,
            "needs a value",
        ),
        (
            json!({ "after": ["x", "y", "z"] }),
            StatusCode::BAD_REQUEST,
            "row key has 1 values here, not 3",
        ),
    ];
    for (view, status, expected) in cases {
        let error = running.rows("chats", view.clone()).await.refused(status);
        assert!(error.contains(expected), "{view}: {error}");
    }
    // Quotes and semicolons in values are data.
    for value in [
        "' OR 1=1 --",
        "x'); DROP TABLE chats; --",
        "\"; DELETE FROM chats",
    ] {
        for op in ["eq", "contains", "lt"] {
            let page = running
                .rows(
                    "chats",
                    json!({ "filters": [{ "column": "title", "op": op, "value": value }] }),
                )
                .await
                .ok();
            if op != "lt" {
                assert_eq!(page["rows"].as_array().unwrap().len(), 0, "{op} {value}");
            }
        }
    }
    let bad_json = running
        .send(
            running
                .request(Method::GET, "/api/tables/chats/rows")
                .query(&[("view", "{not json")]),
        )
        .await
        .refused(StatusCode::BAD_REQUEST);
    assert!(bad_json.contains("not understood"), "{bad_json}");
    let no_table = running
        .rows("chats; DROP TABLE users", json!({}))
        .await
        .refused(StatusCode::NOT_FOUND);
    assert!(no_table.contains("no table named"), "{no_table}");
    assert_eq!(chat_titles(&running).await, before);
    running.stop().await;
}

#[tokio::test]
async fn edits_apply_only_over_what_the_user_saw_and_explain_refusals() {
    let mut steps = sambung_testkit::Steps::new();
    let running = common::start(false).await;
    let pool = running.db.pool();
    let (chat_id, title): (String, String) =
        sqlx::query_as("SELECT id::text, title FROM chats WHERE title = 'Sample Chat'")
            .fetch_one(pool)
            .await
            .unwrap();
    let edit = |column: &str, seen: Value, value: Value| json!({ "key": [chat_id], "column": column, "seen": seen, "value": value });

    let saved = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("title", json!(title), json!("Renamed")),
        )
        .await
        .ok();
    assert_eq!(saved["key"], json!([chat_id]));
    assert!(saved["values"]
        .as_array()
        .unwrap()
        .contains(&json!("Renamed")));

    // Someone else changed it meanwhile: the user's stale view loses, nothing is overwritten.
    steps.at("Someone else changed it meanwhile");
    sqlx::query("UPDATE chats SET title = 'Changed elsewhere' WHERE id = $1::uuid")
        .bind(&chat_id)
        .execute(pool)
        .await
        .unwrap();
    let conflict = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("title", json!("Renamed"), json!("Mine")),
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.body["current"], "Changed elsewhere");
    assert!(chat_titles(&running)
        .await
        .contains(&"Changed elsewhere".to_owned()));

    // NULL seen and NULL set are told apart from the empty string.
    steps.at("NULL seen and NULL set are told apart from the empty string");
    let nulled = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("public_token", Value::Null, json!("")),
        )
        .await;
    assert_eq!(nulled.status, StatusCode::OK, "{}", nulled.body);
    let token: Option<String> =
        sqlx::query_scalar("SELECT public_token FROM chats WHERE id = $1::uuid")
            .bind(&chat_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(token.as_deref(), Some(""));
    let stale_null = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("public_token", Value::Null, json!("x")),
        )
        .await;
    assert_eq!(stale_null.status, StatusCode::CONFLICT);

    // PostgreSQL's refusals, in plain words, naming what caused them.
    steps.at("PostgreSQL's refusals, in plain words, naming what caused them");
    let check = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("title", json!("Changed elsewhere"), json!("   ")),
        )
        .await;
    assert_eq!(check.status, StatusCode::CONFLICT);
    assert_eq!(check.body["code"], "23514");
    let explained = check.body["error"].as_str().unwrap();
    assert!(
        explained.contains("chats_title_not_blank") && explained.contains("btrim(title)"),
        "{explained}"
    );
    assert_eq!(check.body["column"], "title");
    let bad_uuid = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit("folder_id", Value::Null, json!("not-a-uuid")),
        )
        .await;
    // (folder_id is not NULL in the sample: the type error still comes first.)
    steps.at("(folder_id is not NULL in the sample");
    assert_eq!(bad_uuid.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_uuid.body["error"]
            .as_str()
            .unwrap()
            .starts_with("Not a valid value"),
        "{}",
        bad_uuid.body
    );
    let folder: String =
        sqlx::query_scalar("SELECT folder_id::text FROM chats WHERE id = $1::uuid")
            .bind(&chat_id)
            .fetch_one(pool)
            .await
            .unwrap();
    let foreign = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            edit(
                "folder_id",
                json!(folder),
                json!("00000000-0000-7000-8000-000000000000"),
            ),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::CONFLICT);
    assert_eq!(foreign.body["code"], "23503");
    assert!(foreign.body["detail"]
        .as_str()
        .unwrap()
        .contains("is not present in table \"folders\""));
    let gone = running
        .json(
            Method::PATCH,
            "/api/tables/chats/rows",
            json!({ "key": ["00000000-0000-7000-8000-000000000000"], "column": "title", "seen": "a", "value": "b" }),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Insert with defaults; a missing required column is named.
    steps.at("Insert with defaults");
    let tag = running
        .json(
            Method::POST,
            "/api/tables/tags/rows",
            json!({ "values": { "name": "studio", "color": "#00aa00" } }),
        )
        .await
        .ok();
    let tag_id = tag["key"][0].as_str().unwrap().to_owned();
    let missing = running
        .json(
            Method::POST,
            "/api/tables/tags/rows",
            json!({ "values": { "color": "#00aa00" } }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::CONFLICT);
    assert_eq!(missing.body["column"], "name");
    let unknown = running
        .json(
            Method::POST,
            "/api/tables/tags/rows",
            json!({ "values": { "name; --": "x" } }),
        )
        .await
        .refused(StatusCode::BAD_REQUEST);
    assert!(unknown.contains("has no column"), "{unknown}");

    // A composite key: insert into chat_tags and delete by both columns.
    steps.at("A composite key");
    let link = running
        .json(
            Method::POST,
            "/api/tables/chat_tags/rows",
            json!({ "values": { "chat_id": chat_id, "tag_id": tag_id } }),
        )
        .await
        .ok();
    assert_eq!(link["key"], json!([chat_id, tag_id]));
    let deleted = running
        .json(
            Method::DELETE,
            "/api/tables/chat_tags/rows",
            json!({ "keys": [[chat_id, tag_id]] }),
        )
        .await
        .ok();
    assert_eq!(deleted["deleted"], 1);
    // Delete is all or nothing: a bad key in the batch keeps the good one.
    steps.at("Delete is all or nothing");
    let batch = running
        .json(
            Method::DELETE,
            "/api/tables/tags/rows",
            json!({ "keys": [[tag_id], ["zzz"]] }),
        )
        .await;
    assert_eq!(batch.status, StatusCode::BAD_REQUEST);
    let still: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tags WHERE id = $1::uuid)")
        .bind(&tag_id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(still);
    running.stop().await;
}

#[tokio::test]
async fn the_console_runs_scripts_reports_errors_where_they_are_and_times_out() {
    let running = common::start(false).await;
    let run = running
        .sql(
            "SELECT 1 AS one, NULL AS nothing, '' AS empty;\n\
             UPDATE chats SET title = title || '!' WHERE title = 'Sample Chat';\n\
             SELECT title FROM chats WHERE false;",
        )
        .await
        .ok();
    assert!(run["error"].is_null(), "{run}");
    assert!(
        run["notice"].is_null(),
        "nothing to say of a clean run: {run}"
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["columns"], json!(["one", "nothing", "empty"]));
    assert_eq!(results[0]["rows"], json!([["1", null, ""]]));
    assert_eq!(results[1]["rows_affected"], 1);
    assert_eq!(results[1]["line"], 2);
    assert_eq!(results[2]["columns"], json!(["title"]));
    assert!(chat_titles(&running)
        .await
        .contains(&"Sample Chat!".to_owned()));

    let failed = running
        .sql("SELECT 1;\nSELECT nope FROM chats;\nSELECT 2")
        .await
        .ok();
    assert_eq!(failed["results"].as_array().unwrap().len(), 1);
    assert_eq!(failed["error"]["code"], "42703");
    assert_eq!(failed["error"]["at_line"], 2);
    assert_eq!(failed["error"]["at_column"], 8);

    // Queries are read through a cursor: the grid's rows, not all of them.
    let big = running
        .sql("SELECT g FROM generate_series(1, 3000) AS g; SELECT g FROM generate_series(1, 1000) AS g")
        .await
        .ok();
    assert_eq!(big["results"][0]["more_rows"], true);
    assert_eq!(big["results"][0]["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(big["results"][0]["rows"][999], json!(["1000"]));
    assert_eq!(big["results"][1]["more_rows"], false);
    assert_eq!(big["results"][1]["row_count"], 1000);
    let in_own_transaction = running
        .sql("BEGIN; UPDATE chats SET model = 'm' WHERE title = 'Team Planning'; SELECT model FROM chats WHERE title = 'Team Planning'; COMMIT")
        .await
        .ok();
    assert!(
        in_own_transaction["error"].is_null(),
        "{in_own_transaction}"
    );
    assert_eq!(in_own_transaction["results"][2]["rows"], json!([["m"]]));
    assert!(
        in_own_transaction["notice"].is_null(),
        "{in_own_transaction}"
    );
    let runtime_error = running
        .sql("SELECT 1 / (g - 2) FROM generate_series(1, 3) AS g")
        .await
        .ok();
    assert_eq!(runtime_error["error"]["code"], "22012");

    let copy = running.sql("COPY tags FROM STDIN").await.ok();
    assert!(
        copy["error"]["error"]
            .as_str()
            .unwrap()
            .contains("use Export"),
        "{copy}"
    );

    let slow = running.sql("SELECT pg_sleep(10)").await.ok();
    assert_eq!(slow["error"]["code"], "57014");

    // A transaction the script leaves open is rolled back and the user told.
    let open = running
        .sql("BEGIN; UPDATE chats SET title = 'never'")
        .await
        .ok();
    assert!(
        open["notice"].as_str().unwrap().contains("rolled back"),
        "{open}"
    );
    assert!(!chat_titles(&running).await.contains(&"never".to_owned()));
    running.stop().await;
}

#[tokio::test]
async fn read_only_studio_refuses_every_write() {
    let running = common::start(true).await;
    let before = chat_titles(&running).await;
    let chat_id: String = sqlx::query_scalar("SELECT id::text FROM chats LIMIT 1")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    for (method, body) in [
        (
            Method::PATCH,
            json!({ "key": [chat_id], "column": "title", "seen": before[0], "value": "x" }),
        ),
        (Method::POST, json!({ "values": { "title": "x" } })),
        (Method::DELETE, json!({ "keys": [[chat_id]] })),
    ] {
        let refused = running
            .json(method, "/api/tables/chats/rows", body)
            .await
            .refused(StatusCode::FORBIDDEN);
        assert!(refused.contains("--read-only"), "{refused}");
    }
    for script in [
        "UPDATE chats SET title = 'x'",
        "SET default_transaction_read_only = off; UPDATE chats SET title = 'x'",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; UPDATE chats SET title = 'x'",
        "COMMIT; UPDATE chats SET title = 'x'",
        "ROLLBACK; BEGIN READ WRITE; UPDATE chats SET title = 'x'; COMMIT",
        "DO $$ BEGIN UPDATE chats SET title = 'x'; END $$",
        "CREATE TABLE sneaky (id int)",
        // What the application role may not do at all (it is no superuser)...
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/sambung-studio-pwned'",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
        // ...and what would lift Studio's own limits for the rest of the run.
        "SET statement_timeout = 0; SELECT pg_sleep(5)",
        "SELECT set_config('statement_timeout', '0', false); SELECT pg_sleep(5)",
        // PostgreSQL lets a read-only transaction LOCK a table, even ACCESS EXCLUSIVE: the
        // application would wait behind it for the statement timeout.
        "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5)",
        "/* a comment */ lock messages; SELECT pg_sleep(5)",
        "-- a line\n LoCk TABLE ONLY chats IN SHARE MODE",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_catalog.pg_try_advisory_xact_lock(42)",
    ] {
        let run = running.sql(script).await.ok();
        assert!(!run["error"].is_null(), "{script} ran: {run}");
    }
    let refused = running.sql("LOCK messages").await.ok();
    assert!(
        refused["error"]["error"]
            .as_str()
            .unwrap()
            .contains("LOCK and advisory locks"),
        "{refused}"
    );
    assert!(!std::path::Path::new("/tmp/sambung-studio-pwned").exists());
    assert_eq!(chat_titles(&running).await, before);
    let sneaky: bool = sqlx::query_scalar("SELECT to_regclass('sneaky') IS NOT NULL")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    assert!(!sneaky);
    let read = running.sql("SELECT count(*) FROM chats").await.ok();
    assert_eq!(read["results"][0]["rows"][0][0], before.len().to_string());
    running.stop().await;
}

#[tokio::test]
async fn exports_hold_the_whole_filtered_view() {
    let running = common::start(false).await;
    add_messages(&running).await;
    let view = json!({ "filters": [{ "column": "content", "op": "contains", "value": "note 0" }],
                       "sort": { "column": "content", "descending": true } })
    .to_string();
    let export = |format: &'static str| {
        running
            .request(Method::GET, "/api/tables/messages/export")
            .query(&[("view", view.as_str()), ("format", format)])
    };
    let csv = export("csv").send().await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("messages.csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("id,chat_id,role,content,metadata,created_at"),
        "{}",
        lines[0]
    );
    // note 001 .. note 099 but the empty 7th: 98 rows, highest first.
    assert_eq!(lines.len(), 1 + 98);
    assert!(lines[1].contains(",note 099,"), "{}", lines[1]);
    // metadata is NULL for every third: an empty field, not "".
    assert!(lines.iter().any(|l| l.contains(",note 099,,")), "{csv}");

    let json_export: Value = export("json").send().await.unwrap().json().await.unwrap();
    let rows = json_export.as_array().unwrap();
    assert_eq!(rows.len(), 98);
    assert_eq!(rows[0]["content"], "note 099");
    assert_eq!(rows[0]["metadata"], Value::Null);
    assert_eq!(rows[1]["metadata"], json!({ "n": 8 }));

    let bad = running
        .send(
            running
                .request(Method::GET, "/api/tables/messages/export")
                .query(&[
                    (
                        "view",
                        r#"{"filters":[{"column":"id","op":"eq","value":"nope"}]}"#,
                    ),
                    ("format", "csv"),
                ]),
        )
        .await
        .refused(StatusCode::BAD_REQUEST);
    assert!(bad.contains("uuid"), "{bad}");
    running.stop().await;
}

#[tokio::test]
async fn large_tables_are_counted_from_the_catalog() {
    let running = common::start(false).await;
    sqlx::query(
        "INSERT INTO messages (chat_id, role, content)
         SELECT (SELECT id FROM chats LIMIT 1), 'user', 'bulk' FROM generate_series(1, 60000)",
    )
    .execute(running.db.pool())
    .await
    .unwrap();
    // Not analysed yet: the bounded count finds it big and says it is an estimate.
    let tables = running.get("/api/tables").await.ok();
    let messages = table_count(&tables, "messages");
    assert_eq!(messages["exact"], false, "{messages}");
    assert!(messages["rows"].as_i64().unwrap() >= 50_001, "{messages}");
    sqlx::query("ANALYZE messages")
        .execute(running.db.pool())
        .await
        .unwrap();
    let tables = running.get("/api/tables").await.ok();
    let messages = table_count(&tables, "messages");
    let estimate = messages["rows"].as_i64().unwrap();
    assert_eq!(messages["exact"], false);
    assert!((55_000..=65_000).contains(&estimate), "{messages}");
    let users = table_count(&tables, "users");
    assert_eq!(users["exact"], true);
    running.stop().await;
}

#[tokio::test]
async fn tables_made_in_the_console_with_odd_names_and_no_primary_key_page_by_ctid() {
    let running = common::start(false).await;
    let made = running
        .sql(
            r#"CREATE TABLE "Odd ""Name""" ("select" text, "Value" int);
               INSERT INTO "Odd ""Name""" SELECT 'row ' || g, g FROM generate_series(1, 5) g;
               INSERT INTO "Odd ""Name""" VALUES (NULL, NULL)"#,
        )
        .await
        .ok();
    assert!(made["error"].is_null(), "{made}");
    // The console's run refreshed the catalog: the table is listed at once.
    let tables = running.get("/api/tables").await.ok();
    assert_eq!(table_count(&tables, "Odd \"Name\"")["rows"], 6);
    // So does a change made elsewhere, once the table list is read again.
    sqlx::query(r#"ALTER TABLE "Odd ""Name""" ADD COLUMN added_elsewhere int"#)
        .execute(running.db.pool())
        .await
        .unwrap();
    let tables = running.get("/api/tables").await.ok();
    assert_eq!(table_count(&tables, "Odd \"Name\"")["rows"], 6);
    let page = running
        .send(
            running
                .request(Method::GET, "/api/tables/Odd%20%22Name%22/rows")
                .query(&[("view", "{}")]),
        )
        .await
        .ok();
    assert_eq!(
        page["columns"],
        json!(["select", "Value", "added_elsewhere"])
    );

    let path = "/api/tables/Odd%20%22Name%22/rows";
    let mut seen = Vec::new();
    let mut view = json!({ "limit": 2, "sort": { "column": "Value", "descending": true } });
    loop {
        let page = running
            .send(
                running
                    .request(Method::GET, path)
                    .query(&[("view", view.to_string())]),
            )
            .await
            .ok();
        for row in page["rows"].as_array().unwrap() {
            seen.push(row[1].clone());
        }
        if page["next"].is_null() {
            break;
        }
        view["after"] = page["next"].clone();
    }
    assert_eq!(
        seen,
        json!(["5", "4", "3", "2", "1", null])
            .as_array()
            .unwrap()
            .clone()
    );

    let filtered = running
        .send(
            running.request(Method::GET, path).query(&[(
                "view",
                json!({ "filters": [{ "column": "select", "op": "contains", "value": "ROW 3" }] })
                    .to_string(),
            )]),
        )
        .await
        .ok();
    assert_eq!(filtered["rows"], json!([["row 3", "3", null]]));
    let refused = running
        .json(
            Method::PATCH,
            path,
            json!({ "key": [filtered["keys"][0][0]], "column": "Value", "seen": "3", "value": "4" }),
        )
        .await
        .refused(StatusCode::BAD_REQUEST);
    assert!(refused.contains("no primary key"), "{refused}");
    running.stop().await;
}

#[tokio::test]
async fn long_values_are_cut_on_pages_and_whole_when_opened() {
    let running = common::start(false).await;
    let long: String = "é".repeat(1500);
    let id: String = sqlx::query_scalar(
        "INSERT INTO messages (chat_id, role, content)
         SELECT id, 'assistant', $1 FROM chats WHERE title = 'Sample Chat' RETURNING id::text",
    )
    .bind(&long)
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    let view = json!({ "filters": [{ "column": "id", "op": "eq", "value": id }] });
    let page = running.rows("messages", view).await.ok();
    let content = page["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "content")
        .unwrap();
    assert_eq!(
        page["rows"][0][content].as_str().unwrap().chars().count(),
        1000
    );
    assert!(page["truncated"][0]
        .as_array()
        .unwrap()
        .contains(&json!(content)));

    let key = page["keys"][0].to_string();
    let cell = running
        .send(
            running
                .request(Method::GET, "/api/tables/messages/cell")
                .query(&[("key", key.as_str()), ("column", "content")]),
        )
        .await
        .ok();
    assert_eq!(cell["value"], long.as_str());
    // The whole value is what an edit must have seen.
    let edit = |seen: &str| json!({ "key": page["keys"][0], "column": "content", "seen": seen, "value": "short" });
    let cut: String = long.chars().take(1000).collect();
    let stale = running
        .json(Method::PATCH, "/api/tables/messages/rows", edit(&cut))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    running
        .json(Method::PATCH, "/api/tables/messages/rows", edit(&long))
        .await
        .ok();
    let gone = running
        .send(
            running
                .request(Method::GET, "/api/tables/messages/cell")
                .query(&[
                    ("key", r#"["00000000-0000-7000-8000-000000000000"]"#),
                    ("column", "content"),
                ]),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    running.stop().await;
}

/// Tables and columns named after key words of every category (reserved, column-name,
/// type-or-function; some are also functions of their own) show their data, and an edit or a
/// delete keyed by such a column touches one row only.
#[tokio::test]
async fn key_word_names_show_their_data_and_edits_touch_one_row() {
    let running = common::start(false).await;
    let made = running
        .sql(
            r#"CREATE TABLE "null" ("current_user" text PRIMARY KEY, "true" text, "current_date" text,
                                    "session_user" text, "localtime" text, "between" text, "left" text);
               INSERT INTO "null" SELECT k, 't' || k, 'd' || k, 's' || k, 'l' || k, 'b' || k, 'x' || k
                 FROM unnest(ARRAY['a', 'b', 'c']) k;
               CREATE TABLE "window" ("user" int PRIMARY KEY);
               INSERT INTO "window" VALUES (1)"#,
        )
        .await
        .ok();
    assert!(made["error"].is_null(), "{made}");
    let tables = running.get("/api/tables").await.ok();
    assert_eq!(table_count(&tables, "null")["rows"], 3);
    assert_eq!(table_count(&tables, "window")["rows"], 1);

    let page = running
        .rows("null", json!({ "sort": { "column": "current_user" } }))
        .await
        .ok();
    assert_eq!(
        page["rows"][1],
        json!(["b", "tb", "db", "sb", "lb", "bb", "xb"]),
        "{page}"
    );
    assert_eq!(page["keys"][1], json!(["b"]));
    let filtered = running
        .rows(
            "null",
            json!({ "filters": [{ "column": "localtime", "op": "eq", "value": "lc" }] }),
        )
        .await
        .ok();
    assert_eq!(filtered["keys"], json!([["c"]]));
    let cell = running
        .send(
            running
                .request(Method::GET, "/api/tables/null/cell")
                .query(&[("key", r#"["a"]"#), ("column", "session_user")]),
        )
        .await
        .ok();
    assert_eq!(cell["value"], "sa");

    running
        .json(
            Method::PATCH,
            "/api/tables/null/rows",
            json!({ "key": ["b"], "column": "true", "seen": "tb", "value": "changed" }),
        )
        .await
        .ok();
    let deleted = running
        .json(
            Method::DELETE,
            "/api/tables/null/rows",
            json!({ "keys": [["c"]] }),
        )
        .await
        .ok();
    assert_eq!(deleted["deleted"], 1);
    let rows: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT "current_user", "true" FROM "null" ORDER BY 1"#)
            .fetch_all(running.db.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [("a".into(), "ta".into()), ("b".into(), "changed".into())]
    );

    let csv = running
        .request(Method::GET, "/api/tables/null/export")
        .query(&[("view", "{}"), ("format", "csv")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "current_user,true,current_date,session_user,localtime,between,left",
            "a,ta,da,sa,la,ba,xa",
            "b,changed,db,sb,lb,bb,xb"
        ]
    );
    running.stop().await;
}

/// A flood of console runs waits for its turn on a few connections of its own: the server's
/// connections are never exhausted, and browsing goes on meanwhile.
#[tokio::test]
async fn two_hundred_console_runs_at_once_neither_exhaust_connections_nor_block_browsing() {
    let running = std::sync::Arc::new(common::start(false).await);
    let runs: Vec<_> = (0..200)
        .map(|_| {
            let running = running.clone();
            tokio::spawn(async move { running.sql("SELECT pg_sleep(0.05)").await })
        })
        .collect();
    let mut most = 0i64;
    let mut browsed = 0;
    while runs.iter().any(|r| !r.is_finished()) {
        let studio_connections: i64 = sqlx::query_scalar(
            // This test's database only: the other tests' Studios run meanwhile.
            "SELECT count(*) FROM pg_stat_activity
              WHERE application_name = 'sambung studio' AND datname = current_database()",
        )
        .fetch_one(running.db.pool())
        .await
        .unwrap();
        most = most.max(studio_connections);
        let tables = running.get("/api/tables").await;
        assert_eq!(tables.status, StatusCode::OK, "{}", tables.body);
        browsed += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut ran = 0;
    for run in runs {
        // Each run either ran or waited its turn too long and was refused as busy.
        let reply = run.await.unwrap();
        match reply.status {
            StatusCode::OK => {
                assert!(reply.body["error"].is_null(), "{}", reply.body);
                ran += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(reply.body["error"].as_str().unwrap().contains("busy"))
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    assert!(ran >= 50, "only {ran} of 200 runs ran");
    assert!(browsed > 0);
    // Four console runs and the browsing pool's four connections at most.
    assert!(most <= 8, "{most} connections at once");
    let console_result = running
        .sql("SELECT repeat('x', 100000) FROM generate_series(1, 1000)")
        .await
        .ok();
    let grid = &console_result["results"][0];
    let rows = grid["rows"].as_array().unwrap().len();
    assert!((40..1000).contains(&rows), "{rows} rows of 100 kB kept");
    assert_eq!(grid["more_rows"], true);
    std::sync::Arc::try_unwrap(running)
        .ok()
        .unwrap()
        .stop()
        .await;
}

/// A client that never finishes its request head is dropped; others are served meanwhile.
#[tokio::test]
async fn a_slow_client_is_dropped_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = common::start(false).await;
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", running.port))
        .await
        .unwrap();
    slow.write_all(b"GET /api/tables HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(running.get("/api/tables").await.status, StatusCode::OK);
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        slow.read_to_end(&mut buffer),
    )
    .await;
    assert!(read.is_ok(), "the slow connection was kept open");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    running.stop().await;
}

/// An export of a table whose name would break the header downloads under its own name.
#[tokio::test]
async fn export_names_are_encoded_whatever_the_table_is_called() {
    let running = common::start(false).await;
    let made = running
        .sql("CREATE TABLE \"évil\"\"\r\nX-Injected: 1\" (id int PRIMARY KEY); INSERT INTO \"évil\"\"\r\nX-Injected: 1\" VALUES (1)")
        .await
        .ok();
    assert!(made["error"].is_null(), "{made}");
    let export = running
        .request(
            Method::GET,
            "/api/tables/%C3%A9vil%22%0D%0AX-Injected%3A%201/export",
        )
        .query(&[("view", "{}"), ("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.headers().get("x-injected").is_none());
    let disposition = export.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''%C3%A9vil%22%0D%0AX%2DInjected%3A%201%2Ecsv"),
        "{disposition}"
    );
    assert_eq!(export.text().await.unwrap(), "id\n1\n");
    running.stop().await;
}
