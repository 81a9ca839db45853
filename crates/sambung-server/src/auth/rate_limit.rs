//! Rate limits: a fixed window per client and bucket, as Better Auth counts them, and a limit
//! on failed sign-ins per account. A client is its address, or its IPv6 /64 (one host holds a
//! whole /64, so single addresses would give it unlimited buckets); behind a trusted reverse
//! proxy (`TRUSTED_PROXIES`), the address `X-Forwarded-For` names. Kept in this process: each
//! server of several counts on its own (a client spread over N servers by a load balancer gets
//! up to N times the limit).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use ipnet::IpNet;

use crate::state::RateLimits;

/// Per client and bucket: when its window began and how many requests it counted.
type Windows<K> = HashMap<K, (Instant, u32)>;

pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<Windows<(IpAddr, &'static str)>>,
    /// Failed sign-ins per account (its normalised email).
    failures: Mutex<Windows<String>>,
    /// Requests per personal access token.
    tokens: Mutex<Windows<sambung_db::AccessTokenId>>,
}

/// Paths with the strict limit, each counted on its own.
const SENSITIVE: [&str; 12] = [
    "/api/auth/sign-in/email",
    "/api/auth/sign-up/email",
    "/api/auth/sign-in/social",
    "/api/auth/change-password",
    // Each sends a mail: a client may not make the server a mail cannon.
    "/api/auth/request-password-reset",
    "/api/auth/send-verification-email",
    // Codes and the password that guards them, as Better Auth's two-factor plugin limits them.
    "/api/auth/two-factor/enable",
    "/api/auth/two-factor/disable",
    "/api/auth/two-factor/get-totp-uri",
    "/api/auth/two-factor/verify-totp",
    "/api/auth/two-factor/verify-backup-code",
    "/api/auth/two-factor/generate-backup-codes",
];

/// Entries kept before expired ones are swept (bounds the memory an attacker can fill).
const SWEEP_AT: usize = 100_000;

