//! Prompt templates: `variables` are the `{name}` placeholders of the content; search is ranked
//! full text over name and content, topped up by substring matches (both use an index).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgPool;

use crate::error::{required_text, DomainError, Result};
use crate::ids::{PromptId, PromptVersionId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Prompt {
    pub id: PromptId,
    pub user_id: UserId,
    pub name: String,
    pub content: String,
    pub variables: Json<Vec<String>>,
    pub category: String,
    pub is_public: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PROMPT_COLUMNS: &str = "p.id, p.user_id, p.name, p.content, p.variables, p.category, p.is_public, p.created_at, p.updated_at";

#[derive(Debug, Clone)]
pub struct NewPrompt<'a> {
    pub name: &'a str,
    pub content: &'a str,
    /// `general` when `None`.
    pub category: Option<&'a str>,
    pub is_public: bool,
}

/// The `{name}` placeholders of a template, in order of first use.
pub fn template_variables(content: &str) -> Vec<String> {
    let mut variables: Vec<String> = Vec::new();
    let mut rest = content;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if valid {
            if !variables.iter().any(|v| v == name) {
                variables.push(name.to_owned());
            }
            rest = &rest[close + 1..];
        }
    }
    variables
}

fn validate(new: &NewPrompt<'_>) -> Result<(String, String, String)> {
    let name = required_text("name", new.name, 200)?;
    let content = required_text("content", new.content, 100_000)?;
    let category = required_text("category", new.category.unwrap_or("general"), 50)?;
    Ok((name, content, category))
}

pub async fn create_prompt(pool: &PgPool, actor: UserId, new: NewPrompt<'_>) -> Result<Prompt> {
    let (name, content, category) = validate(&new)?;
    let variables = Json(template_variables(&content));
    Ok(sqlx::query_as!(
        Prompt,
        r#"INSERT INTO prompts AS p (id, user_id, name, content, variables, category, is_public)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING p.id AS "id: PromptId", p.user_id AS "user_id: UserId", p.name, p.content,
                     p.variables AS "variables: Json<Vec<String>>", p.category, p.is_public,
                     p.created_at, p.updated_at"#,
        PromptId::new() as PromptId,
        actor as UserId,
        name,
        content,
        variables as _,
        category,
        new.is_public,
    )
    .fetch_one(pool)
    .await?)
}

/// A prompt of the actor's own, or a public one.
pub async fn get_prompt(pool: &PgPool, actor: UserId, prompt: PromptId) -> Result<Prompt> {
    sqlx::query_as!(
        Prompt,
        r#"SELECT p.id AS "id: PromptId", p.user_id AS "user_id: UserId", p.name, p.content,
                  p.variables AS "variables: Json<Vec<String>>", p.category, p.is_public,
                  p.created_at, p.updated_at
             FROM prompts p WHERE p.id = $1 AND (p.user_id = $2 OR p.is_public)"#,
        prompt as PromptId,
        actor as UserId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("prompt"))
}

/// Replace a prompt of the actor's own (its variables follow the new content).
pub async fn update_prompt(
    pool: &PgPool,
    actor: UserId,
    prompt: PromptId,
    new: NewPrompt<'_>,
) -> Result<Prompt> {
    let (name, content, category) = validate(&new)?;
    let variables = Json(template_variables(&content));
    let updated = sqlx::query_as!(
        Prompt,
        r#"UPDATE prompts AS p
              SET name = $3, content = $4, variables = $5, category = $6, is_public = $7
            WHERE p.id = $1 AND p.user_id = $2
           RETURNING p.id AS "id: PromptId", p.user_id AS "user_id: UserId", p.name, p.content,
                     p.variables AS "variables: Json<Vec<String>>", p.category, p.is_public,
                     p.created_at, p.updated_at"#,
        prompt as PromptId,
        actor as UserId,
        name,
        content,
        variables as _,
        category,
        new.is_public,
    )
    .fetch_optional(pool)
    .await?;
    match updated {
        Some(prompt) => Ok(prompt),
        None => Err(refusal(pool, actor, prompt, "change this prompt").await),
    }
}

