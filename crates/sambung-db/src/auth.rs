//! Better Auth's tables: users, credential accounts (Argon2id passwords), sessions (tokens
//! stored only as hashes) and verification records.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::{conflict_on, expect_row, required_text, DomainError, Result};
use crate::ids::{AccountId, SessionId, UserId, VerificationId};
use crate::instance::{InstanceSettings, SignupPolicy};
use crate::secret::{
    hash_password, random_token, token_hash, verify_nothing, verify_password, PasswordMatch,
};

/// Passwords shorter than this are refused (in characters).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Passwords longer than this are refused (in characters), as Better Auth does.
pub const MAX_PASSWORD_LEN: usize = 128;

/// A new password of an acceptable length.
pub fn validate_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("too short: at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("too long: at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The instance role: `user` or `admin` (a comma-separated list in Better Auth's model).
    pub role: String,
    pub banned: bool,
    pub ban_reason: Option<String>,
    pub ban_expires: Option<DateTime<Utc>>,
    /// False while an account waits for an admin (the `approval` sign-up policy).
    pub approved: bool,
    /// The language they chose (`en`, `id`); none: their browser's.
    pub locale: Option<String>,
    /// Whether a password sign-in also needs a code (a confirmed TOTP secret).
    pub two_factor_enabled: bool,
}

/// The instance role that administers it.
pub const ADMIN_ROLE: &str = "admin";

impl User {
    pub fn is_admin(&self) -> bool {
        self.role.split(',').any(|role| role == ADMIN_ROLE)
    }

    /// Banned now: a ban without an end, or one that has not ended yet.
    pub fn is_banned(&self) -> bool {
        self.banned && self.ban_expires.is_none_or(|end| end > Utc::now())
    }
}

/// What sign-up needs.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// An email address in the one form it is stored and compared in, so that look-alikes of an
/// address are the address: NFKC (full-width and compatibility characters folded), lower
/// case, the domain in its ASCII (IDNA) form without a trailing dot. Refused: invisible and
/// control characters, anything but letters, digits and RFC 5322's atom characters in the
/// local part (`<script>@x.io`), and a domain that is not a host name with a dot.
pub fn normalize_email(email: &str) -> Result<String> {
    use unicode_normalization::UnicodeNormalization;
    let refused = || DomainError::invalid("email", "not an email address");
    let email: String = email.trim().nfkc().collect::<String>().to_lowercase();
    if email.len() > 254 {
        return Err(refused());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(refused)?;
    let atom = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_fine = (1..=64).contains(&local.chars().count())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atom));
    if !local_fine {
        return Err(refused());
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty()
        || !domain
            .chars()
            .all(|c| c.is_alphanumeric() || ".-".contains(c))
    {
        return Err(refused());
    }
    let domain = idna::domain_to_ascii_strict(domain).map_err(|_| refused())?;
    let label_fine = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.contains('.') || !domain.split('.').all(label_fine) {
        return Err(refused());
    }
    Ok(format!("{local}@{domain}"))
}

/// Longest picture address accepted, and largest picture given inline as a `data:` URL.
pub const MAX_IMAGE_URL_CHARS: usize = 2048;
pub const MAX_IMAGE_DATA_BYTES: usize = 100 * 1024;

/// A user's picture: an http(s) address, or a small PNG, JPEG, GIF or WebP as a `data:` URL;
/// never `javascript:` or anything a page would run.
pub fn validate_image(image: &str) -> Result<()> {
    let refused = |reason: &str| Err(DomainError::invalid("image", reason.to_owned()));
    if let Some(data) = image.strip_prefix("data:") {
        let fine = ["image/png", "image/jpeg", "image/gif", "image/webp"]
            .iter()
            .any(|kind| data.starts_with(&format!("{kind};base64,")));
        if !fine {
            return refused("a data: picture must be a base64 PNG, JPEG, GIF or WebP");
        }
        if image.len() > MAX_IMAGE_DATA_BYTES {
            return refused("a data: picture must be at most 100 KiB");
        }
        return Ok(());
    }
    if image.chars().count() > MAX_IMAGE_URL_CHARS {
        return refused("at most 2048 characters");
    }
    match url::Url::parse(image) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => refused("an http(s) address or a data: picture"),
    }
}

/// What decides whether sign-up may make an account: the instance's policy and allowed
/// domains, and the invitation the person brings (an instance invitation, used up by the
/// sign-up; or a team invitation for their address, which they accept once signed up).
#[derive(Debug, Clone, Copy)]
pub struct SignupGate<'a> {
    pub policy: SignupPolicy,
    pub settings: &'a InstanceSettings,
    pub invitation: Option<&'a str>,
}

/// The emails of the sample data's accounts (`seed`): an instance holding only them has no
/// people yet.
pub const SAMPLE_EMAILS: [&str; 2] = ["demo@sambung.chat", "teammate@sambung.chat"];

