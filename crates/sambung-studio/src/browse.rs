//! Reading a table as the user views it: filters, a sort, and keyset pages that stay fast on
//! millions of rows (no OFFSET, no COUNT), and the same view exported as CSV or JSON.
//!
//! Every value travels as text: columns are read as `column::text` and filter values are bound
//! as text parameters cast to the column's type, so PostgreSQL itself parses (and refuses)
//! them. Identifiers come from the catalog only, never from the request.

use std::time::Instant;

use futures_util::TryStreamExt;
use sambung_schema::{Column, Table};
use sambung_sql::{escape_like, quote_ident};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgArguments;
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::mpsc;

use crate::error::ApiError;

pub const DEFAULT_PAGE_ROWS: u32 = 50;
/// Characters of a value a page carries; the rest is fetched when the cell is opened, so a
/// page of 50 long messages stays small for the browser. (Cut here, not with `left()` in the
/// query: that halved the page's throughput at scale 10, measured with pgbench.)
pub const CELL_CHARS: usize = 1000;
pub const MAX_PAGE_ROWS: u32 = 500;

/// What the user looks at: filters, an optional sort, and where the page starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    #[serde(default)]
    pub sort: Option<Sort>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// The cursor of the previous page's last row (`Page::next`).
    #[serde(default)]
    pub after: Option<Vec<Option<String>>>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sort {
    pub column: String,
    #[serde(default)]
    pub descending: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub column: String,
    pub op: FilterOp,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Contains,
    IsNull,
    NotNull,
}

/// One page of a view: every column as text (`None` is NULL), the row keys, and the cursor
/// of the next page if there is one.
#[derive(Debug, Serialize)]
pub struct Page {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Each row's key: its primary key columns, or its `ctid` when the table has none.
    pub keys: Vec<Vec<Option<String>>>,
    pub next: Option<Vec<Option<String>>>,
    /// For each row, the columns whose value was cut at [`CELL_CHARS`].
    pub truncated: Vec<Vec<usize>>,
    /// Time spent in the database for this page.
    pub elapsed_ms: f64,
}

/// How rows of a table are told apart.
pub struct Key {
    /// `(column name, type)`: the primary key columns, or `ctid` of type `tid`.
    pub columns: Vec<(String, String)>,
    pub is_primary: bool,
}

impl Key {
    pub fn of(table: &Table) -> Key {
        match &table.primary_key {
            Some(pk) => Key {
                columns: pk
                    .columns
                    .iter()
                    .map(|name| {
                        let data_type = table
                            .column(name)
                            .map_or_else(|| "text".to_owned(), |c| c.data_type.clone());
                        (name.clone(), data_type)
                    })
                    .collect(),
                is_primary: true,
            },
            None => Key {
                columns: vec![("ctid".to_owned(), "tid".to_owned())],
                is_primary: false,
            },
        }
    }

