//! An upstream SambungChat database (the original TypeScript platform: its Drizzle schema as
//! `drizzle-kit push` builds it, Better Auth's singular tables, text ids) read into ours in one
//! transaction. Users keep their Better Auth scrypt hashes (they sign in with their old
//! passwords, rehashed then); API keys are decrypted with upstream's scheme and sealed again
//! with ours. What each upstream row became is kept in `imported_rows` (source `upstream`), so a
//! second run adds only what is new. A database stopped earlier in upstream's history lacks
//! tables and columns: each is probed first, and a missing one is data absent, not an error.
//! The contract, read at upstream's source, is `docs/upstream-contract.md`.

use std::collections::HashMap;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::DomainError;
use crate::ids::{ApiKeyId, ChatId, FolderId, ModelId, PromptId, UserId};
use crate::imports::{clean_text, remember};
use crate::secret::Cipher;

/// The source name of upstream rows in `imported_rows`.
const SOURCE: &str = "upstream";

/// Upstream's fixed scrypt salt for its API-key encryption key.
const KEY_SALT: &[u8] = b"sambung-chat-api-key-encryption-salt-v1";

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("this database is not an upstream SambungChat database: it has no {0} table")]
    NotUpstream(&'static str),
    #[error("the target already holds {0} accounts not imported from upstream: pass --merge to add upstream's data beside them (accounts with the same email become one)")]
    TargetHasData(i64),
    #[error("--encryption-key is not upstream's ENCRYPTION_KEY: {0}")]
    BadKey(&'static str),
    #[error("reading the upstream database failed: {0}")]
    Read(sqlx::Error),
    #[error(transparent)]
    Write(#[from] DomainError),
}

impl From<sqlx::Error> for UpstreamError {
    fn from(e: sqlx::Error) -> Self {
        UpstreamError::Write(e.into())
    }
}

type Result<T> = std::result::Result<T, UpstreamError>;

/// How to import.
pub struct Options<'a> {
    /// Upstream's `ENCRYPTION_KEY` (base64 of 32 bytes): without it, API keys are left out.
    pub upstream_key: Option<&'a str>,
    /// Ours, to seal the keys again: without it, API keys are left out.
    pub cipher: Option<&'a Cipher>,
    /// Add upstream's data beside accounts already here (the same email: one account).
    pub merge: bool,
    /// Do everything, report it, keep nothing.
    pub dry_run: bool,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub users: usize,
    /// Upstream accounts whose email was already here (with `--merge`): their data joined it.
    pub users_merged: usize,
    pub accounts: usize,
    pub folders: usize,
    pub chats: usize,
    pub messages: usize,
    pub prompts: usize,
    pub prompt_versions: usize,
    pub api_keys: usize,
    pub models: usize,
    /// Rows imported by an earlier run, not added again.
    pub already_imported: usize,
    /// What was left out, with the reason (one line each, counted per reason).
    pub left_out: Vec<(String, usize)>,
}

impl Report {
    fn leave_out(&mut self, reason: &str) {
        match self.left_out.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => self.left_out.push((reason.to_owned(), 1)),
        }
    }
}

/// Which tables and columns (with their types) the upstream database has.
struct Probe(HashMap<String, HashMap<String, String>>);

impl Probe {
    async fn of(from: &PgPool) -> Result<Probe> {
        let rows = sqlx::query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
              WHERE table_schema = current_schema()",
        )
        .fetch_all(from)
        .await
        .map_err(UpstreamError::Read)?;
        let mut tables: HashMap<String, HashMap<String, String>> = HashMap::new();
        for row in rows {
            tables
                .entry(row.get(0))
                .or_default()
                .insert(row.get(1), row.get(2));
        }
        Ok(Probe(tables))
    }

    fn has(&self, table: &str) -> bool {
        self.0.contains_key(table)
    }

    fn has_column(&self, table: &str, column: &str) -> bool {
        self.0.get(table).is_some_and(|t| t.contains_key(column))
    }

    /// A column as text (ids, JSON of either type), or NULL where the column is missing.
    fn text(&self, table: &str, column: &str) -> String {
        self.text_of("", table, column)
    }

    /// [`Probe::text`] of the table named `alias` in the statement (`alias.` before the column).
    fn text_of(&self, alias: &str, table: &str, column: &str) -> String {
        match self.0.get(table).and_then(|t| t.get(column)) {
            Some(_) => format!("{alias}\"{column}\"::text"),
            None => "NULL::text".to_owned(),
        }
    }

    fn boolean(&self, table: &str, column: &str, otherwise: bool) -> String {
        match self.0.get(table).and_then(|t| t.get(column)) {
            Some(_) => format!("coalesce(\"{column}\", {otherwise})"),
            None => otherwise.to_string(),
        }
    }

    /// A time as timestamptz: Drizzle's `timestamp` columns hold UTC.
    fn time(&self, table: &str, column: &str) -> String {
        self.time_of("", table, column)
    }

    /// [`Probe::time`] of the table named `alias` in the statement.
    fn time_of(&self, alias: &str, table: &str, column: &str) -> String {
        match self
            .0
            .get(table)
            .and_then(|t| t.get(column))
            .map(String::as_str)
        {
            Some("timestamp without time zone") => {
                format!("({alias}\"{column}\" AT TIME ZONE 'UTC')")
            }
            Some(_) => format!("{alias}\"{column}\"::timestamptz"),
            None => "NULL::timestamptz".to_owned(),
        }
    }
}