pub async fn delete_prompt(pool: &PgPool, actor: UserId, prompt: PromptId) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM prompts WHERE id = $1 AND user_id = $2",
        prompt as PromptId,
        actor as UserId,
    )
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(refusal(pool, actor, prompt, "delete this prompt").await);
    }
    Ok(())
}

/// Why a change of a prompt touched no row: someone else's public prompt may be read, not
/// changed (forbidden); any other is not there for the actor (not found).
/// An earlier text of a prompt, kept when it was changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptVersion {
    pub id: PromptVersionId,
    pub name: String,
    pub content: String,
    pub category: String,
    /// When it was replaced.
    pub created_at: DateTime<Utc>,
}

/// The earlier texts of one's own prompt, newest first (at most 100). Its owner's alone: a
/// public prompt's readers see what it says now, not what it said before it was shared.
pub async fn prompt_versions(
    pool: &PgPool,
    actor: UserId,
    prompt: PromptId,
) -> Result<Vec<PromptVersion>> {
    if get_prompt(pool, actor, prompt).await?.user_id != actor {
        return Err(DomainError::forbidden("see this prompt's earlier versions"));
    }
    Ok(sqlx::query_as!(
        PromptVersion,
        r#"SELECT id AS "id: PromptVersionId", name, content, category, created_at
             FROM prompt_versions WHERE prompt_id = $1
            ORDER BY created_at DESC, id DESC LIMIT 100"#,
        prompt as PromptId,
    )
    .fetch_all(pool)
    .await?)
}

/// Bring an earlier text of one's own prompt back (the text it replaces is kept as a version
/// in turn, by the same trigger as any edit).
pub async fn restore_prompt_version(
    pool: &PgPool,
    actor: UserId,
    prompt: PromptId,
    version: PromptVersionId,
) -> Result<Prompt> {
    let current = get_prompt(pool, actor, prompt).await?;
    let kept = sqlx::query_as!(
        PromptVersion,
        r#"SELECT id AS "id: PromptVersionId", name, content, category, created_at
             FROM prompt_versions WHERE id = $1 AND prompt_id = $2"#,
        version as PromptVersionId,
        prompt as PromptId,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::not_found("prompt version"))?;
    let restored = NewPrompt {
        name: &kept.name,
        content: &kept.content,
        category: Some(&kept.category),
        is_public: current.is_public,
    };
    update_prompt(pool, actor, prompt, restored).await
}

/// A copy of a prompt one may use, as one's own and private: "Name (copy)".
pub async fn duplicate_prompt(pool: &PgPool, actor: UserId, prompt: PromptId) -> Result<Prompt> {
    let original = get_prompt(pool, actor, prompt).await?;
    let name: String = format!("{} (copy)", original.name)
        .chars()
        .take(200)
        .collect();
    let copy = NewPrompt {
        name: &name,
        content: &original.content,
        category: Some(&original.category),
        is_public: false,
    };
    create_prompt(pool, actor, copy).await
}

async fn refusal(
    pool: &PgPool,
    actor: UserId,
    prompt: PromptId,
    action: &'static str,
) -> DomainError {
    match get_prompt(pool, actor, prompt).await {
        Ok(_) => DomainError::forbidden(action),
        Err(e) => e,
    }
}

/// Where the previous page of prompts ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PromptCursor {
    pub updated_at: DateTime<Utc>,
    pub id: PromptId,
}

