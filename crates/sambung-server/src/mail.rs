//! Sending the instance's mail from a request: through the mail server when there is one,
//! noted in the outbox either way; without one (or when it fails), the link stays in the
//! outbox for an admin to pass on.

use chrono::{DateTime, Utc};
use sambung_db::mail::{self as outbox, Delivery, MailKind};
use sambung_db::MailId;
use sambung_mail::{Locale, Mail};

use crate::state::AppState;

/// Send `mail` (which carries `link`, valid until `expires_at`) and note what became of it.
/// `None` when its kind goes at most once a minute to an address and one already went: make
/// such mail after [`reserve`] instead, so nothing is issued for a mail that will not go.
pub async fn deliver(
    state: &AppState,
    kind: MailKind,
    mail: &Mail,
    link: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Option<Delivery> {
    let place = reserve(state, &mail.to, kind).await?;
    Some(send(state, place, mail, link, expires_at).await)
}

/// A place in the outbox for one more `kind` mail to `recipient` (see
/// [`outbox::reserve`]); `None` when none may go now, or the outbox cannot be written.
pub async fn reserve(state: &AppState, recipient: &str, kind: MailKind) -> Option<MailId> {
    match outbox::reserve(&state.pool, recipient, kind).await {
        Ok(place) => place,
        Err(e) => {
            tracing::error!(error = %e, kind = kind.as_str(), "cannot note a mail in the outbox");
            None
        }
    }
}

/// Send `mail` in its reserved place and note what became of it.
pub async fn send(
    state: &AppState,
    place: MailId,
    mail: &Mail,
    link: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Delivery {
    let delivery = match state.mailer.send(mail).await {
        Ok(true) => Delivery::Sent,
        Ok(false) => Delivery::Unsent,
        Err(e) => {
            tracing::warn!(error = %e, "a mail was not sent");
            Delivery::Failed(e.to_string())
        }
    };
    if let Err(e) = outbox::settle(
        &state.pool,
        place,
        &mail.subject,
        link,
        expires_at,
        &delivery,
    )
    .await
    {
        tracing::error!(error = %e, "cannot note what became of a mail");
    }
    delivery
}

/// The instance's name in mail, in its reader's language: its public address's host.
pub fn instance_name(state: &AppState, locale: Locale) -> String {
    url::Url::parse(&state.public_url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|host| sambung_mail::instance_name(locale, host))
        })
        .unwrap_or_else(|| "SambungChat".into())
}