/// Import the upstream database `from` into ours (`to`), in one transaction.
pub async fn import(from: &PgPool, to: &PgPool, options: &Options<'_>) -> Result<Report> {
    let probe = Probe::of(from).await?;
    for table in ["user", "account", "chats", "messages"] {
        if !probe.has(table) {
            return Err(UpstreamError::NotUpstream(table));
        }
    }
    let upstream_cipher = options.upstream_key.map(upstream_cipher).transpose()?;
    let mut tx = to.begin().await?;
    crate::imports::take_turn(&mut tx, UserId(uuid::Uuid::nil())).await?;
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users u WHERE NOT EXISTS (
           SELECT 1 FROM imported_rows r WHERE r.user_id = u.id AND r.source = $1 AND r.kind = 'user')",
    )
    .bind(SOURCE)
    .fetch_one(&mut *tx)
    .await?;
    if others > 0 && !options.merge {
        return Err(UpstreamError::TargetHasData(others));
    }
    let mut report = Report::default();
    let keys = Keys {
        upstream: upstream_cipher.as_ref(),
        ours: options.cipher,
    };
    let users = sqlx::query(&format!(
        "SELECT id::text, {name}, {email}, {verified}, {image}, {created}, {updated} FROM \"user\" ORDER BY 6, 1",
        name = probe.text("user", "name"),
        email = probe.text("user", "email"),
        verified = probe.boolean("user", "email_verified", false),
        image = probe.text("user", "image"),
        created = probe.time("user", "created_at"),
        updated = probe.time("user", "updated_at"),
    ))
    .fetch_all(from)
    .await
    .map_err(UpstreamError::Read)?;
    for row in users {
        let upstream_id: String = row.get(0);
        let Some((owner, merged)) = user(&mut tx, &row, options.merge, &mut report).await? else {
            continue;
        };
        let mut one = One {
            from,
            tx: &mut tx,
            probe: &probe,
            upstream_id: &upstream_id,
            owner,
            report: &mut report,
        };
        // An account that was here keeps its own ways to sign in: upstream may not have
        // checked that its person owns the email (that would hand the account over).
        if merged {
            report_merged_sign_ins(&mut one).await?;
        } else {
            one.accounts().await?;
        }
        let folders = one.folders().await?;
        let api_keys = one.api_keys(&keys).await?;
        let models = one.models(&api_keys).await?;
        one.prompts().await?;
        one.chats(&folders, &models).await?;
    }
    if options.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// The key upstream sealed its API keys with: scrypt of its `ENCRYPTION_KEY`'s 32 bytes
/// (decoded as leniently as Node's base64 does) under a fixed salt.
fn upstream_cipher(key: &str) -> Result<Aes256Gcm> {
    let cleaned: String = key
        .chars()
        .filter_map(|c| match c {
            '-' => Some('+'),
            '_' => Some('/'),
            c if c.is_ascii_alphanumeric() || c == '+' || c == '/' => Some(c),
            _ => None,
        })
        .collect();
    let material = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.trim_end_matches('='))
        .map_err(|_| UpstreamError::BadKey("not base64"))?;
    if material.len() != 32 {
        return Err(UpstreamError::BadKey("it must be base64 of 32 bytes"));
    }
    let params = scrypt::Params::new(14, 8, 1, 32).map_err(|_| UpstreamError::BadKey("scrypt"))?;
    let mut derived = [0u8; 32];
    scrypt::scrypt(&material, KEY_SALT, &params, &mut derived)
        .map_err(|_| UpstreamError::BadKey("scrypt"))?;
    Aes256Gcm::new_from_slice(&derived).map_err(|_| UpstreamError::BadKey("key length"))
}

/// An upstream `api_keys.encrypted_key` opened: base64 of IV (12) ‖ tag (16) ‖ ciphertext.
fn open_upstream_key(cipher: &Aes256Gcm, sealed: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed.trim())
        .ok()?;
    if bytes.len() <= 28 {
        return None;
    }
    let (iv, rest) = bytes.split_at(12);
    let (tag, ciphertext) = rest.split_at(16);
    // aes-gcm wants the tag after the ciphertext.
    let mut joined = ciphertext.to_vec();
    joined.extend_from_slice(tag);
    let plain = cipher
        .decrypt(Nonce::from_slice(iv), joined.as_slice())
        .ok()?;
    String::from_utf8(plain).ok()
}

