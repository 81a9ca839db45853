//! What both of SambungChat's HTTP servers (the app and Studio) need at their edge, written
//! once: reading a request's cookies, comparing secrets in constant time, the origin of a URL
//! as browsers send `Origin`, the security headers every answer carries, and how a database
//! error reads as an HTTP status. Each server keeps only its policy (which origins it trusts,
//! its Content Security Policy, its words).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use subtle::ConstantTimeEq as _;

/// The first cookie called `name` in the request's `Cookie` headers (undecoded).
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
}

/// Whether two secrets are equal, in time that does not depend on where they differ (how much
/// of a guess is right must not show in the response time).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `scheme://host[:port]` of an http(s) URL, default ports left out (as browsers send
/// `Origin`); `None` for anything else, or a URL with credentials in it.
pub fn url_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let fine = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.host().is_some();
    fine.then(|| url.origin().ascii_serialization())
}

/// The headers every answer carries: no sniffing, no framing, nothing cached unless the
/// handler said otherwise, no referrer, and the server's own Content Security Policy when it
/// gives one (the app gives it on its pages only).
pub fn with_security_headers(mut response: Response, csp: Option<&'static str>) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(csp) = csp {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    response
}

/// What a database error means for an HTTP answer, whatever words a server puts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseRefusal {
    /// A constraint (class 23) or a serialization failure: 409.
    Conflict,
    /// A value out of range or malformed (class 22): 400.
    Invalid,
    /// A write in a read-only transaction: 403.
    ReadOnly,
    /// The database cannot be reached now: 503.
    Unavailable,
    /// Anything else: each server decides (a bug for the app, the user's SQL for Studio).
    Other,
}

impl DatabaseRefusal {
    pub fn of(error: &sqlx::Error) -> DatabaseRefusal {
        match error {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(code) if code.starts_with("23") || code == "40001" => {
                    DatabaseRefusal::Conflict
                }
                Some(code) if code.starts_with("22") => DatabaseRefusal::Invalid,
                Some("25006") => DatabaseRefusal::ReadOnly,
                _ => DatabaseRefusal::Other,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => DatabaseRefusal::Unavailable,
            _ => DatabaseRefusal::Other,
        }
    }

    /// The status, when the refusal has one of its own.
    pub fn status(self) -> Option<StatusCode> {
        match self {
            DatabaseRefusal::Conflict => Some(StatusCode::CONFLICT),
            DatabaseRefusal::Invalid => Some(StatusCode::BAD_REQUEST),
            DatabaseRefusal::ReadOnly => Some(StatusCode::FORBIDDEN),
            DatabaseRefusal::Unavailable => Some(StatusCode::SERVICE_UNAVAILABLE),
            DatabaseRefusal::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_browsers_send_them() {
        assert_eq!(
            url_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            url_origin("https://Chat.Example.com:443/x?y").as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            url_origin("http://a.example/path").as_deref(),
            Some("http://a.example")
        );
        assert_eq!(url_origin("http://evil@a.example"), None);
        assert_eq!(url_origin("javascript:alert(1)"), None);
        assert_eq!(url_origin("ftp://a.example"), None);
        assert_eq!(url_origin("null"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "ab"));
        assert!(!secrets_equal("", "a"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=\"2\""));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(request_cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(request_cookie(&headers, "c").as_deref(), Some("3"));
        assert_eq!(request_cookie(&headers, "d"), None);
    }
}
