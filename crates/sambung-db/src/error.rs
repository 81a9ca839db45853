//! The data layer's errors, in the domain's terms.

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// It does not exist, or the acting user may not know it does (another user's chat).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The acting user can see it but may not do this.
    #[error("not allowed to {action}")]
    Forbidden { action: &'static str },
    /// It clashes with what exists: a slug taken, an email registered, the last admin.
    #[error("{0}")]
    Conflict(String),
    /// An input is unacceptable; `field` names it.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The change would leave the instance without an admin who can sign in.
    #[error("the instance keeps at least one admin: make someone else an admin before you {action} the last one")]
    LastAdmin { action: &'static str },
    /// Sign-up is not open to this person (the instance's policy, its domains); why.
    #[error("{0}")]
    SignupRefused(String),
    /// The user is banned (a session is refused them).
    #[error("banned{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Banned { reason: Option<String> },
    /// A quota an admin set is used up: which (`limit`, as the settings name it), how much it
    /// allows, and when it allows again (none: when a running reply ends).
    #[error("{}", quota_message(limit, *allowed, resets_at))]
    QuotaExceeded {
        limit: &'static str,
        allowed: i64,
        resets_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The owner's files would take more than the storage an admin allows them.
    #[error("your files would take more than the {allowed} bytes you may keep ({used} in use): delete some chats with files, or ask an admin for more")]
    StorageFull { allowed: i64, used: i64 },
    /// Decryption failed: the wrong `ENCRYPTION_KEY`, or tampered ciphertext.
    #[error(
        "cannot decrypt API keys: the encryption key is wrong or the stored key was tampered with"
    )]
    Decrypt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn quota_message(
    limit: &str,
    allowed: i64,
    resets_at: &Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let counted = |one: &str, many: &str| {
        let noun = if allowed == 1 { one } else { many };
        format!("{allowed} {noun}")
    };
    let what = match limit {
        "userTokensPerDay" => format!("your {} a day", counted("token", "tokens")),
        "userRequestsPerDay" => format!("your {} a day", counted("reply", "replies")),
        "teamTokensPerDay" => format!("this team's {} a day", counted("token", "tokens")),
        "teamRequestsPerDay" => format!("this team's {} a day", counted("reply", "replies")),
        "runningGenerations" => format!("{} at once", counted("reply", "replies")),
        other => format!("the limit {other} ({allowed})"),
    };
    match resets_at {
        Some(at) => format!(
            "quota exceeded: {what} {} used up; it resets at {} UTC",
            if allowed == 1 { "is" } else { "are" },
            at.format("%Y-%m-%d %H:%M")
        ),
        None => format!("quota exceeded: {what}; wait for one of your replies to end"),
    }
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn not_found(entity: &'static str) -> Self {
        DomainError::NotFound { entity }
    }

    pub fn forbidden(action: &'static str) -> Self {
        DomainError::Forbidden { action }
    }
}

impl sambung_config::Hint for DomainError {
    fn hint(&self) -> Option<String> {
        match self {
            DomainError::Decrypt => Some("ENCRYPTION_KEY must be the key the API keys were encrypted with; nothing was changed".into()),
            _ => None,
        }
    }
}

/// A statement under [`crate::auth::wait_briefly_for_user`] that waited in vain: the account
/// is busy.
pub(crate) fn busy_account(error: sqlx::Error) -> DomainError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => DomainError::Conflict(
            "the account is busy (an import of its chats is running): try again when it has ended"
                .into(),
        ),
        _ => DomainError::Database(error),
    }
}

/// Map a unique violation on `constraint` to a conflict with `message`.
pub(crate) fn conflict_on(
    error: sqlx::Error,
    constraint: &str,
    message: impl Into<String>,
) -> DomainError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some(constraint) => {
            DomainError::Conflict(message.into())
        }
        _ => DomainError::Database(error),
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// A text field trimmed, non-empty and at most `max` characters.
pub(crate) fn required_text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(DomainError::invalid(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(value.to_owned())
}

/// A DELETE or UPDATE of one row: none touched means it was not there (or not the actor's).
pub(crate) fn expect_row(done: sqlx::postgres::PgQueryResult, entity: &'static str) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(DomainError::not_found(entity));
    }
    Ok(())
}
