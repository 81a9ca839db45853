//! Who may do what in the managed cluster: least privilege.
//!
//! - `sambung_superuser`, the bootstrap superuser, reachable only through the unix socket in
//!   the data directory (which only the server's system user and root can enter), with a
//!   random password kept in `pgdata/sambung.secrets` (0600, the server user's, so physical
//!   backups carry it). Used for what needs it: making the roles and the database below.
//! - the application role (`sambungchat`, the design's credentials): owns its database, may
//!   create databases (scratch databases for `db generate`), is no superuser: it cannot run
//!   programs or read the server's files, whatever SQL reaches it.
//! - `sambung_replication`: REPLICATION only, for physical backups (and standbys).
//!
//! A cluster made by an earlier `sambung`, whose `sambungchat` *is* the bootstrap superuser (and
//! so can never lose the right), is moved to this arrangement at its next start: the bootstrap
//! role is renamed, a new application role made, and the databases and their objects handed
//! to it.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sambung_sql::{quote_ident, quote_literal};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

use crate::cluster::io_error;
use crate::ClusterError;

/// The bootstrap superuser of a cluster made by `sambung`.
pub const SUPERUSER: &str = "sambung_superuser";
/// The role physical backups connect as.
pub const REPLICATION_USER: &str = "sambung_replication";
/// The application role's password in the design (and in clusters of earlier `sambung`s,
/// until their next start gives them a random one).
pub const LEGACY_APP_PASSWORD: &str = "sambungchat";

/// Passwords of the cluster's roles, kept beside the cluster, readable by its owner only.
#[derive(Clone)]
pub struct ClusterSecrets {
    pub superuser_password: String,
    pub replication_password: String,
    /// The application role's: random since the design's public default let any local user
    /// in. `None` in a file written by an earlier `sambung` (the next start makes one).
    pub app_password: Option<String>,
}

impl std::fmt::Debug for ClusterSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecrets { .. }")
    }
}

impl ClusterSecrets {
    pub fn path(pgdata: &Path) -> PathBuf {
        pgdata.join("sambung.secrets")
    }

    /// New random passwords.
    pub fn generate() -> ClusterSecrets {
        ClusterSecrets {
            superuser_password: random_password(),
            replication_password: random_password(),
            app_password: Some(random_password()),
        }
    }

    /// The secrets of the cluster in `pgdata`, if they were written.
    pub fn read(pgdata: &Path) -> Result<Option<ClusterSecrets>, ClusterError> {
        let path = Self::path(pgdata);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| ClusterError::BadSecrets {
                    path: path.clone(),
                    missing: name.to_owned(),
                })
        };
        Ok(Some(ClusterSecrets {
            superuser_password: value("superuser")?,
            replication_password: value("replication")?,
            app_password: value("app").ok(),
        }))
    }

    /// Write them into `pgdata` (0600), atomically; returns the file's path.
    pub fn write(&self, pgdata: &Path) -> Result<PathBuf, ClusterError> {
        let path = Self::path(pgdata);
        let temp = pgdata.join("sambung.secrets.new");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io_error("write", &temp))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("set permissions on", &temp))?;
        write!(
            file,
            "# Passwords of the cluster's roles, written by sambung: keep private.\n\
             superuser={}\nreplication={}\n",
            self.superuser_password, self.replication_password
        )
        .and_then(|()| match &self.app_password {
            Some(app) => writeln!(file, "app={app}"),
            None => Ok(()),
        })
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(io_error("write", &path))?;
        Ok(path)
    }
}

fn random_password() -> String {
    sambung_config::random_token()
}

/// `pg_hba.conf` of a managed cluster: the superuser and the replication role through the
/// socket only (replication also over loopback, for a standby), everyone else with a password
/// over the socket or 127.0.0.1.
pub fn hba_rules() -> String {
    format!(
        "# Written by sambung at every start: changes here are overwritten.\n\
         # TYPE  DATABASE     USER                 ADDRESS        METHOD\n\
         local   all          {SUPERUSER}                         scram-sha-256\n\
         host    all          {SUPERUSER}          all            reject\n\
         local   replication  {REPLICATION_USER}                       scram-sha-256\n\
         host    replication  {REPLICATION_USER}   127.0.0.1/32   scram-sha-256\n\
         host    all          {REPLICATION_USER}   all            reject\n\
         local   all          all                                 scram-sha-256\n\
         host    all          all                  127.0.0.1/32   scram-sha-256\n"
    )
}