/// Create a user and their credential account (provider `credential`) in one transaction,
/// if `gate` lets them in ([`DomainError::SignupRefused`] otherwise):
/// - the first account of an instance that has no admin and no people yet (the sample data's
///   accounts do not count) is its admin, under any policy but `closed` (decided under a
///   lock, so two first sign-ups cannot both become it);
/// - an invitation lets its holder in under any policy, whatever their domain;
/// - else `open` lets in, `approval` lets in an account that waits for an admin, `invite`
///   and `closed` refuse; the allowed domains apply to both `open` and `approval`.
pub async fn sign_up(pool: &PgPool, new: NewUser<'_>, gate: SignupGate<'_>) -> Result<User> {
    validate_password(new.password)?;
    let hash = hash_password(new.password).await?;
    let mut tx = pool.begin().await?;
    let user = admit(&mut tx, new.name, new.email, false, gate).await?;
    sqlx::query!(
        "INSERT INTO accounts (user_id, account_id, provider_id, password)
         VALUES ($1, $2, 'credential', $3)",
        user.id as UserId,
        user.id.to_string(),
        hash,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Who signed in through an identity provider: its id, their subject there, and what it says
/// of them.
#[derive(Debug, Clone, Copy)]
pub struct ProviderAccount<'a> {
    pub provider_id: &'a str,
    pub account_id: &'a str,
    pub scope: Option<&'a str>,
}

/// Create a user whose way in is an identity provider (no password), as [`sign_up`] would
/// let them in; `email_verified` as the provider says.
pub async fn sign_up_with_provider(
    pool: &PgPool,
    name: &str,
    email: &str,
    email_verified: bool,
    account: ProviderAccount<'_>,
    gate: SignupGate<'_>,
) -> Result<User> {
    let mut tx = pool.begin().await?;
    let mut user = admit(&mut tx, name, email, email_verified, gate).await?;
    insert_provider_account(&mut tx, user.id, account).await?;
    tx.commit().await?;
    user.email_verified = email_verified;
    Ok(user)
}

async fn insert_provider_account(
    tx: &mut sqlx::PgConnection,
    user: UserId,
    account: ProviderAccount<'_>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO accounts (user_id, account_id, provider_id, scope) VALUES ($1, $2, $3, $4)",
        user as UserId,
        account.account_id,
        account.provider_id,
        account.scope,
    )
    .execute(tx)
    .await
    .map_err(|e| {
        conflict_on(
            e,
            "accounts_provider_account_key",
            "this identity is linked to another account already",
        )
    })?;
    Ok(())
}

/// The user an identity provider's account belongs to.
pub async fn provider_account_user(
    pool: &PgPool,
    provider_id: &str,
    account_id: &str,
) -> Result<Option<UserId>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT user_id AS "user_id: UserId" FROM accounts
            WHERE provider_id = $1 AND account_id = $2"#,
        provider_id,
        account_id,
    )
    .fetch_optional(pool)
    .await?)
}

/// Make the rest of the transaction wait at most 5 s for a lock: a change that must wait for
/// every transaction holding rows that name a user (an import writing their chats, for up to
/// 10 minutes), their email changed (a key) or their account deleted, is refused then
/// ([`crate::error::busy_account`]).
pub(crate) async fn wait_briefly_for_user(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL lock_timeout = '5s'")
        .execute(tx)
        .await?;
    Ok(())
}

/// Lock `user`'s row for the rest of the transaction: what a person may hold only so many of
/// (tokens, files) is counted and added one request at a time. Not found when there is none.
/// `NO KEY UPDATE`, not `UPDATE`: the lock must not wait for a transaction that only wrote
/// rows naming the user (their foreign keys hold a key-share lock on it), such as an import
/// that keeps each conversation's files, one at a time, while it writes the chats.
pub(crate) async fn lock_user(tx: &mut sqlx::PgConnection, user: UserId) -> Result<()> {
    sqlx::query!(
        "SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE",
        user as UserId
    )
    .fetch_optional(tx)
    .await?
    .ok_or(DomainError::not_found("user"))?;
    Ok(())
}

/// Link an identity provider's account to `user`. `take_over`: the account's email was not
/// confirmed, and the provider vouches for it: whoever made the account with that address
/// loses its password, sessions and access tokens, and the email counts as confirmed.
pub async fn link_provider_account(
    pool: &PgPool,
    user: UserId,
    account: ProviderAccount<'_>,
    take_over: bool,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    insert_provider_account(&mut tx, user, account).await?;
    if take_over {
        sqlx::query!(
            "DELETE FROM accounts WHERE user_id = $1 AND provider_id = 'credential'",
            user as UserId
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user as UserId)
            .execute(&mut *tx)
            .await?;
        crate::tokens::revoke_all_of(&mut tx, user).await?;
        sqlx::query!(
            "UPDATE users SET email_verified = true WHERE id = $1",
            user as UserId
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the user can sign in with a password (has a credential account).
pub async fn has_password(pool: &PgPool, user: UserId) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM accounts WHERE user_id = $1 AND provider_id = 'credential') AS "has!""#,
        user as UserId,
    )
    .fetch_one(pool)
    .await?)
}

/// Which of a user's accounts: its row id, or its provider.
#[derive(Debug, Clone, Copy)]
pub enum AccountChoice<'a> {
    Id(uuid::Uuid),
    Provider(&'a str),
}

