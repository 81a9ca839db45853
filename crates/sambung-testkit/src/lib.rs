//! Test harness for every crate's tests: one throwaway PostgreSQL cluster per test process,
//! started from the same cluster code as `sambung db start` (in a temporary directory, on a free
//! port, without fsync), and a fresh database for each test so tests run in parallel without
//! sharing state. Set `TEST_DATABASE_URL` to use an existing server instead (its user must be
//! allowed to create databases).
//!
//! Nothing outlives the test process: the cluster is shut down and its directory removed at
//! exit, and a watchdog process does the same if the test process dies without exiting
//! (a signal, an abort). `browser` drives a real headless Chromium for the UIs' tests.

pub mod browser;
mod steps;

pub use steps::Steps;

use sambung_config::Hint as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sambung_pg::{Cluster, ClusterError, ClusterSpec};
use sambung_sql::quote_ident;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use tokio::sync::OnceCell;

/// Application role, its password and the maintenance database of the throwaway cluster.
const USER: &str = "sambung_test";
const PASSWORD: &str = "sambung_test";
const ADMIN_DATABASE: &str = "postgres";

/// Where test databases are created: the throwaway cluster or `TEST_DATABASE_URL`.
struct Server {
    admin: PgConnectOptions,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();
/// A database with every migration applied, cloned for each [`TestDb::migrated`].
static MIGRATED_TEMPLATE: OnceCell<String> = OnceCell::const_new();
/// On a `TEST_DATABASE_URL` server: the admin connection and the template to drop at exit.
static SHARED_TEMPLATE: OnceLock<(PgConnectOptions, String)> = OnceLock::new();
/// The throwaway cluster and its directory, for the exit hook.
static THROWAWAY: OnceLock<(Cluster, PathBuf)> = OnceLock::new();
static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);
/// The watchdog's pid: no longer needed once the exit hook has cleaned up.
static WATCHDOG: OnceLock<u32> = OnceLock::new();

/// A user with `email` (named `User`), for tests that need someone to own things.
pub async fn insert_user(pool: &PgPool, email: &str) -> uuid::Uuid {
    sqlx::query_scalar("INSERT INTO users (name, email) VALUES ('User', $1) RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("insert user {email}: {e}"))
}

/// `EXPLAIN` of a statement prepared on one connection and run `runs` times first (from the
/// sixth run PostgreSQL may switch it to a generic plan, one that cannot see the values).
pub async fn explain_prepared(
    conn: &mut sqlx::PgConnection,
    name: &str,
    sql: &str,
    runs: &[Vec<&str>],
    explain: &[&str],
) -> String {
    sqlx::raw_sql(&format!("PREPARE {name} AS {sql}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    for args in runs {
        sqlx::raw_sql(&format!("EXECUTE {name}({})", args.join(", ")))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let rows: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN EXECUTE {name}({})", explain.join(", ")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.join("\n")
}

/// The PostgreSQL every test of this process runs: `SAMBUNG_PG_BIN`, else what `sambung`
/// itself would find (the newest server, the fetched packages of the cache included), so that
/// the harness's clusters and the `sambung` commands a test runs are the same version.
pub fn server_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let explicit = std::env::var_os("SAMBUNG_PG_BIN").map(PathBuf::from);
        let cache = std::env::current_dir()
            .ok()
            .and_then(|dir| sambung_config::Config::load(&dir).ok())
            .map(|config| config.pg_cache);
        sambung_pg::PgBinaries::discover(explicit.as_deref(), cache.as_deref())
            .unwrap_or_else(|e| {
                panic!(
                    "no PostgreSQL for the tests: {e}\nhint: {}",
                    e.hint().unwrap_or_default()
                )
            })
            .dir()
            .to_owned()
    })
}

/// The `sambung` executable of this build (`target/<profile>/sambung`), which a test's
/// server runs for work it confines to a process of its own (`sambung read-pdf`). A
/// workspace's `cargo test` builds it; a test run of one crate builds it here, once.
pub fn sambung_executable() -> &'static Path {
    static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();
    EXECUTABLE.get_or_init(|| {
        // A test binary is target/<profile>/deps/<name>-<hash>.
        let test = std::env::current_exe().expect("the test binary's path");
        let profile_dir = test
            .parent()
            .and_then(Path::parent)
            .expect("a test binary lives in target/<profile>/deps");
        let executable = profile_dir.join("sambung");
        if !executable.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args([
                "build",
                "--quiet",
                "--package",
                "sambung",
                "--bin",
                "sambung",
            ]);
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build --bin sambung failed");
        }
        executable
    })
}

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
                let admin =
                    PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a valid URL");
                return Server { admin };
            }
            let cluster = start_throwaway_cluster().await.unwrap_or_else(|e| {
                panic!(
                    "cannot start the test cluster: {e}\nhint: {}",
                    e.hint().unwrap_or_default()
                )
            });
            Server {
                admin: cluster
                    .connect_options(ADMIN_DATABASE)
                    .expect("the test cluster's password is fixed"),
            }
        })
        .await
}