/// A merged account's upstream sign-in methods, said to be left out.
async fn report_merged_sign_ins(one: &mut One<'_>) -> Result<()> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM account WHERE user_id::text = $1")
        .bind(one.upstream_id)
        .fetch_one(one.from)
        .await
        .map_err(UpstreamError::Read)?;
    for _ in 0..count {
        one.report
            .leave_out("a sign-in method of an account merged with one here (it keeps its own)");
    }
    Ok(())
}

struct Keys<'a> {
    upstream: Option<&'a Aes256Gcm>,
    ours: Option<&'a Cipher>,
}

/// The user an upstream user becomes: imported before, found by email (`--merge`), or new;
/// and whether it is an account that was here before (merged).
async fn user(
    tx: &mut PgConnection,
    row: &sqlx::postgres::PgRow,
    merge: bool,
    report: &mut Report,
) -> Result<Option<(UserId, bool)>> {
    let upstream_id: String = row.get(0);
    let email: Option<String> = row.get(2);
    let email = email.unwrap_or_default().trim().to_lowercase();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        report.leave_out("a user without a valid email");
        return Ok(None);
    }
    let here: Option<(UserId, bool, bool)> = sqlx::query_as(
        "SELECT u.id,
                EXISTS (SELECT 1 FROM imported_rows r WHERE r.user_id = u.id AND r.source = $2
                           AND r.kind = 'user' AND r.source_id = $3),
                EXISTS (SELECT 1 FROM imported_rows r WHERE r.user_id = u.id AND r.source = $2
                           AND r.kind = 'merged_user' AND r.source_id = $3)
           FROM users u WHERE u.email = $1",
    )
    .bind(&email)
    .bind(SOURCE)
    .bind(&upstream_id)
    .fetch_optional(&mut *tx)
    .await?;
    match here {
        Some((id, true, merged)) => {
            report.already_imported += 1;
            return Ok(Some((id, merged)));
        }
        Some((id, false, _)) if merge => {
            report.users_merged += 1;
            remember(tx, id, SOURCE, "user", &upstream_id, id.0).await?;
            remember(tx, id, SOURCE, "merged_user", &upstream_id, id.0).await?;
            return Ok(Some((id, true)));
        }
        Some(_) => {
            report.leave_out("a user whose email is already here (without --merge)");
            return Ok(None);
        }
        None => {}
    }
    let name: Option<String> = row.get(1);
    let name = clean_text(name.as_deref().unwrap_or_default().trim(), 1000);
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or("user").to_owned()
    } else {
        name
    };
    let created: Option<DateTime<Utc>> = row.get(5);
    let updated: Option<DateTime<Utc>> = row.get(6);
    let image: Option<String> = row.get(4);
    let id = UserId::new();
    sqlx::query(
        "INSERT INTO users (id, name, email, email_verified, image, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), coalesce($7, $6, now()))",
    )
    .bind(id)
    .bind(name.chars().take(200).collect::<String>())
    .bind(&email)
    .bind(row.get::<bool, _>(3))
    .bind(picture(image, report))
    .bind(created)
    .bind(updated)
    .execute(&mut *tx)
    .await?;
    remember(tx, id, SOURCE, "user", &upstream_id, id.0).await?;
    report.users += 1;
    Ok(Some((id, false)))
}

/// One upstream user's rows, written for `owner`.
struct One<'a> {
    from: &'a PgPool,
    tx: &'a mut PgConnection,
    probe: &'a Probe,
    upstream_id: &'a str,
    owner: UserId,
    report: &'a mut Report,
}