/// Unlink one of `user`'s accounts, never the last way they have to sign in (checked first,
/// as Better Auth does).
pub async fn unlink_account(pool: &PgPool, user: UserId, which: AccountChoice<'_>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let accounts = sqlx::query!(
        r#"SELECT id AS "id: AccountId", provider_id FROM accounts
            WHERE user_id = $1 FOR UPDATE"#,
        user as UserId,
    )
    .fetch_all(&mut *tx)
    .await?;
    if accounts.len() <= 1 {
        return Err(DomainError::Conflict(
            "it is the last way to sign in to this account".into(),
        ));
    }
    let target = accounts
        .iter()
        .find(|a| match which {
            AccountChoice::Id(id) => a.id.0 == id,
            AccountChoice::Provider(provider) => a.provider_id == provider,
        })
        .ok_or_else(|| DomainError::not_found("account"))?;
    sqlx::query!("DELETE FROM accounts WHERE id = $1", target.id as AccountId)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Make a user an instance admin (an identity provider's admin claim said so).
pub async fn make_admin(pool: &PgPool, user: UserId) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET role = 'admin' WHERE id = $1 AND role !~ '(^|,)admin(,|$)'",
        user as UserId
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Let a new user in, in `tx`, if `gate` does (see [`sign_up`]): the user row, and an
/// instance invitation used up.
async fn admit(
    tx: &mut sqlx::PgConnection,
    name: &str,
    email: &str,
    email_verified: bool,
    gate: SignupGate<'_>,
) -> Result<User> {
    let name = required_text("name", name, 200)?;
    let email = normalize_email(email)?;
    let id = UserId::new();
    let first = gate.policy != SignupPolicy::Closed && claim_first_account(&mut *tx).await?;
    let invited = match gate.invitation.filter(|_| !first) {
        Some(token) => {
            // The user row must exist before an instance invitation can name it: checked
            // here, used up below.
            invitation_open(&mut *tx, token, &email).await?
        }
        None => false,
    };
    let (role, approved) = match (first, invited, gate.policy) {
        (true, _, _) => (ADMIN_ROLE, true),
        (false, true, _) => ("user", true),
        (false, false, SignupPolicy::Invite) => return Err(DomainError::SignupRefused(
            "sign-up is by invitation only: ask an admin of this instance for an invitation link"
                .into(),
        )),
        (false, false, SignupPolicy::Closed) => {
            return Err(DomainError::SignupRefused(
                "sign-up is closed: an admin of this instance makes accounts".into(),
            ))
        }
        (false, false, policy) => {
            if !gate.settings.domain_allowed(&email) {
                return Err(DomainError::SignupRefused(format!(
                    "sign-up is open to addresses at {} only",
                    gate.settings.allowed_email_domains.join(", ")
                )));
            }
            ("user", policy == SignupPolicy::Open)
        }
    };
    let user = sqlx::query_as!(
        User,
        r#"INSERT INTO users (id, name, email, role, approved, email_verified) VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id AS "id: UserId", name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires, approved, locale, two_factor_enabled"#,
        id as UserId,
        name,
        email,
        role,
        approved,
        email_verified,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        conflict_on(
            e,
            "users_email_key",
            format!("an account with {email} exists already"),
        )
    })?;
    if invited {
        if let Some(token) = gate.invitation {
            // A team invitation is accepted once signed up; an instance invitation is used up
            // now (a second sign-up with it waits for this one, then finds it used).
            crate::instance::use_invite(&mut *tx, token, user.id, &user.email).await?;
        }
    }
    Ok(user)
}

/// Whether `token` is an open invitation for `email`: an instance invitation (for anyone, or
/// for this address) or a team invitation for this address.
async fn invitation_open(tx: &mut sqlx::PgConnection, token: &str, email: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM instance_invites
                           WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
                             AND (email IS NULL OR email = $3)
                           FOR UPDATE)
               OR EXISTS (SELECT 1 FROM team_invites
                           WHERE token = $2 AND email = $3 AND accepted_at IS NULL
                             AND expires_at > now()) AS "open!""#,
        token_hash(token),
        token,
        email,
    )
    .fetch_one(tx)
    .await?)
}

/// Whether the account being made (in `tx`) is the instance's first: no admin, and no account
/// but the sample data's. Serialised by a transaction-level advisory lock.
pub(crate) async fn claim_first_account(tx: &mut sqlx::PgConnection) -> Result<bool> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FIRST_ACCOUNT_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_scalar!(
        r#"SELECT NOT EXISTS (SELECT 1 FROM users
                               WHERE role ~ '(^|,)admin(,|$)' OR email <> ALL($1)) AS "first!""#,
        &SAMPLE_EMAILS.map(str::to_owned)[..],
    )
    .fetch_one(tx)
    .await?)
}

/// The advisory lock that makes "the first account" one account ("SBNGADMN").
const FIRST_ACCOUNT_LOCK: i64 = 0x5342_4e47_4144_4d4e;

