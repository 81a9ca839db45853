//! The instance's own settings (SPEC section 12): who may sign up, which email domains, whether
//! users may bring their own keys, whether emails must be verified, the quotas, how long the
//! audit log is kept; and the invitations an admin makes under the `invite` policy. Settings
//! are rows of `instance_settings` (one per setting, a JSON value); a setting never written
//! has its default here, so a new instance needs no rows.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::auth::normalize_email;
use crate::error::{DomainError, Result};
use crate::ids::{InstanceInviteId, UserId};
use crate::secret::{random_token, token_hash};

/// Who may make an account by signing up (`SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignupPolicy {
    /// Anyone who can reach the server.
    Open,
    /// Anyone, but the account can do nothing until an admin approves it.
    #[default]
    Approval,
    /// Only with an invitation link an admin made.
    Invite,
    /// Nobody; admins make accounts.
    Closed,
}

impl SignupPolicy {
    pub fn parse(text: &str) -> Option<SignupPolicy> {
        serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_lowercase())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignupPolicy::Open => "open",
            SignupPolicy::Approval => "approval",
            SignupPolicy::Invite => "invite",
            SignupPolicy::Closed => "closed",
        }
    }
}

/// Limits on what replies use: per user and per team per day, replies running at once per
/// user, and caps on one reply. `None`: no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct QuotaDefaults {
    pub user_tokens_per_day: Option<i64>,
    pub user_requests_per_day: Option<i64>,
    pub team_tokens_per_day: Option<i64>,
    pub team_requests_per_day: Option<i64>,
    pub running_generations: Option<i64>,
    /// Output tokens of one reply.
    pub reply_max_output_tokens: Option<i64>,
    /// Seconds one reply may stream.
    pub reply_max_seconds: Option<i64>,
    /// Bytes of one reply's text.
    pub reply_max_bytes: Option<i64>,
}

/// Replies a user may have running at once unless an admin says otherwise.
pub const DEFAULT_RUNNING_GENERATIONS: i64 = 3;

impl Default for QuotaDefaults {
    fn default() -> Self {
        QuotaDefaults {
            user_tokens_per_day: None,
            user_requests_per_day: None,
            team_tokens_per_day: None,
            team_requests_per_day: None,
            running_generations: Some(DEFAULT_RUNNING_GENERATIONS),
            reply_max_output_tokens: None,
            reply_max_seconds: None,
            reply_max_bytes: None,
        }
    }
}

impl QuotaDefaults {
    fn validate(&self) -> Result<()> {
        let all = [
            ("userTokensPerDay", self.user_tokens_per_day),
            ("userRequestsPerDay", self.user_requests_per_day),
            ("teamTokensPerDay", self.team_tokens_per_day),
            ("teamRequestsPerDay", self.team_requests_per_day),
            ("runningGenerations", self.running_generations),
            ("replyMaxOutputTokens", self.reply_max_output_tokens),
            ("replyMaxSeconds", self.reply_max_seconds),
            ("replyMaxBytes", self.reply_max_bytes),
        ];
        for (name, value) in all {
            if value.is_some_and(|v| !(0..=i64::from(i32::MAX) * 1000).contains(&v)) {
                return Err(DomainError::Invalid {
                    field: "quotas",
                    reason: format!("{name} must be 0 or more (or null: no limit)"),
                });
            }
        }
        Ok(())
    }
}

/// What a user may attach to messages: the size of one file, the files of one message, and
/// the storage all their files may take (none: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FileLimits {
    pub max_file_bytes: i64,
    pub max_files_per_message: i64,
    pub user_storage_bytes: Option<i64>,
}

/// The largest file an admin may allow (a provider takes none bigger).
pub const MAX_FILE_BYTES: i64 = 100 << 20;

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_file_bytes: 20 << 20,
            max_files_per_message: 10,
            user_storage_bytes: Some(1 << 30),
        }
    }
}

impl FileLimits {
    fn validate(&self) -> Result<()> {
        if !(1..=MAX_FILE_BYTES).contains(&self.max_file_bytes) {
            return Err(DomainError::invalid(
                "files",
                format!("maxFileBytes: 1 to {MAX_FILE_BYTES}"),
            ));
        }
        if !(1..=100).contains(&self.max_files_per_message) {
            return Err(DomainError::invalid(
                "files",
                "maxFilesPerMessage: 1 to 100",
            ));
        }
        if self.user_storage_bytes.is_some_and(|b| b < 0) {
            return Err(DomainError::invalid(
                "files",
                "userStorageBytes: 0 or more (or null: no limit)",
            ));
        }
        Ok(())
    }
}

