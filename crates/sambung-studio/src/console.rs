//! The SQL console: a script split into statements, each run on a connection of its own run
//! and shown as a grid or an affected-row count, stopping at the first error.
//!
//! Each statement is first prepared (PostgreSQL refuses to prepare more than one command, so
//! a splitter mistake can never smuggle a second one in), then executed with the simple
//! protocol so that every value arrives as text, whatever its type. In read-only mode the
//! whole run happens in one `READ ONLY` transaction, which is checked after every statement:
//! a statement that ends it stops the run before anything else can execute.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Column, Connection, Either, Executor, PgConnection, Row, Statement, ValueRef};

use sambung_sql::split::{char_position_to_offset, line_and_column, split_statements};

use crate::error::ApiError;

/// Rows kept per result grid; the rest are counted, not sent.
pub const MAX_GRID_ROWS: usize = 1000;
/// Bytes of values kept per result grid: a thousand rows of megabyte values would otherwise
/// be held in memory and sent to the page whole.
pub const MAX_GRID_BYTES: usize = 4 << 20;
/// Rows read from a query's cursor at a time.
const FETCH_BATCH: usize = 100;

#[derive(Debug, Serialize)]
pub struct Run {
    pub results: Vec<StatementResult>,
    /// The error that stopped the run, its position relative to the whole script.
    pub error: Option<PositionedError>,
    /// Something the user should know about the run as a whole.
    pub notice: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatementResult {
    pub statement: String,
    /// 1-based line of the script where the statement starts.
    pub line: usize,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows the statement returned, including those not kept.
    pub row_count: u64,
    /// A query read through a cursor had more rows than the grid shows; they were not read.
    pub more_rows: bool,
    pub rows_affected: u64,
    pub elapsed_ms: f64,
    /// Bytes of the values kept in `rows`.
    #[serde(skip)]
    bytes: usize,
}

#[derive(Debug, Serialize)]
pub struct PositionedError {
    #[serde(flatten)]
    pub error: ApiError,
    pub statement: String,
    /// Where in the script: 1-based line, and column when PostgreSQL gave a position.
    pub at_line: usize,
    pub at_column: Option<usize>,
}

/// Run a script. `options` carry the statement timeout (and, read-only, the default).
pub async fn run(
    options: &PgConnectOptions,
    script: &str,
    read_only: bool,
) -> Result<Run, ApiError> {
    let mut conn = PgConnection::connect_with(options).await?;
    let outcome = run_on(&mut conn, script, read_only).await;
    // The connection ends with the run: no transaction, setting or temp table outlives it.
    let _ = conn.close().await;
    outcome
}

async fn run_on(conn: &mut PgConnection, script: &str, read_only: bool) -> Result<Run, ApiError> {
    // Read-only, the run is one READ ONLY transaction under Studio's statement timeout: both
    // are checked after every statement, and a statement that changed either stops the run.
    const GUARDED: &str = "SELECT now()::text, current_setting('statement_timeout')";
    let guarded_start: Option<(String, String)> = if read_only {
        conn.execute("BEGIN READ ONLY").await?;
        Some(sqlx::query_as(GUARDED).fetch_one(&mut *conn).await?)
    } else {
        None
    };
    let mut run = Run {
        results: Vec::new(),
        error: None,
        notice: None,
    };
    for piece in split_statements(script) {
        let (line, _) = line_and_column(script, piece.offset);
        match run_statement(conn, piece.text, line, read_only).await {
            Ok(result) => run.results.push(result),
            Err(error) => {
                let column_and_line = error.details.position.map(|position| {
                    line_and_column(
                        script,
                        piece.offset + char_position_to_offset(piece.text, position),
                    )
                });
                run.error = Some(PositionedError {
                    error,
                    statement: piece.text.to_owned(),
                    at_line: column_and_line.map_or(line, |(l, _)| l),
                    at_column: column_and_line.map(|(_, c)| c),
                });
                break;
            }
        }
        if let Some(start) = &guarded_start {
            let now: Result<(String, String), _> =
                sqlx::query_as(GUARDED).fetch_one(&mut *conn).await;
            if now.ok().as_ref() != Some(start) {
                run.error = Some(PositionedError {
                    error: ApiError::read_only_run_ended(),
                    statement: piece.text.to_owned(),
                    at_line: line,
                    at_column: None,
                });
                break;
            }
        }
    }
    if read_only {
        run.notice = Some("Studio is read-only: the run was rolled back".to_owned());
    } else if run.error.is_some() {
        if !run.results.is_empty() {
            run.notice = Some(
                "The statements before the error ran and stay done (unless inside your own \
                 BEGIN, which is rolled back)"
                    .to_owned(),
            );
        }
    } else if in_open_transaction(conn).await {
        run.notice = Some(
            "The run left a transaction open; it was rolled back. End it with COMMIT to keep \
             its changes"
                .to_owned(),
        );
    }
    Ok(run)
}

/// Whether a `BEGIN` of the user's is still open: inside it, `now()` is the time of the BEGIN.
/// (Asked through the simple protocol: there, a statement outside a block starts its own
/// transaction at the same instant; with Parse and Bind first, the two times differ.)
async fn in_open_transaction(conn: &mut PgConnection) -> bool {
    conn.fetch_one("SELECT now() <> statement_timestamp()")
        .await
        .and_then(|row| row.try_get::<bool, _>(0))
        .unwrap_or(false)
}

async fn run_statement(
    conn: &mut PgConnection,
    statement: &str,
    line: usize,
    read_only: bool,
) -> Result<StatementResult, ApiError> {
    if streams_copy_data(statement) {
        return Err(ApiError::bad_request(
            "COPY … FROM STDIN and TO STDOUT need a client that streams data; use Export, \
             or COPY to and from a file on the database server",
        ));
    }
    if read_only && takes_locks(statement) {
        return Err(ApiError::read_only_locks());
    }
    let started = Instant::now();
    let prepared = conn.prepare(statement).await?;
    let columns: Vec<String> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let mut result = StatementResult {
        statement: statement.to_owned(),
        line,
        columns,
        rows: Vec::new(),
        row_count: 0,
        more_rows: false,
        rows_affected: 0,
        elapsed_ms: 0.0,
        bytes: 0,
    };
    if !result.columns.is_empty()
        && matches!(
            first_word(statement).as_str(),
            "select" | "values" | "table"
        )
    {
        read_through_cursor(conn, statement, read_only, &mut result).await?;
    } else {
        let mut stream = sqlx::raw_sql(statement).fetch_many(&mut *conn);
        while let Some(item) = stream.try_next().await? {
            match item {
                Either::Left(done) => result.rows_affected += done.rows_affected(),
                Either::Right(row) => {
                    result.row_count += 1;
                    result.keep(&row)?;
                }
            }
        }
    }
    result.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(result)
}

const CURSOR_PREFIX: &str = "DECLARE studio_grid NO SCROLL CURSOR FOR ";

/// Read the first rows of a query through a cursor, so that `SELECT * FROM messages` returns
/// the grid's rows at once instead of reading millions of them (or running into the timeout).
/// A cursor needs a transaction: the user's, Studio's read-only one, or one just for it.
async fn read_through_cursor(
    conn: &mut PgConnection,
    statement: &str,
    read_only: bool,
    result: &mut StatementResult,
) -> Result<(), ApiError> {
    let own_transaction = !read_only && !in_open_transaction(conn).await;
    if own_transaction {
        conn.execute("BEGIN").await?;
    }
    let read = declare_and_fetch(conn, statement, result).await;
    if own_transaction {
        let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.execute(end).await?;
    }
    read?;
    result.row_count = result.rows.len() as u64;
    Ok(())
}

impl StatementResult {
    /// Keep a row for the grid while it has room (rows and bytes); say so when it has none.
    fn keep(&mut self, row: &PgRow) -> Result<bool, ApiError> {
        if self.rows.len() >= MAX_GRID_ROWS || self.bytes >= MAX_GRID_BYTES {
            self.more_rows = true;
            return Ok(false);
        }
        let values = text_values(row)?;
        self.bytes += values.iter().flatten().map(String::len).sum::<usize>();
        self.rows.push(values);
        Ok(true)
    }
}

/// Fetch the cursor's rows in batches into the grid until it is full or the rows run out.
async fn declare_and_fetch(
    conn: &mut PgConnection,
    statement: &str,
    result: &mut StatementResult,
) -> Result<(), ApiError> {
    let declare = format!("{CURSOR_PREFIX}{statement}");
    // (A `&str` without arguments goes through the simple protocol: rows come as text.)
    if let Err(e) = conn.execute(declare.as_str()).await {
        // Positions count from the start of the user's statement.
        let mut error = ApiError::from(e);
        error.details.position = error
            .details
            .position
            .map(|p| p.saturating_sub(CURSOR_PREFIX.chars().count()).max(1));
        return Err(error);
    }
    let fetch = format!("FETCH {FETCH_BATCH} FROM studio_grid");
    'reading: loop {
        let rows = conn.fetch_all(fetch.as_str()).await?;
        for row in &rows {
            if !result.keep(row)? {
                break 'reading;
            }
        }
        if rows.len() < FETCH_BATCH {
            break;
        }
    }
    conn.execute("CLOSE studio_grid").await?;
    Ok(())
}

