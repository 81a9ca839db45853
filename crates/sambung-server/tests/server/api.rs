//! The JSON API's behaviour over HTTP: keyset pages, filters, pins, folders and tags on
//! chats, invites, sharing, search, prompts, API keys, health and the OpenAPI document.

use crate::common;

use std::collections::BTreeSet;

use common::TestApp;
use serde_json::{json, Value};

fn ok(reply: common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    reply.body
}

#[tokio::test]
async fn chat_lists_page_by_keyset_and_filter() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let folder = ok(
        ana.post("/api/v1/folders", json!({"name": "Work"})).await,
        201,
    );
    let tag = ok(
        ana.post(
            "/api/v1/tags",
            json!({"name": "urgent", "color": "#FF0000"}),
        )
        .await,
        201,
    );
    assert_eq!(tag["color"], "#ff0000");
    let mut ids = Vec::new();
    for i in 0..7 {
        let chat = ok(
            ana.post(
                "/api/v1/chats",
                json!({"title": format!("Chat number {i}")}),
            )
            .await,
            201,
        );
        ids.push(chat["id"].as_str().unwrap().to_owned());
    }
    // Newest first, three at a time, every chat once.
    steps.at("Newest first, three at a time, every chat once");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/chats?limit=3&cursor={c}"),
            None => "/api/v1/chats?limit=3".into(),
        };
        let page = ok(ana.get(&path).await, 200);
        for chat in page["items"].as_array().unwrap() {
            seen.push(chat["id"].as_str().unwrap().to_owned());
            assert_eq!(chat["messageCount"], 0);
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    // File one, tag one, pin one; each filter finds exactly it.
    steps.at("File one, tag one, pin one");
    let (filed, tagged, pinned) = (&ids[1], &ids[2], &ids[3]);
    ok(
        ana.patch(
            &format!("/api/v1/chats/{filed}"),
            json!({"folderId": folder["id"]}),
        )
        .await,
        200,
    );
    ok(
        ana.patch(
            &format!("/api/v1/chats/{tagged}"),
            json!({"tags": [tag["id"]]}),
        )
        .await,
        200,
    );
    let pin = ok(
        ana.patch(&format!("/api/v1/chats/{pinned}"), json!({"pinned": true}))
            .await,
        200,
    );
    assert!(pin["pinnedAt"].is_string());
    for (query, want) in [
        (format!("folder={}", folder["id"].as_str().unwrap()), filed),
        (format!("tag={}", tag["id"].as_str().unwrap()), tagged),
        ("pinned=true".to_owned(), pinned),
        ("q=NUMBER%204".to_owned(), &ids[2]),
    ] {
        let page = ok(ana.get(&format!("/api/v1/chats?{query}")).await, 200);
        let found: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(found, [want.as_str()], "{query}");
    }
    let detail = ok(ana.get(&format!("/api/v1/chats/{tagged}")).await, 200);
    assert_eq!(detail["tags"][0]["name"], "urgent");
    // Out of the folder, untagged, unpinned.
    steps.at("Out of the folder, untagged, unpinned");
    ok(
        ana.patch(&format!("/api/v1/chats/{filed}"), json!({"folderId": null}))
            .await,
        200,
    );
    ok(
        ana.patch(&format!("/api/v1/chats/{tagged}"), json!({"tags": []}))
            .await,
        200,
    );
    let unpinned = ok(
        ana.patch(&format!("/api/v1/chats/{pinned}"), json!({"pinned": false}))
            .await,
        200,
    );
    assert!(unpinned["pinnedAt"].is_null());
    assert_eq!(
        ok(
            ana.get(&format!(
                "/api/v1/chats?folder={}",
                folder["id"].as_str().unwrap()
            ))
            .await,
            200
        )["items"],
        json!([])
    );
    // A folder or tag of someone else is refused, naming the field.
    steps.at("A folder or tag of someone else is refused, naming the field");
    let bo = app.user("bo").await;
    let bos_tag = ok(bo.post("/api/v1/tags", json!({"name": "bo's"})).await, 201);
    let refused = ana
        .patch(
            &format!("/api/v1/chats/{tagged}"),
            json!({"tags": [bos_tag["id"]]}),
        )
        .await;
    assert_eq!(
        (
            refused.status,
            refused.code(),
            refused.body["field"].as_str()
        ),
        (400, "VALIDATION_ERROR", Some("tags"))
    );
}