impl One<'_> {
    async fn read(&self, sql: String) -> Result<Vec<sqlx::postgres::PgRow>> {
        sqlx::query(&sql)
            .bind(self.upstream_id)
            .fetch_all(self.from)
            .await
            .map_err(UpstreamError::Read)
    }

    /// What an upstream row of `kind` became in an earlier run (counted as imported before):
    /// `Some(None)` when it was deleted here since (it stays deleted, and nothing refers to
    /// it); `None` when no run imported it.
    async fn imported(&mut self, kind: &str, id: &str) -> Result<Option<Option<uuid::Uuid>>> {
        let table = match kind {
            "account" => "accounts",
            "folder" => "folders",
            "api_key" => "api_keys",
            "model" => "models",
            "prompt" => "prompts",
            "prompt_version" => "prompt_versions",
            _ => "chats",
        };
        let found: Option<(uuid::Uuid, bool)> = sqlx::query_as(&format!(
            "SELECT r.target_id, EXISTS (SELECT 1 FROM {table} t WHERE t.id = r.target_id)
               FROM imported_rows r WHERE r.user_id = $1 AND r.source = $2 AND r.kind = $3 AND r.source_id = $4"
        ))
        .bind(self.owner)
        .bind(SOURCE)
        .bind(kind)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        if found.is_some() {
            self.report.already_imported += 1;
        }
        Ok(found.map(|(target, there)| there.then_some(target)))
    }

    async fn remember(&mut self, kind: &str, id: &str, target: uuid::Uuid) -> Result<()> {
        Ok(remember(self.tx, self.owner, SOURCE, kind, id, target).await?)
    }

    /// Password accounts (their scrypt hash as it is) and identity-provider links.
    async fn accounts(&mut self) -> Result<()> {
        let p = self.probe;
        let rows = self
            .read(format!(
                "SELECT id::text, {account}, {provider}, {password} FROM account WHERE user_id::text = $1 ORDER BY 1",
                account = p.text("account", "account_id"),
                provider = p.text("account", "provider_id"),
                password = p.text("account", "password"),
            ))
            .await?;
        for row in rows {
            let id: String = row.get(0);
            if self.imported("account", &id).await?.is_some() {
                continue;
            }
            let provider: String = row.get::<Option<String>, _>(2).unwrap_or_default();
            let password: Option<String> = row.get(3);
            let (account_id, password) = match provider.as_str() {
                "credential" => match password {
                    Some(hash) if !hash.is_empty() => (self.owner.to_string(), Some(hash)),
                    _ => {
                        self.report.leave_out("a password account without its hash");
                        continue;
                    }
                },
                "" => continue,
                _ => match row.get::<Option<String>, _>(1) {
                    Some(account) => (account, None),
                    None => continue,
                },
            };
            let made: Option<uuid::Uuid> = sqlx::query_scalar(
                "INSERT INTO accounts (user_id, account_id, provider_id, password)
                 SELECT $1, $2, $3, $4
                  WHERE NOT ($3 = 'credential' AND EXISTS (SELECT 1 FROM accounts WHERE user_id = $1 AND provider_id = 'credential'))
                 ON CONFLICT (provider_id, account_id) DO NOTHING RETURNING id",
            )
            .bind(self.owner)
            .bind(account_id)
            .bind(&provider)
            .bind(password)
            .fetch_optional(&mut *self.tx)
            .await?;
            match made {
                Some(made) => {
                    self.remember("account", &id, made).await?;
                    self.report.accounts += 1;
                }
                None => self
                    .report
                    .leave_out("a sign-in method the account here has already"),
            }
        }
        Ok(())
    }

    async fn folders(&mut self) -> Result<HashMap<String, FolderId>> {
        let mut map = HashMap::new();
        if !self.probe.has("folders") {
            return Ok(map);
        }
        let created = self.probe.time("folders", "created_at");
        let rows = self
            .read(format!(
                "SELECT id::text, name, {created} FROM folders WHERE user_id::text = $1 ORDER BY 3, 1"
            ))
            .await?;
        for row in rows {
            let id: String = row.get(0);
            if let Some(earlier) = self.imported("folder", &id).await? {
                if let Some(done) = earlier {
                    map.insert(id, FolderId(done));
                }
                continue;
            }
            let name: String = short_text(row.get(1), 100);
            let name = if name.trim().is_empty() {
                "Folder".to_owned()
            } else {
                name
            };
            let folder: FolderId = sqlx::query_scalar(
                "INSERT INTO folders (user_id, name, created_at) VALUES ($1, $2, coalesce($3, now())) RETURNING id",
            )
            .bind(self.owner)
            .bind(name)
            .bind(row.get::<Option<DateTime<Utc>>, _>(2))
            .fetch_one(&mut *self.tx)
            .await?;
            self.remember("folder", &id, folder.0).await?;
            self.report.folders += 1;
            map.insert(id, folder);
        }
        Ok(map)
    }

    /// API keys, opened with upstream's key and sealed with ours (left out without either).
    async fn api_keys(&mut self, keys: &Keys<'_>) -> Result<HashMap<String, ApiKeyId>> {
        let mut map = HashMap::new();
        if !self.probe.has("api_keys") {
            return Ok(map);
        }
        let p = self.probe;
        let rows = self
            .read(format!(
                "SELECT id::text, provider, {name}, encrypted_key, {created} FROM api_keys WHERE user_id::text = $1 ORDER BY 5, 1",
                name = p.text("api_keys", "name"),
                created = p.time("api_keys", "created_at"),
            ))
            .await?;
        for row in rows {
            let id: String = row.get(0);
            if let Some(earlier) = self.imported("api_key", &id).await? {
                if let Some(done) = earlier {
                    map.insert(id, ApiKeyId(done));
                }
                continue;
            }
            let (Some(upstream), Some(ours)) = (keys.upstream, keys.ours) else {
                self.report.leave_out(match keys.upstream {
                    None => "an API key (no --encryption-key: upstream's key opens it)",
                    Some(_) => "an API key (no ENCRYPTION_KEY here to seal it with)",
                });
                continue;
            };
            let sealed: String = row.get::<Option<String>, _>(3).unwrap_or_default();
            let Some(plain) = open_upstream_key(upstream, &sealed) else {
                self.report
                    .leave_out("an API key upstream's key does not open");
                continue;
            };
            let provider = known_provider(&row.get::<Option<String>, _>(1).unwrap_or_default());
            let name: String = row
                .get::<Option<String>, _>(2)
                .map(|n| {
                    clean_text(n.trim(), 400)
                        .chars()
                        .take(100)
                        .collect::<String>()
                })
                .filter(|n: &String| !n.trim().is_empty())
                .unwrap_or_else(|| format!("API Key {}", id.chars().take(8).collect::<String>()));
            let key = ApiKeyId::new();
            let last4: String = {
                let chars: Vec<char> = plain.chars().collect();
                chars[chars.len().saturating_sub(4)..].iter().collect()
            };
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, provider, encrypted_key, key_last4, name, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))",
            )
            .bind(key)
            .bind(self.owner)
            .bind(provider)
            .bind(ours.encrypt(plain.as_bytes(), key.0.as_bytes()))
            .bind(last4)
            .bind(name)
            .bind(row.get::<Option<DateTime<Utc>>, _>(4))
            .execute(&mut *self.tx)
            .await?;
            self.remember("api_key", &id, key.0).await?;
            self.report.api_keys += 1;
            map.insert(id, key);
        }
        Ok(map)
    }

    /// Models, each with its key when the key came along; the active one is the default.
    async fn models(
        &mut self,
        keys: &HashMap<String, ApiKeyId>,
    ) -> Result<HashMap<String, (ModelId, String)>> {
        let mut map = HashMap::new();
        if !self.probe.has("models") {
            return Ok(map);
        }
        let p = self.probe;
        let rows = self
            .read(format!(
                "SELECT id::text, provider, model_id, name, {base}, {key}, {active}, {settings}, {created} FROM models
                  WHERE user_id::text = $1 ORDER BY 9, 1",
                base = p.text("models", "base_url"),
                key = p.text("models", "api_key_id"),
                active = p.boolean("models", "is_active", false),
                settings = p.text("models", "settings"),
                created = p.time("models", "created_at"),
            ))
            .await?;
        let mut has_default: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM models WHERE user_id = $1 AND team_id IS NULL AND is_default)",
        )
        .bind(self.owner)
        .fetch_one(&mut *self.tx)
        .await?;
        // Upstream's chats name their model by its model string (`gpt-4o-mini`, what its
        // page picked), not by the row's id: the one model of the user's with that string.
        let mut by_string: HashMap<String, Option<(ModelId, String)>> = HashMap::new();
        let mut name_by_string = |model_id: &str, model: (ModelId, String)| {
            by_string
                .entry(model_id.to_owned())
                .and_modify(|found| *found = None)
                .or_insert(Some(model));
        };
        for row in rows {
            let id: String = row.get(0);
            let provider = known_provider(&row.get::<Option<String>, _>(1).unwrap_or_default());
            let model_id: String = short_text(row.get(2), 200);
            if let Some(earlier) = self.imported("model", &id).await? {
                if let Some(done) = earlier {
                    name_by_string(&model_id, (ModelId(done), provider.to_owned()));
                    map.insert(id, (ModelId(done), provider.to_owned()));
                }
                continue;
            }
            if model_id.is_empty() {
                self.report.leave_out("a model without a model id");
                continue;
            }
            let name: String = short_text(row.get(3), 200);
            let key = row
                .get::<Option<String>, _>(5)
                .and_then(|k| keys.get(&k).copied());
            if row.get::<Option<String>, _>(5).is_some() && key.is_none() {
                self.report
                    .leave_out("a model's API key (the key itself was left out)");
            }
            let settings = self.model_settings(row.get::<Option<String>, _>(7));
            let default = row.get::<bool, _>(6) && !has_default;
            has_default |= default;
            let model = ModelId::new();
            sqlx::query(
                "INSERT INTO models (id, user_id, provider, model_id, name, base_url, api_key_id, settings, is_default, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10, now()))",
            )
            .bind(model)
            .bind(self.owner)
            .bind(provider)
            .bind(&model_id)
            .bind(if name.is_empty() { &model_id } else { &name })
            .bind(row.get::<Option<String>, _>(4).filter(|b| !b.trim().is_empty()))
            .bind(key)
            .bind(settings)
            .bind(default)
            .bind(row.get::<Option<DateTime<Utc>>, _>(8))
            .execute(&mut *self.tx)
            .await?;
            self.remember("model", &id, model.0).await?;
            self.report.models += 1;
            name_by_string(&model_id, (model, provider.to_owned()));
            map.insert(id, (model, provider.to_owned()));
        }
        for (model_id, model) in by_string {
            if let Some(model) = model {
                map.entry(model_id).or_insert(model);
            }
        }
        Ok(map)
    }

    /// A model's settings: those this instance has, each kept when in range; the rest
    /// (upstream's `topK`, `frequencyPenalty`, `presencePenalty`, a value out of range) said.
    fn model_settings(&mut self, settings: Option<String>) -> serde_json::Value {
        let given = settings
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|s| match s {
                serde_json::Value::Object(settings) => Some(settings),
                _ => None,
            })
            .unwrap_or_default();
        let mut kept = serde_json::Map::new();
        let mut dropped = false;
        for (key, value) in given {
            if value.is_null() {
                continue;
            }
            let one =
                serde_json::Value::Object([(key.clone(), value.clone())].into_iter().collect());
            match crate::models::check_generation_settings(&one, "system") {
                Ok(()) => {
                    kept.insert(key, value);
                }
                Err(_) => dropped = true,
            }
        }
        if dropped {
            self.report.leave_out(
                "a model's setting this instance has not (topK, frequencyPenalty, presencePenalty) or out of range",
            );
        }
        serde_json::Value::Object(kept)
    }

    /// Prompts, and the earlier texts upstream kept of each.
    async fn prompts(&mut self) -> Result<()> {
        if !self.probe.has("prompts") {
            return Ok(());
        }
        let p = self.probe;
        let rows = self
            .read(format!(
                "SELECT id::text, name, content, {category}, {public}, {created}, {updated} FROM prompts
                  WHERE user_id::text = $1 ORDER BY 6, 1",
                category = p.text("prompts", "category"),
                public = p.boolean("prompts", "is_public", false),
                created = p.time("prompts", "created_at"),
                updated = p.time("prompts", "updated_at"),
            ))
            .await?;
        let mut prompts = HashMap::new();
        for row in rows {
            let id: String = row.get(0);
            if let Some(earlier) = self.imported("prompt", &id).await? {
                if let Some(done) = earlier {
                    prompts.insert(id, PromptId(done));
                }
                continue;
            }
            let name: String = short_text(row.get(1), 200);
            let content = clean_text(
                &row.get::<Option<String>, _>(2).unwrap_or_default(),
                1 << 20,
            );
            if name.trim().is_empty() || content.trim().is_empty() {
                self.report.leave_out("a prompt without a name or text");
                continue;
            }
            let category = category(row.get::<Option<String>, _>(3));
            let prompt = PromptId::new();
            sqlx::query(
                "INSERT INTO prompts (id, user_id, name, content, variables, category, is_public, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), coalesce($9, $8, now()))",
            )
            .bind(prompt)
            .bind(self.owner)
            .bind(&name)
            .bind(&content)
            .bind(sqlx::types::Json(crate::prompts::template_variables(&content)))
            .bind(category)
            .bind(row.get::<bool, _>(4))
            .bind(row.get::<Option<DateTime<Utc>>, _>(5))
            .bind(row.get::<Option<DateTime<Utc>>, _>(6))
            .execute(&mut *self.tx)
            .await?;
            self.remember("prompt", &id, prompt.0).await?;
            self.report.prompts += 1;
            prompts.insert(id, prompt);
        }
        if !p.has("prompt_versions") {
            return Ok(());
        }
        // Each prompt's versions oldest first (by upstream's number where it has one), then
        // the prompt as it is now: upstream saves a version of every state, the first as the
        // prompt is made, where ours keeps only the texts that were replaced.
        let rows = self
            .read(format!(
                "SELECT v.id::text, v.prompt_id::text, v.name, v.content, {category}, {created},
                        lead(v.name) OVER next, lead(v.content) OVER next, lead({category}) OVER next,
                        lead(v.id) OVER next IS NOT NULL,
                        p.name, p.content, {prompt_category}
                   FROM prompt_versions v LEFT JOIN prompts p ON p.id::text = v.prompt_id::text
                  WHERE v.user_id::text = $1
                 WINDOW next AS (PARTITION BY v.prompt_id ORDER BY {number}, {created}, v.id)
                  ORDER BY 6, 1",
                category = p.text_of("v.", "prompt_versions", "category"),
                prompt_category = p.text_of("p.", "prompts", "category"),
                created = p.time_of("v.", "prompt_versions", "created_at"),
                number = match p.has_column("prompt_versions", "version_number") {
                    true => "v.\"version_number\"",
                    false => "NULL::int",
                },
            ))
            .await?;
        for row in rows {
            let id: String = row.get(0);
            let Some(prompt) = prompts.get(&row.get::<String, _>(1)).copied() else {
                continue;
            };
            if self.imported("prompt_version", &id).await?.is_some() {
                continue;
            }
            let state = |at: usize| {
                (
                    short_text(row.get(at), 200),
                    clean_text(
                        &row.get::<Option<String>, _>(at + 1).unwrap_or_default(),
                        1 << 20,
                    ),
                    category(row.get::<Option<String>, _>(at + 2)),
                )
            };
            let next = match row.get::<bool, _>(9) {
                true => state(6),
                false => state(10),
            };
            if state(2) == next {
                continue;
            }
            let version: uuid::Uuid = sqlx::query_scalar(
                "INSERT INTO prompt_versions (prompt_id, name, content, category, created_at)
                 VALUES ($1, $2, $3, $4, coalesce($5, now())) RETURNING id",
            )
            .bind(prompt)
            .bind(short_text(row.get(2), 200))
            .bind(clean_text(
                &row.get::<Option<String>, _>(3).unwrap_or_default(),
                1 << 20,
            ))
            .bind(category(row.get::<Option<String>, _>(4)))
            .bind(row.get::<Option<DateTime<Utc>>, _>(5))
            .fetch_one(&mut *self.tx)
            .await?;
            self.remember("prompt_version", &id, version).await?;
            self.report.prompt_versions += 1;
        }
        Ok(())
    }

    /// Chats and their messages in order; a chat imported before gets only its new messages.
    async fn chats(
        &mut self,
        folders: &HashMap<String, FolderId>,
        models: &HashMap<String, (ModelId, String)>,
    ) -> Result<()> {
        let p = self.probe;
        let rows = self
            .read(format!(
                "SELECT id::text, title, {model}, {folder}, {pinned}, {created}, {updated} FROM chats
                  WHERE user_id::text = $1 ORDER BY 6, 1",
                model = p.text("chats", "model_id"),
                folder = p.text("chats", "folder_id"),
                pinned = p.boolean("chats", "pinned", false),
                created = p.time("chats", "created_at"),
                updated = p.time("chats", "updated_at"),
            ))
            .await?;
        for row in rows {
            let id: String = row.get(0);
            let chat = match self.imported("chat", &id).await? {
                Some(Some(done)) => ChatId(done),
                // Deleted here since: it stays deleted.
                Some(None) => continue,
                None => {
                    let chat = self.chat(&row, folders, models).await?;
                    self.remember("chat", &id, chat.0).await?;
                    self.report.chats += 1;
                    chat
                }
            };
            self.messages(&id, chat).await?;
        }
        Ok(())
    }

    async fn chat(
        &mut self,
        row: &sqlx::postgres::PgRow,
        folders: &HashMap<String, FolderId>,
        models: &HashMap<String, (ModelId, String)>,
    ) -> Result<ChatId> {
        let title: String = short_text(row.get(1), crate::chats::MAX_TITLE_CHARS);
        let title = if title.trim().is_empty() {
            "Imported chat".to_owned()
        } else {
            title
        };
        // Upstream's chats name a model by its id (one of ours now) or by its model string.
        let model_text = row.get::<Option<String>, _>(2).unwrap_or_default();
        let (model, provider) = match models.get(&model_text) {
            Some((model, provider)) => (model.to_string(), provider.clone()),
            None => {
                let text: String = clean_text(model_text.trim(), 800)
                    .chars()
                    .take(200)
                    .collect();
                (
                    if text.is_empty() {
                        "imported".to_owned()
                    } else {
                        text
                    },
                    SOURCE.to_owned(),
                )
            }
        };
        let folder = row
            .get::<Option<String>, _>(3)
            .and_then(|f| folders.get(&f).copied());
        let chat = ChatId::new();
        sqlx::query(
            "INSERT INTO chats (id, user_id, folder_id, title, model, provider, created_at, updated_at, pinned_at)
             VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), coalesce($8, $7, now()),
                     CASE WHEN $9 THEN coalesce($8, $7, now()) END)",
        )
        .bind(chat)
        .bind(self.owner)
        .bind(folder)
        .bind(title)
        .bind(model)
        .bind(provider)
        .bind(row.get::<Option<DateTime<Utc>>, _>(5))
        .bind(row.get::<Option<DateTime<Utc>>, _>(6))
        .bind(row.get::<bool, _>(4))
        .execute(&mut *self.tx)
        .await?;
        Ok(chat)
    }

    /// The chat's messages not imported before, each following the last (upstream's chats
    /// are a line, ordered by time).
    async fn messages(&mut self, upstream_chat: &str, chat: ChatId) -> Result<()> {
        let p = self.probe;
        let rows = sqlx::query(&format!(
            "SELECT id::text, role, content, {metadata}, {created} FROM messages WHERE chat_id::text = $1 ORDER BY 5, 1",
            metadata = p.text("messages", "metadata"),
            created = p.time("messages", "created_at"),
        ))
        .bind(upstream_chat)
        .fetch_all(self.from)
        .await
        .map_err(UpstreamError::Read)?;
        let ids: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        let done: Vec<String> = sqlx::query_scalar(
            "SELECT source_id FROM imported_rows WHERE user_id = $1 AND source = $2 AND kind = 'message' AND source_id = ANY($3)",
        )
        .bind(self.owner)
        .bind(SOURCE)
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let done: std::collections::HashSet<String> = done.into_iter().collect();
        let (mut new_ids, mut sources, mut roles, mut contents, mut metadata, mut times) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for row in rows {
            let id: String = row.get(0);
            if done.contains(&id) {
                self.report.already_imported += 1;
                continue;
            }
            let role: String = row.get::<Option<String>, _>(1).unwrap_or_default();
            if !matches!(role.as_str(), "user" | "assistant" | "system") {
                self.report.leave_out("a message of a role not known here");
                continue;
            }
            let content = clean_text(
                &row.get::<Option<String>, _>(2).unwrap_or_default(),
                crate::chats::MAX_MESSAGE_BYTES,
            );
            new_ids.push(uuid::Uuid::now_v7());
            metadata.push(message_metadata(row.get::<Option<String>, _>(3), &id));
            sources.push(id);
            roles.push(role);
            contents.push(content);
            times.push(row.get::<Option<DateTime<Utc>>, _>(4));
        }
        if new_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO messages (id, chat_id, role, content, metadata, created_at)
             SELECT m.id, $2, m.role, m.content, m.metadata, coalesce(m.created_at, now())
               FROM unnest($1::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[])
                 WITH ORDINALITY AS m(id, role, content, metadata, created_at, n)
              ORDER BY m.n",
        )
        .bind(&new_ids)
        .bind(chat)
        .bind(&roles)
        .bind(&contents)
        .bind(&metadata)
        .bind(&times)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO imported_rows (user_id, source, kind, source_id, target_id)
             SELECT $1, $2, 'message', s, t FROM unnest($3::text[], $4::uuid[]) AS m(s, t)
             ON CONFLICT DO NOTHING",
        )
        .bind(self.owner)
        .bind(SOURCE)
        .bind(&sources)
        .bind(&new_ids)
        .execute(&mut *self.tx)
        .await?;
        self.report.messages += new_ids.len();
        Ok(())
    }
}

