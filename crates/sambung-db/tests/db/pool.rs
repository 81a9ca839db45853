//! The connection pool against a real PostgreSQL: settings applied, and every kind of
//! connection failure explained rather than dumped.

use sambung_config::Hint as _;
use std::time::Duration;

use sambung_config::{DatabaseUrl, PoolConfig};
use sambung_db::{connect, ConnectError};
use sambung_testkit::{free_port, TestDb};

fn url(text: &str) -> DatabaseUrl {
    DatabaseUrl::parse(text).unwrap()
}

#[tokio::test]
async fn the_pool_uses_the_configured_settings() {
    let db = TestDb::empty().await;
    let settings = PoolConfig {
        max_connections: 3,
        idle_timeout: Duration::from_secs(7),
        connect_timeout: Duration::from_secs(4),
    };
    let pool = connect(&url(&db.url()), &settings, false).await.unwrap();
    let options = pool.options();
    assert_eq!(options.get_max_connections(), 3);
    assert_eq!(options.get_idle_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(options.get_acquire_timeout(), Duration::from_secs(4));
    // Four queries at once through three connections: the pool, not the server, limits.
    let (a, b, c, d) = tokio::join!(
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.05)").fetch_one(&pool),
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.05)").fetch_one(&pool),
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.05)").fetch_one(&pool),
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.05)").fetch_one(&pool),
    );
    assert_eq!([a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()], [1; 4]);
    assert!(pool.size() <= 3, "pool opened {} connections", pool.size());
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_without_the_password() {
    let db = TestDb::empty().await;
    let o = db.connect_options();
    let bad = format!(
        "postgres://{}:wrong-secret@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        db.name()
    );
    let err = connect(&url(&bad), &PoolConfig::default(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Authentication { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
    assert!(err.hint().unwrap().contains("password"));
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let db = TestDb::empty().await;
    let missing = db.url().replace(db.name(), "no_such_database");
    let err = connect(&url(&missing), &PoolConfig::default(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::NoDatabase { database, .. } if database == "no_such_database"),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_and_silent_servers_fail_fast_with_their_cause() {
    let port = free_port();
    let err = connect(
        &url(&format!("postgres://u:p@127.0.0.1:{port}/db")),
        &PoolConfig::default(),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::Refused { managed: false, .. }),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("DATABASE_URL"));

    // A server that accepts TCP but never answers: the connect timeout applies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let settings = PoolConfig {
        connect_timeout: Duration::from_secs(1),
        ..PoolConfig::default()
    };
    let err = connect(
        &url(&format!("postgres://u:p@127.0.0.1:{port}/db")),
        &settings,
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::TimedOut { seconds: 1, .. }),
        "{err:?}"
    );
}
