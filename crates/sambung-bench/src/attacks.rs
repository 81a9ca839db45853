//! The `attacks` benchmark: does one hostile client stall the server for everyone else? A
//! server runs on a runtime of its own (two worker threads, as on a 2-core machine, apart from
//! the attackers' tasks), with its production limits, while each attack of issue 25 runs
//! against it in turn; meanwhile `/health` is asked every 20 ms and its latency recorded. The
//! benchmark signs up its own users (removed afterwards).

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sambung_ai::fake::{FakeProvider, Script};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio::io::AsyncWriteExt as _;

use crate::{setup, BenchError};

/// One attack and what `/health` did meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub attack: &'static str,
    pub health_samples: usize,
    pub health_p50_ms: f64,
    pub health_p95_ms: f64,
    pub health_max_ms: f64,
    /// Samples over 100 ms (or that failed).
    pub health_over_100ms: usize,
    /// The server process's resident memory at the attack's end.
    pub server_rss_mb: f64,
}

/// Every attack, in the order run.
pub const ATTACKS: [&str; 8] = [
    "none",
    "deep-markdown",
    "sign-in-storm",
    "endless-reply",
    "endless-line",
    "slow-readers",
    "idle-sockets",
    "huge-headers",
];

/// A signed-in attacker (a bearer token) with a default model at the fake provider.
struct Attacker {
    token: String,
    chat: String,
}

async fn attacker(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    provider: &FakeProvider,
) -> Result<Attacker, BenchError> {
    let email = format!(
        "{name}-{}@bench.sambung.chat",
        &sambung_config::random_token()[..8]
    );
    let signed_up: Value = client
        .post(format!("{base}/api/auth/sign-up/email"))
        .header("x-forwarded-for", random_address())
        .json(&json!({"name": name, "email": email, "password": "attacker-password"}))
        .send()
        .await
        .map_err(setup)?
        .json()
        .await
        .map_err(setup)?;
    let token = signed_up["token"]
        .as_str()
        .ok_or_else(|| setup(format!("sign-up refused: {signed_up}")))?
        .to_owned();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    call(
        reqwest::Method::POST,
        "/api/v1/models",
        json!({"provider": "custom", "modelId": "m", "baseUrl": provider.url("/v1"), "isDefault": true}),
    )
    .await
    .map_err(setup)?;
    let chat: Value = call(
        reqwest::Method::POST,
        "/api/v1/chats",
        json!({"title": name}),
    )
    .await
    .map_err(setup)?
    .json()
    .await
    .map_err(setup)?;
    Ok(Attacker {
        chat: chat["id"].as_str().unwrap_or_default().to_owned(),
        token,
    })
}

/// An address in TEST-NET-3 for `X-Forwarded-For` (the loopback proxy is trusted).
fn random_address() -> String {
    let byte = sambung_config::random_token().as_bytes()[0];
    let other = sambung_config::random_token().as_bytes()[1];
    format!("203.0.{byte}.{other}")
}

/// An OpenAI stream of `writes` writes of `per_write` deltas of `piece` each, paced.
fn stream_of(piece: &str, per_write: usize, writes: usize, pace: Duration) -> Script {
    let delta = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
        serde_json::Value::from(piece)
    );
    let mut script = Script::sse("", 1).paced(pace);
    script.pieces = vec![delta.repeat(per_write).into_bytes(); writes];
    script
}