/// A user's picture as upstream kept it (an address, or the uploaded picture itself as a
/// `data:` URL of up to 2 MB) when this instance takes it whole, else none (said): a picture
/// cut short is no picture.
fn picture(image: Option<String>, report: &mut Report) -> Option<String> {
    let image = image.filter(|i| !i.trim().is_empty())?;
    match crate::auth::validate_image(image.trim()) {
        Ok(()) => Some(image.trim().to_owned()),
        Err(_) => {
            report.leave_out(
                "a user's picture (larger than 100 KiB, or not a picture this instance shows)",
            );
            None
        }
    }
}

/// An upstream text as ours holds it: trimmed, no NUL, at most `chars` characters.
fn short_text(text: Option<String>, chars: usize) -> String {
    clean_text(text.unwrap_or_default().trim(), chars * 4)
        .chars()
        .take(chars)
        .collect()
}

/// A provider of ours: upstream's `other` (and anything unknown) is `custom`.
fn known_provider(provider: &str) -> &'static str {
    sambung_providers::Provider::ALL
        .iter()
        .find(|p| p.as_str() == provider)
        .map_or("custom", |p| p.as_str())
}

fn category(category: Option<String>) -> String {
    match category {
        Some(c) if sambung_transfer::prompts::CATEGORIES.contains(&c.as_str()) => c,
        Some(_) => "custom".to_owned(),
        None => "general".to_owned(),
    }
}

