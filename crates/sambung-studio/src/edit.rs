//! Changing rows from the table view: a cell (only if it still holds what the user saw),
//! a new row (omitted columns take their defaults), and deleting rows by key.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use sambung_schema::Table;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

use crate::browse::{column, quoted, text_columns, Key, Sql};
use crate::error::ApiError;

/// Most rows one delete request may name.
const MAX_DELETE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellUpdate {
    /// The row's primary key values, as the page gave them.
    pub key: Vec<Option<String>>,
    pub column: String,
    /// The value the user saw (`None`: NULL); the update happens only if the cell still holds it.
    pub seen: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellRef {
    /// The row's key as JSON (`["…"]`), as the page gave it.
    pub key: String,
    pub column: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRow {
    /// Columns to set; every other column takes its default.
    pub values: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowKeys {
    pub keys: Vec<Vec<Option<String>>>,
}

/// A row as it is now in the database.
#[derive(Debug, Serialize)]
pub struct StoredRow {
    pub values: Vec<Option<String>>,
    pub key: Vec<Option<String>>,
}

fn editable_key(table: &Table) -> Result<Key, ApiError> {
    let key = Key::of(table);
    if key.is_primary {
        Ok(key)
    } else {
        Err(ApiError::bad_request(format!(
            "Table {} has no primary key, so Studio cannot tell its rows apart to change them; \
             use the SQL console",
            table.name
        )))
    }
}

fn returning(table: &Table, key: &Key) -> String {
    let key_columns: Vec<String> = key
        .columns
        .iter()
        .map(|(name, _)| format!("{}::text", quoted(name)))
        .collect();
    format!(
        "RETURNING {}, {}",
        text_columns(table),
        key_columns.join(", ")
    )
}

fn stored_row(table: &Table, row: &sqlx::postgres::PgRow) -> Result<StoredRow, ApiError> {
    let mut values = (0..row.len())
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect::<Result<Vec<_>, _>>()?;
    let key = values.split_off(table.columns.len());
    Ok(StoredRow { values, key })
}

/// Set one cell, if it still holds `update.seen`; else a conflict with the current value.
pub async fn update_cell(
    pool: &PgPool,
    table: &Table,
    update: &CellUpdate,
) -> Result<StoredRow, ApiError> {
    let key = editable_key(table)?;
    let target = column(table, &update.column)?;
    let name = quoted(&target.name);
    let mut sql = Sql::default();
    let value = sql.bind(update.value.clone(), &target.data_type);
    let matches = key.compare("=", &update.key, &mut sql)?;
    let seen = sql.bind(update.seen.clone(), "text");
    sql.text = format!(
        "UPDATE {} SET {name} = {value} WHERE {matches} AND {name}::text IS NOT DISTINCT FROM {seen} {}",
        quoted(&table.name),
        returning(table, &key)
    );
    let updated = match sql.query().fetch_optional(pool).await {
        Ok(row) => row,
        Err(error) => {
            let explained = ApiError::explain(pool, error).await;
            return Err(if explained.details.column.is_none() {
                explained.with_column(&target.name)
            } else {
                explained
            });
        }
    };
    if let Some(row) = updated {
        return stored_row(table, &row);
    }
    // Nothing matched: the row is gone, or the cell no longer holds what the user saw.
    let current = cell(pool, table, &update.key, &target.name).await?;
    let mut conflict = ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "{} changed since you loaded it; nothing was overwritten. Reload to see the \
             current value",
            target.name
        ),
    )
    .with_column(&target.name);
    conflict.details.current = Some(current);
    Err(conflict)
}

/// One cell's whole value (`None`: NULL), for the row with this key.
pub async fn cell(
    pool: &PgPool,
    table: &Table,
    key_values: &[Option<String>],
    column_name: &str,
) -> Result<Option<String>, ApiError> {
    let key = Key::of(table);
    let target = column(table, column_name)?;
    let mut sql = Sql::default();
    let matches = key.compare("=", key_values, &mut sql)?;
    sql.text = format!(
        "SELECT {}::text FROM {} WHERE {matches}",
        quoted(&target.name),
        quoted(&table.name)
    );
    match sql.query().fetch_optional(pool).await? {
        Some(row) => Ok(row.try_get::<Option<String>, _>(0)?),
        None => Err(ApiError::not_found(
            "This row no longer exists: it was deleted or its key changed since you loaded it",
        )),
    }
}

/// Insert a row; columns not given take their defaults.
pub async fn insert_row(pool: &PgPool, table: &Table, row: &NewRow) -> Result<StoredRow, ApiError> {
    let key = Key::of(table);
    let mut sql = Sql::default();
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (name, value) in &row.values {
        let target = column(table, name)?;
        names.push(quoted(&target.name));
        values.push(sql.bind(value.clone(), &target.data_type));
    }
    let inserted = if names.is_empty() {
        "DEFAULT VALUES".to_owned()
    } else {
        format!("({}) VALUES ({})", names.join(", "), values.join(", "))
    };
    sql.text = format!(
        "INSERT INTO {} {inserted} {}",
        quoted(&table.name),
        returning(table, &key)
    );
    match sql.query().fetch_one(pool).await {
        Ok(row) => stored_row(table, &row),
        Err(error) => Err(ApiError::explain(pool, error).await),
    }
}

/// Delete the rows with these keys, all or none.
pub async fn delete_rows(pool: &PgPool, table: &Table, rows: &RowKeys) -> Result<u64, ApiError> {
    let key = editable_key(table)?;
    if rows.keys.is_empty() || rows.keys.len() > MAX_DELETE {
        return Err(ApiError::bad_request(format!(
            "Name between 1 and {MAX_DELETE} rows to delete"
        )));
    }
    let mut transaction = pool.begin().await?;
    let mut deleted = 0;
    for row_key in &rows.keys {
        let mut sql = Sql::default();
        let matches = key.compare("=", row_key, &mut sql)?;
        sql.text = format!("DELETE FROM {} WHERE {matches}", quoted(&table.name));
        match sql.query().execute(&mut *transaction).await {
            Ok(done) => deleted += done.rows_affected(),
            Err(error) => {
                drop(transaction);
                return Err(ApiError::explain(pool, error).await);
            }
        }
    }
    transaction.commit().await?;
    Ok(deleted)
}
