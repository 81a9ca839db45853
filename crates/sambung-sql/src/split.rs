//! Splitting an SQL script into its statements (whole, or as it streams in), so that a failure can name the statement and
//! its line, and mapping PostgreSQL's error positions back into the script.

/// One statement of a script and where it starts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement without its terminating `;` and surrounding white space.
    pub text: &'a str,
    /// Byte offset of `text` in the script.
    pub offset: usize,
}

/// Split `script` at every `;` that is outside quotes, quoted identifiers, dollar-quoted
/// bodies and comments. Statements holding only comments are dropped.
pub fn split_statements(script: &str) -> Vec<Statement<'_>> {
    let mut scan = scan(script);
    if let Some(tail) = scan.tail {
        scan.statements.push(tail);
    }
    scan.statements
}

/// What [`scan`] found in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Every statement ended by a `;`.
    pub statements: Vec<Statement<'a>>,
    /// What follows the last `;`, when it holds more than comments and white space.
    pub tail: Option<Statement<'a>>,
    /// Whether the script ends inside a quoted string, a quoted name, a dollar-quoted body or
    /// a block comment: more text must follow before the tail can end.
    pub unterminated: bool,
    /// Byte offsets of backslashes outside quotes and comments: never SQL, always a psql
    /// meta-command (`\!` runs a shell command).
    pub backslashes: Vec<usize>,
}

/// Read `script` as PostgreSQL's lexer would, far enough to find statement ends.
pub fn scan(script: &str) -> Scan<'_> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut backslashes = Vec::new();
    let mut unterminated = false;
    let mut start = 0;
    let mut has_code = false;
    let mut i = 0;
    let statement = |start: usize, end: usize| {
        let raw = &script[start..end];
        let leading = raw.len() - raw.trim_start().len();
        Statement {
            text: raw.trim(),
            offset: start + leading,
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        match bytes[i] {
            b'-' if rest.starts_with(b"--") => {
                i += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                continue;
            }
            b'/' if rest.starts_with(b"/*") => {
                // Block comments nest in PostgreSQL.
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                unterminated |= depth > 0;
                continue;
            }
            b'\'' => {
                let backslash_escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                (i, unterminated) = skip_quoted(bytes, i, b'\'', backslash_escapes);
                has_code = true;
                continue;
            }
            b'"' => {
                (i, unterminated) = skip_quoted(bytes, i, b'"', false);
                has_code = true;
                continue;
            }
            b'$' => {
                if let Some(tag_len) = dollar_tag_len(rest) {
                    // Not a tag when glued to an identifier ($ inside a name like a$b$).
                    if i == 0 || !is_ident_byte(bytes[i - 1]) {
                        let tag = &rest[..tag_len];
                        let body_start = i + tag_len;
                        match find(bytes, body_start, tag) {
                            Some(end) => i = end + tag_len,
                            None => {
                                i = bytes.len();
                                unterminated = true;
                            }
                        }
                        has_code = true;
                        continue;
                    }
                }
            }
            b'\\' => backslashes.push(i),
            b';' => {
                if has_code {
                    statements.push(statement(start, i));
                }
                start = i + 1;
                has_code = false;
                i += 1;
                continue;
            }
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        has_code = true;
        i += 1;
    }
    Scan {
        statements,
        tail: has_code.then(|| statement(start, bytes.len())),
        unterminated,
        backslashes,
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Past the closing quote of a quoted string starting at `open`, and whether the text ended
/// before it closed.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> (usize, bool) {
    let mut i = open + 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2; // a doubled quote stands for itself
            } else {
                return (i + 1, false);
            }
        } else {
            i += 1;
        }
    }
    (bytes.len(), true)
}

/// Length of a `$tag$` opening at the start of `rest` (`$$` included).
fn dollar_tag_len(rest: &[u8]) -> Option<usize> {
    let inner = &rest[1..];
    let end = inner.iter().position(|&b| b == b'$')?;
    let tag = &inner[..end];
    let valid =
        tag.is_empty() || (!tag[0].is_ascii_digit() && tag.iter().all(|&b| is_ident_byte(b)));
    valid.then_some(end + 2)
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Byte offset of the 1-based character `position` (what PostgreSQL reports) in `text`.
pub fn char_position_to_offset(text: &str, position: usize) -> usize {
    text.char_indices()
        .nth(position.saturating_sub(1))
        .map_or(text.len(), |(offset, _)| offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<&str> {
        split_statements(script).iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_at_semicolons_outside_quotes_and_bodies() {
        let script = "CREATE TABLE a (x text DEFAULT ';');\n\
            -- a comment; with a semicolon\n\
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n\
            CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 2; END $body$;\n\
            /* block /* nested; */ still comment; */ SELECT \"we;ird\", E'it\\'s;', 'it''s;';\n\
            SELECT $1::int;";
        assert_eq!(
            texts(script),
            vec![
                "CREATE TABLE a (x text DEFAULT ';')",
                "-- a comment; with a semicolon\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
                "CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 2; END $body$",
                "/* block /* nested; */ still comment; */ SELECT \"we;ird\", E'it\\'s;', 'it''s;'",
                "SELECT $1::int",
            ]
        );
    }

    #[test]
    fn a_scan_reports_the_unfinished_tail_and_meta_commands() {
        let scan = scan_of("SELECT 1; SELECT 'a;\nb");
        assert_eq!(scan.statements.len(), 1);
        assert!(scan.unterminated);
        assert_eq!(scan.tail.unwrap().text, "SELECT 'a;\nb");
        let scan =
            scan_of("SELECT $x$ ; \\! no $x$; \\! touch /tmp/x\n-- \\! comment\nSELECT '\\'");
        assert!(!scan.unterminated);
        assert_eq!(scan.backslashes.len(), 1);
        assert!(scan.tail.is_some());
        assert!(scan_of("/* open").unterminated);
        assert!(scan_of("SELECT $$ open").unterminated);
        assert!(scan_of("-- only a comment").tail.is_none());
    }

    fn scan_of(script: &str) -> Scan<'_> {
        scan(script)
    }

    #[test]
    fn comment_only_and_empty_statements_are_dropped() {
        assert_eq!(texts("-- nothing\n;\n  ;/* x */"), Vec::<&str>::new());
        assert_eq!(texts("SELECT 1"), vec!["SELECT 1"]);
    }

    #[test]
    fn offsets_point_into_the_script() {
        let script = "SELECT 1;\n\n  SELECT 2;";
        let statements = split_statements(script);
        assert_eq!(statements[1].offset, 13);
        assert_eq!(&script[statements[1].offset..][..8], "SELECT 2");
        assert_eq!(line_and_column(script, statements[1].offset), (3, 3));
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let text = "SELECT 'é', nope";
        let offset = char_position_to_offset(text, 13);
        assert_eq!(&text[offset..], "nope");
        assert_eq!(line_and_column(text, offset), (1, 13));
    }
}
