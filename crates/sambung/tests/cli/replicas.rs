//! Reads that may lag on a streaming replica made by `sambung db replica init`, and the
//! primary taking them back while the replica lags (replay paused) or is down.

use crate::common;

use std::time::Duration;

use common::{Sambung, Standby};
use sambung_config::{AuthSecret, DatabaseUrl};
use sambung_server::{RateLimits, Server, ServerSettings};
use sambung_testkit::ScratchCluster;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn chat_titles(&self) -> Vec<String> {
        let page = self.call(reqwest::Method::GET, "/api/v1/chats", None).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Wait (20 s at most) until `/health` says the replica is `status`.
    async fn until_replica(&self, status: &str) -> Value {
        for _ in 0..200 {
            let health = self.call(reqwest::Method::GET, "/health", None).await;
            if health["replicas"][0]["status"] == status {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replica never became {status}");
    }
}

#[tokio::test]
async fn reads_that_may_lag_go_to_a_replica_unless_it_lags_or_is_down() {
    let mut steps = sambung_testkit::Steps::new();
    let scratch = ScratchCluster::new();
    let primary = Sambung::managed(&scratch);
    primary.run(["db", "start"]).success();
    primary.run(["db", "migrate"]).success();
    let replica = Standby::of(&scratch);
    replica.init(&primary).success();
    let (port, dir, standby) = (replica.port, &replica.dir, &replica.sambung);
    // The standby's superuser (to pause replay), through its socket with the cluster's secrets.
    steps.at(
        "The standby's superuser (to pause replay), through its socket with the cluster's secrets",
    );
    let secrets = scratch.cluster().secrets().unwrap();
    let mut superuser = PgConnection::connect_with(
        &PgConnectOptions::new()
            .socket(dir.join("pgdata"))
            .port(port)
            .username(sambung_pg::roles::SUPERUSER)
            .password(&secrets.superuser_password)
            .database("postgres"),
    )
    .await
    .unwrap();

    // The standby is a copy of the primary: the same roles and passwords.
    steps.at("The standby is a copy of the primary");
    let primary_url = scratch.app_url("sambungchat");
    let url =
        |port: u16| primary_url.replace(&format!(":{}/", scratch.port()), &format!(":{port}/"));
    let settings = ServerSettings {
        rate_limits: RateLimits::unlimited(),
        read_replicas: vec![DatabaseUrl::parse(&url(port)).unwrap()],
        read_max_lag: Duration::from_secs(3),
        ..ServerSettings::new(AuthSecret::parse("a-test-auth-secret-of-at-least-32-chars").unwrap())
    };
    let pool = PgPool::connect(&url(scratch.port())).await.unwrap();
    let server = Server::bind(pool, &settings).await.unwrap();
    let base = format!("http://{}", server.address());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let mut api = Api {
        http: reqwest::Client::new(),
        base,
        token: None,
    };
    let health = api.until_replica("ok").await;
    let shown = health["replicas"][0]["address"].as_str().unwrap();
    let password = primary_url.split(['@', ':']).nth(2).unwrap();
    assert!(!shown.contains(password), "no password in /health: {shown}");

    let signed_up = api
        .call(
            reqwest::Method::POST,
            "/api/auth/sign-up/email",
            Some(json!({"name": "Ana", "email": "ana@example.com", "password": "password-of-ana"})),
        )
        .await;
    api.token = Some(signed_up["token"].as_str().unwrap().to_owned());
    api.call(
        reqwest::Method::POST,
        "/api/v1/chats",
        Some(json!({"title": "A"})),
    )
    .await;
    // Replayed soon: the list (read on the replica) shows it.
    steps.at("Replayed soon");
    for _ in 0..100 {
        if api.chat_titles().await == ["A"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.chat_titles().await, ["A"]);

    // Replay paused: a new chat is on the primary only, and the list, still read on the
    // replica (not lagging long enough yet), lacks it: reads do go to the replica.
    steps.at("Replay paused");
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut superuser)
        .await
        .unwrap();
    api.call(
        reqwest::Method::POST,
        "/api/v1/chats",
        Some(json!({"title": "B"})),
    )
    .await;
    assert_eq!(api.chat_titles().await, ["A"], "read on the replica");
    // Once it lags past DATABASE_READ_MAX_LAG, it is skipped: the primary answers.
    steps.at("Once it lags past DATABASE_READ_MAX_LAG, it is skipped");
    api.until_replica("lagging").await;
    assert_eq!(api.chat_titles().await, ["B", "A"], "read on the primary");
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut superuser)
        .await
        .unwrap();
    api.until_replica("ok").await;
    assert_eq!(api.chat_titles().await, ["B", "A"], "the replica caught up");

    // The replica stops: it is down, and the primary answers.
    steps.at("The replica stops");
    drop(superuser);
    standby.run(["db", "stop"]).success();
    let health = api.until_replica("down").await;
    assert!(health["replicas"][0]["reason"].is_string(), "{health}");
    assert_eq!(api.chat_titles().await, ["B", "A"]);

    // Failover: the primary goes, the standby is promoted, and a server pointed at it (its
    // new DATABASE_URL) carries on with everything written before, and takes writes.
    steps.at("Failover");
    primary.run(["db", "stop"]).success();
    standby.run(["db", "start"]).success();
    standby.run(["db", "replica", "promote"]).success();
    let pool = PgPool::connect(&url(port)).await.unwrap();
    let server = Server::bind(
        pool,
        &ServerSettings {
            read_replicas: Vec::new(),
            ..settings
        },
    )
    .await
    .unwrap();
    api.base = format!("http://{}", server.address());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    assert_eq!(
        api.chat_titles().await,
        ["B", "A"],
        "the session and chats live on"
    );
    api.call(
        reqwest::Method::POST,
        "/api/v1/chats",
        Some(json!({"title": "C"})),
    )
    .await;
    assert_eq!(api.chat_titles().await, ["C", "B", "A"]);
    standby.run(["db", "stop"]).success();
}