/// What [`provision`] needs to know of the cluster.
pub struct Provisioning<'a> {
    /// Connects as the superuser through the socket, to the `postgres` database.
    pub superuser: PgConnectOptions,
    pub app_user: &'a str,
    pub app_password: &'a str,
    pub database: &'a str,
    pub secrets: &'a ClusterSecrets,
}

/// Make sure the roles and the application's database exist with the rights they should have:
/// run at every start, so it also finishes an interrupted upgrade.
pub async fn provision(p: &Provisioning<'_>) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&p.superuser.clone().database("postgres")).await?;
    ensure_role(
        &mut conn,
        p.app_user,
        "LOGIN CREATEDB NOSUPERUSER NOREPLICATION",
        p.app_password,
    )
    .await?;
    ensure_role(
        &mut conn,
        REPLICATION_USER,
        "LOGIN REPLICATION NOSUPERUSER NOCREATEDB",
        &p.secrets.replication_password,
    )
    .await?;
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(p.database)
    .fetch_optional(&mut conn)
    .await?;
    let system_database = matches!(p.database, "postgres" | "template0" | "template1");
    match owner {
        None => {
            let created = conn
                .execute(
                    format!(
                        "CREATE DATABASE {} OWNER {}",
                        quote_ident(p.database),
                        quote_ident(p.app_user)
                    )
                    .as_str(),
                )
                .await;
            match created {
                Ok(_) => tracing::info!(database = p.database, "created the database"),
                // Another `start` created it at the same moment: what we wanted anyway.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e),
            }
        }
        Some(owner) if owner == SUPERUSER && !system_database => {
            hand_over_database(p, &mut conn, p.database).await?;
        }
        Some(_) => {}
    }
    // The application never signals other sessions, nor may SQL that reaches it through
    // Studio's console. Revoked in the application's database and in template1, so databases
    // made later (scratch, tests) start without it; only the superuser can revoke these.
    let mut databases = vec!["template1"];
    if !system_database {
        databases.push(p.database);
    }
    for database in databases {
        let mut db = PgConnection::connect_with(&p.superuser.clone().database(database)).await?;
        db.execute(
            "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
                pg_catalog.pg_cancel_backend(integer) FROM PUBLIC",
        )
        .await?;
        let _ = db.close().await;
    }
    let _ = conn.close().await;
    Ok(())
}

async fn ensure_role(
    conn: &mut PgConnection,
    role: &str,
    attributes: &str,
    password: &str,
) -> Result<(), sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *conn)
            .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    // Passwords are ours (random) or a test's constant; quoted as literals all the same.
    conn.execute(
        format!(
            "{verb} ROLE {} {attributes} PASSWORD {}",
            quote_ident(role),
            quote_literal(password)
        )
        .as_str(),
    )
    .await?;
    Ok(())
}

