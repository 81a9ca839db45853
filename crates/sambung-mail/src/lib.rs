//! The mail SambungChat sends (SPEC section 12): password resets, email verifications and
//! invitations, as plain-text messages in the recipient's language, delivered over SMTP (`SMTP_URL`, `MAIL_FROM`) by
//! `lettre`. Without a mail server nothing is sent: the caller keeps the link for an admin to
//! pass on. Why a crate of its own: the server's handlers say what to send; how a message is
//! written and delivered (and the SMTP dependency) lives here.

use std::fmt::Display;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use sambung_i18n::text;
pub use sambung_i18n::Locale;

/// Why a mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP_URL is not a mail server address (smtp://, smtps://): {0}")]
    Url(String),
    #[error("MAIL_FROM is not an address: {0}")]
    From(String),
    #[error("the recipient is not an address: {0}")]
    To(String),
    #[error("cannot write the mail: {0}")]
    Build(String),
    #[error("the mail server did not take the mail: {0}")]
    Send(String),
}

/// A message to send: one recipient, a subject, a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// How long one delivery may take (connecting, talking to the server).
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where mail goes: an SMTP server, or nowhere (no `SMTP_URL`).
#[derive(Clone)]
pub struct Mailer {
    transport: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold the server's password: never printed.
        f.debug_struct("Mailer")
            .field("smtp", &self.transport.is_some())
            .finish()
    }
}

impl Mailer {
    /// No mail server: nothing is sent.
    pub fn none() -> Mailer {
        Mailer { transport: None }
    }

    /// A mail server at `smtp_url` (`smtp://user:password@host:587` with STARTTLS when the
    /// server offers it, `?tls=required` to insist, `smtps://host:465` for TLS from the start),
    /// sending as `from` (`SambungChat <chat@example.org>`).
    pub fn smtp(smtp_url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailError::Url(format!("{e} ({})", sambung_config::redact_url(smtp_url))))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        Ok(Mailer {
            transport: Some((transport, from)),
        })
    }

    /// Whether a mail server is set up.
    pub fn is_configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Send `mail`; `Ok(false)` when no mail server is set up (nothing was sent).
    pub async fn send(&self, mail: &Mail) -> Result<bool, MailError> {
        let Some((transport, from)) = &self.transport else {
            return Ok(false);
        };
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::To(e.to_string()))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        transport
            .send(message)
            .await
            .map_err(|e| MailError::Send(e.to_string()))?;
        Ok(true)
    }
}

/// The mail that carries a password reset link, in the recipient's language.
pub fn reset_password(
    locale: Locale,
    to: &str,
    instance: &str,
    link: &str,
    valid_minutes: i64,
) -> Mail {
    let args: [(&str, &dyn Display); 3] = [
        ("instance", &instance),
        ("link", &link),
        ("minutes", &valid_minutes),
    ];
    Mail {
        to: to.to_owned(),
        subject: text(locale, "mail.reset.subject", &args),
        body: text(locale, "mail.reset.body", &args),
    }
}

/// The mail that asks to confirm an address, in the recipient's language.
pub fn verify_email(locale: Locale, to: &str, instance: &str, link: &str) -> Mail {
    let args: [(&str, &dyn Display); 2] = [("instance", &instance), ("link", &link)];
    Mail {
        to: to.to_owned(),
        subject: text(locale, "mail.verify.subject", &args),
        body: text(locale, "mail.verify.body", &args),
    }
}

/// The mail that invites someone to `what` (the instance, or a team on it: see
/// [`team_invitation`]), in the language of whoever it is for.
pub fn invitation(
    locale: Locale,
    to: &str,
    instance: &str,
    inviter: &str,
    what: &str,
    link: &str,
) -> Mail {
    let args: [(&str, &dyn Display); 4] = [
        ("instance", &instance),
        ("inviter", &inviter),
        ("what", &what),
        ("link", &link),
    ];
    Mail {
        to: to.to_owned(),
        subject: text(locale, "mail.invite.subject", &args),
        body: text(locale, "mail.invite.body", &args),
    }
}

/// What a team invitation invites to: "the team Research".
pub fn team_invitation(locale: Locale, team: &str) -> String {
    text(locale, "mail.invite.team", &[("team", &team)])
}

/// The instance as mail names it: "SambungChat at chat.example.org".
pub fn instance_name(locale: Locale, host: &str) -> String {
    text(locale, "mail.instance", &[("host", &host)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_server_address_is_refused_without_its_password() {
        let error = Mailer::smtp("smtp://user:hunter2@", "chat@example.org").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(matches!(
            Mailer::smtp("smtp://localhost:2525", "not an address"),
            Err(MailError::From(_))
        ));
    }

    #[test]
    fn mail_names_its_link_in_the_recipients_language() {
        let mail = reset_password(
            Locale::En,
            "ana@example.org",
            "SambungChat",
            "https://x/r/T",
            60,
        );
        assert!(mail.body.contains("https://x/r/T"));
        assert!(mail.body.contains("60 minutes"));
        let mail = reset_password(
            Locale::Id,
            "ana@example.org",
            "SambungChat",
            "https://x/r/T",
            60,
        );
        assert!(mail.body.contains("https://x/r/T"));
        assert!(mail.body.contains("60 menit"), "{}", mail.body);
        assert_eq!(mail.subject, "Atur ulang kata sandi Anda untuk SambungChat");
        let mail = invitation(
            Locale::Id,
            "budi@example.org",
            &instance_name(Locale::Id, "chat.example.org"),
            "Ana",
            &team_invitation(Locale::Id, "Riset"),
            "https://x/i/T",
        );
        assert_eq!(mail.subject, "Ana mengundang Anda ke tim Riset");
        assert!(
            mail.body.contains("di SambungChat di chat.example.org"),
            "{}",
            mail.body
        );
    }
}
