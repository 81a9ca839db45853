//! Reading a plain SQL dump as a stream of statements and `COPY` data, refusing anything that
//! is not SQL meant for the database: psql meta-commands (`\!` runs a shell command), statements
//! that end or start a transaction (a `COMMIT` midway would make a failed restore stick), and
//! `COPY` from anywhere but the script itself (`FROM PROGRAM` runs a command on the server).
//!
//! A restore reads the script twice through [`ScriptReader`]: once to check all of it before
//! anything runs, once to run it.

use std::io::BufRead;

use sambung_sql::split::{scan, Statement};

/// One piece of a script, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// An SQL statement (without its `;`), and the line it starts on.
    Statement {
        text: String,
        line: usize,
    },
    /// `COPY … FROM stdin`: its rows follow as [`Item::CopyData`], then [`Item::CopyEnd`].
    CopyFromStdin {
        text: String,
        line: usize,
    },
    CopyData(Vec<u8>),
    CopyEnd,
}

/// Why a script is refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub line: usize,
    pub reason: String,
}

/// Rows of a `COPY` are handed on in chunks of about this size.
const COPY_CHUNK: usize = 1 << 20;

pub(crate) struct ScriptReader<R> {
    reader: R,
    line: usize,
    /// Text of the statement being read, and the line it started on.
    pending: String,
    pending_line: usize,
    in_copy: bool,
    queue: std::collections::VecDeque<Item>,
    done: bool,
}

impl<R: BufRead> ScriptReader<R> {
    pub fn new(reader: R) -> Self {
        ScriptReader {
            reader,
            line: 0,
            pending: String::new(),
            pending_line: 1,
            in_copy: false,
            queue: Default::default(),
            done: false,
        }
    }

