//! Sign-in through an organisation's identity provider (SPEC section 13): OpenID Connect
//! (discovery from `/.well-known/openid-configuration`) and plain OAuth 2.0 providers of
//! GitHub's shape. The server keeps the state; this crate builds the authorization URL (code
//! flow, PKCE S256, `state`, `nonce`), exchanges the code and says who signed in:
//!
//! - an ID token is verified against the provider's JWKS (cached, fetched again once for an
//!   unknown `kid`), with its `alg` from an allow-list (never `none` nor an HMAC one), `iss`,
//!   `aud`, `exp`, `iat`, `nonce` and a minute of clock skew;
//! - every request (discovery, keys, token, user info) passes the outbound guard that model
//!   base URLs pass, is bounded in time and size, and follows no redirect.

mod presets;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore as _;
use sambung_ai::Guard;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

pub use presets::PRESETS;

/// Why a sign-in through a provider failed; `code` is what the sign-in page is told.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the provider answered what cannot be used: {0}")]
    BadAnswer(String),
    #[error("the provider refused the code: {0}")]
    CodeRefused(String),
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("the provider set-up is invalid: {0}")]
    Config(String),
}

impl SsoError {
    /// The error's name in the redirect to the sign-in page (`?error=`).
    pub fn code(&self) -> &'static str {
        match self {
            SsoError::Unreachable(_) => "provider_unreachable",
            SsoError::BadAnswer(_) => "provider_answer_invalid",
            SsoError::CodeRefused(_) => "invalid_code",
            SsoError::InvalidToken(_) => "invalid_id_token",
            SsoError::Config(_) => "provider_misconfigured",
        }
    }
}

pub type Result<T> = std::result::Result<T, SsoError>;

/// An identity provider as the operator sets it up (`OIDC_PROVIDERS`, a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// In URLs and in `accounts.provider_id`: `[a-z0-9-]`, 1 to 32.
    pub id: String,
    /// On the sign-in button.
    #[serde(default)]
    pub name: Option<String>,
    /// Fills in what a known provider needs: `keycloak`, `entra`, `google`, `okta`,
    /// `gitlab`, `github`.
    #[serde(default)]
    pub preset: Option<String>,
    /// OpenID Connect: the issuer, whose discovery document gives the endpoints.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Plain OAuth 2.0 (or to override discovery): the endpoints themselves.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Only these email domains may sign in through it (none: any).
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// A claim that makes its holder an instance admin: `{"claim": "groups", "value":
    /// "sambung-admins"}` (the claim may be a string or a list).
    #[serde(default)]
    pub admin_claim: Option<AdminClaim>,
    /// Whether people without an account here get one by signing in (the instance's sign-up
    /// policy applies too). Default true.
    #[serde(default = "yes")]
    pub allow_sign_up: bool,
    /// Whether an existing account whose own email is unverified is linked when the provider
    /// vouches for the email. Default false: only verified accounts are linked.
    #[serde(default)]
    pub link_unverified_accounts: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminClaim {
    pub claim: String,
    pub value: String,
}

/// A provider ready to use: the config with its preset applied and checked.
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: ProviderConfig,
    pub name: String,
    /// OpenID Connect (ID tokens), or plain OAuth 2.0 (user info only).
    pub oidc: bool,
    /// GitHub's user API (`/user`, `/user/emails`) rather than OpenID's user info.
    pub github: bool,
    /// Send the client secret in the form body (GitHub) rather than HTTP Basic.
    pub secret_in_body: bool,
    pub scopes: Vec<String>,
}

