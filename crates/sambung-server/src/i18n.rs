//! The reader's language (their setting, else `Accept-Language`) and the API's errors in it:
//! an error is written once, in English, where it happens; on its way out it is told in the
//! reader's language (`sambung-i18n`).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sambung_chat::ui_stream::Chunk;
pub use sambung_i18n::Locale;

use crate::auth::SignedIn;
use crate::error::ErrorBody;

/// The language of a signed-in reader who chose one, put on the response by the session layer.
#[derive(Debug, Clone, Copy)]
pub struct ReaderLocale(pub Locale);

/// An error answer's body as written (English), kept beside the body so that it can be told
/// again in the reader's language.
#[derive(Debug, Clone)]
pub struct Untold(pub std::sync::Arc<ErrorBody>);

/// The language to answer in: the user's setting, else the request's `Accept-Language`, else
/// English.
pub fn locale_of(user_locale: Option<&str>, headers: &HeaderMap) -> Locale {
    user_locale
        .and_then(Locale::parse)
        .or_else(|| accept_language(headers))
        .unwrap_or(Locale::En)
}

fn accept_language(headers: &HeaderMap) -> Option<Locale> {
    Locale::negotiate(headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?)
}

/// Tell every error answer in the reader's language (and say that it depends on it).
pub async fn localize_errors(request: Request, next: Next) -> Response {
    let asked = accept_language(request.headers());
    let mut response = next.run(request).await;
    let Some(Untold(body)) = response.extensions_mut().remove::<Untold>() else {
        return response;
    };
    response.headers_mut().append(
        header::VARY,
        header::HeaderValue::from_static("accept-language"),
    );
    let locale = response
        .extensions()
        .get::<ReaderLocale>()
        .map(|reader| reader.0)
        .or(asked)
        .unwrap_or(Locale::En);
    if locale == Locale::En {
        return response;
    }
    let told = ErrorBody {
        message: sambung_i18n::error(locale, &body.message).into_owned(),
        ..(*body).clone()
    };
    let (mut parts, _) = response.into_parts();
    let fresh = axum::Json(told).into_response();
    // The status and every header (Retry-After, cookies) stay; only the body is told anew.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(locale.code()),
    );
    Response::from_parts(parts, fresh.into_body())
}

/// Mark an answer as told in `locale`, one that another language would tell otherwise.
pub fn told_in(response: &mut Response, locale: Locale) {
    let headers = response.headers_mut();
    headers.append(
        header::VARY,
        header::HeaderValue::from_static("accept-language"),
    );
    headers.insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(locale.code()),
    );
}

/// The language a request is answered in, as a handler's argument: the signed-in user's
/// setting, else `Accept-Language`, else English.
#[derive(Debug, Clone, Copy)]
pub struct Reader(pub Locale);

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let chosen = parts
            .extensions
            .get::<SignedIn>()
            .and_then(|signed_in| signed_in.user.locale.as_deref());
        Ok(Reader(locale_of(chosen, &parts.headers)))
    }
}

/// A piece of a reply's event stream with its `error` events told in `locale` (the reply is
/// shared by everyone following it; each is told in their own language on the way out).
pub fn tell_stream_errors(locale: Locale, piece: Bytes) -> Bytes {
    const ERROR_EVENT: &[u8] = b"data: {\"type\":\"error\"";
    if locale == Locale::En || !piece.windows(ERROR_EVENT.len()).any(|w| w == ERROR_EVENT) {
        return piece;
    }
    let Ok(text) = std::str::from_utf8(&piece) else {
        return piece;
    };
    let mut told = String::with_capacity(text.len());
    for event in text.split_inclusive("\n\n") {
        let error = event
            .strip_prefix("data: ")
            .and_then(|json| serde_json::from_str::<serde_json::Value>(json.trim_end()).ok())
            .filter(|event| event["type"] == "error")
            .and_then(|event| event["errorText"].as_str().map(str::to_owned));
        match error {
            Some(english) => told.push_str(
                &Chunk::Error {
                    error_text: sambung_i18n::error(locale, &english).into_owned(),
                }
                .to_sse(),
            ),
            None => told.push_str(event),
        }
    }
    Bytes::from(told)
}
