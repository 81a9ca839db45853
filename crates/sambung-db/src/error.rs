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
    /// Decryption failed: the wrong `ENCRYPTION_KEY`, or tampered ciphertext.
    #[error(
        "cannot decrypt API keys: the encryption key is wrong or the stored key was tampered with"
    )]
    Decrypt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
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