/// The prompts the actor may use (their own and public ones), most recently changed first,
/// a page at a time; `mine_only` leaves the public ones of others out.
pub async fn list_prompts(
    pool: &PgPool,
    actor: UserId,
    mine_only: bool,
    after: Option<PromptCursor>,
    limit: i64,
) -> Result<crate::chats::Page<Prompt, PromptCursor>> {
    if !(1..=200).contains(&limit) {
        return Err(DomainError::invalid("limit", "1 to 200"));
    }
    let items: Vec<Prompt> = sqlx::query_as(&format!(
        "SELECT {PROMPT_COLUMNS} FROM prompts p
          WHERE (p.user_id = $1 OR (p.is_public AND NOT $2))
            AND ($3::timestamptz IS NULL OR (p.updated_at, p.id) < ($3, $4))
          ORDER BY p.updated_at DESC, p.id DESC LIMIT $5"
    ))
    .bind(actor)
    .bind(mine_only)
    .bind(after.map(|c| c.updated_at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let next = (items.len() as i64 == limit)
        .then(|| {
            items.last().map(|p| PromptCursor {
                updated_at: p.updated_at,
                id: p.id,
            })
        })
        .flatten();
    Ok(crate::chats::Page { items, next })
}

/// How many of the most recently changed matches of each kind (the user's own, public ones)
/// a search ranks. A common word matches most of the prompts: ranking every match read 4,400
/// rows for each search at scale 10; a bounded set is ranked in the same time at any size.
pub const SEARCH_CANDIDATES: i64 = 100;

/// Ranked full-text prompt search: ($1 user, $2 words, $3 limit). The candidates are the
/// newest matches of each kind, through `prompt_search_idx` for a rare word or walking
/// `prompt_public_updated_idx` for a common one; they are ranked on the stored `search_tsv`
/// (a match in the name weighs more than one in the content), newer first among equals.
pub static SEARCH_PROMPTS_RANKED_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(
    || {
        format!(
            "SELECT {PROMPT_COLUMNS} FROM (
                 (SELECT p.* FROM prompts p
                   WHERE p.user_id = $1 AND p.search_tsv @@ plainto_tsquery('simple', $2)
                   ORDER BY p.updated_at DESC LIMIT {SEARCH_CANDIDATES})
                 UNION ALL
                 (SELECT p.* FROM prompts p
                   WHERE p.is_public AND p.user_id <> $1 AND p.search_tsv @@ plainto_tsquery('simple', $2)
                   ORDER BY p.updated_at DESC LIMIT {SEARCH_CANDIDATES})) p
              ORDER BY ts_rank(p.search_tsv, plainto_tsquery('simple', $2)) DESC, p.updated_at DESC, p.id
              LIMIT $3"
        )
    },
);

/// Substring prompt search, the fallback, as two branches (the user's own prompts by
/// `prompt_user_id_idx`, public ones by the trigram or `is_public` index) so neither scans the
/// table: ($1 user, $2 escaped text, $3 ids found already, $4 limit).
pub static SEARCH_PROMPTS_SUBSTRING_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(
    || {
        format!(
        "SELECT * FROM (
             SELECT {PROMPT_COLUMNS} FROM prompts p
              WHERE p.user_id = $1 AND (p.name || ' ' || p.content) ILIKE '%' || $2 || '%' AND p.id <> ALL($3)
             UNION ALL
             SELECT {PROMPT_COLUMNS} FROM prompts p
              WHERE p.is_public AND p.user_id <> $1
                AND (p.name || ' ' || p.content) ILIKE '%' || $2 || '%' AND p.id <> ALL($3)) found
          ORDER BY updated_at DESC, id
          LIMIT $4"
    )
    },
);

/// The prompts (the actor's own and public ones) matching `query`: ranked full-text matches
/// first, then substring matches, `limit` in all.
pub async fn search_prompts(
    pool: &PgPool,
    actor: UserId,
    query: &str,
    limit: i64,
) -> Result<Vec<Prompt>> {
    let query = required_text("query", query, 200)?;
    let limit = limit.clamp(1, 100);
    // Planned for each search, never prepared once: the planner must see the word to choose
    // between the word's index (a rare word) and the walk of the newest (a common one). A
    // prepared statement's generic plan cannot: it takes the word's index for every word, and
    // a common word then reads all its matches (30 ms at scale 10, against 1-2 ms).
    let mut found: Vec<Prompt> = sqlx::query_as(&SEARCH_PROMPTS_RANKED_SQL)
        .persistent(false)
        .bind(actor)
        .bind(&query)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    if (found.len() as i64) < limit {
        let seen: Vec<PromptId> = found.iter().map(|p| p.id).collect();
        let more: Vec<Prompt> = sqlx::query_as(&SEARCH_PROMPTS_SUBSTRING_SQL)
            .bind(actor)
            .bind(sambung_sql::escape_like(&query))
            .bind(&seen)
            .bind(limit - found.len() as i64)
            .fetch_all(pool)
            .await?;
        found.extend(more);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_the_placeholders_in_order() {
        assert_eq!(
            template_variables("Review this code:\n```\n{code}\n```"),
            ["code"]
        );
        assert_eq!(
            template_variables("{a} and {b} then {a} {} {1x} {not valid} {{c}}"),
            ["a", "b", "c"]
        );
        assert_eq!(
            template_variables("no placeholders { here"),
            Vec::<String>::new()
        );
        assert_eq!(
            template_variables("{bahasa_indonesia} {café}"),
            ["bahasa_indonesia", "café"]
        );
    }
}

/// The actor's own prompts in upstream SambungChat's export format, last changed first.
pub async fn export_prompts(
    pool: &PgPool,
    actor: UserId,
) -> Result<Vec<sambung_transfer::prompts::PromptItem>> {
    let prompts: Vec<Prompt> = sqlx::query_as(&format!(
        "SELECT {PROMPT_COLUMNS} FROM prompts p WHERE p.user_id = $1 ORDER BY p.updated_at DESC, p.id"
    ))
    .bind(actor)
    .fetch_all(pool)
    .await?;
    Ok(prompts
        .into_iter()
        .map(|p| sambung_transfer::prompts::PromptItem {
            id: Some(p.id.to_string()),
            name: p.name,
            content: p.content,
            variables: p.variables.0,
            category: p.category,
            is_public: p.is_public,
            created_at: Some(p.created_at),
            updated_at: Some(p.updated_at),
        })
        .collect())
}

/// How a file of prompts went: those added, and those the actor had already (same name and
/// text, so importing a file again adds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PromptsImported {
    pub added: usize,
    pub unchanged: usize,
}