#[tokio::test]
async fn messages_page_in_order_and_search_finds_only_readable_ones() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let bo = app.user("bo").await;
    let chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Pantun"})).await,
        201,
    );
    let id = chat["id"].as_str().unwrap();
    for i in 0..5 {
        ok(
            ana.post(
                &format!("/api/v1/chats/{id}/messages"),
                json!({"content": format!("kelapa muda {i}")}),
            )
            .await,
            201,
        );
    }
    ok(
        ana.post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"role": "user", "content": "jawaban", "annotations": {"mood": "curious"}}),
        )
        .await,
        201,
    );
    let first = ok(
        ana.get(&format!("/api/v1/chats/{id}/messages?limit=4"))
            .await,
        200,
    );
    let second = ok(
        ana.get(&format!(
            "/api/v1/chats/{id}/messages?limit=4&cursor={}",
            first["nextCursor"].as_str().unwrap()
        ))
        .await,
        200,
    );
    let contents: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "kelapa muda 0",
            "kelapa muda 1",
            "kelapa muda 2",
            "kelapa muda 3",
            "kelapa muda 4",
            "jawaban"
        ]
    );
    assert!(second["nextCursor"].is_null());
    assert_eq!(
        second["items"][1]["metadata"],
        json!({"annotations": {"mood": "curious"}})
    );

    let found = ok(
        ana.get("/api/v1/search/messages?q=kelapa&limit=3").await,
        200,
    );
    assert_eq!(found["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        found["items"][0]["content"], "kelapa muda 4",
        "newest first"
    );
    // A hit names its chat, so that a list of hits can say where each was found.
    let hit_chat = found["items"][0]["chatId"].as_str().unwrap();
    let hit_title = ok(ana.get(&format!("/api/v1/chats/{hit_chat}")).await, 200)["title"].clone();
    assert_eq!(found["items"][0]["chatTitle"], hit_title);
    assert!(hit_title.is_string());
    assert_eq!(
        ok(bo.get("/api/v1/search/messages?q=kelapa").await, 200)["items"],
        json!([])
    );
    let listed = ok(ana.get("/api/v1/chats").await, 200);
    assert_eq!(listed["items"][0]["messageCount"], 6);
}