/// The instance's settings, each at its default until an admin changes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct InstanceSettings {
    pub signup: SignupPolicy,
    /// Email domains sign-up is limited to (none: any); invitations pass whatever the domain.
    pub allowed_email_domains: Vec<String>,
    /// Whether users may add API keys of their own and use models on them.
    pub personal_keys: bool,
    /// Whether people may make personal access tokens, and the ones they hold work.
    pub access_tokens: bool,
    /// Whether an account must verify its email before it signs in.
    pub email_verification: bool,
    /// Whether accounts that sign in with a password must use a second factor (TOTP): until
    /// they set one up, they can do nothing else.
    pub require_two_factor: bool,
    /// Whether people may sign in with a password (off once an identity provider works:
    /// admins still may, so that a broken provider cannot lock the instance out).
    pub password_sign_in: bool,
    pub quotas: QuotaDefaults,
    /// What may be attached, and how much kept.
    pub files: FileLimits,
    /// Days the audit log keeps an event.
    pub audit_retention_days: i64,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            signup: SignupPolicy::default(),
            allowed_email_domains: Vec::new(),
            personal_keys: true,
            access_tokens: true,
            email_verification: false,
            require_two_factor: false,
            password_sign_in: true,
            quotas: QuotaDefaults::default(),
            files: FileLimits::default(),
            audit_retention_days: 180,
        }
    }
}

impl InstanceSettings {
    fn validate(mut self) -> Result<InstanceSettings> {
        let mut domains = Vec::new();
        for domain in &self.allowed_email_domains {
            // A domain is whatever follows the @ of an address that normalises.
            let address = normalize_email(&format!("x@{}", domain.trim().trim_start_matches('@')))
                .map_err(|_| {
                    DomainError::invalid(
                        "allowedEmailDomains",
                        format!("{domain:?} is not an email domain"),
                    )
                })?;
            let domain = address["x@".len()..].to_owned();
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        if domains.len() > 100 {
            return Err(DomainError::invalid("allowedEmailDomains", "at most 100"));
        }
        self.allowed_email_domains = domains;
        if !(1..=3650).contains(&self.audit_retention_days) {
            return Err(DomainError::invalid("auditRetentionDays", "1 to 3650 days"));
        }
        self.quotas.validate()?;
        self.files.validate()?;
        Ok(self)
    }

    /// Whether sign-up by `email` (normalised) passes the allowed domains.
    pub fn domain_allowed(&self, email: &str) -> bool {
        self.allowed_email_domains.is_empty()
            || email
                .rsplit_once('@')
                .is_some_and(|(_, domain)| self.allowed_email_domains.iter().any(|d| d == domain))
    }
}

/// The instance's settings as stored (defaults where none is).
pub async fn settings(pool: &PgPool) -> Result<InstanceSettings> {
    let stored = sqlx::query_scalar!(
        r#"SELECT coalesce(jsonb_object_agg(key, value), '{}') AS "settings!" FROM instance_settings"#
    )
    .fetch_one(pool)
    .await?;
    Ok(parse_settings(stored))
}

/// Stored settings, read leniently: a setting this version does not know (written by a newer
/// one) or cannot read is left at its default rather than failing every request.
fn parse_settings(stored: serde_json::Value) -> InstanceSettings {
    let mut settings = serde_json::to_value(InstanceSettings::default()).unwrap_or_default();
    if let (Some(into), serde_json::Value::Object(stored)) = (settings.as_object_mut(), stored) {
        for (key, value) in stored {
            if into.contains_key(&key) {
                let mut candidate = into.clone();
                candidate.insert(key.clone(), value.clone());
                if serde_json::from_value::<InstanceSettings>(candidate.into()).is_ok() {
                    into.insert(key, value);
                } else {
                    tracing::warn!(setting = %key, "an instance setting cannot be read; its default applies");
                }
            }
        }
    }
    serde_json::from_value(settings).unwrap_or_default()
}

/// Change settings: `patch` holds the settings to change (camelCase, as the API shows them);
/// the rest stay. Returns the settings now and the names of those that changed.
pub async fn update_settings(
    pool: &PgPool,
    actor: UserId,
    patch: serde_json::Map<String, serde_json::Value>,
) -> Result<(InstanceSettings, Vec<String>)> {
    let current = settings(pool).await?;
    let mut merged = serde_json::to_value(&current)
        .map_err(|e| DomainError::invalid("settings", e.to_string()))?;
    let object = merged
        .as_object_mut()
        .ok_or_else(|| DomainError::invalid("settings", "an object"))?;
    for (key, value) in &patch {
        if !object.contains_key(key) {
            return Err(DomainError::invalid(
                "settings",
                format!("unknown setting {key:?}"),
            ));
        }
        object.insert(key.clone(), value.clone());
    }
    let updated: InstanceSettings = serde_json::from_value(merged)
        .map_err(|e| DomainError::invalid("settings", e.to_string()))?;
    let updated = updated.validate()?;
    let as_stored = serde_json::to_value(&updated)
        .map_err(|e| DomainError::invalid("settings", e.to_string()))?;
    let before = serde_json::to_value(&current)
        .map_err(|e| DomainError::invalid("settings", e.to_string()))?;
    let mut changed = Vec::new();
    let mut tx = pool.begin().await?;
    for key in patch.keys() {
        let value = &as_stored[key.as_str()];
        if before[key.as_str()] == *value {
            continue;
        }
        sqlx::query!(
            "INSERT INTO instance_settings (key, value, updated_by) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by",
            key,
            value,
            actor as UserId,
        )
        .execute(&mut *tx)
        .await?;
        changed.push(key.clone());
    }
    tx.commit().await?;
    Ok((updated, changed))
}

/// An invitation to sign up, as an admin sees it (the token is shown once, when it is made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct InstanceInvite {
    pub id: InstanceInviteId,
    pub email: Option<String>,
    pub created_by: Option<UserId>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// How long an invitation to sign up lasts unless its maker says otherwise.
pub const INVITE_LIFETIME: Duration = Duration::days(7);

/// Make an invitation to sign up: for one address, or anyone with the link. Returns it and its
/// token (shown this once; only its hash is kept).
pub async fn create_invite(
    pool: &PgPool,
    actor: UserId,
    email: Option<&str>,
    lifetime: Duration,
) -> Result<(InstanceInvite, String)> {
    let email = email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(normalize_email)
        .transpose()?;
    if lifetime <= Duration::zero() || lifetime > Duration::days(90) {
        return Err(DomainError::invalid("expiresIn", "up to 90 days"));
    }
    let token = random_token();
    let invite = sqlx::query_as!(
        InstanceInvite,
        r#"INSERT INTO instance_invites (id, token_hash, email, created_by, expires_at)
           VALUES ($1, $2, $3, $4, now() + $5)
           RETURNING id AS "id: InstanceInviteId", email, created_by AS "created_by: UserId",
                     expires_at, used_at, used_by AS "used_by: UserId", created_at"#,
        InstanceInviteId::new() as InstanceInviteId,
        token_hash(&token),
        email,
        actor as UserId,
        lifetime as _,
    )
    .fetch_one(pool)
    .await?;
    Ok((invite, token))
}

/// Invitations not used yet and not expired, newest first.
pub async fn list_invites(pool: &PgPool) -> Result<Vec<InstanceInvite>> {
    Ok(sqlx::query_as!(
        InstanceInvite,
        r#"SELECT id AS "id: InstanceInviteId", email, created_by AS "created_by: UserId",
                  expires_at, used_at, used_by AS "used_by: UserId", created_at
             FROM instance_invites WHERE used_at IS NULL AND expires_at > now()
            ORDER BY created_at DESC, id DESC LIMIT 500"#
    )
    .fetch_all(pool)
    .await?)
}

/// Withdraw an invitation.
pub async fn revoke_invite(pool: &PgPool, invite: InstanceInviteId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM instance_invites WHERE id = $1 AND used_at IS NULL",
        invite as InstanceInviteId
    )
    .execute(pool)
    .await?;
    crate::error::expect_row(done, "invitation")
}