impl Provider {
    /// Apply the preset and check the set-up.
    pub fn new(mut config: ProviderConfig) -> Result<Provider> {
        let id = config.id.clone();
        let bad = |why: String| SsoError::Config(format!("provider {id:?}: {why}"));
        let id_ok = (1..=32).contains(&config.id.len())
            && config
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(bad("an id is 1 to 32 of a-z, 0-9 and -".into()));
        }
        let preset = match &config.preset {
            Some(name) => Some(
                PRESETS
                    .iter()
                    .find(|p| p.id == name)
                    .ok_or_else(|| bad(format!("no preset {name:?}")))?,
            ),
            None => None,
        };
        if let Some(preset) = preset {
            presets::apply(preset, &mut config).map_err(bad)?;
        }
        let oidc = config.issuer.is_some();
        if !oidc
            && (config.authorization_endpoint.is_none()
                || config.token_endpoint.is_none()
                || config.userinfo_endpoint.is_none())
        {
            return Err(bad(
                "give an issuer (OpenID Connect) or the authorization, token and user info endpoints (OAuth 2.0)".into(),
            ));
        }
        for url in [
            &config.issuer,
            &config.authorization_endpoint,
            &config.token_endpoint,
            &config.userinfo_endpoint,
        ]
        .into_iter()
        .flatten()
        {
            let parsed = Url::parse(url).map_err(|e| bad(format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(bad(format!("{url:?} is not http(s)")));
            }
        }
        if config.client_id.is_empty() || config.client_secret.is_empty() {
            return Err(bad("clientId and clientSecret are needed".into()));
        }
        let scopes = config.scopes.clone().unwrap_or_else(|| match oidc {
            true => vec!["openid".into(), "email".into(), "profile".into()],
            false => Vec::new(),
        });
        if oidc && !scopes.iter().any(|s| s == "openid") {
            return Err(bad(
                "an OpenID Connect provider needs the scope openid".into()
            ));
        }
        let github = preset.is_some_and(|p| p.id == "github");
        if github && config.admin_claim.is_some() {
            return Err(bad(
                "GitHub gives no claims: adminClaim cannot be used with it".into(),
            ));
        }
        Ok(Provider {
            name: config
                .name
                .clone()
                .or_else(|| preset.map(|p| p.name.to_owned()))
                .unwrap_or_else(|| config.id.clone()),
            oidc,
            github,
            secret_in_body: github,
            scopes,
            config,
        })
    }

    /// Whether `email` may sign in through it (its allowed domains).
    pub fn domain_allowed(&self, email: &str) -> bool {
        let domains = &self.config.allowed_email_domains;
        domains.is_empty()
            || email.rsplit_once('@').is_some_and(|(_, domain)| {
                domains
                    .iter()
                    .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain))
            })
    }
}

/// A new sign-in's secrets: `state` (names it in the callback), the PKCE verifier, `nonce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

impl Start {
    pub fn new() -> Start {
        let random = || {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            URL_SAFE_NO_PAD.encode(bytes)
        };
        Start {
            state: random(),
            verifier: random(),
            nonce: random(),
        }
    }

    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

impl Default for Start {
    fn default() -> Self {
        Start::new()
    }
}

/// Who signed in, as the provider says.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub` (OpenID) or the user's id (GitHub): the account's key with the provider's id.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// Whether the admin claim was there.
    pub admin: bool,
    pub scope: Option<String>,
}

/// An OpenID Provider's discovery document, the parts used.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// Signature algorithms an ID token may use: asymmetric ones only (HMAC would make the
/// client secret a signing key; `none` is no signature).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Clock skew allowed on `exp`, `iat` and `nbf`.
const SKEW_SECONDS: u64 = 60;
/// How long a discovery document and a key set are used before they are fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// The least time between two fetches of a key set for an unknown `kid` (a token with a
/// made-up `kid` must not make the server fetch keys for every request).
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// The most of a provider's answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;
const REQUEST_TIME: Duration = Duration::from_secs(10);

/// The client side of every provider: the guard, and the documents and keys fetched.
pub struct Sso {
    guard: Guard,
    discovered: Mutex<HashMap<String, (Instant, Discovery)>>,
    keys: Mutex<HashMap<String, (Instant, JwkSet)>>,
}

