//! Studio in a real headless Chromium: what a user does, click by click, checked against the
//! database. Screenshots land in docs/ for the README.

use crate::common;

use std::path::PathBuf;

use sambung_testkit::browser::Browser;
use serde_json::{json, Value};

/// Screenshots go under the build directory, never into the source tree:
/// `scripts/refresh-screenshots` copies them into `docs/` for the README.
fn docs(file: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(file)
}

async fn scalar(running: &common::Running, sql: &str) -> String {
    sqlx::query_scalar(sql)
        .fetch_one(running.db.pool())
        .await
        .unwrap()
}

const CHAT_TITLES: &str = "SELECT string_agg(title, ',' ORDER BY title) FROM chats";

/// The texts of one column of the grid, top to bottom.
async fn column_texts(browser: &Browser, column: &str) -> Vec<String> {
    browser
        .texts(&format!("#grid tbody td[data-column={column}]"))
        .await
}

async fn open_table(browser: &Browser, table: &str) {
    browser
        .click(&format!("#table-list a[data-table={table}]"))
        .await;
    browser.until_text("#table-title", table).await;
    browser.until_text("#page-info", "ms").await;
}

async fn add_filter(browser: &Browser, column: &str, op: &str, value: &str) {
    browser
        .element("#filter-column")
        .await
        .select_by_value(column)
        .await
        .unwrap();
    browser
        .element("#filter-op")
        .await
        .select_by_value(op)
        .await
        .unwrap();
    let input = browser.element("#filter-value").await;
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
    browser.click("#filter-add").await;
}

/// Double-click a cell of the first row: its editor opens.
async fn open_first_row_cell(browser: &Browser, column: &str) {
    let cell = browser
        .element(&format!(
            "#grid tbody tr[data-row='0'] td[data-column={column}]"
        ))
        .await;
    browser
        .client
        .execute(
            "arguments[0].dispatchEvent(new MouseEvent('dblclick', { bubbles: true }));",
            vec![serde_json::to_value(&cell).unwrap()],
        )
        .await
        .unwrap();
}

/// Edit a cell of the first row: open it, type, save.
async fn edit_first_row(browser: &Browser, column: &str, value: &str) {
    open_first_row_cell(browser, column).await;
    let input = browser.element(".editor textarea").await;
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
    browser.click(".editor button.save").await;
}