/// Run `attack` until `until`.
async fn run_attack(
    attack: &str,
    base: &str,
    client: &reqwest::Client,
    attackers: &[Attacker],
    provider: &FakeProvider,
    until: Instant,
) -> Result<(), BenchError> {
    let mut tasks = tokio::task::JoinSet::new();
    match attack {
        "none" => {}
        "deep-markdown" => {
            // New nested messages all the time (each renders once), read rendered, and the
            // shared page read anonymously.
            for (i, a) in attackers.iter().enumerate().take(3) {
                let (client, base, token, chat) = (
                    client.clone(),
                    base.to_owned(),
                    a.token.clone(),
                    a.chat.clone(),
                );
                tasks.spawn(async move {
                    let share: Value = match client
                        .post(format!("{base}/api/v1/chats/{chat}/share"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) => r.json().await.unwrap_or_default(),
                        Err(_) => Value::Null,
                    };
                    let mut n = 0u64;
                    while Instant::now() < until {
                        n += 1;
                        let content = match (i + n as usize) % 2 {
                            0 => ">".repeat(100_000) + &format!(" {n}"),
                            _ => "- ".repeat(8_000) + &format!("{n}"),
                        };
                        let _ = client
                            .post(format!("{base}/api/v1/chats/{chat}/messages"))
                            .bearer_auth(&token)
                            .json(&json!({"content": content}))
                            .send()
                            .await;
                        let _ = client
                            .get(format!(
                                "{base}/api/v1/chats/{chat}/messages?html=true&limit=500"
                            ))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .map(|r| r.bytes());
                        if let Some(token) = share["token"].as_str() {
                            if let Ok(page) =
                                client.get(format!("{base}/share/{token}")).send().await
                            {
                                let _ = page.bytes().await;
                            }
                        }
                    }
                });
            }
        }
        "sign-in-storm" => {
            // 120 sign-ins at once, each from an address of its own.
            for _ in 0..120 {
                let (client, base) = (client.clone(), base.to_owned());
                tasks.spawn(async move {
                    while Instant::now() < until {
                        let _ = client
                            .post(format!("{base}/api/auth/sign-in/email"))
                            .header("x-forwarded-for", random_address())
                            .json(&json!({"email": format!("nobody{}@bench.sambung.chat", &sambung_config::random_token()[..6]), "password": "guess-guess"}))
                            .send()
                            .await;
                    }
                });
            }
        }
        "endless-reply" | "endless-line" => {
            for a in attackers.iter().take(3) {
                let (client, base, token, chat) = (
                    client.clone(),
                    base.to_owned(),
                    a.token.clone(),
                    a.chat.clone(),
                );
                let provider = provider.clone();
                let endless = attack == "endless-line";
                tasks.spawn(async move {
                    while Instant::now() < until {
                        provider.push(if endless {
                            // 4 MiB of one line: four times the longest accepted.
                            let mut script =
                                Script::sse("data: {\"choices\":[{\"delta\":{\"content\":\"", 64);
                            script.pieces.extend(vec![vec![b'x'; 64 * 1024]; 64]);
                            script.paced(Duration::from_micros(100))
                        } else {
                            // 2 MiB of words, past the 1 MiB a reply may hold.
                            stream_of(&"word ".repeat(20), 1000, 20, Duration::ZERO)
                        });
                        if let Ok(reply) = client
                            .post(format!("{base}/api/v1/chats/{chat}/generate"))
                            .bearer_auth(&token)
                            .json(&json!({"content": "never stop"}))
                            .send()
                            .await
                        {
                            let mut body = reply.bytes_stream();
                            while body.next().await.is_some() {}
                        }
                    }
                });
            }
        }
        "slow-readers" => {
            // A long reply, and 50 followers who never read it.
            let a = &attackers[0];
            provider.push(stream_of("slow ", 5, 20_000, Duration::from_millis(1)));
            let (client2, base2, token, chat) = (
                client.clone(),
                base.to_owned(),
                a.token.clone(),
                a.chat.clone(),
            );
            tasks.spawn(async move {
                if let Ok(reply) = client2
                    .post(format!("{base2}/api/v1/chats/{chat}/generate"))
                    .bearer_auth(&token)
                    .json(&json!({"content": "long"}))
                    .send()
                    .await
                {
                    let mut body = reply.bytes_stream();
                    while body.next().await.is_some() && Instant::now() < until {}
                }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            let address = base.trim_start_matches("http://").to_owned();
            for _ in 0..50 {
                let (address, token, chat) = (address.clone(), a.token.clone(), a.chat.clone());
                tasks.spawn(async move {
                    if let Ok(mut socket) = tokio::net::TcpStream::connect(&address).await {
                        let request = format!("GET /api/v1/chats/{chat}/generate/stream HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\n\r\n");
                        let _ = socket.write_all(request.as_bytes()).await;
                        tokio::time::sleep_until(until.into()).await;
                    }
                });
            }
        }
        "idle-sockets" => {
            let address = base.trim_start_matches("http://").to_owned();
            tasks.spawn(async move {
                let mut held = Vec::new();
                for _ in 0..2000 {
                    if let Ok(socket) = tokio::net::TcpStream::connect(&address).await {
                        held.push(socket);
                    }
                }
                tokio::time::sleep_until(until.into()).await;
            });
        }
        "huge-headers" => {
            for _ in 0..4 {
                let (client, base) = (client.clone(), base.to_owned());
                tasks.spawn(async move {
                    let padding = "p".repeat(400 * 1024);
                    while Instant::now() < until {
                        let _ = client
                            .get(format!("{base}/api/v1/me"))
                            .header("x-padding", &padding)
                            .send()
                            .await;
                    }
                });
            }
        }
        other => return Err(BenchError::UnknownWorkload(other.to_owned())),
    }
    tokio::time::sleep_until(until.into()).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Wait (a minute at most) until the attack's replies have ended (they go on at the server
/// after their callers left, up to their caps) and its sockets are closed, so that each attack
/// is measured alone.
async fn settle(database_url: &str) -> Result<(), BenchError> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    for _ in 0..600 {
        let streaming: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM messages m JOIN chats c ON c.id = m.chat_id JOIN users u ON u.id = c.user_id
              WHERE {} AND u.email LIKE '%@bench.sambung.chat'",
            sambung_db::chats::REPLY_STREAMING_SQL
        ))
        .fetch_one(&mut conn)
        .await?;
        if streaming == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// Run every attack (or the one named) for `seconds` each against `sambung serve` (the binary
/// at `sambung`) on the database at `database_url`, sampling `/health` meanwhile.
pub async fn run(
    sambung: &std::path::Path,
    database_url: &str,
    only: Option<&str>,
    seconds: f64,
) -> Result<Vec<AttackReport>, BenchError> {
    // It keeps no requests: an attacker's growing conversations would fill this process.
    let provider = FakeProvider::start()
        .await
        .map_err(setup)?
        .always(stream_of("ok ", 1, 3, Duration::ZERO));
    let target = crate::served::Served::spawn(
        sambung,
        database_url,
        provider.port,
        // The loopback is its trusted proxy: each attacker claims an address of its own.
        &[("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await?;
    let base = target.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(setup)?;
    let mut reports = Vec::new();
    for attack in ATTACKS.iter().filter(|a| only.is_none_or(|o| o == **a)) {
        // Attackers of their own for each attack: no attack inherits another's long chats.
        let mut attackers = Vec::new();
        for name in ["attacker-a", "attacker-b", "attacker-c"] {
            attackers.push(attacker(&client, &base, name, &provider).await?);
        }
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        // The prober has a client of its own, connected before the attack as a load
        // balancer's health check stays connected: its requests never queue behind the
        // attackers' (a new connection during a flood of them waits for the kernel's
        // accept queue, which is not the server's doing).
        let prober = reqwest::Client::new();
        let probe_base = base.clone();
        let _ = prober.get(format!("{probe_base}/health")).send().await;
        let probing = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failed = 0;
            while Instant::now() < until {
                let started = Instant::now();
                let answered = tokio::time::timeout(
                    Duration::from_secs(5),
                    prober.get(format!("{probe_base}/health")).send(),
                )
                .await;
                match answered {
                    Ok(Ok(reply)) if reply.status().is_success() => {
                        samples.push(started.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, failed)
        });
        run_attack(attack, &base, &client, &attackers, &provider, until).await?;
        let (mut samples, failed) = probing.await.map_err(setup)?;
        samples.sort_by(f64::total_cmp);
        reports.push(AttackReport {
            attack,
            health_samples: samples.len() + failed,
            health_p50_ms: crate::percentile(&samples, 0.50).unwrap_or(0.0),
            health_p95_ms: crate::percentile(&samples, 0.95).unwrap_or(0.0),
            health_max_ms: samples.last().copied().unwrap_or(0.0),
            health_over_100ms: failed + samples.iter().filter(|ms| **ms > 100.0).count(),
            server_rss_mb: target.rss_mb(),
        });
        settle(database_url).await?;
    }
    drop(target);
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    sqlx::query("DELETE FROM users WHERE email LIKE '%@bench.sambung.chat'")
        .execute(&mut conn)
        .await?;
    Ok(reports)
}
