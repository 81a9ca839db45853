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

    /// Whether an address is sent this kind at most once a minute: the mail anyone can ask
    /// for with nothing but an address. An invitation is an admin's or a team owner's act.
    pub const fn once_a_minute(self) -> bool {
        matches!(self, MailKind::ResetPassword | MailKind::VerifyEmail)
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

/// A place in the outbox for one more `kind` mail to `recipient`, taken before the mail is
/// made and sent so that two requests at once cannot both send it. `None` when the kind goes
/// at most once a minute to an address and one already went (or is going) within the minute,
/// however many clients ask. The place reads as unsent until [`settle`] says what became of it.
pub async fn reserve(pool: &PgPool, recipient: &str, kind: MailKind) -> Result<Option<MailId>> {
    let mut tx = pool.begin().await?;
    if kind.once_a_minute() {
        // One reservation per address and kind at a time; the lock goes with the transaction.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))",
            kind.as_str(),
            recipient,
        )
        .execute(&mut *tx)
        .await?;
        let recent = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM mail_outbox
                               WHERE recipient = $1 AND kind = $2
                                 AND created_at > now() - interval '1 minute') AS "recent!""#,
            recipient,
            kind.as_str(),
        )
        .fetch_one(&mut *tx)
        .await?;
        if recent {
            return Ok(None);
        }
    }
    let id = MailId::new();
    sqlx::query!(
        "INSERT INTO mail_outbox (id, recipient, kind, subject, status)
         VALUES ($1, $2, $3, '', 'unsent')",
        id as MailId,
        recipient,
        kind.as_str(),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Note what became of the mail in a reserved place: its subject, and the link it carries
/// (valid until `expires_at`) unless it went.
pub async fn settle(
    pool: &PgPool,
    id: MailId,
    subject: &str,
    link: &str,
    expires_at: Option<DateTime<Utc>>,
    delivery: &Delivery,
) -> Result<()> {
    let error = match delivery {
        Delivery::Failed(why) => Some(why.chars().take(500).collect::<String>()),
        _ => None,
    };
    let link = (*delivery != Delivery::Sent).then_some(link);
    sqlx::query!(
        "UPDATE mail_outbox SET subject = $2, link = $3, status = $4, error = $5, expires_at = $6
          WHERE id = $1",
        id as MailId,
        subject,
        link,
        delivery.as_str(),
        error,
        expires_at,
    )
    .execute(pool)
    .await?;
    Ok(())
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
