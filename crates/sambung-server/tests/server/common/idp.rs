//! A fake identity provider on loopback, for what a real one will not do on request: sign an
//! ID token for another audience, with another key, with `alg: none`, expired, with another
//! nonce. It speaks OpenID Connect's discovery, authorization-code flow (checking PKCE and the
//! client's secret) and JWKS, and GitHub's OAuth 2.0 endpoints. The real OpenID Provider of
//! the happy paths is npm's `oidc-provider` (`oidc.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};
use sha2::Digest as _;

pub const CLIENT_ID: &str = "sambung-test";
pub const CLIENT_SECRET: &str = "a-client-secret";

/// How the next ID token is made wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    Nothing,
    /// `alg: none`, no signature.
    AlgNone,
    /// Signed with a key the provider does not list, under a listed `kid`.
    ForeignKey,
    /// Signed by a key with an unknown `kid`.
    UnknownKid,
    /// HS256 with the client secret as the key.
    HmacWithSecret,
    OtherAudience,
    Expired,
    OtherNonce,
    OtherIssuer,
}

/// A person at the provider.
#[derive(Debug, Clone)]
pub struct Person {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub groups: Vec<String>,
}

pub fn person(sub: &str, email: &str, verified: bool) -> Person {
    Person {
        sub: sub.into(),
        email: email.into(),
        email_verified: verified,
        name: format!("Person {sub}"),
        groups: Vec::new(),
    }
}

struct Grant {
    person: Person,
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Inner {
    /// Who signs in at the next authorization.
    next: Option<Person>,
    forge: Option<Forge>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Person>,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub base: String,
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    key: Arc<(Vec<u8>, Vec<u8>)>,
    foreign: Arc<Vec<u8>>,
}

fn ed25519() -> (Vec<u8>, Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    (pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let idp = FakeIdp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            inner: Arc::default(),
            key: Arc::new(ed25519()),
            foreign: Arc::new(ed25519().0),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    /// `person` signs in at the next authorization; the token made then is forged by `forge`.
    pub fn next(&self, person: Person, forge: Forge) {
        let mut inner = self.inner.lock().unwrap();
        inner.next = Some(person);
        inner.forge = Some(forge);
    }

    /// `OIDC_PROVIDERS`' entry for it as an OpenID Provider.
    pub fn oidc(&self, id: &str) -> Value {
        json!({"id": id, "name": "Fake IdP", "issuer": self.base,
               "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    }

    /// Its entry as GitHub (the preset, its endpoints here).
    pub fn github(&self, id: &str) -> Value {
        json!({"id": id, "preset": "github", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
               "authorizationEndpoint": format!("{}/login/oauth/authorize", self.base),
               "tokenEndpoint": format!("{}/login/oauth/access_token", self.base),
               "userinfoEndpoint": format!("{}/user", self.base)})
    }

    fn id_token(&self, person: &Person, nonce: Option<&str>, forge: Forge) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.base, "sub": person.sub, "aud": CLIENT_ID,
            "iat": now, "exp": now + 300,
            "email": person.email, "email_verified": person.email_verified,
            "name": person.name, "groups": person.groups,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        match forge {
            Forge::OtherAudience => claims["aud"] = json!("someone-else"),
            Forge::Expired => {
                claims["iat"] = json!(now - 3600);
                claims["exp"] = json!(now - 600);
            }
            Forge::OtherNonce => claims["nonce"] = json!("not-the-nonce"),
            Forge::OtherIssuer => claims["iss"] = json!("https://evil.example"),
            _ => {}
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("key-1".into());
        match forge {
            Forge::AlgNone => {
                let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"key-1"}"#);
                let body = URL_SAFE_NO_PAD.encode(claims.to_string());
                format!("{head}.{body}.")
            }
            Forge::HmacWithSecret => {
                let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some("key-1".into());
                jsonwebtoken::encode(
                    &header,
                    &claims,
                    &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
                )
                .unwrap()
            }
            Forge::ForeignKey => {
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.foreign))
                    .unwrap()
            }
            Forge::UnknownKid => {
                header.kid = Some("key-unknown".into());
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.key.0))
                    .unwrap()
            }
            _ => jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.key.0))
                .unwrap(),
        }
    }
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    Json(json!({
        "issuer": idp.base,
        "authorization_endpoint": format!("{}/authorize", idp.base),
        "token_endpoint": format!("{}/token", idp.base),
        "userinfo_endpoint": format!("{}/userinfo", idp.base),
        "jwks_uri": format!("{}/jwks", idp.base),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&idp.key.1),
        "kid": "key-1", "alg": "EdDSA", "use": "sig",
    }]}))
}

async fn authorize(
    State(idp): State<FakeIdp>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    let person = idp
        .inner
        .lock()
        .unwrap()
        .next
        .clone()
        .expect("a person to sign in");
    let code = format!("code-{}", rand_id());
    let redirect_uri = q["redirect_uri"].clone();
    idp.inner.lock().unwrap().grants.insert(
        code.clone(),
        Grant {
            person,
            nonce: q.get("nonce").cloned(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let mut to = url::Url::parse(&redirect_uri).unwrap();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    Redirect::to(to.as_str()).into_response()
}

fn rand_id() -> String {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn token(State(idp): State<FakeIdp>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    // The client authenticates once: HTTP Basic, or (GitHub) in the body.
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .map(|v| String::from_utf8(v).unwrap());
    let in_body = form.get("client_secret").cloned();
    let authenticated = match (basic, in_body) {
        (Some(basic), None) => basic == format!("{CLIENT_ID}:{CLIENT_SECRET}"),
        (None, Some(secret)) => {
            secret == CLIENT_SECRET && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        }
        _ => false,
    };
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let grant = idp.inner.lock().unwrap().grants.remove(&form["code"]);
    let Some(grant) = grant else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "unknown or used code"})),
        )
            .into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if challenge != grant.challenge || form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "PKCE or redirect_uri mismatch"}))).into_response();
    }
    let forge = idp.inner.lock().unwrap().forge.unwrap_or(Forge::Nothing);
    let access = format!("access-{}", rand_id());
    idp.inner
        .lock()
        .unwrap()
        .tokens
        .insert(access.clone(), grant.person.clone());
    let id_token = idp.id_token(&grant.person, grant.nonce.as_deref(), forge);
    Json(
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 300,
                "id_token": id_token, "scope": "openid email profile"}),
    )
    .into_response()
}

fn bearer_person(idp: &FakeIdp, headers: &HeaderMap) -> Option<Person> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    idp.inner.lock().unwrap().tokens.get(token).cloned()
}

async fn userinfo(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    match bearer_person(&idp, &headers) {
        Some(p) => Json(json!({"sub": p.sub, "email": p.email, "email_verified": p.email_verified, "name": p.name})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_user(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    match bearer_person(&idp, &headers) {
        Some(p) => Json(
            json!({"id": p.sub.parse::<u64>().unwrap_or(7), "login": p.name, "name": null,
                               "avatar_url": "https://avatars.example/u/7"}),
        )
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn github_emails(State(idp): State<FakeIdp>, headers: HeaderMap) -> Response {
    match bearer_person(&idp, &headers) {
        Some(p) => Json(json!([
            {"email": "old@users.noreply.github.com", "primary": false, "verified": true, "visibility": null},
            {"email": p.email, "primary": true, "verified": p.email_verified, "visibility": "public"},
        ]))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
