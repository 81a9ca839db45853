//! What every handler shares: the pool, the cookie signer, the API-key cipher, the origins
//! allowed to write with a cookie, the rate limiter, the renderer and the turns.

use std::sync::Arc;
use std::time::Duration;

use sambung_chat::{ReplyLimits, Turns};
use sambung_config::{AuthSecret, EncryptionKey};
use sambung_db::instance::SignupPolicy;
use sambung_db::secret::Cipher;
use sambung_mail::Mailer;
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
    /// mid-reply leaves behind); [`sambung_chat::REPLY_SAVE_EVERY`] unless a test wants it sooner.
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
    /// Who may sign up, when the environment says (`SIGNUP`); it wins over the admins'
    /// setting.
    pub signup: Option<SignupPolicy>,
    /// Where mail goes (`SMTP_URL`, `MAIL_FROM`); nowhere by default.
    pub mailer: Mailer,
    /// A local Ollama `sambung up` found (its base URL), offered on the setup page.
    pub detected_ollama: Option<String>,
    /// The `sambung` executable, whose `read-pdf` command reads an uploaded PDF's text in a
    /// confined process of its own; none: PDFs are kept without their text (models that
    /// read PDFs themselves still take them).
    pub pdf_reader: Option<std::path::PathBuf>,
    /// The identity providers people may sign in with (`OIDC_PROVIDERS`).
    pub identity_providers: Vec<sambung_sso::Provider>,
}

impl ServerSettings {
    /// A server on 127.0.0.1 (any free port) signing with `auth_secret`, with every other
    /// setting at its default: what the binary, the benchmarks and the tests start from.
    pub fn new(auth_secret: AuthSecret) -> ServerSettings {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 0,
            auth_secret,
            encryption_key: None,
            public_url: None,
            trusted_origins: Vec::new(),
            rate_limits: RateLimits::default(),
            ai_allowed_hosts: Vec::new(),
            ai_timeouts: Default::default(),
            reply_save_every: sambung_chat::REPLY_SAVE_EVERY,
            read_replicas: Vec::new(),
            read_max_lag: Duration::from_secs(5),
            connections: Default::default(),
            reply_limits: Default::default(),
            trusted_proxies: Vec::new(),
            signup: None,
            mailer: Mailer::none(),
            detected_ollama: None,
            pdf_reader: None,
            identity_providers: Vec::new(),
        }
    }

    /// The settings the configuration gives (`AUTH_SECRET` must be filled in already); a
    /// mail server that cannot be set up is an error.
    pub fn from_config(
        config: &sambung_config::Config,
        auth_secret: AuthSecret,
        host: &str,
        port: u16,
    ) -> Result<ServerSettings, sambung_mail::MailError> {
        let mailer = match (&config.smtp_url, &config.mail_from) {
            (Some(url), Some(from)) => Mailer::smtp(url.as_str(), from)?,
            _ => Mailer::none(),
        };
        Ok(ServerSettings {
            signup: config.signup.as_deref().and_then(SignupPolicy::parse),
            mailer,
            host: host.to_owned(),
            port,
            encryption_key: config.encryption_key.clone(),
            public_url: config.public_url.clone(),
            trusted_origins: config.trusted_origins.clone(),
            ai_allowed_hosts: config.ai_allowed_hosts.clone(),
            read_replicas: config.read_urls.clone(),
            read_max_lag: config.read_max_lag,
            connections: sambung_http::Limits {
                max_connections: config.max_connections,
            },
            trusted_proxies: config.trusted_proxies.clone(),
            // The binary serving is `sambung` itself.
            pdf_reader: std::env::current_exe().ok(),
            ..ServerSettings::new(auth_secret)
        })
    }
}

/// Requests allowed per client address and window (SPEC section 7).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub window: Duration,
    /// Sign-in, sign-up and password change, each on its own.
    pub sensitive: u32,
    /// Every other request of Better Auth's routes.
    pub general: u32,
    /// Uploads (`POST /api/v1/files`), model lists asked of a provider, imports, exports and
    /// chat turns (`/api/chat`, `/v1/chat/completions`), each on its own: all cost the server
    /// far more than the request does the client.
    pub costly: u32,
    /// Wrong passwords an account may be sent within `failure_window`; then its sign-ins are
    /// refused until the window ends, from every address.
    pub failed_sign_ins: u32,
    pub failure_window: Duration,
    /// Requests one personal access token may make in a window, whatever their path (the
    /// programs that share it share this).
    pub per_token: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            window: Duration::from_secs(10),
            sensitive: 3,
            general: 100,
            costly: 30,
            failed_sign_ins: 10,
            failure_window: Duration::from_secs(15 * 60),
            per_token: 100,
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
            costly: u32::MAX,
            failed_sign_ins: u32::MAX,
            failure_window: Duration::from_secs(15 * 60),
            per_token: u32::MAX,
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
    /// Messages rendered to HTML, once each, off the async workers.
    pub renderer: crate::render::Renderer,
    /// The chat turns this server writes and follows (and the providers' guard and keys).
    pub turns: Arc<Turns>,
    /// Streaming replicas for reads that may lag.
    pub replicas: crate::replicas::Replicas,
    pub read_max_lag: Duration,
    /// `SIGNUP`, when set: it wins over the admins' setting.
    pub signup_override: Option<SignupPolicy>,
    pub mailer: Mailer,
    pub detected_ollama: Option<String>,
    /// See [`ServerSettings::pdf_reader`].
    pub pdf_reader: Option<std::path::PathBuf>,
    /// Those of `OIDC_PROVIDERS`.
    pub env_providers: Vec<sambung_sso::Provider>,
    /// Every provider (the environment's, then the admins'), as last read and when.
    providers: Recent<Arc<Vec<sambung_sso::Provider>>>,
    /// Requests to identity providers (through the outbound guard), and what they answered.
    pub sso: sambung_sso::Sso,
    /// The instance's `requireTwoFactor`, as last read and when: every request of a user
    /// without a second factor asks it (see [`AppState::two_factor_required`]).
    two_factor_required: Recent<bool>,
}