/// Fetch what the link with this id points to, from the page (with its cookie), as `text` or
/// `json`.
async fn fetch_in_page(browser: &Browser, link: &str, body: &str) -> Value {
    browser
        .client
        .execute_async(
            "const [link, body, done] = arguments;
             fetch(document.getElementById(link).href).then(r => r[body]()).then(done);",
            vec![json!(link), json!(body)],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_browses_edits_queries_and_exports_in_chromium() {
    let mut steps = sambung_testkit::Steps::new();
    let running = common::start(false).await;
    sqlx::query(
        "INSERT INTO messages (chat_id, role, content, metadata)
         SELECT (SELECT id FROM chats WHERE title = 'Sample Chat'),
                CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END,
                'message ' || lpad(g::text, 2, '0'),
                CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('tokens', g) END
         FROM generate_series(1, 60) AS g",
    )
    .execute(running.db.pool())
    .await
    .unwrap();
    let browser = Browser::start().await;
    browser.client.goto(&running.url).await.unwrap();
    // The token went into a cookie and out of the address bar.
    steps.at("The token went into a cookie and out of the address bar");
    let address = browser.client.current_url().await.unwrap();
    assert!(!address.as_str().contains("token"), "{address}");
    browser
        .until(
            "the page to start",
            "return document.body.dataset.ready || null",
            |v| v == "true",
        )
        .await;
    let chats_count = browser.text("#table-list a[data-table=chats] .count").await;
    assert_eq!(chats_count, "2");

    // Browse: 63 messages in pages of 50.
    steps.at("Browse");
    open_table(&browser, "messages").await;
    assert_eq!(column_texts(&browser, "content").await.len(), 50);
    browser.click("#page-next").await;
    browser.until_text("#page-info", "Rows 51–63").await;
    browser.click("#page-prev").await;
    browser.until_text("#page-info", "Rows 1–50").await;

    // NULL is shown as NULL; JSON is pretty-printed.
    steps.at("NULL is shown as NULL");
    let metadata = column_texts(&browser, "metadata").await;
    assert!(metadata.iter().any(|m| m == "NULL"), "{metadata:?}");
    assert!(
        metadata.iter().any(|m| m.contains("{\n  \"tokens\": ")),
        "{metadata:?}"
    );

    // Sort by content, then the other way.
    steps.at("Sort by content, then the other way");
    browser.click("#grid th[data-column=content]").await;
    browser
        .until_text("#grid th[data-column=content]", "▲")
        .await;
    let ascending: Vec<String> =
        sqlx::query_scalar("SELECT content FROM messages ORDER BY content LIMIT 50")
            .fetch_all(running.db.pool())
            .await
            .unwrap();
    assert_eq!(column_texts(&browser, "content").await, ascending);
    browser.click("#grid th[data-column=content]").await;
    browser
        .until_text("#grid th[data-column=content]", "▼")
        .await;
    assert_eq!(column_texts(&browser, "content").await[0], "message 60");
    browser.screenshot(docs("studio-data.png")).await;

    // Filter: assistants only.
    steps.at("Filter");
    add_filter(&browser, "role", "eq", "assistant").await;
    browser.until_text("#filters", "role = \"assistant\"").await;
    let assistants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE role = 'assistant'")
            .fetch_one(running.db.pool())
            .await
            .unwrap();
    browser
        .until_text("#page-info", &format!("Rows 1–{assistants}"))
        .await;
    browser.click("#count-rows").await;
    browser
        .until_text(
            "#row-count",
            &format!("{assistants} rows match the filters"),
        )
        .await;
    assert!(column_texts(&browser, "role")
        .await
        .iter()
        .all(|r| r == "assistant"));

    // Export what is shown: the link carries the view; the browser's cookie opens it.
    steps.at("Export what is shown");
    browser.click("#export-csv").await;
    let csv = browser.downloaded("messages.csv").await;
    assert!(
        csv.starts_with("id,chat_id,role,content,metadata,created_at"),
        "{csv}"
    );
    assert_eq!(csv.lines().count() as i64, 1 + assistants);
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",assistant,")),
        "{csv}"
    );
    let json_export = fetch_in_page(&browser, "export-json", "json").await;
    assert_eq!(json_export.as_array().unwrap().len() as i64, assistants);
    assert_eq!(json_export[0]["content"], "message 60");

    // Follow a foreign key: the message's chat opens, that row only.
    steps.at("Follow a foreign key");
    browser
        .click("#grid tbody tr[data-row='0'] td[data-column=chat_id] a.fk")
        .await;
    browser.until_text("#table-title", "chats").await;
    browser.until_text("#filters", "id = ").await;
    browser.until_text("#page-info", "Rows 1–1").await;
    assert_eq!(column_texts(&browser, "title").await, ["Sample Chat"]);

    // Edit a cell.
    steps.at("Edit a cell");
    edit_first_row(&browser, "title", "Edited in Chromium").await;
    browser
        .until_text(
            "#grid tbody tr[data-row='0'] td[data-column=title]",
            "Edited in Chromium",
        )
        .await;
    assert_eq!(
        scalar(&running, CHAT_TITLES).await,
        "Edited in Chromium,Team Planning"
    );

    // A CHECK violation is explained next to the cell; nothing changes.
    steps.at("A CHECK violation is explained next to the cell");
    edit_first_row(&browser, "title", "   ").await;
    let explained = browser
        .until_text(".editor .error", "chats_title_not_blank")
        .await;
    assert!(explained.contains("btrim(title)"), "{explained}");
    browser.click(".editor button.cancel").await;
    assert_eq!(
        scalar(&running, CHAT_TITLES).await,
        "Edited in Chromium,Team Planning"
    );

    // Insert a row: only name and color given, the rest defaults.
    steps.at("Insert a row");
    open_table(&browser, "tags").await;
    browser.click("#insert-open").await;
    browser
        .element("#insert-form input[name=name]")
        .await
        .send_keys("from-chromium")
        .await
        .unwrap();
    browser
        .element("#insert-form input[name=color]")
        .await
        .send_keys("#123456")
        .await
        .unwrap();
    browser.click("#insert-save").await;
    browser.until_text("#message", "Row inserted").await;
    assert_eq!(
        scalar(&running, "SELECT color FROM tags WHERE name = 'from-chromium' AND id IS NOT NULL AND created_at IS NOT NULL").await,
        "#123456"
    );

    // Delete it, after saying yes.
    steps.at("Delete it, after saying yes");
    add_filter(&browser, "name", "eq", "from-chromium").await;
    browser.until_text("#page-info", "Rows 1–1").await;
    browser
        .click("#grid tbody tr[data-row='0'] input[type=checkbox]")
        .await;
    browser.click("#delete-selected").await;
    browser
        .until_text("#confirm-text", "Delete 1 row from tags?")
        .await;
    browser.click("#confirm-yes").await;
    browser.until_text("#message", "Deleted 1 row").await;
    assert_eq!(
        scalar(
            &running,
            "SELECT count(*)::text FROM tags WHERE name = 'from-chromium'"
        )
        .await,
        "0"
    );

    // A long value: the page holds its start, the editor all of it.
    steps.at("A long value");
    sqlx::query("UPDATE prompts SET content = repeat('long ', 300)")
        .execute(running.db.pool())
        .await
        .unwrap();
    open_table(&browser, "prompts").await;
    browser
        .element("#grid tbody tr[data-row='0'] td[data-column=content] .truncated")
        .await;
    open_first_row_cell(&browser, "content").await;
    let whole = browser
        .until(
            "the whole value in the editor",
            "const t = document.querySelector('.editor textarea'); return t ? t.value.length : null;",
            |v| v.as_u64().is_some(),
        )
        .await;
    assert_eq!(whole, 1500);
    browser.click(".editor button.cancel").await;

    // The SQL console: a SELECT, an UPDATE and a failing statement.
    steps.at("The SQL console");
    browser.click("#tab-sql").await;
    browser
        .element("#sql-input")
        .await
        .send_keys(
            "SELECT title FROM chats ORDER BY title;\n\
             UPDATE chats SET model = 'gpt-5' WHERE title = 'Team Planning';\n\
             SELECT nope FROM chats;",
        )
        .await
        .unwrap();
    browser.click("#sql-run").await;
    let error = browser
        .until_text("#sql-output .error", "Line 3, column 8")
        .await;
    assert!(error.contains("column \"nope\" does not exist"), "{error}");
    let grids = browser.texts("#sql-output .result").await;
    assert_eq!(grids.len(), 2, "{grids:?}");
    assert!(
        grids[0].contains("2 rows") && grids[0].contains("Team Planning"),
        "{}",
        grids[0]
    );
    assert!(grids[1].contains("1 row affected"), "{}", grids[1]);
    assert_eq!(
        scalar(
            &running,
            "SELECT model FROM chats WHERE title = 'Team Planning'"
        )
        .await,
        "gpt-5"
    );
    browser.screenshot(docs("studio-console.png")).await;
    let history = browser.texts("#history-list li").await;
    assert_eq!(history.len(), 1);
    assert!(
        history[0].starts_with("SELECT title FROM chats"),
        "{history:?}"
    );

    // The schema: every table drawn, an edge per foreign key, details below.
    steps.at("The schema");
    browser.click("#tab-schema").await;
    browser.element("#er-diagram").await;
    let (tables, foreign_keys): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sambung_migrations'),
                (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace)",
    )
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    let drawn = browser
        .until("the diagram", "return [document.querySelectorAll('#er-diagram g.entity').length, document.querySelectorAll('#er-diagram path.edge').length]", |v| {
            v[0].as_i64() > Some(0)
        })
        .await;
    assert_eq!(drawn, json!([tables, foreign_keys]));
    let chat_tags = browser.text("#schema-chat_tags").await;
    assert!(
        chat_tags.contains("chat_tags_pkey: PRIMARY KEY (chat_id, tag_id)"),
        "{chat_tags}"
    );
    assert!(
        chat_tags.contains("CREATE INDEX chat_tag_tag_id_idx"),
        "{chat_tags}"
    );
    browser.screenshot(docs("studio-schema.png")).await;

    // Every page request carried the cookie, and nothing failed in the page.
    steps.at("Every page request carried the cookie, and nothing failed in the page");
    let problems: Value = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#table-list .error')].length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(problems, 0);
    browser.close().await;
    running.stop().await;
}

#[tokio::test]
async fn a_read_only_studio_offers_no_edits_and_its_console_refuses_writes() {
    let running = common::start(true).await;
    let browser = Browser::start().await;
    browser.client.goto(&running.url).await.unwrap();
    browser.until_text("#read-only-badge", "read-only").await;
    open_table(&browser, "chats").await;
    let hidden: Value = browser
        .client
        .execute(
            "return [$('insert-open').hidden, $('delete-selected').hidden,
                     document.querySelectorAll('#grid td.editable').length]
                    .map(String);
             function $(id) { return document.getElementById(id); }",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hidden, json!(["true", "true", "0"]));
    open_first_row_cell(&browser, "title").await;
    assert!(browser.all(".editor").await.is_empty());

    browser.click("#tab-sql").await;
    browser
        .element("#sql-input")
        .await
        .send_keys("UPDATE chats SET title = 'changed'")
        .await
        .unwrap();
    browser.click("#sql-run").await;
    browser
        .until_text("#sql-output .error", "read-only transaction")
        .await;
    assert_eq!(
        scalar(&running, CHAT_TITLES).await,
        "Sample Chat,Team Planning"
    );
    browser.close().await;
    running.stop().await;
}
