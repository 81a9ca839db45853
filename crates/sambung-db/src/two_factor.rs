//! Two-factor sign-in (Better Auth's two-factor plugin, SPEC section 13): a user's TOTP secret,
//! sealed by the caller, their backup codes as hashes, the pending sign-ins that wait for a
//! code, and the devices a user trusts. The codes themselves (RFC 6238) are the server's; the
//! rules that make each code count once live here, in single statements, so that two requests
//! with one code cannot both pass.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::auth::{new_session_token, Session};
use crate::error::Result;
use crate::ids::{SessionId, UserId, VerificationId};
use crate::secret::{random_token, token_hash};

/// Failures in a row after which the account's codes are refused for [`LOCK_TIME`].
pub const MAX_FAILURES: i32 = 10;
/// How long an account stays locked after [`MAX_FAILURES`].
pub const LOCK_TIME: Duration = Duration::minutes(15);
/// Wrong codes one pending sign-in may be sent before it must be started again.
pub const MAX_CHALLENGE_FAILURES: u32 = 5;
/// How long a password sign-in waits for its code (Better Auth's `two_factor` cookie).
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(10);
/// How long a device is trusted after a code (Better Auth's `trust_device` cookie).
pub const TRUST_LIFETIME: Duration = Duration::days(30);

/// A user's second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactor {
    /// The TOTP secret, sealed by the caller (the user's id as associated data).
    pub secret: Vec<u8>,
    /// Whether a first code confirmed it (before that, it is being set up).
    pub verified: bool,
    /// How many unused backup codes are left.
    pub backup_codes_left: usize,
}

/// The user's second factor, if one is set up or being set up.
pub async fn get(pool: &PgPool, user: UserId) -> Result<Option<TwoFactor>> {
    let row = sqlx::query!(
        "SELECT secret, verified, cardinality(backup_codes) AS \"left!\"
           FROM two_factors WHERE user_id = $1",
        user as UserId,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| TwoFactor {
        secret: r.secret,
        verified: r.verified,
        backup_codes_left: usize::try_from(r.left).unwrap_or_default(),
    }))
}

/// Start (or start again) setting up a second factor: a new sealed secret and backup codes
/// (their hashes), not yet verified. False when a verified one exists (disable it first).
pub async fn begin(
    pool: &PgPool,
    user: UserId,
    sealed_secret: &[u8],
    backup_codes: &[String],
) -> Result<bool> {
    let hashes: Vec<String> = backup_codes.iter().map(|c| token_hash(c)).collect();
    let written = sqlx::query!(
        "INSERT INTO two_factors (user_id, secret, backup_codes) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE
            SET secret = EXCLUDED.secret, backup_codes = EXCLUDED.backup_codes,
                last_used_step = NULL, failed_attempts = 0, locked_until = NULL
          WHERE NOT two_factors.verified",
        user as UserId,
        sealed_secret,
        &hashes,
    )
    .execute(pool)
    .await?;
    Ok(written.rows_affected() > 0)
}

/// What using a code's time step did.
#[derive(Debug)]
pub enum StepUse {
    /// A code for this step or a later one was used already (a code is good once).
    Refused,
    /// Used; when it turned two-factor sign-in on, the session it was done in has a new
    /// token (see [`use_step`]).
    Used {
        new_session: Option<(Session, String)>,
    },
}

