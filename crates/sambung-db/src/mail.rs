//! The mail the instance sends (`mail_outbox`): what went to whom and whether it went. When no
//! mail server is set up, the link the mail would have carried is kept (until it expires) so
//! an admin can pass it on; a mail that went keeps no link.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::Result;
use crate::ids::MailId;

/// Why a mail is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailKind {
    ResetPassword,
    VerifyEmail,
    TeamInvite,
    InstanceInvite,
}

impl MailKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            MailKind::ResetPassword => "reset-password",
            MailKind::VerifyEmail => "verify-email",
            MailKind::TeamInvite => "team-invite",
            MailKind::InstanceInvite => "instance-invite",
        }
    }
}

/// What became of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The mail server took it.
    Sent,
    /// The mail server refused it or could not be reached (why).
    Failed(String),
    /// No mail server is set up.
    Unsent,
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed(_) => "failed",
            Delivery::Unsent => "unsent",
        }
    }
}

/// A mail as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: MailId,
    pub recipient: String,
    pub kind: String,
    pub subject: String,
    /// The link to pass on: kept for mail that did not go, while it is valid.
    pub link: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Note a mail and what became of it.
pub async fn record(
    pool: &PgPool,
    recipient: &str,
    kind: MailKind,
    subject: &str,
    link: &str,
    expires_at: Option<DateTime<Utc>>,
    delivery: &Delivery,
) -> Result<()> {
    let status = delivery.as_str();
    let error = match delivery {
        Delivery::Failed(why) => Some(why.chars().take(500).collect::<String>()),
        _ => None,
    };
    let link = (*delivery != Delivery::Sent).then_some(link);
    sqlx::query!(
        "INSERT INTO mail_outbox (id, recipient, kind, subject, link, status, error, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        MailId::new() as MailId,
        recipient,
        kind.as_str(),
        subject,
        link,
        status,
        error,
        expires_at,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a mail of `kind` went (or was kept) for `recipient` within the last `seconds`: one
/// address is sent one such mail a minute at most, however many clients ask.
pub async fn recently_sent(
    pool: &PgPool,
    recipient: &str,
    kind: MailKind,
    seconds: i32,
) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM mail_outbox
                           WHERE recipient = $1 AND kind = $2
                             AND created_at > now() - make_interval(secs => $3)) AS "sent!""#,
        recipient,
        kind.as_str(),
        f64::from(seconds),
    )
    .fetch_one(pool)
    .await?)
}

/// The latest mail, newest first; links only while they are valid.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<OutboxMail>> {
    Ok(sqlx::query_as!(
        OutboxMail,
        r#"SELECT id AS "id: MailId", recipient, kind, subject,
                  CASE WHEN expires_at IS NULL OR expires_at > now() THEN link END AS link,
                  status, error, expires_at, created_at
             FROM mail_outbox ORDER BY created_at DESC, id DESC LIMIT $1"#,
        limit.clamp(1, 500),
    )
    .fetch_all(pool)
    .await?)
}

/// Forget mail older than 30 days, and links that expired; how many mails went.
pub async fn purge(pool: &PgPool) -> Result<u64> {
    sqlx::query!(
        "UPDATE mail_outbox SET link = NULL WHERE link IS NOT NULL AND expires_at <= now()"
    )
    .execute(pool)
    .await?;
    Ok(
        sqlx::query!("DELETE FROM mail_outbox WHERE created_at < now() - interval '30 days'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