/// The user with this email and password, if they match. An unknown email costs the time of
/// a wrong password. A hash imported from Better Auth (scrypt) is replaced by Argon2id once it
/// has matched.
pub async fn check_password(pool: &PgPool, email: &str, password: &str) -> Result<Option<User>> {
    let Ok(email) = normalize_email(email) else {
        verify_nothing(password).await;
        return Ok(None);
    };
    let found = sqlx::query!(
        r#"SELECT a.id AS "account: AccountId", a.password FROM accounts a JOIN users u ON u.id = a.user_id
          WHERE u.email = $1 AND a.provider_id = 'credential'"#,
        email,
    )
    .fetch_optional(pool)
    .await?;
    let Some((account, Some(hash))) = found.map(|row| (row.account, row.password)) else {
        verify_nothing(password).await;
        return Ok(None);
    };
    match verify_password(password, &hash).await {
        PasswordMatch::No => Ok(None),
        PasswordMatch::Yes => get_user_by_email(pool, &email).await,
        PasswordMatch::YesRehash => {
            set_account_password(pool, account, password).await?;
            get_user_by_email(pool, &email).await
        }
    }
}

async fn set_account_password(pool: &PgPool, account: AccountId, password: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE accounts SET password = $2 WHERE id = $1",
        account as AccountId,
        hash_password(password).await?,
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get_user(pool: &PgPool, id: UserId) -> Result<User> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires, approved, locale, two_factor_enabled
             FROM users WHERE id = $1"#,
        id as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

pub async fn get_user_by_email(pool: &PgPool, email: &str) -> Result<Option<User>> {
    let email = normalize_email(email)?;
    Ok(sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, email, email_verified, image, created_at, updated_at,
                  role, banned, ban_reason, ban_expires, approved, locale, two_factor_enabled
             FROM users WHERE email = $1"#,
        email,
    )
    .fetch_optional(pool)
    .await?)
}