/// Count a code for time step `step` as used, unless a code for this step or a later one
/// was used already: that makes the factor verified and the user's two-factor sign-in on,
/// and clears the failures. When it turns sign-in on, `session` (the one it is done in) gets
/// a new token in the same transaction, as Better Auth does, so that neither happens without
/// the other; a session gone meanwhile changes nothing ([`DomainError::NotFound`]).
pub async fn use_step(
    pool: &PgPool,
    user: UserId,
    step: i64,
    session: Option<SessionId>,
) -> Result<StepUse> {
    let mut tx = pool.begin().await?;
    let used = sqlx::query!(
        "UPDATE two_factors
            SET last_used_step = $2, verified = true, failed_attempts = 0, locked_until = NULL
          WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)",
        user as UserId,
        step,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if !used {
        return Ok(StepUse::Refused);
    }
    let turned_on = sqlx::query!(
        "UPDATE users SET two_factor_enabled = true WHERE id = $1 AND NOT two_factor_enabled",
        user as UserId,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    let new_session = match (turned_on, session) {
        (true, Some(session)) => Some(new_session_token(&mut tx, session).await?),
        _ => None,
    };
    tx.commit().await?;
    Ok(StepUse::Used { new_session })
}

/// Use a backup code up: true when it was one of the unused ones (it is gone now).
pub async fn use_backup_code(pool: &PgPool, user: UserId, code: &str) -> Result<bool> {
    let used = sqlx::query!(
        "UPDATE two_factors
            SET backup_codes = array_remove(backup_codes, $2), failed_attempts = 0,
                locked_until = NULL
          WHERE user_id = $1 AND verified AND $2 = ANY (backup_codes)",
        user as UserId,
        token_hash(code.trim()),
    )
    .execute(pool)
    .await?;
    Ok(used.rows_affected() > 0)
}

/// Count an attempt at a code before it is checked (so that attempts sent at once are all
/// counted): `Err(until)` when the account is locked (now, at the attempt after
/// [`MAX_FAILURES`] in a row); a right code clears the count ([`use_step`],
/// [`use_backup_code`]).
pub async fn attempt(
    pool: &PgPool,
    user: UserId,
) -> Result<std::result::Result<(), DateTime<Utc>>> {
    let row = sqlx::query!(
        r#"UPDATE two_factors
              SET failed_attempts = CASE WHEN failed_attempts + 1 > $2 THEN 0 ELSE failed_attempts + 1 END,
                  locked_until = CASE WHEN failed_attempts + 1 > $2 THEN now() + $3 ELSE locked_until END
            WHERE user_id = $1 AND (locked_until IS NULL OR locked_until <= now())
           RETURNING locked_until"#,
        user as UserId,
        MAX_FAILURES,
        LOCK_TIME as _,
    )
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(match row.locked_until.filter(|until| *until > Utc::now()) {
            Some(until) => Err(until),
            None => Ok(()),
        }),
        // Locked already (or no factor: the caller found one a moment ago).
        None => {
            let until = sqlx::query_scalar!(
                "SELECT locked_until FROM two_factors WHERE user_id = $1",
                user as UserId
            )
            .fetch_optional(pool)
            .await?
            .flatten()
            .unwrap_or_else(|| Utc::now() + LOCK_TIME);
            Ok(Err(until))
        }
    }
}

/// New backup codes (their hashes) in place of the old ones; false when two-factor sign-in is
/// not on.
pub async fn replace_backup_codes(
    pool: &PgPool,
    user: UserId,
    backup_codes: &[String],
) -> Result<bool> {
    let hashes: Vec<String> = backup_codes.iter().map(|c| token_hash(c)).collect();
    let replaced = sqlx::query!(
        "UPDATE two_factors SET backup_codes = $2 WHERE user_id = $1 AND verified",
        user as UserId,
        &hashes,
    )
    .execute(pool)
    .await?;
    Ok(replaced.rows_affected() > 0)
}