#[tokio::test]
async fn sharing_gives_a_public_page_until_it_is_revoked() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Shared"})).await,
        201,
    );
    let id = chat["id"].as_str().unwrap();
    ok(
        ana.post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"content": "for everyone"}),
        )
        .await,
        201,
    );
    let shared = ok(
        ana.post(&format!("/api/v1/chats/{id}/share"), json!({}))
            .await,
        200,
    );
    let token = shared["token"].as_str().unwrap();
    assert!(shared["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/share/{token}")));
    let stranger = app.client_with_origin(None);
    let page = ok(
        stranger.get(&format!("/api/v1/public/chats/{token}")).await,
        200,
    );
    assert_eq!(page["title"], "Shared");
    assert_eq!(page["messages"][0]["content"], "for everyone");
    assert!(
        page.get("userId").is_none() && page.get("id").is_none(),
        "no owner or ids: {page}"
    );
    assert_eq!(
        ana.delete(&format!("/api/v1/chats/{id}/share"))
            .await
            .status,
        204
    );
    assert_eq!(
        stranger
            .get(&format!("/api/v1/public/chats/{token}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn invites_give_a_link_and_only_the_invited_email_may_accept() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let bo = app.user("bo").await;
    let cy = app.user("cy").await;
    let team = ok(
        ana.post("/api/v1/teams", json!({"name": "Kopi", "slug": "kopi"}))
            .await,
        201,
    );
    assert_eq!(team["role"], "admin");
    let invite = ok(
        ana.post(
            "/api/v1/teams/kopi/invites",
            json!({"email": "BO@example.com", "role": "member"}),
        )
        .await,
        201,
    );
    let token = invite["token"].as_str().unwrap();
    assert_eq!(invite["link"], format!("{}/invites/{token}", app.url));
    // What it is to: for the invitee, and nobody else (the token alone tells nothing).
    let about = ok(bo.get(&format!("/api/v1/invites/{token}")).await, 200);
    assert_eq!(
        (&about["teamName"], &about["invitedBy"], &about["role"]),
        (&json!("Kopi"), &json!("ana"), &json!("member"))
    );
    assert_eq!(
        cy.get(&format!("/api/v1/invites/{token}")).await.status,
        404
    );
    assert_eq!(bo.get("/api/v1/invites/not-a-token").await.status, 404);
    let wrong = cy
        .post(&format!("/api/v1/invites/{token}/accept"), json!({}))
        .await;
    assert!(matches!(wrong.status, 403 | 404 | 409), "{wrong:?}");
    let joined = ok(
        bo.post(&format!("/api/v1/invites/{token}/accept"), json!({}))
            .await,
        200,
    );
    assert_eq!(joined["role"], "member");
    let again = bo
        .post(&format!("/api/v1/invites/{token}/accept"), json!({}))
        .await;
    assert!(again.status >= 400 && again.status < 500, "{again:?}");
    let used = bo.get(&format!("/api/v1/invites/{token}")).await;
    assert_eq!(used.status, 409, "{used:?}");
    let members = ok(ana.get("/api/v1/teams/kopi/members").await, 200);
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    // The last admin cannot leave or be demoted.
    let demote = ana
        .patch(
            &format!("/api/v1/teams/kopi/members/{}", ana.id),
            json!({"role": "member"}),
        )
        .await;
    assert_eq!((demote.status, demote.code()), (409, "CONFLICT"));
    // A member may leave by themselves.
    assert_eq!(
        bo.delete(&format!("/api/v1/teams/kopi/members/{}", bo.id))
            .await
            .status,
        204
    );
    assert_eq!(bo.get("/api/v1/teams/kopi").await.status, 404);
}

#[tokio::test]
async fn prompts_list_search_and_change() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let bo = app.user("bo").await;
    let public = ok(bo.post("/api/v1/prompts", json!({"name": "Translate", "content": "Translate {text} into {language}", "isPublic": true})).await, 201);
    assert_eq!(public["variables"], json!(["text", "language"]));
    ok(
        bo.post(
            "/api/v1/prompts",
            json!({"name": "Secret", "content": "bo only"}),
        )
        .await,
        201,
    );
    for i in 0..3 {
        ok(ana.post("/api/v1/prompts", json!({"name": format!("Review {i}"), "content": "Review this {code}", "category": "coding"})).await, 201);
    }
    let all = ok(ana.get("/api/v1/prompts?limit=2").await, 200);
    let rest = ok(
        ana.get(&format!(
            "/api/v1/prompts?limit=2&cursor={}",
            all["nextCursor"].as_str().unwrap()
        ))
        .await,
        200,
    );
    let names: BTreeSet<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Review 0", "Review 1", "Review 2", "Translate"])
    );
    let mine = ok(ana.get("/api/v1/prompts?mine=true").await, 200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 3);
    let found = ok(ana.get("/api/v1/prompts?q=translate").await, 200);
    assert_eq!(found["items"][0]["name"], "Translate");
    assert_eq!(
        ok(ana.get("/api/v1/prompts?q=secret").await, 200)["items"],
        json!([])
    );
    let id = mine["items"][0]["id"].as_str().unwrap();
    let changed = ok(
        ana.patch(
            &format!("/api/v1/prompts/{id}"),
            json!({"content": "Explain {topic}"}),
        )
        .await,
        200,
    );
    assert_eq!(changed["variables"], json!(["topic"]));
    assert_eq!(changed["category"], "coding", "unchanged fields stay");
}

#[tokio::test]
async fn health_answers_for_load_balancers() {
    let app = TestApp::start().await;
    let client = app.client_with_origin(None);
    let health = ok(client.get("/health").await, 200);
    assert_eq!(health["status"], "ok");
    let reply = client.get("/health").await;
    assert!(reply.headers.contains_key("x-request-id"));
    // A request id the client sends comes back (for tracing across a proxy).
    let request = client
        .http
        .get(client.url("/health"))
        .header("x-request-id", "lb-probe-42");
    assert_eq!(
        client.send(request).await.headers["x-request-id"],
        "lb-probe-42"
    );
}