/// Change a user's name and image.
pub async fn update_user(
    pool: &PgPool,
    id: UserId,
    name: &str,
    image: Option<&str>,
) -> Result<User> {
    let name = required_text("name", name, 200)?;
    if let Some(image) = image {
        validate_image(image)?;
    }
    sqlx::query_as!(
        User,
        r#"UPDATE users SET name = $2, image = $3 WHERE id = $1
           RETURNING id AS "id: UserId", name, email, email_verified, image, created_at, updated_at,
                     role, banned, ban_reason, ban_expires, approved, locale, two_factor_enabled"#,
        id as UserId,
        name,
        image,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

/// How a user wants the UI: its theme (`system`, `light`, `dark`) and language (`en`, `id`;
/// none: the browser's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preferences {
    pub theme: String,
    pub locale: Option<String>,
}

/// The themes and languages a user may choose.
pub const THEMES: &[&str] = &["system", "light", "dark"];
pub const LOCALES: &[&str] = &["en", "id"];

pub async fn preferences(pool: &PgPool, user: UserId) -> Result<Preferences> {
    sqlx::query_as!(
        Preferences,
        "SELECT theme, locale FROM users WHERE id = $1",
        user as UserId
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

/// Change a user's preferences: `theme` when given, `locale` when given (`Some(None)`: the
/// browser's again).
pub async fn set_preferences(
    pool: &PgPool,
    user: UserId,
    theme: Option<&str>,
    locale: Option<Option<&str>>,
) -> Result<Preferences> {
    if let Some(theme) = theme.filter(|t| !THEMES.contains(t)) {
        return Err(DomainError::invalid(
            "theme",
            format!("{theme:?} is not one of system, light, dark"),
        ));
    }
    if let Some(locale) = locale.flatten().filter(|l| !LOCALES.contains(l)) {
        return Err(DomainError::invalid(
            "locale",
            format!("{locale:?} is not one of en, id"),
        ));
    }
    sqlx::query_as!(
        Preferences,
        "UPDATE users SET theme = coalesce($2, theme),
                locale = CASE WHEN $3 THEN $4 ELSE locale END
          WHERE id = $1 RETURNING theme, locale",
        user as UserId,
        theme,
        locale.is_some(),
        locale.flatten(),
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))
}

/// Delete a user and, by cascade, everything they own. Teams are their members': the teams
/// the user was alone in go with them, the others stay (without their maker); the only admin
/// of a team with other members is refused until they make someone else an admin.
pub async fn delete_user(pool: &PgPool, id: UserId) -> Result<()> {
    let mut tx = pool.begin().await?;
    delete_user_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// [`delete_user`] in the caller's transaction.
pub(crate) async fn delete_user_in(tx: &mut sqlx::PgConnection, id: UserId) -> Result<()> {
    let stranded = sqlx::query_scalar!(
        r#"SELECT t.name FROM teams t
             JOIN team_members me ON me.team_id = t.id AND me.user_id = $1 AND me.role = 'admin'
            WHERE NOT EXISTS (SELECT 1 FROM team_members o
                               WHERE o.team_id = t.id AND o.user_id <> $1 AND o.role = 'admin')
              AND EXISTS (SELECT 1 FROM team_members o WHERE o.team_id = t.id AND o.user_id <> $1)
            ORDER BY t.name"#,
        id as UserId,
    )
    .fetch_all(&mut *tx)
    .await?;
    if !stranded.is_empty() {
        return Err(DomainError::Conflict(format!(
            "you are the only admin of {}: make another member an admin first, so the team keeps its chats",
            stranded.join(", ")
        )));
    }
    sqlx::query!(
        "DELETE FROM teams t WHERE EXISTS (SELECT 1 FROM team_members me WHERE me.team_id = t.id AND me.user_id = $1)
            AND NOT EXISTS (SELECT 1 FROM team_members o WHERE o.team_id = t.id AND o.user_id <> $1)",
        id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    wait_briefly_for_user(&mut *tx).await?;
    let done = sqlx::query!("DELETE FROM users WHERE id = $1", id as UserId)
        .execute(&mut *tx)
        .await
        .map_err(crate::error::busy_account)?;
    expect_row(done, "user")
}

/// A sign-in method of a user (Better Auth's account); the password hash is never read out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Account {
    pub id: AccountId,
    pub user_id: UserId,
    pub account_id: String,
    pub provider_id: String,
    pub scope: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's accounts (`credential`, and OAuth providers later).
pub async fn list_accounts(pool: &PgPool, user: UserId) -> Result<Vec<Account>> {
    Ok(sqlx::query_as!(
        Account,
        r#"SELECT id AS "id: AccountId", user_id AS "user_id: UserId", account_id, provider_id,
                  scope, created_at, updated_at
             FROM accounts WHERE user_id = $1 ORDER BY provider_id, id"#,
        user as UserId,
    )
    .fetch_all(pool)
    .await?)
}

/// Change a user's password (credential account), checking the current one first: a wrong
/// current password is `Forbidden`.
pub async fn change_password(pool: &PgPool, user: UserId, current: &str, new: &str) -> Result<()> {
    validate_password(new)?;
    let found = sqlx::query!(
        r#"SELECT id AS "id: AccountId", password FROM accounts
            WHERE user_id = $1 AND provider_id = 'credential'"#,
        user as UserId,
    )
    .fetch_optional(pool)
    .await?;
    let Some(found) = found else {
        return Err(DomainError::not_found("credential account"));
    };
    let matched = match &found.password {
        Some(hash) => verify_password(current, hash).await != PasswordMatch::No,
        None => false,
    };
    if !matched {
        return Err(DomainError::forbidden(
            "change the password without the current one",
        ));
    }
    set_account_password(pool, found.id, new).await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The admin acting as the user in this session, when one is.
    pub impersonated_by: Option<UserId>,
}

/// A new session and its token: the token is returned this once and stored only hashed. A
/// banned user gets none ([`DomainError::Banned`]); a ban that has ended is lifted here.
pub async fn create_session(
    pool: &PgPool,
    user: UserId,
    lifetime: Duration,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(Session, String)> {
    open_session(pool, user, lifetime, ip_address, user_agent, None).await
}

/// [`create_session`], for `impersonated_by` when an admin acts as the user.
pub(crate) async fn open_session(
    pool: &PgPool,
    user: UserId,
    lifetime: Duration,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
    impersonated_by: Option<UserId>,
) -> Result<(Session, String)> {
    let ban = sqlx::query!(
        r#"WITH lifted AS (
             UPDATE users SET banned = false, ban_reason = NULL, ban_expires = NULL
              WHERE id = $1 AND banned AND ban_expires <= now())
           SELECT banned AND (ban_expires IS NULL OR ban_expires > now()) AS "banned!", ban_reason
             FROM users WHERE id = $1"#,
        user as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("user"))?;
    if ban.banned {
        return Err(DomainError::Banned {
            reason: ban.ban_reason,
        });
    }
    let token = random_token();
    let session = sqlx::query_as!(
        Session,
        r#"INSERT INTO sessions (id, user_id, token_hash, expires_at, ip_address, user_agent, impersonated_by)
           VALUES ($1, $2, $3, now() + $4, $5, $6, $7)
           RETURNING id AS "id: SessionId", user_id AS "user_id: UserId", expires_at,
                     ip_address, user_agent, created_at, updated_at,
                     impersonated_by AS "impersonated_by: UserId""#,
        SessionId::new() as SessionId,
        user as UserId,
        token_hash(&token),
        lifetime as _,
        ip_address,
        user_agent,
        impersonated_by as Option<UserId>,
    )
    .fetch_one(pool)
    .await?;
    Ok((session, token))
}

/// The session and user a token belongs to, while the session is live (`sambung_session_live`:
/// not expired, the user not banned; one query).
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<(Session, User)>> {
    let row = sqlx::query!(
        r#"SELECT s.id AS "id: SessionId", s.expires_at, s.ip_address, s.user_agent,
                  s.created_at, s.updated_at, s.impersonated_by AS "impersonated_by: UserId",
                  u.id AS "user_id: UserId", u.name, u.email,
                  u.email_verified, u.image, u.created_at AS user_created_at,
                  u.updated_at AS user_updated_at, u.role, u.banned, u.ban_reason, u.ban_expires,
                  u.approved, u.locale, u.two_factor_enabled
             FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND sambung_session_live(s.expires_at, u.banned, u.ban_expires)"#,
        token_hash(token),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let session = Session {
            id: r.id,
            user_id: r.user_id,
            expires_at: r.expires_at,
            ip_address: r.ip_address,
            user_agent: r.user_agent,
            created_at: r.created_at,
            updated_at: r.updated_at,
            impersonated_by: r.impersonated_by,
        };
        let user = User {
            id: r.user_id,
            name: r.name,
            email: r.email,
            email_verified: r.email_verified,
            image: r.image,
            created_at: r.user_created_at,
            updated_at: r.user_updated_at,
            role: r.role,
            banned: r.banned,
            ban_reason: r.ban_reason,
            ban_expires: r.ban_expires,
            approved: r.approved,
            locale: r.locale,
            two_factor_enabled: r.two_factor_enabled,
        };
        (session, user)
    }))
}

/// Give a session a new expiry, `lifetime` from now (a session in use is kept alive).
pub async fn extend_session(
    pool: &PgPool,
    session: SessionId,
    lifetime: Duration,
) -> Result<Session> {
    sqlx::query_as!(
        Session,
        r#"UPDATE sessions SET expires_at = now() + $2 WHERE id = $1 AND expires_at > now()
           RETURNING id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                     user_agent, created_at, updated_at, impersonated_by AS "impersonated_by: UserId""#,
        session as SessionId,
        lifetime as _,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("session"))
}

/// Give a live session a new token, returned this once: the old token stops working at once
/// and the session stays what it was (its person, device, admin acting, end). Updated in
/// place, so that whatever ends the session meanwhile (a sign-out, a revocation, a ban) ends
/// it under its new token too. A session gone (signed out, or expired) is
/// [`DomainError::NotFound`].
pub(crate) async fn new_session_token(
    conn: &mut sqlx::PgConnection,
    session: SessionId,
) -> Result<(Session, String)> {
    let token = random_token();
    let session = sqlx::query_as!(
        Session,
        r#"UPDATE sessions SET token_hash = $2, updated_at = now()
            WHERE id = $1 AND expires_at > now()
           RETURNING id AS "id: SessionId", user_id AS "user_id: UserId", expires_at,
                     ip_address, user_agent, created_at, updated_at,
                     impersonated_by AS "impersonated_by: UserId""#,
        session as SessionId,
        token_hash(&token),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(DomainError::not_found("session"))?;
    Ok((session, token))
}

/// A user's sessions that have not expired, newest first (an admin's impersonation is not
/// the user's to see or end).
pub async fn list_sessions(pool: &PgPool, user: UserId) -> Result<Vec<Session>> {
    Ok(sqlx::query_as!(
        Session,
        r#"SELECT id AS "id: SessionId", user_id AS "user_id: UserId", expires_at, ip_address,
                  user_agent, created_at, updated_at, impersonated_by AS "impersonated_by: UserId"
             FROM sessions WHERE user_id = $1 AND expires_at > now() AND impersonated_by IS NULL
            ORDER BY created_at DESC, id DESC"#,
        user as UserId,
    )
    .fetch_all(pool)
    .await?)
}

/// End one of the user's own sessions.
pub async fn revoke_session(pool: &PgPool, user: UserId, session: SessionId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE id = $1 AND user_id = $2",
        session as SessionId,
        user as UserId,
    )
    .execute(pool)
    .await?;
    expect_row(done, "session")
}

/// End the user's session that `token` opened (sign-out, or revoking by a real token).
pub async fn revoke_session_token(pool: &PgPool, user: UserId, token: &str) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM sessions WHERE token_hash = $1 AND user_id = $2",
        token_hash(token),
        user as UserId,
    )
    .execute(pool)
    .await?;
    expect_row(done, "session")
}