impl Sso {
    pub fn new(guard: Guard) -> Sso {
        Sso {
            guard,
            discovered: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(&self, request: Fetch<'_>) -> Result<Value> {
        let url = Url::parse(request.url).map_err(|e| SsoError::Config(e.to_string()))?;
        let checked = self
            .guard
            .check(&url)
            .await
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let timeouts = sambung_ai::Timeouts {
            connect: REQUEST_TIME,
            ..Default::default()
        };
        let client = sambung_ai::client_for(&checked, timeouts)
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let mut builder = match request.form {
            Some(form) => client.post(url.clone()).form(form),
            None => client.get(url.clone()),
        }
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::USER_AGENT, "SambungChat")
        .timeout(REQUEST_TIME);
        if let Some(token) = request.bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some((user, password)) = request.basic {
            builder = builder.basic_auth(user, Some(password));
        }
        let response = builder.send().await.map_err(|e| {
            SsoError::Unreachable(
                sambung_ai::guard::redact_url(&url) + ": " + &e.without_url().to_string(),
            )
        })?;
        let status = response.status();
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SsoError::Unreachable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(SsoError::BadAnswer("an answer over a megabyte".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| {
            SsoError::BadAnswer(format!(
                "{} answered {status} without JSON",
                sambung_ai::guard::redact_url(&url)
            ))
        })?;
        if !status.is_success() {
            let why = value["error_description"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no reason given");
            let why: String = why.chars().take(200).collect();
            return Err(match request.form {
                Some(_) => SsoError::CodeRefused(why),
                None => SsoError::BadAnswer(format!("{status}: {why}")),
            });
        }
        Ok(value)
    }

    async fn discover(&self, provider: &Provider) -> Result<Discovery> {
        let Some(issuer) = &provider.config.issuer else {
            return Err(SsoError::Config("no issuer".into()));
        };
        if let Some((at, doc)) = self.lock_discovered().get(issuer) {
            if at.elapsed() < CACHE_FOR {
                return Ok(doc.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc: Discovery = serde_json::from_value(self.fetch(Fetch::get(&url)).await?)
            .map_err(|e| SsoError::BadAnswer(format!("the discovery document: {e}")))?;
        // OpenID Connect Discovery 1.0, 4.3: the issuer must be the one asked for.
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(SsoError::BadAnswer(format!(
                "the discovery document names the issuer {:?}, not {issuer:?}",
                doc.issuer
            )));
        }
        self.lock_discovered()
            .insert(issuer.clone(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    fn lock_discovered(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Discovery)>> {
        self.discovered.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, JwkSet)>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the provider answers as set up: an OpenID Provider's discovery document (a
    /// plain OAuth 2.0 provider is taken as given).
    pub async fn check(&self, provider: &Provider) -> Result<()> {
        if provider.oidc {
            self.lock_discovered()
                .remove(provider.config.issuer.as_deref().unwrap_or_default());
            self.discover(provider).await?;
        }
        Ok(())
    }

    /// Where to send the browser: the provider's authorization endpoint with this sign-in's
    /// `state`, PKCE challenge and `nonce`, to come back to `redirect_uri`.
    pub async fn authorization_url(
        &self,
        provider: &Provider,
        start: &Start,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<String> {
        let endpoint = match &provider.config.authorization_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => self.discover(provider).await?.authorization_endpoint,
        };
        let mut url = Url::parse(&endpoint)
            .map_err(|e| SsoError::BadAnswer(format!("the authorization endpoint: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &provider.config.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &start.state)
                .append_pair("code_challenge", &start.challenge())
                .append_pair("code_challenge_method", "S256");
            if !provider.scopes.is_empty() {
                query.append_pair("scope", &provider.scopes.join(" "));
            }
            if provider.oidc {
                query.append_pair("nonce", &start.nonce);
            }
            if let Some(hint) = login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        Ok(url.to_string())
    }

    /// Exchange the callback's `code` and say who signed in.
    pub async fn finish(
        &self,
        provider: &Provider,
        start: &Start,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Identity> {
        let discovery = match provider.oidc {
            true => Some(self.discover(provider).await?),
            false => None,
        };
        let token_endpoint = provider
            .config
            .token_endpoint
            .clone()
            .or_else(|| discovery.as_ref().map(|d| d.token_endpoint.clone()))
            .ok_or_else(|| SsoError::Config("no token endpoint".into()))?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &start.verifier),
        ];
        let basic = (!provider.secret_in_body).then_some((
            provider.config.client_id.as_str(),
            provider.config.client_secret.as_str(),
        ));
        if provider.secret_in_body {
            form.push(("client_id", &provider.config.client_id));
            form.push(("client_secret", &provider.config.client_secret));
        }
        let answer = self
            .fetch(Fetch {
                url: &token_endpoint,
                form: Some(&form),
                bearer: None,
                basic,
            })
            .await?;
        let tokens: TokenAnswer = serde_json::from_value(answer)
            .map_err(|e| SsoError::BadAnswer(format!("the token answer: {e}")))?;
        if provider.github {
            return self.github_identity(provider, &tokens).await;
        }
        let mut identity = match (&discovery, &tokens.id_token) {
            (Some(discovery), Some(id_token)) => {
                let claims = self
                    .verify_id_token(provider, discovery, id_token, &start.nonce)
                    .await?;
                identity_of(provider, &claims, tokens.scope.clone())?
            }
            (Some(_), None) => {
                return Err(SsoError::BadAnswer(
                    "no ID token in the token answer".into(),
                ))
            }
            (None, _) => {
                let url = provider
                    .config
                    .userinfo_endpoint
                    .as_deref()
                    .ok_or_else(|| SsoError::Config("no user info endpoint".into()))?;
                let info = self.fetch(Fetch::bearer(url, &tokens.access_token)).await?;
                identity_of(provider, &info, tokens.scope.clone())?
            }
        };
        // An ID token without the email: the user info endpoint has it (for the same `sub`).
        if identity.email.is_none() {
            if let Some(url) = provider
                .config
                .userinfo_endpoint
                .clone()
                .or_else(|| discovery.and_then(|d| d.userinfo_endpoint))
            {
                let info = self
                    .fetch(Fetch::bearer(&url, &tokens.access_token))
                    .await?;
                if info["sub"].as_str() == Some(identity.subject.as_str()) {
                    identity.email = info["email"].as_str().map(str::to_owned);
                    identity.email_verified = verified(&info["email_verified"]);
                }
            }
        }
        Ok(identity)
    }

    /// Verify an ID token's signature (the provider's keys), issuer, audience, times and
    /// nonce: its claims.
    async fn verify_id_token(
        &self,
        provider: &Provider,
        discovery: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<Value> {
        let invalid = |why: &str| SsoError::InvalidToken(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid(&format!(
                "the algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self
            .key_for(&discovery.jwks_uri, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&discovery.issuer]);
        validation.set_audience(&[&provider.config.client_id]);
        validation.leeway = SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| invalid(&e.to_string()))?
            .claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if claims["iat"]
            .as_u64()
            .is_none_or(|iat| iat > now + SKEW_SECONDS)
        {
            return Err(invalid("it was issued in the future"));
        }
        if claims["nonce"].as_str() != Some(nonce) {
            return Err(invalid("its nonce is not this sign-in's"));
        }
        // Several audiences: the authorized party must be us (OpenID Connect Core 3.1.3.7).
        if claims["aud"].is_array()
            && claims["azp"]
                .as_str()
                .is_some_and(|azp| azp != provider.config.client_id)
        {
            return Err(invalid("it was issued to another party (azp)"));
        }
        Ok(claims)
    }

    /// The key that signed a token: by `kid` (fetched again, once in a while, when unknown),
    /// or the one key of the set's that fits `alg` when the token names none.
    async fn key_for(
        &self,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey> {
        let cached = self
            .lock_keys()
            .get(jwks_uri)
            .map(|(at, set)| (*at, set.clone()));
        let (fetched_at, set) = match cached {
            Some((at, set)) if at.elapsed() < CACHE_FOR => (at, set),
            _ => self.fetch_keys(jwks_uri).await?,
        };
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => {
                let fitting: Vec<_> = set
                    .keys
                    .iter()
                    .filter(|k| {
                        k.common
                            .key_algorithm
                            .is_none_or(|a| a.to_string() == format!("{alg:?}"))
                    })
                    .collect();
                (fitting.len() == 1).then(|| fitting[0].clone())
            }
        };
        let jwk = match find(&set) {
            Some(jwk) => jwk,
            None if fetched_at.elapsed() >= REFETCH_AFTER => {
                let (_, set) = self.fetch_keys(jwks_uri).await?;
                find(&set).ok_or_else(|| {
                    SsoError::InvalidToken(
                        "it was signed by a key the provider does not list".into(),
                    )
                })?
            }
            None => {
                return Err(SsoError::InvalidToken(
                    "it was signed by a key the provider does not list".into(),
                ))
            }
        };
        if let Some(key_alg) = jwk.common.key_algorithm {
            if key_alg.to_string() != format!("{alg:?}") {
                return Err(SsoError::InvalidToken(format!(
                    "its key is for {key_alg}, not {alg:?}"
                )));
            }
        }
        DecodingKey::from_jwk(&jwk).map_err(|e| SsoError::BadAnswer(format!("a key: {e}")))
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<(Instant, JwkSet)> {
        let value = self.fetch(Fetch::get(jwks_uri)).await?;
        // Keys of kinds this client cannot use are skipped, not fatal.
        let keys = value["keys"]
            .as_array()
            .ok_or_else(|| SsoError::BadAnswer("the key set has no keys".into()))?
            .iter()
            .filter_map(|k| serde_json::from_value(k.clone()).ok())
            .collect();
        let set = JwkSet { keys };
        let now = Instant::now();
        self.lock_keys()
            .insert(jwks_uri.to_owned(), (now, set.clone()));
        Ok((now, set))
    }

    /// GitHub: the user (`/user`), and their primary verified email (`/user/emails`).
    async fn github_identity(&self, provider: &Provider, tokens: &TokenAnswer) -> Result<Identity> {
        let user_url = provider
            .config
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(|| SsoError::Config("no user endpoint".into()))?;
        let user = self
            .fetch(Fetch::bearer(user_url, &tokens.access_token))
            .await?;
        let subject = match &user["id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => return Err(SsoError::BadAnswer("the user has no id".into())),
        };
        let emails_url = format!("{}/emails", user_url.trim_end_matches('/'));
        let emails = self
            .fetch(Fetch::bearer(&emails_url, &tokens.access_token))
            .await?;
        let primary = emails
            .as_array()
            .and_then(|all| all.iter().find(|e| e["primary"] == Value::Bool(true)));
        Ok(Identity {
            subject,
            email: primary.and_then(|e| e["email"].as_str()).map(str::to_owned),
            email_verified: primary.is_some_and(|e| e["verified"] == Value::Bool(true)),
            name: user["name"]
                .as_str()
                .or(user["login"].as_str())
                .map(str::to_owned),
            picture: user["avatar_url"].as_str().map(str::to_owned),
            admin: false,
            scope: tokens.scope.clone(),
        })
    }
}

struct Fetch<'a> {
    url: &'a str,
    form: Option<&'a [(&'a str, &'a str)]>,
    bearer: Option<&'a str>,
    basic: Option<(&'a str, &'a str)>,
}

impl<'a> Fetch<'a> {
    fn get(url: &'a str) -> Fetch<'a> {
        Fetch {
            url,
            form: None,
            bearer: None,
            basic: None,
        }
    }

    fn bearer(url: &'a str, token: &'a str) -> Fetch<'a> {
        Fetch {
            bearer: Some(token),
            ..Fetch::get(url)
        }
    }
}

/// `email_verified` as providers write it: a boolean, or (some) the string "true".
fn verified(value: &Value) -> bool {
    matches!(value, Value::Bool(true)) || value.as_str() == Some("true")
}

/// The identity in verified claims (or an OAuth 2.0 provider's user info).
fn identity_of(provider: &Provider, claims: &Value, scope: Option<String>) -> Result<Identity> {
    let subject = match &claims["sub"] {
        Value::String(s) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(SsoError::BadAnswer("no subject (sub)".into())),
    };
    let admin = provider.config.admin_claim.as_ref().is_some_and(|rule| {
        match &claims[rule.claim.as_str()] {
            Value::String(s) => *s == rule.value,
            Value::Array(items) => items.iter().any(|v| v.as_str() == Some(&rule.value)),
            Value::Bool(b) => rule.value == b.to_string(),
            _ => false,
        }
    });
    Ok(Identity {
        subject,
        email: claims["email"].as_str().map(str::to_owned),
        email_verified: verified(&claims["email_verified"]),
        name: claims["name"]
            .as_str()
            .or(claims["preferred_username"].as_str())
            .map(str::to_owned),
        picture: claims["picture"].as_str().map(str::to_owned),
        admin,
        scope,
    })
}

/// Parse `OIDC_PROVIDERS` (a JSON array of [`ProviderConfig`]).
pub fn parse_providers(json: &str) -> Result<Vec<Provider>> {
    let configs: Vec<ProviderConfig> = serde_json::from_str(json).map_err(|e| {
        SsoError::Config(format!(
            "OIDC_PROVIDERS is not a JSON array of providers: {e}"
        ))
    })?;
    let mut providers: Vec<Provider> = Vec::new();
    for config in configs {
        if providers.iter().any(|p| p.config.id == config.id) {
            return Err(SsoError::Config(format!(
                "two providers have the id {:?}",
                config.id
            )));
        }
        providers.push(Provider::new(config)?);
    }
    Ok(providers)
}
