//! Who may talk to Studio: requests for its own Host (no DNS rebinding) that carry its per-run
//! token (in the printed URL once, then in a cookie), and writes only from its own page.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use sambung_http::edge;

use crate::error::ApiError;
use crate::server::AppState;

pub struct Guard {
    token: String,
    cookie: String,
    /// The `--host` Studio was started with.
    host: String,
    port: u16,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl Guard {
    pub fn new(host: &str, port: u16) -> Guard {
        Guard {
            token: sambung_config::random_token(),
            // Cookies ignore ports: one name per port keeps two Studios apart.
            cookie: format!("sambung_studio_{port}"),
            host: host.to_owned(),
            port,
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Loopback names and IP literals are safe; any other name could be an attacker's domain
    /// rebound to this address, unless it is the one Studio was told to serve.
    fn host_allowed(&self, host: &str) -> bool {
        let (name, port) = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once("]:") {
                Some((name, port)) => (name, port),
                None => return false,
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, port),
                None => return false,
            },
        };
        port.parse() == Ok(self.port)
            && (name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok()
                || name.eq_ignore_ascii_case(self.host.trim_matches(['[', ']'])))
    }

    fn token_matches(&self, candidate: &str) -> bool {
        edge::secrets_equal(candidate, &self.token)
    }

    fn presented_token(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(token) = headers.get("x-studio-token") {
            return token.to_str().ok().map(str::to_owned);
        }
        edge::request_cookie(headers, &self.cookie)
    }
}

const WRONG_TOKEN: &str =
    "This access token is not valid for this Studio; use the URL it printed at start";

fn refuse(status: StatusCode, why: &str) -> Response {
    ApiError::new(status, why).into_response()
}

/// Every response, refusals and errors included, carries the security headers.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    with_security_headers(admit(&state, request, next).await)
}

async fn admit(state: &AppState, request: Request, next: Next) -> Response {
    let guard = &state.guard;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !guard.host_allowed(host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "Studio answers only for its own address (loopback or an IP address)",
        );
    }

    // The printed URL carries the token once: trade it for a cookie and drop it from the URL.
    if request.method() == Method::GET {
        if let Ok(query) = axum::extract::Query::<TokenQuery>::try_from_uri(request.uri()) {
            if let Some(token) = query.0.token {
                if !guard.token_matches(&token) {
                    return refuse(StatusCode::UNAUTHORIZED, WRONG_TOKEN);
                }
                let cookie = format!(
                    "{}={}; Path=/; HttpOnly; SameSite=Strict",
                    guard.cookie, guard.token
                );
                let mut response = (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, same_site_path(request.uri().path()))],
                )
                    .into_response();
                if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, cookie);
                }
                return response;
            }
        }
    }

    match guard.presented_token(headers) {
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "Studio needs its access token: open the URL `sambung db studio` printed",
            )
        }
        Some(token) if !guard.token_matches(&token) => {
            return refuse(StatusCode::UNAUTHORIZED, WRONG_TOKEN)
        }
        Some(_) => {}
    }

    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(why) = cross_site_write(headers, host) {
            return refuse(StatusCode::FORBIDDEN, why);
        }
    }
    next.run(request).await
}

/// `path` as a redirect target that stays on this site: `//evil.example/` or `/\evil.example`
/// would send the browser to another host.
fn same_site_path(path: &str) -> String {
    format!("/{}", path.trim_start_matches(['/', '\\']))
}

/// Why a write looks cross-site, if it does. Browsers name the requesting site (`Origin`,
/// `Sec-Fetch-Site`); HTML forms cannot send JSON, which every write of Studio's is.
fn cross_site_write(headers: &HeaderMap, host: &str) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if origin.to_str().ok() != Some(&format!("http://{host}")) {
            return Some("Cross-site request refused: it comes from another origin");
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin") | Ok("none")) {
            return Some("Cross-site request refused: the browser says it comes from another site");
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Some("Studio's writes are JSON (Content-Type: application/json)");
    }
    None
}

/// Studio's pages load only its own script, style and API.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_security_headers(response: Response) -> Response {
    edge::with_security_headers(response, Some(CONTENT_SECURITY_POLICY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_port_and_safe_names_pass() {
        let guard = Guard::new("127.0.0.1", 4983);
        for host in [
            "127.0.0.1:4983",
            "localhost:4983",
            "[::1]:4983",
            "LOCALHOST:4983",
        ] {
            assert!(guard.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example:4983",
            "127.0.0.1:80",
            "127.0.0.1",
            "",
            "localhost.evil.example:4983",
            "[::1]",
        ] {
            assert!(!guard.host_allowed(host), "{host}");
        }
        assert!(Guard::new("studio.lan", 4983).host_allowed("studio.lan:4983"));
    }

    #[test]
    fn the_token_redirect_stays_on_site() {
        assert_eq!(same_site_path("//evil.example/"), "/evil.example/");
        assert_eq!(same_site_path("/\\evil.example"), "/evil.example");
        assert_eq!(same_site_path("/"), "/");
        assert_eq!(same_site_path("/api/x"), "/api/x");
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let guard = Guard::new("127.0.0.1", 4983);
        assert_eq!(guard.token().len(), 43);
        assert_ne!(guard.token(), Guard::new("127.0.0.1", 4983).token());
        assert!(guard.token_matches(guard.token()));
        assert!(!guard.token_matches(&guard.token()[..42]));
        assert!(!guard.token_matches(""));
    }
}