/// A value read from the database, used for a few seconds before it is read again (another
/// server's admin may have changed it; this server's own changes apply at once).
struct Recent<T> {
    value: std::sync::Mutex<Option<(std::time::Instant, T)>>,
}

impl<T: Clone> Recent<T> {
    const FRESH_FOR: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Recent {
            value: std::sync::Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, T)>> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value, if it was read (or kept) lately.
    fn fresh(&self) -> Option<T> {
        self.lock()
            .as_ref()
            .filter(|(read, _)| read.elapsed() < Self::FRESH_FOR)
            .map(|(_, value)| value.clone())
    }

    fn keep(&self, value: T) {
        *self.lock() = Some((std::time::Instant::now(), value));
    }

    fn forget(&self) {
        *self.lock() = None;
    }
}

impl AppState {
    /// Where a read that may lag goes: a usable replica, else the primary.
    pub fn read_pool(&self) -> &PgPool {
        self.replicas.pick().unwrap_or(&self.pool)
    }

    pub fn new(
        pool: PgPool,
        turns: Arc<Turns>,
        guard: sambung_ai::Guard,
        settings: &ServerSettings,
        bound_port: u16,
    ) -> AppState {
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
            .map(|o| sambung_http::edge::url_origin(o).unwrap_or_else(|| o.clone()))
            .collect();
        AppState {
            turns,
            renderer: Default::default(),
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
            signup_override: settings.signup,
            mailer: settings.mailer.clone(),
            detected_ollama: settings.detected_ollama.clone(),
            pdf_reader: settings.pdf_reader.clone(),
            env_providers: settings.identity_providers.clone(),
            providers: Recent::new(),
            sso: sambung_sso::Sso::new(guard),
            two_factor_required: Recent::new(),
        }
    }

    /// Whether accounts signing in with a password must have a second factor: read at most
    /// every few seconds, for every request of a user without one asks it.
    pub async fn two_factor_required(&self) -> Result<bool, sambung_db::DomainError> {
        if let Some(required) = self.two_factor_required.fresh() {
            return Ok(required);
        }
        let required = self.instance_settings().await?.require_two_factor;
        self.two_factor_required.keep(required);
        Ok(required)
    }

    /// The identity providers people may sign in with: `OIDC_PROVIDERS`', then those admins
    /// set up (read at most every few seconds; this server's own changes apply at once). One
    /// that cannot be read (its secret sealed under another key, a setting this version does
    /// not know) is left out, and said in the log.
    pub async fn identity_providers(
        &self,
    ) -> Result<Arc<Vec<sambung_sso::Provider>>, sambung_db::DomainError> {
        if let Some(providers) = self.providers.fresh() {
            return Ok(providers);
        }
        let mut providers = self.env_providers.clone();
        for stored in sambung_db::identity_providers::list(&self.pool).await? {
            if providers.iter().any(|p| p.config.id == stored.id) {
                continue;
            }
            match self.unseal_provider(&stored) {
                Ok(provider) => providers.push(provider),
                Err(why) => {
                    tracing::warn!(provider = %stored.id, %why, "an identity provider is left out")
                }
            }
        }
        let providers = Arc::new(providers);
        self.providers.keep(providers.clone());
        Ok(providers)
    }

    fn unseal_provider(
        &self,
        stored: &sambung_db::identity_providers::StoredProvider,
    ) -> Result<sambung_sso::Provider, String> {
        let cipher = self
            .cipher
            .as_ref()
            .ok_or("no ENCRYPTION_KEY to open its secret")?;
        let secret = cipher
            .decrypt(&stored.sealed_secret, stored.id.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut config = stored.config.clone();
        config["clientSecret"] =
            serde_json::Value::String(String::from_utf8(secret).map_err(|e| e.to_string())?);
        let config: sambung_sso::ProviderConfig =
            serde_json::from_value(config).map_err(|e| e.to_string())?;
        sambung_sso::Provider::new(config).map_err(|e| e.to_string())
    }

    /// An admin changed the stored providers here.
    pub fn identity_providers_changed(&self) {
        self.providers.forget();
    }

    /// An admin changed the instance's settings here: whether a second factor is required.
    pub fn instance_settings_changed(&self, two_factor_required: bool) {
        self.two_factor_required.keep(two_factor_required);
    }

    /// The instance's settings, with the sign-up policy the environment sets winning.
    pub async fn instance_settings(
        &self,
    ) -> Result<sambung_db::instance::InstanceSettings, sambung_db::DomainError> {
        let mut settings = sambung_db::instance::settings(&self.pool).await?;
        if let Some(policy) = self.signup_override {
            settings.signup = policy;
        }
        Ok(settings)
    }

    /// The cipher that seals API keys, or 503 `ENCRYPTION_KEY_MISSING` without one.
    pub fn require_cipher(&self) -> crate::error::ApiResult<&Cipher> {
        self.cipher.as_ref().ok_or_else(|| {
            crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "ENCRYPTION_KEY_MISSING",
                "the server has no ENCRYPTION_KEY to store API keys with",
            )
        })
    }

    /// A link to a page of the web UI (`#/path`), as mail and admins pass it on.
    pub fn page_link(&self, page: &str) -> String {
        format!("{}/#/{page}", self.public_url.trim_end_matches('/'))
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