async fn start_throwaway_cluster() -> Result<Cluster, ClusterError> {
    let dir = tempfile::Builder::new()
        .prefix("sambung-test-")
        .tempdir()
        .expect("create a temporary directory")
        .keep();
    // The server may run as another user (we are root): let it in.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    let mut last_error = None;
    // A free port can be taken by someone else before the server binds it: try a few.
    for _ in 0..5 {
        let spec = ClusterSpec {
            data_dir: dir.clone(),
            port: free_port(),
            bin_dir: Some(server_bin_dir().to_owned()),
            search: None,
            cache_dir: None,
            os_user: std::env::var("SAMBUNG_PG_USER").ok(),
            app_user: USER.into(),
            app_password: Some(PASSWORD.into()),
            database: ADMIN_DATABASE.into(),
            throwaway: true,
        };
        let cluster = Cluster::new(spec)?;
        if THROWAWAY.set((cluster.clone(), dir.clone())).is_ok() {
            register_cleanup(&dir);
        }
        match cluster.start().await {
            Ok(_) => return Ok(cluster),
            Err(ClusterError::PortInUse { .. }) => continue,
            Err(e) => {
                last_error = Some(e);
                break;
            }
        }
    }
    Err(last_error.unwrap_or(ClusterError::PortInUse { port: 0 }))
}

