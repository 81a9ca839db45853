//! Better Auth's signed cookies, as better-call makes them: the value `TOKEN.SIG`, SIG the
//! standard base64 (44 characters) of HMAC-SHA256(AUTH_SECRET, TOKEN), the whole
//! percent-encoded like JavaScript's `encodeURIComponent`.

use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sambung_config::AuthSecret;
use sha2::Sha256;

pub const SESSION_TOKEN: &str = "sambungchat-auth.session_token";
pub const SESSION_DATA: &str = "sambungchat-auth.session_data";
pub const DONT_REMEMBER: &str = "sambungchat-auth.dont_remember";
/// A password sign-in waiting for its second factor (Better Auth's `two_factor`).
pub const TWO_FACTOR: &str = "sambungchat-auth.two_factor";
/// A device whose sign-ins need no second factor for a while (Better Auth's `trust_device`).
pub const TRUST_DEVICE: &str = "sambungchat-auth.trust_device";
/// A sign-in through an identity provider, until the provider sends the browser back.
pub const OAUTH_STATE: &str = "sambungchat-auth.oauth_state";
/// The admin's own session while they act as a user: `token:dont_remember`.
pub const ADMIN_SESSION: &str = "sambungchat-auth.admin_session";

/// What `encodeURIComponent` leaves alone.
pub(crate) const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Length of a signature: base64 of 32 bytes.
const SIGNATURE_LEN: usize = 44;

pub struct Cookies {
    secret: AuthSecret,
    /// Over https: the `__Secure-` prefix and the `Secure` attribute.
    secure: bool,
}

impl Cookies {
    pub fn new(secret: AuthSecret, secure: bool) -> Self {
        Cookies { secret, secure }
    }

    pub fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Secure-{base}")
        } else {
            base.to_owned()
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key length")
    }

    /// `value.SIG`.
    pub fn sign(&self, value: &str) -> String {
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        format!("{value}.{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The value of a correctly signed `value.SIG`, checked in constant time.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, signature) = signed.rsplit_once('.')?;
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let signature = STANDARD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(value.as_bytes());
        mac.verify_slice(&signature).ok()?;
        Some(value)
    }

    /// `name=value` of a signed cookie, as a browser sends it back in `Cookie:`.
    pub fn pair(&self, base: &str, value: &str) -> String {
        let signed = self.sign(value);
        format!(
            "{}={}",
            self.name(base),
            utf8_percent_encode(&signed, URI_COMPONENT)
        )
    }

    /// A `Set-Cookie` for a signed cookie; `max_age` `None` makes a browser-session cookie.
    pub fn set(&self, base: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = self.pair(base, value);
        if let Some(max_age) = max_age {
            cookie.push_str(&format!("; Max-Age={max_age}"));
        }
        self.finish(cookie)
    }

    /// A `Set-Cookie` that removes the cookie.
    pub fn expire(&self, base: &str) -> HeaderValue {
        self.finish(format!("{}=; Max-Age=0", self.name(base)))
    }

    fn finish(&self, mut cookie: String) -> HeaderValue {
        cookie.push_str("; Path=/; HttpOnly");
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie.push_str("; SameSite=Lax");
        HeaderValue::from_str(&cookie).expect("cookie names and encoded values are header-safe")
    }

    /// The verified value of the signed cookie `base` the request carries.
    pub fn read(&self, headers: &HeaderMap, base: &str) -> Option<String> {
        let name = self.name(base);
        let raw = sambung_http::edge::request_cookie(headers, &name)?;
        let decoded = percent_decode_str(&raw).decode_utf8().ok()?;
        self.verify(&decoded).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies() -> Cookies {
        Cookies::new(AuthSecret::parse(&"s".repeat(32)).unwrap(), false)
    }

    #[test]
    fn signatures_are_44_characters_and_verify_only_their_value() {
        let cookies = cookies();
        let signed = cookies.sign("token-abc");
        let (value, signature) = signed.rsplit_once('.').unwrap();
        assert_eq!(value, "token-abc");
        assert_eq!(signature.len(), 44);
        assert_eq!(cookies.verify(&signed), Some("token-abc"));
        assert_eq!(cookies.verify(&signed.replace("abc", "abd")), None);
        assert_eq!(cookies.verify("token-abc"), None);
        let other = Cookies::new(AuthSecret::parse(&"t".repeat(32)).unwrap(), false);
        assert_eq!(other.verify(&signed), None);
    }

    #[test]
    fn set_cookie_is_better_calls_shape_and_reads_back() {
        let cookies = cookies();
        let header = cookies.set(SESSION_TOKEN, "tok", Some(604800));
        let text = header.to_str().unwrap();
        assert!(
            text.starts_with("sambungchat-auth.session_token=tok."),
            "{text}"
        );
        assert!(
            text.ends_with("; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"),
            "{text}"
        );
        let pair = &text[..text.find(';').unwrap()];
        assert!(
            !pair.contains('+') && !pair.contains('/') && pair.matches('=').count() == 1,
            "the signature's base64 is percent-encoded: {pair}"
        );
        let value = &text["sambungchat-auth.session_token=".len()..text.find(';').unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {SESSION_TOKEN}={value}")).unwrap(),
        );
        assert_eq!(
            cookies.read(&headers, SESSION_TOKEN).as_deref(),
            Some("tok")
        );
        let secure = Cookies::new(AuthSecret::parse(&"s".repeat(32)).unwrap(), true);
        let text = secure.expire(SESSION_TOKEN);
        assert_eq!(text, "__Secure-sambungchat-auth.session_token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax");
    }
}