/// The statement's first word, lowercased, past comments and parentheses.
fn first_word(statement: &str) -> String {
    statement
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether a statement takes locks of its own: `LOCK` (which PostgreSQL allows in a read-only
/// transaction, up to ACCESS EXCLUSIVE: the application would wait behind it) or an advisory
/// lock (the migrator's among them). Comments are skipped first, so none can hide a `LOCK`;
/// the word `advisory` anywhere outside them is refused, even inside a string.
fn takes_locks(statement: &str) -> bool {
    let mut code = String::with_capacity(statement.len());
    let mut rest = statement;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if rest.starts_with("/*") {
            // Block comments nest in PostgreSQL.
            let (mut depth, mut at) = (0usize, 0);
            let bytes = rest.as_bytes();
            while at < bytes.len() {
                if bytes[at..].starts_with(b"/*") {
                    depth += 1;
                    at += 2;
                } else if bytes[at..].starts_with(b"*/") {
                    depth -= 1;
                    at += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    at += 1;
                }
            }
            code.push(' ');
            rest = rest.get(at..).unwrap_or("");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            code.push(c.to_ascii_lowercase());
            rest = &rest[c.len_utf8()..];
        }
    }
    let first = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty());
    first == Some("lock") || code.contains("advisory")
}

fn streams_copy_data(statement: &str) -> bool {
    first_word(statement) == "copy"
        && statement
            .to_ascii_lowercase()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "stdin" || w == "stdout")
}

/// The simple protocol sends every value as text.
fn text_values(row: &PgRow) -> Result<Vec<Option<String>>, ApiError> {
    (0..row.len())
        .map(|i| {
            let value = row.try_get_raw(i)?;
            if value.is_null() {
                return Ok(None);
            }
            value
                .as_str()
                .map(|text| Some(text.to_owned()))
                .map_err(|e| ApiError::bad_request(format!("cannot read a value as text: {e}")))
        })
        .collect()
}

/// The console's statement timeout as a connection setting.
pub fn timeout_setting(timeout: Duration) -> String {
    format!("{}ms", timeout.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_through_the_connection_is_recognised() {
        assert!(streams_copy_data("COPY tags FROM STDIN"));
        assert!(streams_copy_data(
            "-- load\n copy (select 1) to stdout with csv"
        ));
        assert!(!streams_copy_data("COPY tags TO '/tmp/tags.csv'"));
        assert!(!streams_copy_data("SELECT 'copy from stdin'"));
        assert_eq!(
            first_word("-- note\n  (SELECT 1) UNION (SELECT 2)"),
            "select"
        );
        assert_eq!(first_word("  "), "");
    }
}