/// SPEC sections 7 and 8's endpoints, written out from the SPEC (not from the code).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/auth/sign-up/email"),
    ("post", "/api/auth/sign-in/email"),
    ("post", "/api/auth/sign-out"),
    ("get", "/api/auth/get-session"),
    ("get", "/api/auth/list-sessions"),
    ("post", "/api/auth/revoke-session"),
    ("post", "/api/auth/revoke-other-sessions"),
    ("post", "/api/auth/change-password"),
    ("post", "/api/auth/update-user"),
    ("post", "/api/auth/delete-user"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/teams"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/teams/{team}"),
    ("patch", "/api/v1/teams/{team}"),
    ("delete", "/api/v1/teams/{team}"),
    ("get", "/api/v1/teams/{team}/members"),
    ("patch", "/api/v1/teams/{team}/members/{user}"),
    ("delete", "/api/v1/teams/{team}/members/{user}"),
    ("post", "/api/v1/teams/{team}/invites"),
    ("get", "/api/v1/invites/{token}"),
    ("post", "/api/v1/invites/{token}/accept"),
    ("get", "/api/v1/folders"),
    ("post", "/api/v1/folders"),
    ("patch", "/api/v1/folders/{id}"),
    ("delete", "/api/v1/folders/{id}"),
    ("get", "/api/v1/tags"),
    ("post", "/api/v1/tags"),
    ("patch", "/api/v1/tags/{id}"),
    ("delete", "/api/v1/tags/{id}"),
    ("get", "/api/v1/chats"),
    ("post", "/api/v1/chats"),
    ("get", "/api/v1/chats/{id}"),
    ("patch", "/api/v1/chats/{id}"),
    ("delete", "/api/v1/chats/{id}"),
    ("post", "/api/v1/chats/{id}/share"),
    ("delete", "/api/v1/chats/{id}/share"),
    ("get", "/api/v1/chats/{id}/messages"),
    ("post", "/api/v1/chats/{id}/messages"),
    ("get", "/api/v1/search/messages"),
    ("get", "/api/v1/prompts"),
    ("post", "/api/v1/prompts"),
    ("get", "/api/v1/prompts/{id}"),
    ("patch", "/api/v1/prompts/{id}"),
    ("delete", "/api/v1/prompts/{id}"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("patch", "/api/v1/api-keys/{id}"),
    ("delete", "/api/v1/api-keys/{id}"),
    ("get", "/api/v1/public/chats/{token}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/models"),
    ("post", "/api/v1/models"),
    ("patch", "/api/v1/models/{id}"),
    ("delete", "/api/v1/models/{id}"),
    ("get", "/api/v1/models/{id}/available"),
    ("post", "/api/v1/chats/{id}/generate"),
    ("post", "/api/v1/chats/{id}/generate/stop"),
    ("get", "/api/v1/chats/{id}/generate/stream"),
    ("post", "/api/chat"),
    ("get", "/api/chat/{id}/stream"),
    ("get", "/health"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/admin/tokens"),
    ("delete", "/api/v1/admin/tokens/{id}"),
    ("get", "/v1/models"),
    ("post", "/v1/chat/completions"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_exists() {
    let app = TestApp::start().await;
    let client = app.client_with_origin(None);
    let document = ok(client.get("/api/v1/openapi.json").await, 200);
    // The whole document, as a snapshot to review when a route or a type changes.
    insta::assert_json_snapshot!("openapi", document);
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = SPEC_ROUTES
        .iter()
        .filter(|(m, p)| !documented.contains(&(m.to_string(), p.to_string())))
        .collect();
    assert!(
        missing.is_empty(),
        "SPEC routes not documented: {missing:?}"
    );
    // Every documented route is served: the router answers it (any status but its own
    // "no such endpoint" or "wrong method").
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{user}", "00000000-0000-7000-8000-000000000000")
            .replace("{team}", "some-team")
            .replace("{token}", "some-token");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = client
            .send(client.http.request(method.clone(), client.url(&concrete)))
            .await;
        assert!(
            !matches!(reply.code(), "ROUTE_NOT_FOUND" | "METHOD_NOT_ALLOWED")
                && reply.status != 405,
            "{method} {path} is documented but not served: {reply:?}"
        );
    }
    // A large answer is compressed for a client that accepts it.
    let gzipped = client
        .send(
            client
                .http
                .get(client.url("/api/v1/openapi.json"))
                .header("accept-encoding", "gzip"),
        )
        .await;
    assert_eq!(gzipped.headers["content-encoding"], "gzip");
    assert!(gzipped.body.is_null(), "the body is gzip, not JSON text");
    // And the router serves nothing the document does not list.
    let undocumented = client.get("/api/v1/not-a-thing").await;
    assert_eq!(
        (undocumented.status, undocumented.code()),
        (404, "ROUTE_NOT_FOUND")
    );
    let wrong_method = client
        .send(client.http.put(client.url("/api/v1/chats")))
        .await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (405, "METHOD_NOT_ALLOWED")
    );
    // Request bodies name their fields as the API spells them.
    let new_chat = &document["components"]["schemas"]["NewChat"]["properties"];
    assert!(new_chat.get("folderId").is_some(), "{new_chat}");
}

#[tokio::test]
async fn short_lists_page_by_key_too() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        ok(
            ana.post("/api/v1/folders", json!({"name": name})).await,
            201,
        );
        ok(ana.post("/api/v1/tags", json!({"name": name})).await, 201);
    }
    for list in ["folders", "tags"] {
        let first = ok(ana.get(&format!("/api/v1/{list}?limit=2")).await, 200);
        let names = |page: &Value| -> Vec<String> {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(&first), ["alpha", "bravo"]);
        // "alpha" goes away between pages: nothing is skipped or repeated.
        let alpha = first["items"][0]["id"].as_str().unwrap();
        assert_eq!(
            ana.delete(&format!("/api/v1/{list}/{alpha}")).await.status,
            204
        );
        let second = ok(
            ana.get(&format!(
                "/api/v1/{list}?limit=2&cursor={}",
                first["nextCursor"].as_str().unwrap()
            ))
            .await,
            200,
        );
        assert_eq!(names(&second), ["charlie", "delta"]);
        let third = ok(
            ana.get(&format!(
                "/api/v1/{list}?limit=2&cursor={}",
                second["nextCursor"].as_str().unwrap()
            ))
            .await,
            200,
        );
        assert_eq!(names(&third), ["echo"]);
        assert!(third["nextCursor"].is_null());
    }
    assert_eq!(ana.get("/api/v1/teams?limit=0").await.status, 400);
    assert_eq!(
        ana.get("/api/v1/api-keys?cursor=nonsense").await.code(),
        "VALIDATION_ERROR"
    );
}

