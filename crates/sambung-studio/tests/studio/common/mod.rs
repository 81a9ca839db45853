//! A Studio served in-process on a seeded test database, and an HTTP client for it.
#![allow(dead_code)] // each test file uses part of it

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sambung_studio::{Studio, StudioSettings};
use sambung_testkit::TestDb;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    pub db: TestDb,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub token: String,
    /// The URL Studio printed, with its token.
    pub url: String,
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    client: reqwest::Client,
}

pub async fn start(read_only: bool) -> Running {
    let db = TestDb::migrated().await;
    sambung_db::seed::seed_sample(db.pool()).await.unwrap();
    let settings = StudioSettings {
        host: "127.0.0.1".into(),
        port: 0,
        read_only,
        statement_timeout: Duration::from_secs(2),
    };
    let studio = Studio::bind(db.connect_options().clone(), &settings)
        .await
        .unwrap();
    let port = studio.address().port();
    let token = studio.token().to_owned();
    let url = studio.url().to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        studio
            .serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        db,
        base: format!("http://127.0.0.1:{port}"),
        token,
        url,
        port,
        stop: Some(stop),
        task: Some(task),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Running {
    /// A request as Studio's page makes it: token, same origin, JSON.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("x-studio-token", &self.token)
            .header("origin", &self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn json(&self, method: Method, path: &str, body: Value) -> Reply {
        self.send(self.request(method, path).json(&body)).await
    }

    /// A page of `table` for `view` (a JSON view object).
    pub async fn rows(&self, table: &str, view: Value) -> Reply {
        let view = serde_json::to_string(&view).unwrap();
        self.send(
            self.request(Method::GET, &format!("/api/tables/{table}/rows"))
                .query(&[("view", view)]),
        )
        .await
    }

    pub async fn sql(&self, sql: &str) -> Reply {
        self.json(Method::POST, "/api/sql", serde_json::json!({ "sql": sql }))
            .await
    }

    pub fn raw_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Stop serving and wait for the server to close its connections.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Reply {
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "{}: {}", self.status, self.body);
        self.body
    }

    #[track_caller]
    pub fn refused(self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        self.body["error"].as_str().unwrap_or_default().to_owned()
    }
}