    /// The next item, `None` at the end; a refusal or an I/O error stops the reading.
    pub fn next_item(&mut self) -> Result<Option<Item>, ReadError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            self.read_more()?;
        }
    }

    fn refuse(&self, line: usize, reason: impl Into<String>) -> ReadError {
        ReadError::Refused(Refusal {
            line,
            reason: reason.into(),
        })
    }

    fn read_more(&mut self) -> Result<(), ReadError> {
        if self.in_copy {
            return self.read_copy_rows();
        }
        let mut line = String::new();
        if self.reader.read_line(&mut line).map_err(ReadError::Io)? == 0 {
            self.done = true;
            let scan = scan(&self.pending);
            if scan.tail.is_some() || scan.unterminated {
                return Err(self.refuse(
                    self.pending_line,
                    "the script ends inside a statement (the file was cut short)",
                ));
            }
            return Ok(());
        }
        self.line += 1;
        let has_code = {
            let scan = scan(&self.pending);
            scan.tail.is_some() || scan.unterminated
        };
        if !has_code {
            self.pending.clear();
            self.pending_line = self.line;
            if line.starts_with('\\') {
                return self.meta_command(line.trim_end());
            }
        }
        self.pending.push_str(&line);
        if !line.contains(';') {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let scan = scan(&pending);
        if let Some(&offset) = scan.backslashes.first() {
            return Err(self.refuse(
                self.pending_line + pending[..offset].matches('\n').count(),
                "a psql meta-command (a backslash outside quotes): restores run SQL only",
            ));
        }
        for statement in &scan.statements {
            self.statement(statement, &pending)?;
        }
        self.pending = match scan.tail {
            Some(tail) if !self.in_copy => {
                self.pending_line += pending[..tail.offset].matches('\n').count();
                pending[tail.offset..].to_owned()
            }
            Some(tail) => {
                return Err(self.refuse(
                    self.line,
                    format!("text after COPY … FROM stdin on its line: {}", tail.text),
                ))
            }
            None if scan.unterminated => pending,
            None => String::new(),
        };
        Ok(())
    }

    /// `\restrict KEY` and `\unrestrict KEY` are what pg_dump writes to keep psql from running
    /// meta-commands hidden in the data; they mean nothing here. Anything else is refused.
    fn meta_command(&mut self, line: &str) -> Result<(), ReadError> {
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or_default();
        let key = words.next();
        let harmless = matches!(command, "\\restrict" | "\\unrestrict")
            && key.is_some_and(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
            && words.next().is_none();
        if harmless {
            Ok(())
        } else {
            Err(self.refuse(
                self.line,
                format!(
                    "the psql meta-command {}: restores run SQL only",
                    command.chars().take(40).collect::<String>()
                ),
            ))
        }
    }

    fn statement(&mut self, statement: &Statement<'_>, pending: &str) -> Result<(), ReadError> {
        let line = self.pending_line + pending[..statement.offset].matches('\n').count();
        let text = statement.text.to_owned();
        let words = leading_words(&text, 4);
        let word = |i: usize| words.get(i).map(String::as_str).unwrap_or_default();
        let transaction = match word(0) {
            "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT"
            | "RELEASE" => true,
            "PREPARE" => word(1) == "TRANSACTION",
            _ => false,
        };
        if transaction {
            return Err(self.refuse(
                line,
                format!(
                    "{} ends or starts a transaction: the restore runs as one transaction that \
                     only sambung may end",
                    word(0)
                ),
            ));
        }
        if word(0) == "COPY" {
            if !copies_from_stdin(&text) {
                return Err(self.refuse(
                    line,
                    "a COPY that reads or writes outside the script (a file or a program)",
                ));
            }
            self.in_copy = true;
            self.queue.push_back(Item::CopyFromStdin { text, line });
        } else {
            self.queue.push_back(Item::Statement { text, line });
        }
        Ok(())
    }

    fn read_copy_rows(&mut self) -> Result<(), ReadError> {
        let mut chunk = Vec::new();
        loop {
            let start = chunk.len();
            if self
                .reader
                .read_until(b'\n', &mut chunk)
                .map_err(ReadError::Io)?
                == 0
            {
                return Err(self.refuse(
                    self.line,
                    "the rows of a COPY have no end marker (the file was cut short)",
                ));
            }
            self.line += 1;
            let row = &chunk[start..];
            if row == b"\\.\n" || row == b"\\." || row == b"\\.\r\n" {
                chunk.truncate(start);
                if !chunk.is_empty() {
                    self.queue.push_back(Item::CopyData(chunk));
                }
                self.queue.push_back(Item::CopyEnd);
                self.in_copy = false;
                self.pending_line = self.line + 1;
                return Ok(());
            }
            if chunk.len() >= COPY_CHUNK {
                self.queue.push_back(Item::CopyData(chunk));
                return Ok(());
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum ReadError {
    Refused(Refusal),
    Io(std::io::Error),
}

/// The parameter a plain `SET name = value` (or `TO value`) statement sets, lower case.
pub(crate) fn set_parameter(text: &str) -> Option<String> {
    let words = leading_words(text, 3);
    let assigns = skip_comments(text)
        .split_whitespace()
        .nth(2)
        .is_some_and(|w| w == "=" || w.eq_ignore_ascii_case("to"));
    (words.first().map(String::as_str) == Some("SET")
        && !matches!(
            words.get(1).map(String::as_str),
            Some("LOCAL" | "SESSION" | "ROLE" | "TRANSACTION")
        )
        && assigns)
        .then(|| words.get(1).map(|w| w.to_ascii_lowercase()))
        .flatten()
}

/// `text` after its leading comments and white space.
fn skip_comments(text: &str) -> &str {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if rest.starts_with("/*") {
            // Block comments nest.
            let bytes = rest.as_bytes();
            let (mut depth, mut i) = (0, 0);
            let mut end = bytes.len();
            while i + 1 < bytes.len() {
                match &bytes[i..i + 2] {
                    b"/*" => (depth, i) = (depth + 1, i + 2),
                    b"*/" => {
                        (depth, i) = (depth - 1, i + 2);
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            rest = &rest[end..];
        } else {
            return rest;
        }
    }
}

/// The first `n` words of a statement, upper-cased, comments skipped.
fn leading_words(text: &str, n: usize) -> Vec<String> {
    skip_comments(text)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(str::to_ascii_uppercase)
        .collect()
}

/// `COPY target [(columns)] FROM stdin`, as pg_dump writes it, and nothing else: no string
/// (a file name or a program) anywhere in it.
fn copies_from_stdin(text: &str) -> bool {
    let code = skip_comments(text);
    let upper = code.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    !code.contains('\'')
        && words.len() >= 4
        && words[words.len() - 2] == "FROM"
        && words[words.len() - 1] == "STDIN"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(script: &str) -> Result<Vec<Item>, Refusal> {
        let mut reader = ScriptReader::new(script.as_bytes());
        let mut items = Vec::new();
        loop {
            match reader.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(items),
                Err(ReadError::Refused(r)) => return Err(r),
                Err(ReadError::Io(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_dump_reads_as_statements_and_copy_rows() {
        let items = read(
            "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\
             SET statement_timeout = 0;\n\
             CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND $$;\n\
             -- Name: t; Type: TABLE\n\
             COPY public.t (a, b) FROM stdin;\n1\tx;y\n2\t\\\\N\n\\.\n\
             SELECT 'a\n;b';\n\\unrestrict abc123\n",
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                Item::Statement {
                    text: "SET statement_timeout = 0".into(),
                    line: 6
                },
                Item::Statement {
                    text: "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND $$".into(),
                    line: 7
                },
                Item::CopyFromStdin {
                    text: "COPY public.t (a, b) FROM stdin".into(),
                    line: 12
                },
                Item::CopyData(b"1\tx;y\n2\t\\\\N\n".to_vec()),
                Item::CopyEnd,
                Item::Statement {
                    text: "SELECT 'a\n;b'".into(),
                    line: 16
                },
            ]
        );
    }

    #[test]
    fn plain_settings_are_recognised() {
        assert_eq!(
            set_parameter("SET transaction_timeout = 0").as_deref(),
            Some("transaction_timeout")
        );
        assert_eq!(
            set_parameter("-- x\nSET search_path TO public").as_deref(),
            Some("search_path")
        );
        assert_eq!(set_parameter("SET LOCAL x = 1"), None);
        assert_eq!(set_parameter("SET ROLE admin"), None);
        assert_eq!(set_parameter("SELECT 1"), None);
    }

    #[test]
    fn what_is_not_sql_for_the_database_is_refused_with_its_line() {
        for (script, line, reason) in [
            ("SELECT 1;\n\\! touch /tmp/x\n", 2, "meta-command \\!"),
            ("SELECT 1\n\\! touch /tmp/x\n;\n", 2, "meta-command"),
            ("\\restrict abc; rm -rf /\n", 1, "meta-command \\restrict"),
            ("\\connect other\n", 1, "meta-command \\connect"),
            ("CREATE TABLE t ();\nCOMMIT;\n", 2, "COMMIT ends or starts"),
            ("/* x */ begin;\n", 1, "BEGIN ends or starts"),
            ("end;", 1, "END"),
            ("PREPARE TRANSACTION 'x';", 1, "PREPARE"),
            (
                "COPY t FROM PROGRAM 'touch /tmp/x';",
                1,
                "a file or a program",
            ),
            ("COPY t FROM '/etc/passwd';", 1, "a file or a program"),
            ("COPY (SELECT 1) TO PROGRAM 'x';", 1, "a file or a program"),
            ("COPY t FROM stdin;\n1\n", 2, "no end marker"),
            ("SELECT 'open\n", 1, "ends inside a statement"),
            ("SELECT 1", 1, "ends inside a statement"),
        ] {
            let refusal = read(script).expect_err(script);
            assert_eq!(refusal.line, line, "{script}: {refusal:?}");
            assert!(refusal.reason.contains(reason), "{script}: {refusal:?}");
        }
        // Names and strings may hold anything.
        assert!(read("CREATE TABLE \"x$v$ \\! touch /tmp/y #\" (\"COMMIT\" text);\nINSERT INTO t VALUES ('\\! a;');\n").is_ok());
    }
}
