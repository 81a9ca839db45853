//! Rate limits per client address: a fixed window per address and bucket, as Better Auth
//! counts them. Kept in this process: each server of several counts on its own (a client
//! spread over N servers by a load balancer gets up to N times the limit).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::state::RateLimits;

/// Per client address and bucket: when its window began and how many requests it counted.
type Windows = HashMap<(IpAddr, &'static str), (Instant, u32)>;

pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<Windows>,
}

/// Paths with the strict limit, each counted on its own.
const SENSITIVE: [&str; 3] = [
    "/api/auth/sign-in/email",
    "/api/auth/sign-up/email",
    "/api/auth/change-password",
];

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count a request; `Err(seconds to wait)` when over the limit.
    pub fn check(&self, client: IpAddr, path: &str) -> Result<(), u64> {
        let (bucket, max) = match SENSITIVE.iter().find(|p| **p == path) {
            Some(p) => (*p, self.limits.sensitive),
            None => ("*", self.limits.general),
        };
        if max == u32::MAX {
            return Ok(());
        }
        let now = Instant::now();
        let window = self.limits.window;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry((client, bucket)).or_insert((now, 0));
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_sensitive_path_and_the_rest_count_apart() {
        let limiter = RateLimiter::new(RateLimits {
            window: Duration::from_secs(60),
            sensitive: 2,
            general: 3,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            limiter.check(a, SENSITIVE[0]).unwrap();
        }
        let wait = limiter.check(a, SENSITIVE[0]).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        limiter.check(a, SENSITIVE[1]).unwrap();
        limiter.check(b, SENSITIVE[0]).unwrap();
        for _ in 0..3 {
            limiter.check(a, "/api/v1/chats").unwrap();
        }
        assert!(limiter.check(a, "/api/v1/me").is_err());
    }
}