/// The error answers a client meets most, whole, as a snapshot to review when one changes.
#[tokio::test]
async fn error_answers_keep_their_shape() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let anonymous = app.anonymous();
    let nil = "00000000-0000-7000-8000-000000000000";
    let mut answers = Vec::new();
    for (label, reply) in [
        ("no session", anonymous.get("/api/v1/me").await),
        ("no such endpoint", ana.get("/api/v1/nothing-here").await),
        ("wrong method", ana.delete("/api/v1/me").await),
        (
            "a chat one may not see",
            ana.get(&format!("/api/v1/chats/{nil}")).await,
        ),
        (
            "an unknown field",
            ana.post("/api/v1/chats", json!({"titel": "x"})).await,
        ),
        (
            "a wrong type",
            ana.post("/api/v1/chats", json!({"title": 5})).await,
        ),
        (
            "broken JSON",
            ana.raw(
                reqwest::Method::POST,
                "/api/v1/chats",
                Some("application/json"),
                b"{".to_vec(),
            )
            .await,
        ),
        (
            "a bad cursor",
            ana.get("/api/v1/chats?cursor=nonsense").await,
        ),
        (
            "a wrong password",
            anonymous
                .sign_in(json!({"email": ana.email, "password": "not-the-password"}))
                .await,
        ),
    ] {
        answers.push(json!({"case": label, "status": reply.status, "body": reply.body}));
    }
    insta::assert_json_snapshot!("error answers", answers);
}

#[tokio::test]
async fn archived_chats_leave_the_list_and_come_back() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let mut ids = Vec::new();
    for title in ["Resep rendang", "Rencana liburan", "Pajak 2026"] {
        let chat = ok(
            ana.post("/api/v1/chats", json!({"title": title})).await,
            201,
        );
        assert_eq!(chat["archivedAt"], Value::Null);
        ids.push(chat["id"].as_str().unwrap().to_owned());
    }
    let titles = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let archived = ok(
        ana.patch(
            &format!("/api/v1/chats/{}", ids[1]),
            json!({"archived": true}),
        )
        .await,
        200,
    );
    assert!(archived["archivedAt"].is_string(), "{archived}");
    assert_eq!(
        titles(ok(ana.get("/api/v1/chats").await, 200)),
        ["Pajak 2026", "Resep rendang"]
    );
    assert_eq!(
        titles(ok(ana.get("/api/v1/chats?archived=true").await, 200)),
        ["Rencana liburan"]
    );
    // Titles are searched on the server, among the chats the list shows.
    assert_eq!(
        titles(ok(ana.get("/api/v1/chats?q=re").await, 200)),
        ["Resep rendang"]
    );
    assert_eq!(
        titles(ok(ana.get("/api/v1/chats?q=re&archived=true").await, 200)),
        ["Rencana liburan"]
    );
    // Another user cannot archive it.
    let budi = app.user("budi").await;
    let refused = budi
        .patch(
            &format!("/api/v1/chats/{}", ids[0]),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(refused.status, 404, "{refused:?}");
    ok(
        ana.patch(
            &format!("/api/v1/chats/{}", ids[1]),
            json!({"archived": false}),
        )
        .await,
        200,
    );
    assert_eq!(titles(ok(ana.get("/api/v1/chats").await, 200)).len(), 3);
}

