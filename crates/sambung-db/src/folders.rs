//! Nested folders, personal or team-scoped: a folder's parent has its scope, and no folder is
//! its own ancestor.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::chats::is_member;
use crate::error::{required_text, DomainError, Result};
use crate::ids::{FolderId, TeamId, UserId};

/// Whose a folder (or tag) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    Personal(UserId),
    Team(TeamId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Folder {
    pub id: FolderId,
    pub user_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub name: String,
    pub parent_id: Option<FolderId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Folder {
    pub fn scope(&self) -> Scope {
        match (self.user_id, self.team_id) {
            (_, Some(team)) => Scope::Team(team),
            (Some(user), None) => Scope::Personal(user),
            (None, None) => unreachable!("folder_scope_check guarantees one scope"),
        }
    }
}

/// The acting user may use folders of this scope: their own, or a team they belong to.
async fn require_scope(conn: &mut PgConnection, actor: UserId, scope: Scope) -> Result<()> {
    let allowed = match scope {
        Scope::Personal(user) => user == actor,
        Scope::Team(team) => is_member(conn, actor, team).await?,
    };
    if allowed {
        Ok(())
    } else {
        Err(DomainError::not_found("folder scope"))
    }
}

async fn fetch_folder(conn: &mut PgConnection, actor: UserId, folder: FolderId) -> Result<Folder> {
    let found = sqlx::query_as!(
        Folder,
        r#"SELECT id AS "id: FolderId", user_id AS "user_id: UserId", team_id AS "team_id: TeamId",
                  name, parent_id AS "parent_id: FolderId", created_at, updated_at
             FROM folders WHERE id = $1"#,
        folder as FolderId,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::not_found("folder"))?;
    require_scope(conn, actor, found.scope())
        .await
        .map_err(|_| DomainError::not_found("folder"))?;
    Ok(found)
}

/// A folder the acting user may see.
pub async fn get_folder(pool: &PgPool, actor: UserId, folder: FolderId) -> Result<Folder> {
    fetch_folder(&mut *pool.acquire().await?, actor, folder).await
}

/// Create a folder in `scope`, optionally inside `parent` (which must have the same scope).
pub async fn create_folder(
    pool: &PgPool,
    actor: UserId,
    scope: Scope,
    name: &str,
    parent: Option<FolderId>,
) -> Result<Folder> {
    let name = required_text("name", name, 100)?;
    let mut tx = pool.begin().await?;
    require_scope(&mut tx, actor, scope).await?;
    if let Some(parent) = parent {
        let parent = fetch_folder(&mut tx, actor, parent)
            .await
            .map_err(|_| DomainError::invalid("parent_id", "no such folder"))?;
        if parent.scope() != scope {
            return Err(DomainError::invalid(
                "parent_id",
                "the parent folder has another scope",
            ));
        }
    }
    let (user, team) = match scope {
        Scope::Personal(user) => (Some(user), None),
        Scope::Team(team) => (None, Some(team)),
    };
    let folder = sqlx::query_as!(
        Folder,
        r#"INSERT INTO folders (id, user_id, team_id, name, parent_id) VALUES ($1, $2, $3, $4, $5)
           RETURNING id AS "id: FolderId", user_id AS "user_id: UserId", team_id AS "team_id: TeamId",
                     name, parent_id AS "parent_id: FolderId", created_at, updated_at"#,
        FolderId::new() as FolderId,
        user as Option<UserId>,
        team as Option<TeamId>,
        name,
        parent as Option<FolderId>,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(folder)
}

/// Move a folder under another of its scope (or to the top with `None`), refusing cycles.
pub async fn move_folder(
    pool: &PgPool,
    actor: UserId,
    folder: FolderId,
    new_parent: Option<FolderId>,
) -> Result<Folder> {
    let mut tx = pool.begin().await?;
    let current = fetch_folder(&mut tx, actor, folder).await?;
    if let Some(parent) = new_parent {
        let parent = fetch_folder(&mut tx, actor, parent)
            .await
            .map_err(|_| DomainError::invalid("parent_id", "no such folder"))?;
        if parent.scope() != current.scope() {
            return Err(DomainError::invalid(
                "parent_id",
                "the parent folder has another scope",
            ));
        }
        // The new parent must not be the folder itself nor one of its descendants.
        let cycle = sqlx::query_scalar!(
            r#"WITH RECURSIVE ancestors(id, parent_id) AS (
                 SELECT id, parent_id FROM folders WHERE id = $1
                 UNION
                 SELECT f.id, f.parent_id FROM folders f JOIN ancestors a ON f.id = a.parent_id)
             SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = $2) AS "cycle!""#,
            parent.id as FolderId,
            folder as FolderId,
        )
        .fetch_one(&mut *tx)
        .await?;
        if cycle {
            return Err(DomainError::invalid(
                "parent_id",
                "a folder cannot move into itself or its own subfolder",
            ));
        }
    }
    let moved = sqlx::query_as!(
        Folder,
        r#"UPDATE folders SET parent_id = $2 WHERE id = $1
           RETURNING id AS "id: FolderId", user_id AS "user_id: UserId", team_id AS "team_id: TeamId",
                     name, parent_id AS "parent_id: FolderId", created_at, updated_at"#,
        folder as FolderId,
        new_parent as Option<FolderId>,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// Rename a folder.
pub async fn rename_folder(
    pool: &PgPool,
    actor: UserId,
    folder: FolderId,
    name: &str,
) -> Result<Folder> {
    let name = required_text("name", name, 100)?;
    let mut tx = pool.begin().await?;
    fetch_folder(&mut tx, actor, folder).await?;
    let renamed = sqlx::query_as!(
        Folder,
        r#"UPDATE folders SET name = $2 WHERE id = $1
           RETURNING id AS "id: FolderId", user_id AS "user_id: UserId", team_id AS "team_id: TeamId",
                     name, parent_id AS "parent_id: FolderId", created_at, updated_at"#,
        folder as FolderId,
        name,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(renamed)
}

/// Delete a folder and its subfolders; their chats stay, out of any folder.
pub async fn delete_folder(pool: &PgPool, actor: UserId, folder: FolderId) -> Result<()> {
    let mut tx = pool.begin().await?;
    fetch_folder(&mut tx, actor, folder).await?;
    sqlx::query!("DELETE FROM folders WHERE id = $1", folder as FolderId)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The folders of a scope, by name.
pub async fn list_folders(pool: &PgPool, actor: UserId, scope: Scope) -> Result<Vec<Folder>> {
    let mut conn = pool.acquire().await?;
    require_scope(&mut conn, actor, scope).await?;
    let (user, team) = match scope {
        Scope::Personal(user) => (Some(user), None),
        Scope::Team(team) => (None, Some(team)),
    };
    Ok(sqlx::query_as!(
        Folder,
        r#"SELECT id AS "id: FolderId", user_id AS "user_id: UserId", team_id AS "team_id: TeamId",
                  name, parent_id AS "parent_id: FolderId", created_at, updated_at
             FROM folders
            WHERE ($1::uuid IS NOT NULL AND user_id = $1 AND team_id IS NULL)
               OR ($2::uuid IS NOT NULL AND team_id = $2 AND user_id IS NULL)
            ORDER BY name, id"#,
        user as Option<UserId>,
        team as Option<TeamId>,
    )
    .fetch_all(&mut *conn)
    .await?)
}