/// The client a request comes from: the peer, unless the peer is a trusted proxy; then the
/// nearest address in `X-Forwarded-For` that is not one of the trusted proxies (the ones
/// further left were written by the client and prove nothing).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| entry.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// What is counted for a client address: an IPv4 address (IPv4-mapped ones too), or the /64
/// an IPv6 address is in.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Count one event in `windows[key]`; `Err(seconds to wait)` when `max` were counted already.
fn count<K: std::hash::Hash + Eq>(
    windows: &Mutex<Windows<K>>,
    key: K,
    max: u32,
    window: Duration,
) -> Result<(), u64> {
    if max == u32::MAX {
        return Ok(());
    }
    let now = Instant::now();
    let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
    if windows.len() > SWEEP_AT {
        windows.retain(|_, (start, _)| now.duration_since(*start) < window);
    }
    let entry = windows.entry(key).or_insert((now, 0));
    if now.duration_since(entry.0) >= window {
        *entry = (now, 0);
    }
    if entry.1 >= max {
        let wait = window.saturating_sub(now.duration_since(entry.0));
        return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
    }
    entry.1 += 1;
    Ok(())
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            windows: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket a request is counted in, and its limit; none for requests not limited
    /// here (the API's reads and writes, bounded by their own sizes and quotas).
    fn bucket(&self, method: &Method, path: &str) -> Option<(&'static str, u32)> {
        if let Some(p) = SENSITIVE.iter().find(|p| **p == path) {
            return Some((p, self.limits.sensitive));
        }
        if path.starts_with("/api/auth/") {
            return Some(("*", self.limits.general));
        }
        if method != Method::POST {
            return None;
        }
        // The AI SDK's transport (its file parts are uploads too) and OpenAI's: each
        // request's body is up to 20 MiB, read before anything else is known of it.
        if path == "/api/chat" || path == "/v1/chat/completions" {
            return Some(("chat", self.limits.costly));
        }
        let mut segments = path.split('/');
        match (
            segments.nth(3),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("files"), None, ..) => Some(("files", self.limits.costly)),
            // An import reads a file of up to 256 MiB; an export writes a whole account.
            (Some("imports"), None, ..) | (Some("prompts"), Some("import"), None, _) => {
                Some(("imports", self.limits.costly))
            }
            (Some("me"), Some("export"), None, _)
            | (Some("teams"), Some(_), Some("export"), None) => {
                Some(("exports", self.limits.costly))
            }
            (Some("providers"), Some(_), Some("models"), None) => {
                Some(("models", self.limits.costly))
            }
            _ => None,
        }
        .filter(|_| path.starts_with("/api/v1/"))
    }

    /// Count a request of `client`; `Err(seconds to wait)` when over the limit.
    pub fn check(&self, client: IpAddr, method: &Method, path: &str) -> Result<(), u64> {
        let Some((bucket, max)) = self.bucket(method, path) else {
            return Ok(());
        };
        count(
            &self.windows,
            (bucket_of(client), bucket),
            max,
            self.limits.window,
        )
    }

    /// Count a request made with `token`; `Err(seconds to wait)` when over its limit.
    pub fn check_token(&self, token: sambung_db::AccessTokenId) -> Result<(), u64> {
        count(
            &self.tokens,
            token,
            self.limits.per_token,
            self.limits.window,
        )
    }

    /// Whether the account may try a password now: `Err(seconds to wait)` once it has had
    /// [`RateLimits::failed_sign_ins`] failures within [`RateLimits::failure_window`].
    pub fn may_try_password(&self, account: &str) -> Result<(), u64> {
        let max = self.limits.failed_sign_ins;
        if max == u32::MAX {
            return Ok(());
        }
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(account) {
            Some((start, n)) if *n >= max && start.elapsed() < self.limits.failure_window => {
                let wait = self.limits.failure_window.saturating_sub(start.elapsed());
                Err(wait.as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// A wrong password for the account.
    pub fn failed_password(&self, account: &str) {
        let _ = count(
            &self.failures,
            account.to_owned(),
            u32::MAX - 1,
            self.limits.failure_window,
        );
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            window: Duration::from_secs(60),
            sensitive: 2,
            general: 3,
            costly: 2,
            failed_sign_ins: 2,
            failure_window: Duration::from_secs(60),
            per_token: 2,
        }
    }

    #[test]
    fn each_sensitive_path_and_the_rest_count_apart() {
        let limiter = RateLimiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            limiter.check(a, &Method::POST, SENSITIVE[0]).unwrap();
        }
        let wait = limiter.check(a, &Method::POST, SENSITIVE[0]).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        limiter.check(a, &Method::POST, SENSITIVE[1]).unwrap();
        limiter.check(b, &Method::POST, SENSITIVE[0]).unwrap();
        for _ in 0..3 {
            limiter
                .check(a, &Method::GET, "/api/auth/get-session")
                .unwrap();
        }
        assert!(limiter
            .check(a, &Method::POST, "/api/auth/sign-out")
            .is_err());
        for _ in 0..10 {
            limiter.check(a, &Method::POST, "/api/v1/chats").unwrap();
        }
    }

    /// An upload is read and inspected, a model list calls a provider: each has its own
    /// bucket, and reading a file or a provider's models is not counted.
    #[test]
    fn uploads_and_model_lists_count_apart() {
        let limiter = RateLimiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let upload = (&Method::POST, "/api/v1/files");
        let list = (&Method::POST, "/api/v1/providers/openai/models");
        for _ in 0..2 {
            limiter.check(a, upload.0, upload.1).unwrap();
            limiter.check(a, list.0, list.1).unwrap();
        }
        assert!(limiter.check(a, upload.0, upload.1).is_err());
        assert!(limiter.check(a, list.0, list.1).is_err());
        for path in ["/api/v1/files/1f0e", "/api/v1/providers/openai/models"] {
            limiter.check(a, &Method::GET, path).unwrap();
        }
        for path in [
            "/api/v1/files/x/y",
            "/api/v1/providers/openai/models/x",
            "/files",
        ] {
            limiter.check(a, &Method::POST, path).unwrap();
        }
    }

    /// The AI SDK's transport and OpenAI's endpoint are one person's chatting: one bucket.
    #[test]
    fn both_chat_transports_share_a_bucket() {
        let limiter = RateLimiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        limiter.check(a, &Method::POST, "/api/chat").unwrap();
        limiter
            .check(a, &Method::POST, "/v1/chat/completions")
            .unwrap();
        assert!(limiter
            .check(a, &Method::POST, "/v1/chat/completions")
            .is_err());
        assert!(limiter.check(a, &Method::POST, "/api/chat").is_err());
        limiter.check(a, &Method::GET, "/v1/models").unwrap();
    }

    /// One IPv6 host has a whole /64: every address in it is one client.
    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limiter = RateLimiter::new(limits());
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
            limiter
                .check(host.parse().unwrap(), &Method::POST, SENSITIVE[0])
                .unwrap();
        }
        assert!(limiter
            .check(
                "2001:db8:1:2:ffff::9".parse().unwrap(),
                &Method::POST,
                SENSITIVE[0]
            )
            .is_err());
        limiter
            .check(
                "2001:db8:1:3::1".parse().unwrap(),
                &Method::POST,
                SENSITIVE[0],
            )
            .unwrap();
        limiter
            .check(
                "::ffff:10.0.0.9".parse().unwrap(),
                &Method::POST,
                SENSITIVE[0],
            )
            .unwrap();
        limiter
            .check("10.0.0.9".parse().unwrap(), &Method::POST, SENSITIVE[0])
            .unwrap();
        assert!(limiter
            .check("10.0.0.9".parse().unwrap(), &Method::POST, SENSITIVE[0])
            .is_err());
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.5"),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let client = client_address(proxy, &headers, &trusted);
        assert_eq!(client, "203.0.113.7".parse::<IpAddr>().unwrap());
        // A client that is no proxy cannot pick its address.
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_address(direct, &headers, &trusted), direct);
        // A malformed header is ignored.
        headers.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_address(proxy, &headers, &trusted), proxy);
    }

    #[test]
    fn failed_passwords_lock_only_their_account_for_a_while() {
        let limiter = RateLimiter::new(limits());
        assert!(limiter.may_try_password("ana@x.io").is_ok());
        limiter.failed_password("ana@x.io");
        assert!(limiter.may_try_password("ana@x.io").is_ok());
        limiter.failed_password("ana@x.io");
        let wait = limiter.may_try_password("ana@x.io").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.may_try_password("budi@x.io").is_ok());
    }
}
