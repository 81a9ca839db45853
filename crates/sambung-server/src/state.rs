//! What every handler shares: the pool, the cookie signer, the API-key cipher, the origins
//! allowed to write with a cookie, and the rate limiter.

use std::time::Duration;

use sambung_config::{AuthSecret, EncryptionKey};
use sambung_db::lease::ServerLease;
use sambung_db::secret::Cipher;
use sqlx::PgPool;

use crate::auth::cookie::Cookies;
use crate::auth::rate_limit::RateLimiter;

/// How the server is set up (the binary fills it from the configuration).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Signs session cookies (`AUTH_SECRET`).
    pub auth_secret: AuthSecret,
    /// Seals API keys (`ENCRYPTION_KEY`); without it, adding a key is refused.
    pub encryption_key: Option<EncryptionKey>,
    /// The origin browsers use (`PUBLIC_URL`); `None`: `http://host:port` as served.
    pub public_url: Option<String>,
    /// More origins allowed to send cookie-bearing writes (`TRUSTED_ORIGINS`).
    pub trusted_origins: Vec<String>,
    pub rate_limits: RateLimits,
    /// `host:port` pairs a model's base URL may reach besides public https addresses
    /// (`AI_ALLOWED_HOSTS`).
    pub ai_allowed_hosts: Vec<String>,
    /// Limits of provider calls.
    pub ai_timeouts: sambung_ai::Timeouts,
    /// How often a reply's text so far is stored while it streams (what a server that dies
    /// mid-reply leaves behind); [`REPLY_SAVE_EVERY`] unless a test wants it sooner.
    pub reply_save_every: Duration,
    /// Streaming replicas for reads that may lag (`DATABASE_READ_URL`), and how far behind
    /// one may be before it is skipped (`DATABASE_READ_MAX_LAG`).
    pub read_replicas: Vec<sambung_config::DatabaseUrl>,
    pub read_max_lag: Duration,
    /// How many connections the server holds open at once.
    pub connections: sambung_http::Limits,
    /// Where a reply is cut off.
    pub reply_limits: ReplyLimits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

pub const REPLY_SAVE_EVERY: Duration = Duration::from_secs(5);

/// Where a reply is cut off, whatever the provider does: it ends with `finishReason: "length"`
/// and its text so far (`metadata.capped` says which limit).
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// Bytes of text: as much as a user's message may hold.
    pub max_bytes: usize,
    /// How long a reply may stream.
    pub max_duration: Duration,
    /// Pieces of text the provider streams (about a token each).
    pub max_pieces: u32,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_bytes: sambung_db::chats::MAX_MESSAGE_BYTES,
            max_duration: Duration::from_secs(15 * 60),
            max_pieces: 65_536,
        }
    }
}

/// Requests allowed per client address and window (SPEC section 7).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub window: Duration,
    /// Sign-in, sign-up and password change, each on its own.
    pub sensitive: u32,
    /// Every other request.
    pub general: u32,
    /// Wrong passwords an account may be sent within `failure_window`; then its sign-ins are
    /// refused until the window ends, from every address.
    pub failed_sign_ins: u32,
    pub failure_window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            window: Duration::from_secs(10),
            sensitive: 3,
            general: 100,
            failed_sign_ins: 10,
            failure_window: Duration::from_secs(15 * 60),
        }
    }
}

impl RateLimits {
    /// No limits (benchmarks; tests that are not about limits).
    pub fn unlimited() -> Self {
        RateLimits {
            window: Duration::from_secs(10),
            sensitive: u32::MAX,
            general: u32::MAX,
            failed_sign_ins: u32::MAX,
            failure_window: Duration::from_secs(15 * 60),
        }
    }
}

pub struct AppState {
    pub pool: PgPool,
    pub cookies: Cookies,
    pub cipher: Option<Cipher>,
    /// `PUBLIC_URL`'s origin first, then the trusted ones.
    pub origins: Vec<String>,
    pub public_url: String,
    pub limiter: RateLimiter,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where provider requests may go.
    pub guard: sambung_ai::Guard,
    pub ai_timeouts: sambung_ai::Timeouts,
    pub reply_save_every: Duration,
    pub reply_limits: ReplyLimits,
    /// Messages rendered to HTML, once each, off the async workers.
    pub renderer: crate::render::Renderer,
    /// The replies being generated in this server.
    pub generations: sambung_ai::registry::Registry,
    /// This server's lease: the replies it writes carry its number, so other servers can
    /// tell when it died.
    pub lease: ServerLease,
    /// Callers here following a reply another server writes: its relayed stream goes to them.
    pub replicas: crate::replicas::Replicas,
    pub read_max_lag: Duration,
    pub remote_followers: std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::mpsc::Sender<axum::body::Bytes>>,
    >,
}

impl AppState {
    /// Where a read that may lag goes: a usable replica, else the primary.
    pub fn read_pool(&self) -> &PgPool {
        self.replicas.pick().unwrap_or(&self.pool)
    }

    pub fn new(
        pool: PgPool,
        lease: ServerLease,
        settings: &ServerSettings,
        bound_port: u16,
    ) -> Result<AppState, String> {
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{bound_port}", shown_host(&settings.host)));
        let mut origins: Vec<String> = vec![public_url.clone()];
        // Served on loopback, the browser may say localhost or 127.0.0.1: both are this server.
        if settings.public_url.is_none() && is_loopback(&settings.host) {
            origins.push(format!("http://localhost:{bound_port}"));
            origins.push(format!("http://127.0.0.1:{bound_port}"));
        }
        origins.extend(settings.trusted_origins.iter().cloned());
        // Compared as browsers send them: `scheme://host[:port]`, nothing more.
        let origins = origins
            .iter()
            .map(|o| crate::auth::url_origin(o).unwrap_or_else(|| o.clone()))
            .collect();
        Ok(AppState {
            guard: sambung_ai::Guard::new(&settings.ai_allowed_hosts)?,
            ai_timeouts: settings.ai_timeouts,
            reply_save_every: settings.reply_save_every,
            reply_limits: settings.reply_limits,
            generations: Default::default(),
            renderer: Default::default(),
            remote_followers: Default::default(),
            replicas: crate::replicas::Replicas::new(
                settings
                    .read_replicas
                    .iter()
                    .map(|url| {
                        let pool = sqlx::postgres::PgPoolOptions::new()
                            .max_connections(10)
                            .acquire_timeout(Duration::from_secs(2))
                            .connect_lazy_with(url.connect_options());
                        crate::replicas::Replica::new(url.redacted(), pool)
                    })
                    .collect(),
            ),
            read_max_lag: settings.read_max_lag,
            lease,
            pool,
            cookies: Cookies::new(
                settings.auth_secret.clone(),
                public_url.starts_with("https://"),
            ),
            cipher: settings
                .encryption_key
                .as_ref()
                .map(|key| Cipher::new(key.as_bytes())),
            origins,
            public_url,
            limiter: RateLimiter::new(settings.rate_limits),
            trusted_proxies: settings.trusted_proxies.clone(),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn shown_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "::" => "localhost".into(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.into(),
    }
}