/// Use an invitation for the account `user` (email `email`) being made in `tx`: false when
/// the token is unknown, used, expired, or for another address.
pub(crate) async fn use_invite(
    tx: &mut PgConnection,
    token: &str,
    user: UserId,
    email: &str,
) -> Result<bool> {
    let used = sqlx::query!(
        "UPDATE instance_invites SET used_at = now(), used_by = $2
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
            AND (email IS NULL OR email = $3)",
        token_hash(token),
        user as UserId,
        email,
    )
    .execute(tx)
    .await?;
    Ok(used.rows_affected() > 0)
}

/// Whether `token` is a team invitation for `email` still open (whoever holds one may sign
/// up to join, whatever the policy).
pub async fn team_invite_open(pool: &PgPool, token: &str, email: &str) -> Result<bool> {
    let email = normalize_email(email)?;
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM team_invites
                           WHERE token = $1 AND email = $2 AND accepted_at IS NULL
                             AND expires_at > now()) AS "open!""#,
        token,
        email,
    )
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_unreadable_stored_settings_fall_back_to_defaults() {
        let stored = serde_json::json!({
            "signup": "open",
            "personalKeys": "not a boolean",
            "fromANewerVersion": 1,
        });
        let settings = parse_settings(stored);
        assert_eq!(settings.signup, SignupPolicy::Open);
        assert!(settings.personal_keys);
        assert_eq!(settings.quotas.running_generations, Some(3));
    }

    #[test]
    fn domains_are_normalised_and_checked() {
        let settings = InstanceSettings {
            allowed_email_domains: vec!["@Example.COM".into(), "bücher.example".into()],
            ..InstanceSettings::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            settings.allowed_email_domains,
            ["example.com", "xn--bcher-kva.example"]
        );
        assert!(settings.domain_allowed("ana@example.com"));
        assert!(!settings.domain_allowed("ana@example.com.evil.test"));
        assert!(!settings.domain_allowed("ana@sub.example.com"));
        for bad in ["a b.com", "", "x@y.com", "localhost"] {
            let refused = InstanceSettings {
                allowed_email_domains: vec![bad.into()],
                ..InstanceSettings::default()
            }
            .validate();
            assert!(refused.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policies_read_as_the_environment_writes_them() {
        assert_eq!(SignupPolicy::parse(" Invite "), Some(SignupPolicy::Invite));
        assert_eq!(SignupPolicy::parse("sometimes"), None);
    }
}