/// What upstream kept beside a message (`{model, tokens, finishReason}`, as JSON or as text
/// holding JSON, or nothing), and where it came from.
fn message_metadata(raw: Option<String>, id: &str) -> serde_json::Value {
    let mut metadata = serde_json::json!({"import": {"source": SOURCE, "id": clean_text(id, 512)}});
    let parsed = raw
        .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
        .filter(serde_json::Value::is_object);
    if let Some(parsed) = parsed {
        if let Some(model) = parsed.get("model").and_then(|m| m.as_str()) {
            metadata["model"] = clean_text(model, 200).into();
            metadata["status"] = "complete".into();
        }
        if let Some(tokens) = parsed.get("tokens").and_then(|t| t.as_i64()) {
            metadata["tokens"] = tokens.into();
        }
        if let Some(reason) = parsed.get("finishReason").and_then(|r| r.as_str()) {
            metadata["finishReason"] = clean_text(reason, 100).into();
        }
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's own code path, with a fixed IV (docs/upstream-contract.md, section 3).
    #[test]
    fn an_upstream_key_opens_with_its_encryption_key() {
        let cipher = upstream_cipher("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap();
        let sealed = "AAECAwQFBgcICQoLZHrJYtO1QqRy/Da7cDbrqIzfWKd+5SG+iEXy3wN3A7QV5wxTd3MBPQ==";
        assert_eq!(
            open_upstream_key(&cipher, sealed).as_deref(),
            Some("sk-test-1234567890abcdef")
        );
        // Node decodes leniently: no padding, URL-safe letters, spaces.
        let lenient = upstream_cipher(" BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc ").unwrap();
        assert!(open_upstream_key(&lenient, sealed).is_some());
        let other =
            upstream_cipher(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
        assert_eq!(open_upstream_key(&other, sealed), None);
        assert!(matches!(
            upstream_cipher("c2hvcnQ="),
            Err(UpstreamError::BadKey(_))
        ));
    }
}
