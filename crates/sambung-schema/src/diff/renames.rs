//! Renames: the user's hints, the ambiguities left to ask about, and definitions rewritten
//! with the new names.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::introspect::Schema;

/// Tables and columns to treat as renamed rather than dropped and created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    /// (old table name, new table name)
    pub tables: Vec<(String, String)>,
    /// (table's new name, old column name, new column name)
    pub columns: Vec<(String, String, String)>,
    /// Added tables (`name`) and columns (`table.column`) declared new, not renamed.
    pub created: Vec<String>,
    /// Every remaining ambiguity is a drop and a create (`--no-rename`).
    pub none_others: bool,
}

impl Renames {
    /// Parse `--rename` hints: `old_table=new_table` or `table.old_column=new_column`.
    pub fn parse(hints: &[String], none_others: bool) -> Result<Self, String> {
        let mut renames = Renames {
            none_others,
            ..Renames::default()
        };
        for hint in hints {
            let (old, new) = hint
                .split_once('=')
                .ok_or_else(|| format!("--rename {hint:?}: expected old=new or table.old=new"))?;
            match old.split_once('.') {
                Some((table, old_column)) => {
                    renames
                        .columns
                        .push((table.into(), old_column.into(), new.into()))
                }
                None => renames.tables.push((old.into(), new.into())),
            }
        }
        Ok(renames)
    }

    /// The same renames, the other way round (for the down migration).
    pub fn inverted(&self) -> Renames {
        let tables: Vec<(String, String)> = self
            .tables
            .iter()
            .map(|(o, n)| (n.clone(), o.clone()))
            .collect();
        let columns = self
            .columns
            .iter()
            .map(|(table, o, n)| {
                let old_table = tables
                    .iter()
                    .find(|(new_name, _)| new_name == table)
                    .map_or(table.clone(), |(_, old)| old.clone());
                (old_table, n.clone(), o.clone())
            })
            .collect();
        Renames {
            tables,
            columns,
            created: Vec::new(),
            none_others: self.none_others,
        }
    }

    pub(super) fn new_table_name<'a>(&'a self, old: &'a str) -> &'a str {
        self.tables
            .iter()
            .find(|(o, _)| o == old)
            .map_or(old, |(_, n)| n.as_str())
    }

    pub(super) fn new_column_name<'a>(&'a self, new_table: &str, old: &'a str) -> &'a str {
        self.columns
            .iter()
            .find(|(t, o, _)| t == new_table && o == old)
            .map_or(old, |(_, _, n)| n.as_str())
    }
}

/// Something disappears while something else appears: a rename, or a drop and a create?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Ambiguity {
    Tables {
        removed: Vec<String>,
        added: Vec<String>,
    },
    Columns {
        table: String,
        removed: Vec<String>,
        added: Vec<String>,
    },
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ambiguity::Tables { removed, added } => write!(
                f,
                "table(s) {} disappear while {} appear",
                removed.join(", "),
                added.join(", ")
            ),
            Ambiguity::Columns {
                table,
                removed,
                added,
            } => write!(
                f,
                "in table {table}, column(s) {} disappear while {} appear",
                removed.join(", "),
                added.join(", ")
            ),
        }
    }
}

/// The renames still undecided between `from` and `to`.
pub fn ambiguities(from: &Schema, to: &Schema, renames: &Renames) -> Vec<Ambiguity> {
    if renames.none_others {
        return Vec::new();
    }
    let renamed_old: BTreeSet<&str> = renames.tables.iter().map(|(o, _)| o.as_str()).collect();
    let renamed_new: BTreeSet<&str> = renames.tables.iter().map(|(_, n)| n.as_str()).collect();
    let removed: Vec<String> = from
        .tables
        .iter()
        .filter(|t| to.table(&t.name).is_none() && !renamed_old.contains(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    let added: Vec<String> = to
        .tables
        .iter()
        .filter(|t| from.table(&t.name).is_none() && !renamed_new.contains(t.name.as_str()))
        .filter(|t| !renames.created.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    let mut found = Vec::new();
    if !removed.is_empty() && !added.is_empty() {
        found.push(Ambiguity::Tables { removed, added });
    }
    for old_table in &from.tables {
        let new_name = renames.new_table_name(&old_table.name);
        let Some(new_table) = to.table(new_name) else {
            continue;
        };
        let renamed_cols: Vec<&(String, String, String)> = renames
            .columns
            .iter()
            .filter(|(t, _, _)| t == new_name)
            .collect();
        let removed: Vec<String> = old_table
            .columns
            .iter()
            .filter(|c| {
                new_table.column(&c.name).is_none()
                    && !renamed_cols.iter().any(|(_, o, _)| *o == c.name)
            })
            .map(|c| c.name.clone())
            .collect();
        let added: Vec<String> = new_table
            .columns
            .iter()
            .filter(|c| {
                old_table.column(&c.name).is_none()
                    && !renamed_cols.iter().any(|(_, _, n)| *n == c.name)
            })
            .filter(|c| !renames.created.contains(&format!("{new_name}.{}", c.name)))
            .map(|c| c.name.clone())
            .collect();
        if !removed.is_empty() && !added.is_empty() {
            found.push(Ambiguity::Columns {
                table: new_name.to_owned(),
                removed,
                added,
            });
        }
    }
    found
}

/// Whether `word` stands in `text` as a whole identifier.
pub(super) fn mentions_word(text: &str, word: &str) -> bool {
    replace_word(text, word, "") != text
}

/// Replace `old` by `new` wherever it stands as a whole identifier.
pub(super) fn replace_word(text: &str, old: &str, new: &str) -> String {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(old) {
        let before = rest[..pos].chars().next_back();
        let after = rest[pos + old.len()..].chars().next();
        out.push_str(&rest[..pos]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(old);
        } else {
            out.push_str(new);
        }
        rest = &rest[pos + old.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_replaced_whole() {
        assert_eq!(
            replace_word("CHECK (name <> '' AND nickname <> name)", "name", "title"),
            "CHECK (title <> '' AND nickname <> title)"
        );
        assert_eq!(
            replace_word("ON public.notes USING btree (notes_id)", "notes", "memos"),
            "ON public.memos USING btree (notes_id)"
        );
    }

    #[test]
    fn rename_hints_parse_and_invert() {
        let renames =
            Renames::parse(&["notes=memos".into(), "memos.body=content".into()], false).unwrap();
        assert_eq!(renames.tables, [("notes".to_owned(), "memos".to_owned())]);
        assert_eq!(
            renames.columns,
            [("memos".to_owned(), "body".to_owned(), "content".to_owned())]
        );
        let back = renames.inverted();
        assert_eq!(back.tables, [("memos".to_owned(), "notes".to_owned())]);
        assert_eq!(
            back.columns,
            [("notes".to_owned(), "content".to_owned(), "body".to_owned())]
        );
        assert!(Renames::parse(&["nonsense".into()], false).is_err());
    }
}