/// End every session of the user but `keep` (all of them when `keep` is `None`); returns how
/// many ended.
pub async fn revoke_other_sessions(
    pool: &PgPool,
    user: UserId,
    keep: Option<SessionId>,
) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
        user as UserId,
        keep as Option<SessionId>,
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Delete every expired session; returns how many.
pub async fn purge_expired_sessions(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM sessions WHERE expires_at <= now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Store a verification value (an email code, a reset token) for `identifier`.
pub async fn create_verification(
    pool: &PgPool,
    identifier: &str,
    value: &str,
    lifetime: Duration,
) -> Result<VerificationId> {
    let identifier = required_text("identifier", identifier, 320)?;
    let id = VerificationId::new();
    sqlx::query!(
        "INSERT INTO verifications (id, identifier, value, expires_at)
         VALUES ($1, $2, $3, now() + $4)",
        id as VerificationId,
        identifier,
        token_hash(value),
        lifetime as _,
    )
    .execute(pool)
    .await?;
    Ok(id)
}

/// Use a verification value once: true when it matched and had not expired (it is deleted).
pub async fn consume_verification(pool: &PgPool, identifier: &str, value: &str) -> Result<bool> {
    let used = sqlx::query!(
        "DELETE FROM verifications WHERE identifier = $1 AND value = $2 AND expires_at > now()",
        identifier.trim(),
        token_hash(value),
    )
    .execute(pool)
    .await?;
    Ok(used.rows_affected() > 0)
}

/// What a one-time link is for: its token is stored hashed in `verifications`, under an
/// identifier naming the purpose and the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Choose a new password (`/reset-password`); an hour.
    ResetPassword,
    /// Prove an email address is one's own (`/verify-email`); a day.
    VerifyEmail,
}