/// Turn the user's two-factor sign-in off: the secret, backup codes and trusted devices go.
/// `session`, the one it is done in, gets a new token in the same transaction, as Better Auth
/// does; a session gone meanwhile changes nothing ([`DomainError::NotFound`]).
pub async fn disable(
    pool: &PgPool,
    user: UserId,
    session: Option<SessionId>,
) -> Result<Option<(Session, String)>> {
    let mut tx = pool.begin().await?;
    sqlx::query!("DELETE FROM two_factors WHERE user_id = $1", user as UserId)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE users SET two_factor_enabled = false WHERE id = $1",
        user as UserId
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM verifications WHERE identifier = $1",
        trust_identifier(user),
    )
    .execute(&mut *tx)
    .await?;
    let new_session = match session {
        Some(session) => Some(new_session_token(&mut tx, session).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(new_session)
}

const CHALLENGE: &str = "two-factor:";

/// A password sign-in that waits for its code: the token its cookie carries.
pub async fn start_challenge(pool: &PgPool, user: UserId) -> Result<String> {
    let token = random_token();
    sqlx::query!(
        "INSERT INTO verifications (id, identifier, value, expires_at) VALUES ($1, $2, $3, now() + $4)",
        VerificationId::new() as VerificationId,
        format!("{CHALLENGE}{user}:0"),
        token_hash(&token),
        CHALLENGE_LIFETIME as _,
    )
    .execute(pool)
    .await?;
    Ok(token)
}

/// The user a pending sign-in is for, while it lasts.
pub async fn challenge_user(pool: &PgPool, token: &str) -> Result<Option<UserId>> {
    let identifier = sqlx::query_scalar!(
        "SELECT identifier FROM verifications
          WHERE value = $1 AND expires_at > now() AND starts_with(identifier, $2)",
        token_hash(token),
        CHALLENGE,
    )
    .fetch_optional(pool)
    .await?;
    Ok(identifier
        .and_then(|i| parse_challenge(&i))
        .map(|(user, _)| user))
}

fn parse_challenge(identifier: &str) -> Option<(UserId, u32)> {
    let (user, failures) = identifier.strip_prefix(CHALLENGE)?.split_once(':')?;
    Some((UserId(user.parse().ok()?), failures.parse().ok()?))
}

/// End a pending sign-in (its code came): true when it was still there to end, so that two
/// requests with one challenge cannot both open a session.
pub async fn end_challenge(pool: &PgPool, token: &str) -> Result<bool> {
    let ended = sqlx::query!(
        "DELETE FROM verifications WHERE value = $1 AND starts_with(identifier, $2)",
        token_hash(token),
        CHALLENGE,
    )
    .execute(pool)
    .await?;
    Ok(ended.rows_affected() > 0)
}

/// Count an attempt at a code against a pending sign-in, before it is checked: whether a code
/// may be tried (`false`: it has had [`MAX_CHALLENGE_FAILURES`] codes, or is gone).
pub async fn challenge_attempt(pool: &PgPool, token: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let identifier = sqlx::query_scalar!(
        "SELECT identifier FROM verifications
          WHERE value = $1 AND starts_with(identifier, $2) AND expires_at > now() FOR UPDATE",
        token_hash(token),
        CHALLENGE,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user, tried)) = identifier.and_then(|i| parse_challenge(&i)) else {
        return Ok(false);
    };
    if tried >= MAX_CHALLENGE_FAILURES {
        return Ok(false);
    }
    let tried = tried + 1;
    sqlx::query!(
        "UPDATE verifications SET identifier = $2 WHERE value = $1",
        token_hash(token),
        format!("{CHALLENGE}{user}:{tried}"),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

fn trust_identifier(user: UserId) -> String {
    format!("trust-device:{user}")
}

/// Trust this device for [`TRUST_LIFETIME`]: the token its cookie carries.
pub async fn trust_device(pool: &PgPool, user: UserId) -> Result<String> {
    let token = random_token();
    sqlx::query!(
        "INSERT INTO verifications (id, identifier, value, expires_at) VALUES ($1, $2, $3, now() + $4)",
        VerificationId::new() as VerificationId,
        trust_identifier(user),
        token_hash(&token),
        TRUST_LIFETIME as _,
    )
    .execute(pool)
    .await?;
    Ok(token)
}

/// Whether `token` is a device `user` trusts; it is used up either way (a trusted device is
/// given a new token at each sign-in, so a copied cookie works once at most).
pub async fn take_trusted_device(pool: &PgPool, user: UserId, token: &str) -> Result<bool> {
    let taken = sqlx::query!(
        "DELETE FROM verifications WHERE identifier = $1 AND value = $2 AND expires_at > now()",
        trust_identifier(user),
        token_hash(token),
    )
    .execute(pool)
    .await?;
    Ok(taken.rows_affected() > 0)
}