/// Stop the cluster and remove its directory at exit, and start a watchdog that does the
/// same should this process die without running exit hooks.
fn register_cleanup(dir: &Path) {
    extern "C" fn at_exit() {
        if let Some((cluster, dir)) = THROWAWAY.get() {
            cluster.stop_immediately();
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(pid) = WATCHDOG.get().and_then(|pid| i32::try_from(*pid).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    // SAFETY: registering a plain extern "C" function with no captured state.
    unsafe {
        nix::libc::atexit(at_exit);
    }
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        pid=$(head -n 1 "$2/pgdata/postmaster.pid" 2>/dev/null)
        [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
        sleep 2
        rm -rf "$2"
    "#;
    let spawned = std::process::Command::new("/bin/sh")
        .args(["-c", script, "sambung-test-watchdog"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C that kills the tests must not kill the watchdog.
        .process_group(0)
        .spawn();
    match spawned {
        Ok(child) => {
            let _ = WATCHDOG.set(child.id());
        }
        Err(e) => eprintln!("warning: no watchdog for the test cluster: {e}"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago. Taken from 20000-29999, below Linux's
/// ephemeral range (where bind-to-0 ports and outgoing connections would collide with it),
/// walking from a per-process start so that no two calls in one process return the same port.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..10_000 {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(step.wrapping_mul(13)) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 29999");
}

/// A database of its own for one test, dropped when the value is dropped.
pub struct TestDb {
    name: String,
    options: PgConnectOptions,
    pool: PgPool,
}

impl TestDb {
    /// A new, empty database.
    pub async fn empty() -> TestDb {
        Self::create(None).await
    }

    /// A new database holding the whole schema (every embedded migration applied), cloned
    /// from a template migrated once per test process: far faster than migrating each time.
    pub async fn migrated() -> TestDb {
        let template = MIGRATED_TEMPLATE
            .get_or_init(|| async {
                let template = Self::create(None).await;
                sambung_schema::Migrator::embedded()
                    .migrate(template.pool())
                    .await
                    .expect("migrate the template database");
                template.pool.close().await;
                let name = template.name.clone();
                // The template lives as long as the process: on a shared server it is dropped
                // at exit (the throwaway cluster goes away whole).
                if std::env::var_os("TEST_DATABASE_URL").is_some()
                    && SHARED_TEMPLATE
                        .set((
                            template.options.clone().database(ADMIN_DATABASE),
                            name.clone(),
                        ))
                        .is_ok()
                {
                    extern "C" fn drop_template() {
                        if let Some((admin, name)) = SHARED_TEMPLATE.get() {
                            if !sambung_schema::drop_database_blocking(admin, name) {
                                eprintln!("warning: template database {name} was not dropped");
                            }
                        }
                    }
                    // SAFETY: registering a plain extern "C" function with no captured state.
                    unsafe {
                        nix::libc::atexit(drop_template);
                    }
                }
                std::mem::forget(template);
                name
            })
            .await;
        Self::create(Some(template)).await
    }

    async fn create(template: Option<&str>) -> TestDb {
        let server = server().await;
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect_with(&server.admin)
            .await
            .expect("connect to the test server");
        let template = template
            .map(|t| format!(" TEMPLATE {}", quote_ident(t)))
            .unwrap_or_default();
        admin
            .execute(format!("CREATE DATABASE {}{template}", quote_ident(&name)).as_str())
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        let options = server.admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_lazy_with(options.clone());
        TestDb {
            name,
            options,
            pool,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A `postgres://` URL of this database, for commands run as child processes.
    pub fn url(&self) -> String {
        let o = &self.options;
        format!(
            "postgres://{}:{}@{}:{}/{}",
            o.get_username(),
            server_password(),
            o.get_host(),
            o.get_port(),
            self.name
        )
    }
}

fn server_password() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => url::password(&url),
        Err(_) => PASSWORD.to_owned(),
    }
}

mod url {
    /// The password of a `postgres://user:password@…` URL ("" when none).
    pub fn password(url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Only worth the time on a shared server: the throwaway cluster goes away whole.
        if std::env::var_os("TEST_DATABASE_URL").is_none() {
            return;
        }
        let admin = self.options.clone().database(ADMIN_DATABASE);
        if !sambung_schema::drop_database_blocking(&admin, &self.name) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// A scratch directory and free port for tests that run `sambung db start` themselves.
/// Dropping it shuts down whatever cluster was started there and removes the directory.
pub struct ScratchCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl ScratchCluster {
    pub fn new() -> ScratchCluster {
        let dir = tempfile::Builder::new()
            .prefix("sambung-scratch-")
            .tempdir()
            .expect("create a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temporary directory");
        ScratchCluster {
            dir,
            port: free_port(),
        }
    }

    /// A working directory for commands (where a `.env` would be read).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The value for `SAMBUNG_DATA_DIR`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The value for `SAMBUNG_PG_PORT`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `sambung` cluster of this directory (to inspect it or stop it).
    /// The application role's URL for `database`, its password read from the cluster's
    /// secrets (once `sambung db start` made them).
    pub fn app_url(&self, database: &str) -> String {
        self.cluster()
            .database_url(database)
            .expect("the scratch cluster was started, so its secrets exist")
    }

    pub fn cluster(&self) -> Cluster {
        Cluster::new(ClusterSpec {
            data_dir: self.data_dir(),
            port: self.port,
            bin_dir: Some(server_bin_dir().to_owned()),
            search: None,
            cache_dir: None,
            os_user: std::env::var("SAMBUNG_PG_USER").ok(),
            app_user: "sambungchat".into(),
            // As the managed cluster: a random password in its secrets.
            app_password: None,
            database: "sambungchat".into(),
            throwaway: true,
        })
        .expect("PostgreSQL binaries for the scratch cluster")
    }
}

impl Default for ScratchCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchCluster {
    fn drop(&mut self) {
        self.cluster().stop_immediately();
        // A test may have started a cluster elsewhere below the directory: leave nothing.
        for pid in sambung_pg::processes_working_in(self.dir.path()) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_read_from_urls() {
        assert_eq!(url::password("postgres://u:secret@h:5/db"), "secret");
        assert_eq!(url::password("postgres://u@h/db"), "");
        assert_eq!(url::password("postgres://h/db?x=a:b@c"), "");
    }

    #[tokio::test]
    async fn each_test_database_is_separate_and_usable() {
        let a = TestDb::empty().await;
        let b = TestDb::empty().await;
        assert_ne!(a.name(), b.name());
        sqlx::query("CREATE TABLE t (x int)")
            .execute(a.pool())
            .await
            .unwrap();
        let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('t')::text")
            .fetch_one(b.pool())
            .await
            .unwrap();
        assert_eq!(
            in_b, None,
            "a table made in one test database shows in another"
        );
        let via_url = PgConnection::connect(&a.url()).await.unwrap();
        via_url.close().await.unwrap();
    }
}