    fn list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| quoted(name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(k1, k2) <op> ($n::t1, $m::t2)` against the given values.
    pub fn compare(
        &self,
        op: &str,
        values: &[Option<String>],
        sql: &mut Sql,
    ) -> Result<String, ApiError> {
        if values.len() != self.columns.len() {
            return Err(ApiError::bad_request(format!(
                "A row key has {} values here, not {}",
                self.columns.len(),
                values.len()
            )));
        }
        let params: Vec<String> = self
            .columns
            .iter()
            .zip(values)
            .map(|((_, data_type), value)| sql.bind(value.clone(), data_type))
            .collect();
        Ok(format!("({}) {op} ({})", self.list(), params.join(", ")))
    }
}

/// SQL text with its text parameters.
#[derive(Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Option<String>>,
}

impl Sql {
    /// A placeholder for `value`, cast to `data_type` (which comes from the catalog).
    pub fn bind(&mut self, value: Option<String>, data_type: &str) -> String {
        self.args.push(value);
        format!("${}::{data_type}", self.args.len())
    }

    pub fn query(&self) -> sqlx::query::Query<'_, Postgres, PgArguments> {
        self.args
            .iter()
            .fold(sqlx::query(&self.text), |query, arg| {
                query.bind(arg.clone())
            })
    }
}

/// An identifier as SQL: quoted unless plainly safe (`ctid`, the row address, as it is).
pub fn quoted(name: &str) -> String {
    if name == "ctid" {
        return name.to_owned();
    }
    quote_ident(name)
}

pub fn column<'t>(table: &'t Table, name: &str) -> Result<&'t Column, ApiError> {
    table.column(name).ok_or_else(|| {
        ApiError::bad_request(format!("Table {} has no column {name:?}", table.name))
            .with_column(name)
    })
}

/// `col1::text, col2::text, …` for every column of the table.
pub fn text_columns(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| format!("{}::text", quoted(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The conditions of the view's filters, joined by AND (`TRUE` without any).
fn filter_conditions(table: &Table, filters: &[Filter], sql: &mut Sql) -> Result<String, ApiError> {
    let mut conditions = Vec::new();
    for filter in filters {
        let column = column(table, &filter.column)?;
        let name = quoted(&column.name);
        let value = || {
            filter.value.clone().ok_or_else(|| {
                ApiError::bad_request(format!("The filter on {} needs a value", column.name))
                    .with_column(&column.name)
            })
        };
        let condition = match filter.op {
            FilterOp::Eq => format!("{name} = {}", sql.bind(Some(value()?), &column.data_type)),
            FilterOp::Ne => format!(
                "{name} IS DISTINCT FROM {}",
                sql.bind(Some(value()?), &column.data_type)
            ),
            FilterOp::Lt => format!("{name} < {}", sql.bind(Some(value()?), &column.data_type)),
            FilterOp::Gt => format!("{name} > {}", sql.bind(Some(value()?), &column.data_type)),
            FilterOp::Contains => {
                let pattern = format!("%{}%", escape_like(&value()?));
                format!("{name}::text ILIKE {}", sql.bind(Some(pattern), "text"))
            }
            FilterOp::IsNull => format!("{name} IS NULL"),
            FilterOp::NotNull => format!("{name} IS NOT NULL"),
        };
        conditions.push(condition);
    }
    Ok(if conditions.is_empty() {
        "TRUE".to_owned()
    } else {
        conditions.join(" AND ")
    })
}

/// `ORDER BY` for the view: the sort column (NULLs last either way) then the key, in the
/// sort's direction, so that the order is total and a cursor can continue it.
///
/// Terms are qualified with the table: a bare name would mean the output column of the same
/// name, which is the text form of the value (and `'10' < '9'`).
fn order_by(table: &Table, view: &View, key: &Key) -> Result<String, ApiError> {
    let table_name = quoted(&table.name);
    let direction = if view.sort.as_ref().is_some_and(|s| s.descending) {
        "DESC"
    } else {
        "ASC"
    };
    let mut terms = Vec::new();
    if let Some(sort) = &view.sort {
        let column = column(table, &sort.column)?;
        terms.push(format!(
            "{table_name}.{} {direction} NULLS LAST",
            quoted(&column.name)
        ));
    }
    terms.extend(
        key.columns
            .iter()
            .map(|(name, _)| format!("{table_name}.{} {direction}", quoted(name))),
    );
    Ok(terms.join(", "))
}

/// The condition that starts a page after the row whose cursor is `after`.
fn after_cursor(
    table: &Table,
    view: &View,
    key: &Key,
    after: &[Option<String>],
    sql: &mut Sql,
) -> Result<String, ApiError> {
    let descending = view.sort.as_ref().is_some_and(|s| s.descending);
    let beyond = if descending { "<" } else { ">" };
    let Some(sort) = &view.sort else {
        return key.compare(beyond, after, sql);
    };
    let column = column(table, &sort.column)?;
    let Some((sort_value, key_values)) = after.split_first() else {
        return Err(ApiError::bad_request("The page cursor is empty"));
    };
    let name = quoted(&column.name);
    Ok(match sort_value {
        // NULLs come last: after a NULL only NULLs with a later key remain.
        None => format!(
            "({name} IS NULL AND {})",
            key.compare(beyond, key_values, sql)?
        ),
        Some(value) => {
            let first = sql.bind(Some(value.clone()), &column.data_type);
            let again = format!("${}::{}", sql.args.len(), column.data_type);
            format!(
                "({name} {beyond} {first} OR {name} IS NULL OR ({name} = {again} AND {}))",
                key.compare(beyond, key_values, sql)?
            )
        }
    })
}

/// The query of one page of the view: the table's columns as text, then the key columns,
/// then the sort column, one row more than the page holds.
pub fn page_query(table: &Table, view: &View) -> Result<Sql, ApiError> {
    let key = Key::of(table);
    let mut sql = Sql::default();
    let mut conditions = filter_conditions(table, &view.filters, &mut sql)?;
    if let Some(after) = &view.after {
        conditions = format!(
            "{conditions} AND {}",
            after_cursor(table, view, &key, after, &mut sql)?
        );
    }
    // Keys and the sort value are read from the row itself; only `ctid` needs selecting.
    let ctid = if key.is_primary { "" } else { ", ctid::text" };
    sql.text = format!(
        "SELECT {}{ctid} FROM {} WHERE {conditions} ORDER BY {} LIMIT {}",
        text_columns(table),
        quoted(&table.name),
        order_by(table, view, &key)?,
        page_rows(view) + 1
    );
    Ok(sql)
}

fn page_rows(view: &View) -> usize {
    view.limit
        .unwrap_or(DEFAULT_PAGE_ROWS)
        .clamp(1, MAX_PAGE_ROWS) as usize
}

/// One page of the view.
pub async fn page(pool: &PgPool, table: &Table, view: &View) -> Result<Page, ApiError> {
    let limit = page_rows(view);
    let key = Key::of(table);
    let sql = page_query(table, view)?;
    let started = Instant::now();
    let fetched = sql.query().fetch_all(pool).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;

    let width = table.columns.len();
    let position = |name: &str| table.columns.iter().position(|c| c.name == name);
    // Where the key's values are in a row: the primary key columns, or the `ctid` after them.
    let key_positions: Vec<usize> = if key.is_primary {
        key.columns
            .iter()
            .filter_map(|(name, _)| position(name))
            .collect()
    } else {
        vec![width]
    };
    let sort_position = view.sort.as_ref().and_then(|sort| position(&sort.column));
    let mut rows = Vec::with_capacity(limit);
    let mut keys = Vec::with_capacity(limit);
    let mut sort_values = Vec::with_capacity(limit);
    let mut truncated = Vec::with_capacity(limit);
    let mut next = None;
    for row in fetched.iter().take(limit) {
        let mut values = (0..row.len())
            .map(|i| row.try_get::<Option<String>, _>(i))
            .collect::<Result<Vec<_>, _>>()?;
        // Whole values for the key and the cursor, before long ones are cut for display.
        keys.push(
            key_positions
                .iter()
                .map(|&i| values[i].clone())
                .collect::<Vec<_>>(),
        );
        sort_values.push(sort_position.and_then(|i| values[i].clone()));
        values.truncate(width);
        let mut cut = Vec::new();
        for (index, value) in values.iter_mut().enumerate() {
            if let Some(text) = value {
                if let Some((end, _)) = text.char_indices().nth(CELL_CHARS) {
                    text.truncate(end);
                    cut.push(index);
                }
            }
        }
        truncated.push(cut);
        rows.push(values);
    }
    // One row more than the page was asked for: there is a next page, after the last row kept.
    if fetched.len() > limit {
        let last = rows.len() - 1;
        let mut cursor = Vec::new();
        if view.sort.is_some() {
            cursor.push(sort_values[last].clone());
        }
        cursor.extend(keys[last].iter().cloned());
        next = Some(cursor);
    }
    Ok(Page {
        columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        rows,
        keys,
        next,
        truncated,
        elapsed_ms,
    })
}

/// How many rows match the view's filters: an exact count, asked for by the user (it reads
/// every matching row; the statement timeout bounds it).
pub async fn count(pool: &PgPool, table: &Table, view: &View) -> Result<i64, ApiError> {
    let mut sql = Sql::default();
    let conditions = filter_conditions(table, &view.filters, &mut sql)?;
    sql.text = format!(
        "SELECT count(*) FROM {} WHERE {conditions}",
        quoted(&table.name)
    );
    Ok(sql.query().fetch_one(pool).await?.try_get(0)?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

/// Bytes of an export, in chunks; the first message says whether the query started at all.
pub type ExportChunks = mpsc::Receiver<Result<String, ApiError>>;

/// Export every row of the view (its filters and sort, not its page) in a read-only
/// transaction without a statement timeout: big tables take long and the user asked for them.
pub fn export(
    pool: PgPool,
    table: &Table,
    view: &View,
    format: ExportFormat,
) -> Result<ExportChunks, ApiError> {
    let key = Key::of(table);
    let mut sql = Sql::default();
    let conditions = filter_conditions(table, &view.filters, &mut sql)?;
    let order = order_by(table, view, &key)?;
    sql.text = match format {
        ExportFormat::Csv => format!(
            "SELECT {} FROM {} WHERE {conditions} ORDER BY {order}",
            text_columns(table),
            quoted(&table.name)
        ),
        ExportFormat::Json => format!(
            "SELECT row_to_json({table}.*)::text FROM {table} WHERE {conditions} ORDER BY {order}",
            table = quoted(&table.name)
        ),
    };
    let header = match format {
        ExportFormat::Csv => {
            let names: Vec<String> = table
                .columns
                .iter()
                .map(|c| csv_field(Some(&c.name)))
                .collect();
            format!("{}\n", names.join(","))
        }
        ExportFormat::Json => "[".to_owned(),
    };
    let (sender, receiver) = mpsc::channel(8);
    tokio::spawn(async move {
        if let Err(error) = stream_export(&pool, &sql, format, header, &sender).await {
            // The receiver is gone when the client stopped reading: nothing to tell.
            let _ = sender.send(Err(error)).await;
        }
    });
    Ok(receiver)
}

async fn stream_export(
    pool: &PgPool,
    sql: &Sql,
    format: ExportFormat,
    header: String,
    sender: &mpsc::Sender<Result<String, ApiError>>,
) -> Result<(), ApiError> {
    const CHUNK: usize = 64 * 1024;
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *transaction)
        .await?;
    let mut chunk = header;
    let mut first = true;
    let mut rows = sql.query().fetch(&mut *transaction);
    while let Some(row) = rows.try_next().await? {
        match format {
            ExportFormat::Csv => {
                let fields = (0..row.len())
                    .map(|i| Ok(csv_field(row.try_get::<Option<&str>, _>(i)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                chunk.push_str(&fields.join(","));
                chunk.push('\n');
            }
            ExportFormat::Json => {
                chunk.push_str(if first { "\n" } else { ",\n" });
                chunk.push_str(row.try_get::<&str, _>(0)?);
            }
        }
        first = false;
        if chunk.len() >= CHUNK && sender.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
            return Ok(());
        }
    }
    if format == ExportFormat::Json {
        chunk.push_str("\n]\n");
    }
    let _ = sender.send(Ok(chunk)).await;
    Ok(())
}

/// A CSV field as PostgreSQL's `COPY … CSV` writes it: NULL is an empty field, an empty
/// string is `""`, and fields with separators, quotes or line breaks are quoted.
pub fn csv_field(value: Option<&str>) -> String {
    match value {
        None => String::new(),
        Some(text)
            if text.is_empty() || text.contains([',', '"', '\n', '\r']) || text.trim() != text =>
        {
            format!("\"{}\"", text.replace('"', "\"\""))
        }
        Some(text) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_null_apart_from_the_empty_string() {
        assert_eq!(csv_field(None), "");
        assert_eq!(csv_field(Some("")), "\"\"");
        assert_eq!(csv_field(Some("plain")), "plain");
        assert_eq!(csv_field(Some("a,b")), "\"a,b\"");
        assert_eq!(csv_field(Some("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(Some("two\nlines")), "\"two\nlines\"");
        assert_eq!(csv_field(Some(" padded")), "\" padded\"");
    }
}