impl LinkPurpose {
    fn prefix(self) -> &'static str {
        match self {
            LinkPurpose::ResetPassword => "reset-password:",
            LinkPurpose::VerifyEmail => "verify-email:",
        }
    }

    /// How long a link lasts.
    pub fn lifetime(self) -> Duration {
        match self {
            LinkPurpose::ResetPassword => Duration::hours(1),
            LinkPurpose::VerifyEmail => Duration::days(1),
        }
    }
}

/// A new one-time token for `user`; the earlier ones of the same purpose stop working.
pub async fn issue_link_token(pool: &PgPool, purpose: LinkPurpose, user: UserId) -> Result<String> {
    let token = random_token();
    let identifier = format!("{}{user}", purpose.prefix());
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "DELETE FROM verifications WHERE identifier = $1",
        identifier
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO verifications (id, identifier, value, expires_at) VALUES ($1, $2, $3, now() + $4)",
        VerificationId::new() as VerificationId,
        identifier,
        token_hash(&token),
        purpose.lifetime() as _,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

fn link_user(identifier: &str, purpose: LinkPurpose) -> Option<UserId> {
    identifier
        .strip_prefix(purpose.prefix())?
        .parse::<uuid::Uuid>()
        .ok()
        .map(UserId)
}

/// The user a one-time token is for, while it is valid (it stays valid).
pub async fn link_token_user(
    pool: &PgPool,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<UserId>> {
    let identifier = sqlx::query_scalar!(
        "SELECT identifier FROM verifications WHERE value = $1 AND expires_at > now()",
        token_hash(token),
    )
    .fetch_optional(pool)
    .await?;
    Ok(identifier.and_then(|i| link_user(&i, purpose)))
}

/// Use a one-time token up in `tx`: the user it was for, or an error naming the token.
async fn use_link_token(
    tx: &mut sqlx::PgConnection,
    purpose: LinkPurpose,
    token: &str,
) -> Result<UserId> {
    let identifier = sqlx::query_scalar!(
        "DELETE FROM verifications WHERE value = $1 AND expires_at > now() AND starts_with(identifier, $2)
         RETURNING identifier",
        token_hash(token),
        purpose.prefix(),
    )
    .fetch_optional(tx)
    .await?;
    identifier
        .and_then(|i| link_user(&i, purpose))
        .ok_or_else(|| {
            DomainError::invalid(
                "token",
                "the link is unknown, used or expired: ask for a new one",
            )
        })
}

/// Set a new password with a reset token (used up), and end every session and access token of
/// the account: who resets a password may fear someone else knows the old one. Returns the
/// user.
pub async fn reset_password(pool: &PgPool, token: &str, new_password: &str) -> Result<User> {
    validate_password(new_password)?;
    let hash = hash_password(new_password).await?;
    let mut tx = pool.begin().await?;
    let user = use_link_token(&mut tx, LinkPurpose::ResetPassword, token).await?;
    sqlx::query!(
        "WITH updated AS (UPDATE accounts SET password = $2
                           WHERE user_id = $1 AND provider_id = 'credential' RETURNING id)
         INSERT INTO accounts (user_id, account_id, provider_id, password)
         SELECT $1, $1::text, 'credential', $2 WHERE NOT EXISTS (SELECT 1 FROM updated)",
        user as UserId,
        hash,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user as UserId)
        .execute(&mut *tx)
        .await?;
    crate::tokens::revoke_all_of(&mut tx, user).await?;
    tx.commit().await?;
    get_user(pool, user).await
}

/// Mark an email verified with its token (used up); returns the user.
pub async fn verify_email(pool: &PgPool, token: &str) -> Result<User> {
    let mut tx = pool.begin().await?;
    let user = use_link_token(&mut tx, LinkPurpose::VerifyEmail, token).await?;
    sqlx::query!(
        "UPDATE users SET email_verified = true WHERE id = $1",
        user as UserId
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get_user(pool, user).await
}

#[cfg(test)]
mod tests {
    use super::{normalize_email, validate_image};

    #[test]
    fn look_alikes_of_an_address_are_the_address() {
        let canonical = normalize_email("dup@x.io").unwrap();
        for alike in [
            "DUP@X.IO",
            " dup@x.io ",
            "dup@x.io.",
            "\u{ff44}\u{ff55}\u{ff50}@x.io", // full-width
            "dup@\u{ff58}.io",               // full-width domain
        ] {
            assert_eq!(normalize_email(alike).unwrap(), canonical, "{alike:?}");
        }
        assert_eq!(
            normalize_email("ana@Bücher.example").unwrap(),
            "ana@xn--bcher-kva.example"
        );
        assert_eq!(
            normalize_email("o'neil+chat@mail.example").unwrap(),
            "o'neil+chat@mail.example"
        );
    }

    #[test]
    fn invisible_characters_and_markup_are_not_addresses() {
        for bad in [
            "dup@x.io\u{200b}",
            "d\u{200b}up@x.io",
            "dup\u{feff}@x.io",
            "dup@x\u{00ad}.io",
            "du\u{202e}p@x.io",
            "dup\u{7}@x.io",
            "<script>@x.io",
            "a b@x.io",
            "\"quoted\"@x.io",
            "a@b@x.io",
            ".dup@x.io",
            "dup.@x.io",
            "d..up@x.io",
            "dup@localhost",
            "dup@-x.io",
            "dup@x..io",
            "dup@",
            "@x.io",
            &format!("{}@x.io", "a".repeat(65)),
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn pictures_are_web_addresses_or_small_inline_images() {
        assert!(validate_image("https://cdn.example/me.png").is_ok());
        assert!(validate_image("data:image/png;base64,iVBORw0KGgo=").is_ok());
        for bad in [
            "javascript:alert(1)".to_owned(),
            "data:text/html;base64,PHNjcmlwdD4=".to_owned(),
            "data:image/svg+xml;base64,PHN2Zz4=".to_owned(),
            "file:///etc/passwd".to_owned(),
            format!("https://x.example/{}", "a".repeat(3000)),
            format!("data:image/png;base64,{}", "A".repeat(1 << 20)),
        ] {
            assert!(
                validate_image(&bad).is_err(),
                "{}",
                &bad[..40.min(bad.len())]
            );
        }
    }
}

/// Whom a statement serves: a person whose session was checked already, or the session a
/// request presented, which the statement checks itself (`sambung_session_user`, once, as a
/// scalar subquery reading it in FROM, where PostgreSQL inlines it), so that such a request
/// makes one round trip where it made two. A session the statement does not accept (gone,
/// expired, its user banned or not approved, due to be renewed) reads as nobody: the
/// statement finds nothing, and the caller asks again the long way ([`authenticate`]), which
/// says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(UserId),
    Session {
        token_hash: String,
        /// The session is renewed the long way once it ends before this (`None`: never).
        renew_if_before: Option<DateTime<Utc>>,
    },
}

impl Caller {
    /// The session of `token`, renewed the long way once it ends before `renew_if_before`.
    pub fn session(token: &str, renew_if_before: Option<DateTime<Utc>>) -> Caller {
        Caller::Session {
            token_hash: token_hash(token),
            renew_if_before,
        }
    }

    /// SQL for the caller's user id, from the parameters `$first` to `$first + 2` that
    /// [`Caller::bind`] gives: the user, else the session's user (NULL when not accepted).
    pub fn sql(first: usize) -> String {
        format!(
            "COALESCE(${first}::uuid, (SELECT u FROM sambung_session_user(${}::text, ${}::timestamptz) u))",
            first + 1,
            first + 2
        )
    }

    /// The common table `me`: one row, `id`, [`Caller::sql`] from `$first`. Materialized, so
    /// the session is looked up once however often the statement reads `me.id` (an inlined
    /// `me` would copy its subquery into every use, and a subquery as an argument stops a SQL
    /// function such as `sambung_chat_reader` from being inlined).
    pub fn me_sql(first: usize) -> String {
        format!("me AS MATERIALIZED (SELECT {} AS id)", Caller::sql(first))
    }

    /// A statement on the common table `me` ([`Caller::me_sql`] from `$1`) and the common
    /// `tables` after it, answering `select`; its own parameters start at `$4`.
    pub fn with_me(tables: &[&str], select: &str) -> String {
        let mut sql = format!("WITH {}", Caller::me_sql(1));
        for table in tables {
            sql.push_str(", ");
            sql.push_str(table);
        }
        sql.push(' ');
        sql.push_str(select);
        sql
    }

    /// The three parameters of [`Caller::sql`].
    pub(crate) fn parameters(&self) -> (Option<UserId>, Option<&str>, Option<DateTime<Utc>>) {
        match self {
            Caller::User(user) => (Some(*user), None, None),
            Caller::Session {
                token_hash,
                renew_if_before,
            } => (None, Some(token_hash), *renew_if_before),
        }
    }

    /// [`Caller::sql`] pushed into a query being built, with its three parameters bound.
    pub(crate) fn push<'q>(&'q self, sql: &mut sqlx::QueryBuilder<'q, sqlx::Postgres>) {
        let (user, session, renew) = self.parameters();
        sql.push("COALESCE(")
            .push_bind(user)
            .push("::uuid, (SELECT u FROM sambung_session_user(")
            .push_bind(session)
            .push("::text, ")
            .push_bind(renew)
            .push("::timestamptz) u))");
    }

    /// Bind the three parameters of [`Caller::sql`] to `query`, in order.
    pub fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        let (user, session, renew) = self.parameters();
        query.bind(user).bind(session).bind(renew)
    }
}

impl Caller {
    /// The caller's user id on its own: `None` for a session a statement would not accept.
    pub async fn user<'e>(&self, executor: impl sqlx::PgExecutor<'e>) -> Result<Option<UserId>> {
        if let Caller::User(user) = self {
            return Ok(Some(*user));
        }
        let (user,): (Option<UserId>,) = self
            .bind(sqlx::query_as(&format!("SELECT {}", Caller::sql(1))))
            .fetch_one(executor)
            .await?;
        Ok(user)
    }
}

impl From<UserId> for Caller {
    fn from(user: UserId) -> Caller {
        Caller::User(user)
    }
}