/// Give `database` and everything in it that the superuser owns to the application role.
async fn hand_over_database(
    p: &Provisioning<'_>,
    conn: &mut PgConnection,
    database: &str,
) -> Result<(), sqlx::Error> {
    let app = quote_ident(p.app_user);
    conn.execute(format!("ALTER DATABASE {} OWNER TO {app}", quote_ident(database)).as_str())
        .await?;
    let mut db = PgConnection::connect_with(&p.superuser.clone().database(database)).await?;
    // Objects of the bootstrap role (oid 10) outside the system schemas and not part of an
    // extension: tables (their indexes and owned sequences follow), views, sequences of their
    // own, routines, types and domains, schemas. Extensions have no ALTER … OWNER: their owner
    // is set in the catalog, as only a superuser may.
    let statements: Vec<String> = sqlx::query_scalar(
        r#"
        WITH user_ns AS (
          SELECT oid FROM pg_namespace
           WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'),
        extension_members AS (
          SELECT objid FROM pg_depend WHERE deptype = 'e')
        SELECT format('ALTER SCHEMA %I OWNER TO %s', nspname, $1) FROM pg_namespace
         WHERE nspowner = 10 AND oid IN (SELECT oid FROM user_ns)
        UNION ALL
        SELECT format('ALTER %s %s OWNER TO %s',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                      c.oid::regclass, $1)
          FROM pg_class c
         WHERE c.relowner = 10 AND c.relnamespace IN (SELECT oid FROM user_ns)
           AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
           AND c.oid NOT IN (SELECT objid FROM extension_members)
           AND NOT (c.relkind = 'S' AND EXISTS (
                 SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT format('ALTER ROUTINE %s OWNER TO %s', p.oid::regprocedure, $1) FROM pg_proc p
         WHERE p.proowner = 10 AND p.pronamespace IN (SELECT oid FROM user_ns)
           AND p.oid NOT IN (SELECT objid FROM extension_members)
        UNION ALL
        SELECT format('ALTER %s %s OWNER TO %s', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                      t.oid::regtype, $1) FROM pg_type t
         WHERE t.typowner = 10 AND t.typnamespace IN (SELECT oid FROM user_ns)
           AND t.typtype IN ('e', 'd', 'r', 'c') AND (t.typtype <> 'c' OR
               (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
           AND t.oid NOT IN (SELECT objid FROM extension_members)
        "#,
    )
    .bind(&app)
    .fetch_all(&mut db)
    .await?;
    let mut tx = db.begin().await?;
    for statement in &statements {
        tx.execute(statement.as_str()).await?;
    }
    sqlx::query("UPDATE pg_catalog.pg_extension SET extowner = $1::regrole WHERE extowner = 10")
        .bind(&app)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let _ = db.close().await;
    tracing::info!(
        database,
        objects = statements.len(),
        "handed the database to the application role"
    );
    Ok(())
}

/// Whether `app` connects as the cluster's bootstrap superuser: a cluster made by an earlier
/// `sambung`. `None` when the role cannot log in (a new cluster before provisioning).
pub async fn app_is_bootstrap_superuser(app: &PgConnectOptions) -> Option<bool> {
    let mut conn = PgConnection::connect_with(&app.clone().database("postgres"))
        .await
        .ok()?;
    let bootstrap =
        sqlx::query_scalar("SELECT oid = 10 FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .ok();
    let _ = conn.close().await;
    bootstrap
}

/// Move a cluster whose application role is the bootstrap superuser to the least-privilege
/// arrangement. The bootstrap role cannot rename itself while connected, so a temporary
/// superuser does it and is dropped again; [`provision`] then hands the databases over.
pub async fn upgrade_legacy(
    app: &PgConnectOptions,
    superuser: &PgConnectOptions,
    app_user: &str,
    app_password: &str,
    secrets: &ClusterSecrets,
) -> Result<(), sqlx::Error> {
    const HELPER: &str = "sambung_upgrade_helper";
    let helper_password = random_password();
    let mut conn = PgConnection::connect_with(&app.clone().database("postgres")).await?;
    conn.execute(format!("DROP ROLE IF EXISTS {HELPER}").as_str())
        .await?;
    conn.execute(
        format!(
            "CREATE ROLE {HELPER} SUPERUSER LOGIN PASSWORD {}",
            quote_literal(&helper_password)
        )
        .as_str(),
    )
    .await?;
    let _ = conn.close().await;

    let helper = app
        .clone()
        .database("postgres")
        .username(HELPER)
        .password(&helper_password);
    let mut conn = PgConnection::connect_with(&helper).await?;
    let mut tx = conn.begin().await?;
    // The legacy role's other sessions would keep working as the superuser: end them.
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(app_user)
        .execute(&mut *tx)
        .await?;
    tx.execute(format!("ALTER ROLE {} RENAME TO {SUPERUSER}", quote_ident(app_user)).as_str())
        .await?;
    tx.execute(
        format!(
            "ALTER ROLE {SUPERUSER} PASSWORD {}",
            quote_literal(&secrets.superuser_password)
        )
        .as_str(),
    )
    .await?;
    tx.execute(
        format!(
            "CREATE ROLE {} LOGIN CREATEDB PASSWORD {}",
            quote_ident(app_user),
            quote_literal(app_password)
        )
        .as_str(),
    )
    .await?;
    tx.commit().await?;
    let _ = conn.close().await;

    // Every database the old role made is the new application role's.
    let mut conn = PgConnection::connect_with(&superuser.clone().database("postgres")).await?;
    conn.execute(format!("DROP ROLE {HELPER}").as_str()).await?;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database
          WHERE datdba = 10 AND datallowconn AND datname NOT IN ('postgres', 'template1')",
    )
    .fetch_all(&mut conn)
    .await?;
    let provisioning = Provisioning {
        superuser: superuser.clone(),
        app_user,
        app_password,
        database: "postgres",
        secrets,
    };
    for database in databases {
        hand_over_database(&provisioning, &mut conn, &database).await?;
    }
    let _ = conn.close().await;
    tracing::warn!(
        "moved the cluster to least privilege: {app_user} is no longer a superuser ({SUPERUSER} is, through the socket only)"
    );
    Ok(())
}