#[tokio::test]
async fn preferences_are_kept_per_user_and_checked() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    assert_eq!(
        ok(ana.get("/api/v1/me/preferences").await, 200),
        json!({"theme": "system", "locale": null})
    );
    assert_eq!(
        ok(
            ana.patch(
                "/api/v1/me/preferences",
                json!({"theme": "dark", "locale": "id"})
            )
            .await,
            200
        ),
        json!({"theme": "dark", "locale": "id"})
    );
    for bad in [
        json!({"theme": "neon"}),
        json!({"locale": "xx"}),
        json!({"colour": "red"}),
    ] {
        let refused = ana.patch("/api/v1/me/preferences", bad.clone()).await;
        assert_eq!(refused.status, 400, "{bad}: {refused:?}");
    }
    assert_eq!(
        ok(
            ana.patch("/api/v1/me/preferences", json!({"locale": null}))
                .await,
            200
        ),
        json!({"theme": "dark", "locale": null})
    );
    // Each user's own.
    let budi = app.user("budi").await;
    assert_eq!(
        ok(budi.get("/api/v1/me/preferences").await, 200)["theme"],
        "system"
    );
}

#[tokio::test]
async fn prompt_versions_are_kept_restored_by_the_owner_and_copies_are_private() {
    let app = TestApp::start().await;
    let ana = app.user("ana").await;
    let budi = app.user("budi").await;
    let shared = ok(
        ana.post(
            "/api/v1/prompts",
            json!({"name": "Ringkas", "content": "v1 {teks}", "isPublic": true}),
        )
        .await,
        201,
    );
    let id = shared["id"].as_str().unwrap();
    let path = format!("/api/v1/prompts/{id}");
    assert_eq!(
        ok(ana.get(&format!("{path}/versions")).await, 200)["items"],
        json!([])
    );
    for content in ["v2 {teks}", "v3 {teks} {gaya}"] {
        ok(
            ana.patch(
                &path,
                json!({"name": "Ringkas", "content": content, "isPublic": true}),
            )
            .await,
            200,
        );
    }
    // Changing only who sees it keeps no version: the text did not change.
    ok(
        ana.patch(
            &path,
            json!({"name": "Ringkas", "content": "v3 {teks} {gaya}", "isPublic": true}),
        )
        .await,
        200,
    );
    let versions = ok(ana.get(&format!("{path}/versions")).await, 200)["items"].clone();
    let texts: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["v2 {teks}", "v1 {teks}"], "newest first");
    let first = versions[1]["id"].as_str().unwrap();
    // A public prompt's readers see what it says now, not its earlier texts; only its owner
    // restores one.
    assert_eq!(budi.get(&format!("{path}/versions")).await.status, 403);
    let refused = budi
        .post(&format!("{path}/versions/{first}/restore"), json!({}))
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let restored = ok(
        ana.post(&format!("{path}/versions/{first}/restore"), json!({}))
            .await,
        200,
    );
    assert_eq!(
        (&restored["content"], &restored["variables"]),
        (&json!("v1 {teks}"), &json!(["teks"]))
    );
    assert_eq!(
        ok(ana.get(&format!("{path}/versions")).await, 200)["items"][0]["content"],
        "v3 {teks} {gaya}",
        "what a restore replaced is kept too"
    );
    let unknown = ana
        .post(
            &format!("{path}/versions/{}/restore", uuid::Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    // A copy is the copier's own, and private.
    let copy = ok(
        budi.post(&format!("{path}/duplicate"), json!({})).await,
        201,
    );
    assert_eq!(
        (&copy["name"], &copy["isPublic"], &copy["userId"]),
        (&json!("Ringkas (copy)"), &json!(false), &json!(budi.id))
    );
    let private = ok(
        ana.post(
            "/api/v1/prompts",
            json!({"name": "Rahasia", "content": "x"}),
        )
        .await,
        201,
    );
    let private = private["id"].as_str().unwrap();
    for (method, sub) in [("get", "versions"), ("post", "duplicate")] {
        let url = format!("/api/v1/prompts/{private}/{sub}");
        let answer = match method {
            "get" => budi.get(&url).await,
            _ => budi.post(&url, json!({})).await,
        };
        assert_eq!(answer.status, 404, "{sub}: {answer:?}");
    }
}

/// A request `path` by `client` asking for `language` (`Accept-Language`).
async fn in_language(client: &common::Client, path: &str, language: &str) -> common::Reply {
    client
        .send(
            client
                .http
                .get(client.url(path))
                .header("accept-language", language),
        )
        .await
}

#[tokio::test]
async fn errors_mail_and_the_share_page_speak_the_readers_language() {
    let mut steps = sambung_testkit::Steps::new();
    let app = TestApp::start().await;
    let stranger = app.client_with_origin(None);

    steps.at("a stranger's browser asks for Indonesian: errors in it, codes unchanged");
    let refused = in_language(&stranger, "/api/v1/chats", "id-ID,id;q=0.9,en;q=0.8").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "UNAUTHORIZED");
    assert_eq!(refused.body["message"], "Tidak diizinkan: masuk dulu");
    assert_eq!(refused.headers["content-language"], "id");
    assert_eq!(refused.headers["vary"], "accept-language");
    let english = in_language(&stranger, "/api/v1/chats", "fr, en;q=0.5").await;
    assert_eq!(english.body["message"], "Unauthorized");
    assert!(english.headers.get("content-language").is_none());
    let wrong = stranger
        .send(
            stranger
                .http
                .post(stranger.url("/api/auth/sign-in/email"))
                .header("accept-language", "id")
                .json(&json!({"email": "nobody@example.com", "password": "not the password"})),
        )
        .await;
    assert_eq!(wrong.code(), "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(wrong.body["message"], "Email atau kata sandi salah");

    steps.at("a user's own setting wins over their browser's");
    let ana = app.user("ana").await;
    ok(
        ana.patch("/api/v1/me/preferences", json!({"locale": "id"}))
            .await,
        200,
    );
    let missing = in_language(
        &ana,
        &format!("/api/v1/chats/{}", uuid::Uuid::now_v7()),
        "en",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "obrolan tidak ditemukan");
    // So too with the browser's cookie on the routes whose statement checks the session
    // itself: refused by it (no chat there), before it (the input) and after it (a turn in a
    // chat without a model).
    let cookie = common::session_cookie(&ana.token);
    let modelless = ok(
        ana.post("/api/v1/chats", json!({"title": "Teh"})).await,
        201,
    );
    for (path, body, code) in [
        (
            format!("/api/v1/chats/{}/messages", uuid::Uuid::now_v7()),
            None,
            "NOT_FOUND",
        ),
        ("/api/v1/chats?limit=0".to_owned(), None, "VALIDATION_ERROR"),
        (
            format!(
                "/api/v1/chats/{}/generate",
                modelless["id"].as_str().unwrap()
            ),
            Some(json!({"content": "halo"})),
            "NO_MODEL",
        ),
    ] {
        let browser = app.anonymous();
        let request = match body {
            Some(body) => browser.http.post(browser.url(&path)).json(&body),
            None => browser.http.get(browser.url(&path)),
        };
        let refused = browser
            .send(
                request
                    .header("accept-language", "en")
                    .header(reqwest::header::COOKIE, cookie.clone()),
            )
            .await;
        assert_eq!(refused.code(), code, "{path}: {refused:?}");
        assert_eq!(
            refused
                .headers
                .get("content-language")
                .map(|v| v.to_str().unwrap()),
            Some("id"),
            "{path}: {refused:?}"
        );
    }
    let invalid = ana
        .patch("/api/v1/me/preferences", json!({"theme": "neon"}))
        .await;
    assert_eq!(invalid.body["field"], "theme");
    assert_eq!(
        invalid.body["message"],
        "tema tidak valid: \"neon\" bukan salah satu dari system, light, dark"
    );

    steps.at("the share page in its reader's language");
    let chat = ok(
        ana.post("/api/v1/chats", json!({"title": "Kopi"})).await,
        201,
    );
    let id = chat["id"].as_str().unwrap();
    let shared = ok(
        ana.post(&format!("/api/v1/chats/{id}/share"), json!({}))
            .await,
        200,
    );
    let token = shared["token"].as_str().unwrap();
    let page = in_language(&stranger, &format!("/share/{token}"), "id").await;
    assert!(page.text.contains("<html lang=\"id\">"), "{}", page.text);
    assert!(page.text.contains("hanya bisa dibaca"), "{}", page.text);
    let page = in_language(&stranger, &format!("/share/{token}"), "en-GB").await;
    assert!(page.text.contains("read-only"), "{}", page.text);
    let gone = in_language(&stranger, "/share/no-such-token", "id").await;
    assert_eq!(gone.status, 404);
    assert!(
        gone.text.contains("Obrolan ini tidak dibagikan"),
        "{}",
        gone.text
    );

    steps.at("mail in its recipient's language: theirs, else the asking browser's");
    let budi = app.user("budi").await;
    for (email, language) in [(&ana.email, "en"), (&budi.email, "id")] {
        let asked = stranger
            .send(
                stranger
                    .http
                    .post(stranger.url("/api/auth/request-password-reset"))
                    .header("accept-language", language)
                    .json(&json!({"email": email})),
            )
            .await;
        assert_eq!(asked.status, 200, "{asked:?}");
    }
    let mut subjects = Vec::new();
    for _ in 0..100 {
        subjects = sqlx::query_scalar::<_, String>(
            // A mail's place is taken before it is made: wait until both are settled.
            "SELECT recipient || ': ' || subject FROM mail_outbox WHERE subject <> '' ORDER BY recipient",
        )
        .fetch_all(app.pool())
        .await
        .unwrap();
        if subjects.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    for subject in &subjects {
        assert!(
            subject.contains(": Atur ulang kata sandi Anda untuk SambungChat di "),
            "{subjects:?}"
        );
    }
}

#[tokio::test]
async fn what_a_provider_offers_is_asked_with_ones_own_key_only() {
    let app = TestApp::start().await;
    let boss = app.user("boss").await; // the first account: the instance's admin
    let ana = app.user("ana").await;
    let budi = app.user("budi").await;
    let key = ok(
        ana.post(
            "/api/v1/api-keys",
            json!({"provider": "openai", "key": "sk-fake-OFFERED-1111"}),
        )
        .await,
        201,
    );
    let key = key["id"].as_str().unwrap();
    let base = app.provider.url("/v1");
    app.provider.push(sambung_ai::fake::Script::json(
        200,
        r#"{"object":"list","data":[{"id":"gpt-a","object":"model"}]}"#,
    ));
    let offered = ok(
        ana.post(
            "/api/v1/providers/openai/models",
            json!({"baseUrl": base, "apiKeyId": key}),
        )
        .await,
        200,
    );
    assert_eq!(offered, json!({"models": ["gpt-a"]}));
    assert!(app
        .provider
        .requests()
        .iter()
        .any(|r| r.contains("Bearer sk-fake-OFFERED-1111")));

    // A key typed in the form is tried without being stored.
    app.provider.push(sambung_ai::fake::Script::json(
        200,
        r#"{"object":"list","data":[{"id":"gpt-b","object":"model"}]}"#,
    ));
    let tried = ok(
        budi.post(
            "/api/v1/providers/openai/models",
            json!({"baseUrl": base, "apiKey": "sk-fake-TYPED-2222"}),
        )
        .await,
        200,
    );
    assert_eq!(tried, json!({"models": ["gpt-b"]}));
    assert!(app
        .provider
        .requests()
        .iter()
        .any(|r| r.contains("Bearer sk-fake-TYPED-2222")));
    assert_eq!(
        ok(budi.get("/api/v1/api-keys").await, 200)["items"],
        json!([])
    );
    // Someone else's key is not found; nothing reaches the provider.
    let asked = app.provider.requests().len();
    let theirs = budi
        .post(
            "/api/v1/providers/openai/models",
            json!({"baseUrl": base, "apiKeyId": key}),
        )
        .await;
    assert_eq!(
        (theirs.status, theirs.code()),
        (404, "NOT_FOUND"),
        "{theirs:?}"
    );
    for (body, provider, status, code) in [
        (
            json!({"baseUrl": "http://10.0.0.1/v1"}),
            "ollama",
            400,
            "BASE_URL_NOT_ALLOWED",
        ),
        (json!({}), "no-such-provider", 400, "MODEL_MISCONFIGURED"),
        (json!({"colour": "red"}), "openai", 400, "VALIDATION_ERROR"),
        (
            json!({"apiKeyId": "not-a-uuid"}),
            "openai",
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"apiKeyId": key, "apiKey": "sk-both"}),
            "openai",
            400,
            "VALIDATION_ERROR",
        ),
    ] {
        let refused = ana
            .post(
                &format!("/api/v1/providers/{provider}/models"),
                body.clone(),
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (status, code),
            "{body}: {refused:?}"
        );
    }
    assert_eq!(
        app.provider.requests().len(),
        asked,
        "no refused request was sent"
    );
    let anonymous = app
        .anonymous()
        .post("/api/v1/providers/openai/models", json!({}))
        .await;
    assert_eq!(anonymous.status, 401);

    // With personal keys off, a stored key is not used.
    ok(
        boss.patch("/api/v1/admin/settings", json!({"personalKeys": false}))
            .await,
        200,
    );
    let off = ana
        .post(
            "/api/v1/providers/openai/models",
            json!({"baseUrl": base, "apiKeyId": key}),
        )
        .await;
    assert_eq!((off.status, off.code()), (403, "PERSONAL_KEYS_DISABLED"));
}
