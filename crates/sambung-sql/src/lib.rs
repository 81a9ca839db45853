//! SQL text done safely, for every crate that writes SQL: [`quote_ident`] quotes a name
//! whenever PostgreSQL could read it as anything else, [`quote_literal`] makes a string
//! constant of any text (where a statement cannot take a parameter: DDL), [`escape_like`]
//! makes user text a literal `LIKE` pattern, and [`split`] cuts scripts into statements (for the migrator, the
//! Studio console and restores).

mod keywords;
pub mod split;

/// Quote an identifier unless it is a plain lower-case name that no PostgreSQL version reads as
/// a key word: `users` stays `users`, while `current_user`, `null`, `Users` or `a"b` become
/// `"current_user"`, `"null"`, `"Users"`, `"a""b"`. Every identifier that reaches generated
/// SQL goes through here.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && keywords::KEYWORDS.binary_search(&name).is_err();
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `name` qualified by `schema`, both quoted as needed.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// `value` as a string constant: single-quoted, its quotes doubled. (With
/// `standard_conforming_strings`, on since PostgreSQL 9.1, backslashes are plain characters.)
/// Only where a parameter cannot go: `ALTER ROLE … PASSWORD`, a default in DDL.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Escape `%`, `_` and the escape character itself, so that `text` matches only itself in a
/// `LIKE`/`ILIKE` pattern (PostgreSQL's default escape character is `\`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_plain_and_everything_else_is_quoted() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("_x1"), "_x1");
        // Unreserved key words are fine as names.
        assert_eq!(quote_ident("name"), "name");
        for quoted in [
            "current_user",
            "null",
            "window",
            "true",
            "localtime",
            "user",
            "json",
        ] {
            assert_eq!(quote_ident(quoted), format!("\"{quoted}\""));
        }
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
        assert_eq!(quote_ident("é"), "\"é\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_ident("x$v$ \\! touch /tmp/y #"),
            "\"x$v$ \\! touch /tmp/y #\""
        );
        assert_eq!(qualified("public", "order"), "public.\"order\"");
    }

    #[test]
    fn the_keyword_list_is_sorted_for_binary_search() {
        assert!(keywords::KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
        assert_eq!(escape_like("plain"), "plain");
    }
}
