//! What Studio knows of the database's tables: the introspected schema (cached until the SQL
//! console may have changed it) and row counts that never scan a large table.

use std::sync::Arc;

use sambung_schema::{Schema, Table};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::RwLock;

use crate::error::ApiError;

/// Tables estimated above this many rows are not counted; smaller ones are, up to this bound.
const EXACT_COUNT_LIMIT: i64 = 50_000;

#[derive(Default)]
pub struct Catalog {
    schema: RwLock<Option<Arc<Schema>>>,
}

impl Catalog {
    pub async fn schema(&self, pool: &PgPool) -> Result<Arc<Schema>, ApiError> {
        if let Some(schema) = self.schema.read().await.as_ref() {
            return Ok(schema.clone());
        }
        let mut conn = pool.acquire().await?;
        let schema = Arc::new(sambung_schema::introspect(&mut conn).await?);
        *self.schema.write().await = Some(schema.clone());
        Ok(schema)
    }

    /// Forget the schema: the next request reads it again.
    pub async fn invalidate(&self) {
        *self.schema.write().await = None;
    }

    pub async fn table(&self, pool: &PgPool, name: &str) -> Result<TableRef, ApiError> {
        let schema = self.schema(pool).await?;
        if schema.table(name).is_none() {
            return Err(ApiError::not_found(format!(
                "There is no table named {name:?}"
            )));
        }
        Ok(TableRef {
            schema,
            name: name.to_owned(),
        })
    }
}

/// A table known to exist in the cached schema.
pub struct TableRef {
    schema: Arc<Schema>,
    name: String,
}

impl TableRef {
    pub fn get(&self) -> &Table {
        self.schema
            .table(&self.name)
            .expect("TableRef is only made for tables of its schema")
    }
}

#[derive(Debug, Serialize)]
pub struct TableCount {
    pub name: String,
    pub rows: i64,
    /// False when `rows` is the planner's estimate.
    pub exact: bool,
}

/// Every table with its row count: exact below [`EXACT_COUNT_LIMIT`] rows, else the catalog's
/// estimate (`pg_class.reltuples`, kept by ANALYZE and autovacuum).
pub async fn table_counts(pool: &PgPool, schema: &Schema) -> Result<Vec<TableCount>, ApiError> {
    let estimates: Vec<(String, f32)> = sqlx::query_as(
        "SELECT relname::text, reltuples FROM pg_class \
         WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')",
    )
    .fetch_all(pool)
    .await?;
    let mut counts = Vec::with_capacity(schema.tables.len());
    for table in &schema.tables {
        let estimate = estimates
            .iter()
            .find(|(name, _)| *name == table.name)
            .map_or(-1.0, |(_, rows)| *rows);
        // -1: never analysed, so the size is unknown: a bounded count tells.
        let count = if (estimate as i64) < EXACT_COUNT_LIMIT {
            let bounded: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) AS bounded",
                sambung_sql::quote_ident(&table.name),
                EXACT_COUNT_LIMIT + 1
            ))
            .fetch_one(pool)
            .await?;
            if bounded <= EXACT_COUNT_LIMIT {
                TableCount {
                    name: table.name.clone(),
                    rows: bounded,
                    exact: true,
                }
            } else {
                TableCount {
                    name: table.name.clone(),
                    rows: (estimate as i64).max(bounded),
                    exact: false,
                }
            }
        } else {
            TableCount {
                name: table.name.clone(),
                rows: estimate as i64,
                exact: false,
            }
        };
        counts.push(count);
    }
    Ok(counts)
}