/// Add `items` to the actor's prompts in one transaction, as upstream's `importPrompts` does:
/// a name the actor uses for another text becomes `Name (1)`, `Name (2)`…
pub async fn import_prompts(
    pool: &PgPool,
    actor: UserId,
    items: &[sambung_transfer::prompts::PromptItem],
) -> Result<PromptsImported> {
    let mut tx = pool.begin().await?;
    let done = import_prompts_in(&mut tx, actor, items).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`import_prompts`] within the caller's transaction (an account's import).
pub async fn import_prompts_in(
    tx: &mut sqlx::PgConnection,
    actor: UserId,
    items: &[sambung_transfer::prompts::PromptItem],
) -> Result<PromptsImported> {
    let mut done = PromptsImported {
        added: 0,
        unchanged: 0,
    };
    for item in items {
        let same: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM prompts WHERE user_id = $1 AND name = $2 AND content = $3)",
        )
        .bind(actor)
        .bind(item.name.trim())
        .bind(&item.content)
        .fetch_one(&mut *tx)
        .await?;
        if same {
            done.unchanged += 1;
            continue;
        }
        let name = free_name(tx, actor, item.name.trim()).await?;
        let new = NewPrompt {
            name: &name,
            content: &item.content,
            category: Some(&item.category),
            is_public: item.is_public,
        };
        let (name, content, category) = validate(&new)?;
        sqlx::query(
            "INSERT INTO prompts (id, user_id, name, content, variables, category, is_public) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(PromptId::new())
        .bind(actor)
        .bind(name)
        .bind(&content)
        .bind(Json(template_variables(&content)))
        .bind(category)
        .bind(item.is_public)
        .execute(&mut *tx)
        .await?;
        done.added += 1;
    }
    Ok(done)
}

/// `wanted`, when the actor has no prompt of that name; else upstream's way: the name cut at
/// its first ` (`, then `Name (1)`, `Name (2)`… (short enough for a name).
async fn free_name(tx: &mut sqlx::PgConnection, actor: UserId, wanted: &str) -> Result<String> {
    let base = match wanted.find(" (") {
        Some(at) if at > 0 => wanted[..at].trim(),
        _ => wanted,
    };
    let base: String = base
        .chars()
        .take(sambung_transfer::prompts::MAX_NAME_CHARS - 12)
        .collect();
    let taken: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT name FROM prompts WHERE user_id = $1 AND (name = $2 OR name = $3 OR name LIKE $4)",
    )
    .bind(actor)
    .bind(wanted)
    .bind(&base)
    .bind(format!("{} (%)", sambung_sql::escape_like(&base)))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    if !taken.contains(wanted) {
        return Ok(wanted.to_owned());
    }
    Ok((0..=taken.len())
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                format!("{base} ({n})")
            }
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(base))
}
