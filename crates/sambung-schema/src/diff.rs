//! The difference between two introspected schemas as ordered DDL, with what each step
//! risks (data loss) and what a careful reviewer would say about it (lint, after squawk).
//!
//! Order: extensions, functions, then everything that goes (triggers, foreign keys, indexes,
//! constraints) while the old names still hold, renames, dropped columns and tables, new
//! tables and columns, constraints (foreign keys last), indexes, triggers, and finally the
//! functions and extensions nothing needs any more.

use sambung_sql::quote_ident;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::introspect::{Column, Constraint, EnumType, Schema, Table};
use crate::migrator::NO_TRANSACTION;

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

    fn new_table_name<'a>(&'a self, old: &'a str) -> &'a str {
        self.tables
            .iter()
            .find(|(o, _)| o == old)
            .map_or(old, |(_, n)| n.as_str())
    }

    fn new_column_name<'a>(&'a self, new_table: &str, old: &'a str) -> &'a str {
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

/// What a step may destroy or refuse, with the query that counts the rows concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hazard {
    /// e.g. "drops table notes and every row in it".
    pub description: String,
    /// `SELECT count(*) …` over the affected rows, run before the step (push).
    pub count_sql: String,
}

/// A squawk-style warning about how a step behaves on a live, busy table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// squawk's rule name, e.g. `require-concurrent-index-creation`.
    pub rule: &'static str,
    pub message: String,
}

/// One DDL statement of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub sql: String,
    pub hazard: Option<Hazard>,
    pub lints: Vec<Lint>,
}

/// Every step from `from` to `to`, in an order PostgreSQL accepts.
pub fn diff(from: &Schema, to: &Schema, renames: &Renames) -> Vec<Step> {
    Differ {
        from,
        to,
        renames,
        steps: Vec::new(),
    }
    .run()
}

struct Differ<'a> {
    from: &'a Schema,
    to: &'a Schema,
    renames: &'a Renames,
    steps: Vec<Step>,
}

/// A table of `from` and its counterpart in `to` (after renames).
struct Pair<'a> {
    old: &'a Table,
    new: &'a Table,
}

impl<'a> Differ<'a> {
    fn push(&mut self, sql: String) {
        self.steps.push(Step {
            sql,
            hazard: None,
            lints: Vec::new(),
        });
    }

    fn push_with(&mut self, sql: String, hazard: Option<Hazard>, lints: Vec<Lint>) {
        self.steps.push(Step { sql, hazard, lints });
    }

    fn pairs(&self) -> Vec<Pair<'a>> {
        self.from
            .tables
            .iter()
            .filter_map(|old| {
                let new = self.to.table(self.renames.new_table_name(&old.name))?;
                Some(Pair { old, new })
            })
            .collect()
    }

    fn dropped_tables(&self) -> Vec<&'a Table> {
        self.from
            .tables
            .iter()
            .filter(|t| {
                self.to
                    .table(self.renames.new_table_name(&t.name))
                    .is_none()
            })
            .collect()
    }

    fn created_tables(&self) -> Vec<&'a Table> {
        let kept: BTreeSet<&str> = self
            .from
            .tables
            .iter()
            .map(|t| self.renames.new_table_name(&t.name))
            .collect();
        self.to
            .tables
            .iter()
            .filter(|t| !kept.contains(t.name.as_str()))
            .collect()
    }

    /// A definition of `from`, as it reads once the renames are done.
    fn renamed(&self, old_table: &str, definition: &str) -> String {
        let new_table = self.renames.new_table_name(old_table);
        let mut text = definition.to_owned();
        for (old, new) in &self.renames.tables {
            text = replace_word(&text, old, new);
        }
        for (table, old, new) in &self.renames.columns {
            if table == new_table {
                text = replace_word(&text, old, new);
            }
        }
        text
    }

    fn run(mut self) -> Vec<Step> {
        let pairs = self.pairs();
        let dropped = self.dropped_tables();
        let created = self.created_tables();
        let matches: Vec<Matches> = pairs.iter().map(|p| self.matches(p)).collect();
        let matches_of = |new_table: &str| {
            pairs
                .iter()
                .position(|p| p.new.name == new_table)
                .map(|i| &matches[i])
        };

        // Extensions and functions first: defaults, checks and triggers call them.
        for ext in &self.to.extensions {
            if !self.from.extensions.iter().any(|e| e.name == ext.name) {
                self.push(format!(
                    "CREATE EXTENSION IF NOT EXISTS {}",
                    quote_ident(&ext.name)
                ));
            }
        }
        self.enums_before_tables();
        for function in &self.to.functions {
            let old = self
                .from
                .functions
                .iter()
                .find(|f| f.name == function.name && f.arguments == function.arguments);
            match old {
                Some(old) if old.definition == function.definition => {}
                Some(old) if old.result != function.result => {
                    self.push(format!(
                        "DROP FUNCTION {}({}) CASCADE",
                        quote_ident(&old.name),
                        old.arguments
                    ));
                    self.push(function.definition.trim_end().to_owned());
                }
                _ => self.push(function.definition.trim_end().to_owned()),
            }
        }

        // What goes, under the old names.
        for (pair, m) in pairs.iter().zip(&matches) {
            for trigger in &pair.old.triggers {
                if !kept_old(&m.triggers, &trigger.name) {
                    self.push(format!(
                        "DROP TRIGGER {} ON {}",
                        quote_ident(&trigger.name),
                        quote_ident(&pair.old.name)
                    ));
                }
            }
        }
        for table in self.from.tables.iter() {
            let m = pairs
                .iter()
                .position(|p| p.old.name == table.name)
                .map(|i| &matches[i]);
            for fk in &table.foreign_keys {
                if m.is_some_and(|m| kept_old(&m.foreign_keys, &fk.name)) {
                    continue;
                }
                self.push(format!(
                    "ALTER TABLE {} DROP CONSTRAINT {}",
                    quote_ident(&table.name),
                    quote_ident(&fk.name)
                ));
            }
        }
        for (pair, m) in pairs.iter().zip(&matches) {
            for index in pair.old.indexes.iter().filter(|i| i.constraint.is_none()) {
                if !kept_old(&m.indexes, &index.name) {
                    self.push(format!("DROP INDEX {}", quote_ident(&index.name)));
                }
            }
            for constraint in constraints(pair.old) {
                if !kept_old(&m.constraints, &constraint.name) {
                    self.push(format!(
                        "ALTER TABLE {} DROP CONSTRAINT {}",
                        quote_ident(&pair.old.name),
                        quote_ident(&constraint.name)
                    ));
                }
            }
        }

        // Renames.
        for (old, new) in &self.renames.tables {
            if self.from.table(old).is_some() && self.to.table(new).is_some() {
                self.push(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    quote_ident(old),
                    quote_ident(new)
                ));
            }
        }
        for (table, old, new) in &self.renames.columns {
            let exists = pairs.iter().any(|p| {
                &p.new.name == table && p.old.column(old).is_some() && p.new.column(new).is_some()
            });
            if exists {
                self.push(format!(
                    "ALTER TABLE {} RENAME COLUMN {} TO {}",
                    quote_ident(table),
                    quote_ident(old),
                    quote_ident(new)
                ));
            }
        }
        for (pair, m) in pairs.iter().zip(&matches) {
            let table = quote_ident(&pair.new.name);
            let renamed = |list: &[(String, String)]| -> Vec<(String, String)> {
                list.iter()
                    .filter(|(o, n)| o != n)
                    .map(|(o, n)| (quote_ident(o), quote_ident(n)))
                    .collect()
            };
            for (old, new) in renamed(&m.constraints)
                .into_iter()
                .chain(renamed(&m.foreign_keys))
            {
                self.push(format!(
                    "ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}"
                ));
            }
            for (old, new) in renamed(&m.indexes) {
                self.push(format!("ALTER INDEX {old} RENAME TO {new}"));
            }
            for (old, new) in renamed(&m.triggers) {
                self.push(format!("ALTER TRIGGER {old} ON {table} RENAME TO {new}"));
            }
        }

        // Dropped columns and tables.
        for pair in &pairs {
            for column in &pair.old.columns {
                let new_name = self.renames.new_column_name(&pair.new.name, &column.name);
                if pair.new.column(new_name).is_none() {
                    let table = quote_ident(&pair.new.name);
                    let col = quote_ident(&column.name);
                    self.push_with(
                        format!("ALTER TABLE {table} DROP COLUMN {col}"),
                        Some(Hazard {
                            description: format!(
                                "drops column {}.{} and its values",
                                pair.new.name, column.name
                            ),
                            count_sql: format!("SELECT count({col}) FROM {table}"),
                        }),
                        Vec::new(),
                    );
                }
            }
        }
        for table in &dropped {
            let name = quote_ident(&table.name);
            self.push_with(
                format!("DROP TABLE {name}"),
                Some(Hazard {
                    description: format!("drops table {} and every row in it", table.name),
                    count_sql: format!("SELECT count(*) FROM {name}"),
                }),
                Vec::new(),
            );
        }

        // New tables, then new and changed columns.
        for table in &created {
            let columns: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("  {}", column_definition(c)))
                .collect();
            self.push(format!(
                "CREATE TABLE {} (\n{}\n)",
                quote_ident(&table.name),
                columns.join(",\n")
            ));
        }
        for pair in &pairs {
            self.alter_columns(pair);
        }

        // Constraints: keys and checks, then foreign keys once every referenced key exists.
        let existing: BTreeSet<&str> = pairs.iter().map(|p| p.new.name.as_str()).collect();
        for table in &self.to.tables {
            let m = matches_of(&table.name);
            for constraint in constraints(table) {
                if m.is_some_and(|m| kept_new(&m.constraints, &constraint.name)) {
                    continue;
                }
                let hazard = existing
                    .contains(table.name.as_str())
                    .then(|| constraint_hazard(table, constraint))
                    .flatten();
                self.push_with(
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {}",
                        quote_ident(&table.name),
                        quote_ident(&constraint.name),
                        constraint.definition
                    ),
                    hazard,
                    Vec::new(),
                );
            }
        }
        for table in &self.to.tables {
            let m = matches_of(&table.name);
            for fk in &table.foreign_keys {
                if m.is_some_and(|m| kept_new(&m.foreign_keys, &fk.name)) {
                    continue;
                }
                let lints = if existing.contains(table.name.as_str()) {
                    vec![Lint {
                        rule: "adding-foreign-key-constraint",
                        message: format!(
                            "{}.{} is checked against every row under a lock blocking writes to both tables; on a large table add it NOT VALID, then VALIDATE CONSTRAINT in a later migration",
                            table.name, fk.name
                        ),
                    }]
                } else {
                    Vec::new()
                };
                self.push_with(
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {}",
                        quote_ident(&table.name),
                        quote_ident(&fk.name),
                        fk.definition
                    ),
                    None,
                    lints,
                );
            }
        }

        // Indexes and triggers.
        for table in &self.to.tables {
            let m = matches_of(&table.name);
            for index in table.indexes.iter().filter(|i| i.constraint.is_none()) {
                if m.is_some_and(|m| kept_new(&m.indexes, &index.name)) {
                    continue;
                }
                let lints = if existing.contains(table.name.as_str()) {
                    vec![Lint {
                        rule: "require-concurrent-index-creation",
                        message: format!(
                            "CREATE INDEX {} blocks writes to {} while it builds; on a large table build it with CREATE INDEX CONCURRENTLY, in a migration whose first line is `{NO_TRANSACTION}`",
                            index.name, table.name
                        ),
                    }]
                } else {
                    Vec::new()
                };
                self.push_with(index.definition.clone(), None, lints);
            }
            for trigger in &table.triggers {
                if m.is_some_and(|m| kept_new(&m.triggers, &trigger.name)) {
                    continue;
                }
                self.push(trigger.definition.clone());
            }
        }

        // What nothing needs any more.
        for function in &self.from.functions {
            let still = self.to.functions.iter().any(|f| {
                f.name == function.name
                    && f.arguments == function.arguments
                    && f.result == function.result
            });
            if !still {
                self.push(format!(
                    "DROP FUNCTION {}({})",
                    quote_ident(&function.name),
                    function.arguments
                ));
            }
        }
        self.views_around_tables();
        for old in &self.from.enums {
            if !self.to.enums.iter().any(|e| e.name == old.name) {
                self.push(format!("DROP TYPE {}", quote_ident(&old.name)));
            }
        }
        for ext in &self.from.extensions {
            if !self.to.extensions.iter().any(|e| e.name == ext.name) {
                self.push(format!("DROP EXTENSION {}", quote_ident(&ext.name)));
            }
        }
        self.steps
    }

    /// Views go first and come back last: a view pins the columns it reads, so when anything
    /// else changes, the views that stay are rebuilt around the change as well as the views
    /// whose query changed.
    fn views_around_tables(&mut self) {
        let others_change = !self.steps.is_empty();
        let mut first = Vec::new();
        let mut last = Vec::new();
        for old in &self.from.views {
            let new = self.to.views.iter().find(|v| v.name == old.name);
            if new.is_none_or(|new| others_change || new.definition != old.definition) {
                first.push(format!("DROP VIEW {}", quote_ident(&old.name)));
            }
        }
        for new in &self.to.views {
            let old = self.from.views.iter().find(|v| v.name == new.name);
            if old.is_none_or(|old| others_change || old.definition != new.definition) {
                last.push(format!(
                    "CREATE VIEW {} AS {}",
                    quote_ident(&new.name),
                    new.definition
                ));
            }
        }
        let middle = std::mem::take(&mut self.steps);
        for sql in first {
            self.push(sql);
        }
        self.steps.extend(middle);
        for sql in last {
            self.push(sql);
        }
    }

    /// New enum types, and changed ones: labels only added are `ADD VALUE`d in place; labels
    /// removed or reordered need the type rebuilt and its columns converted (a hazard when
    /// rows hold a label that goes).
    fn enums_before_tables(&mut self) {
        for new in &self.to.enums {
            let Some(old) = self.from.enums.iter().find(|e| e.name == new.name) else {
                self.push(format!(
                    "CREATE TYPE {} AS ENUM ({})",
                    quote_ident(&new.name),
                    labels(&new.values)
                ));
                continue;
            };
            if old.values == new.values {
                continue;
            }
            let kept: Vec<&String> = new
                .values
                .iter()
                .filter(|v| old.values.contains(v))
                .collect();
            let only_added =
                kept.len() == old.values.len() && kept.iter().copied().eq(old.values.iter());
            if only_added {
                for (index, value) in new.values.iter().enumerate() {
                    if old.values.contains(value) {
                        continue;
                    }
                    let place = match new.values[index + 1..]
                        .iter()
                        .find(|v| old.values.contains(v))
                    {
                        Some(next) => format!(" BEFORE {}", literal(next)),
                        None => String::new(),
                    };
                    self.push_with(
                        format!("ALTER TYPE {} ADD VALUE {}{place}", quote_ident(&new.name), literal(value)),
                        None,
                        vec![Lint {
                            rule: "enum-value-in-same-transaction",
                            message: format!(
                                "the new label {value:?} of {} cannot be used before this migration commits: use it in a later one",
                                new.name
                            ),
                        }],
                    );
                }
                continue;
            }
            self.rebuild_enum(old, new);
        }
    }

    fn rebuild_enum(&mut self, old: &EnumType, new: &EnumType) {
        let name = quote_ident(&new.name);
        let retired = quote_ident(&format!("{}__old", new.name));
        let removed: Vec<&String> = old
            .values
            .iter()
            .filter(|v| !new.values.contains(v))
            .collect();
        let columns: Vec<(&Table, &Column)> = self
            .from
            .tables
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
            .filter(|(_, c)| c.data_type == old.name || c.data_type == format!("{}[]", old.name))
            .collect();
        self.push(format!("ALTER TYPE {name} RENAME TO {retired}"));
        self.push(format!(
            "CREATE TYPE {name} AS ENUM ({})",
            labels(&new.values)
        ));
        for (table, column) in columns {
            let (table_name, column_name) = (quote_ident(&table.name), quote_ident(&column.name));
            let array = if column.data_type.ends_with("[]") {
                "[]"
            } else {
                ""
            };
            if column.default.is_some() {
                self.push(format!(
                    "ALTER TABLE {table_name} ALTER COLUMN {column_name} DROP DEFAULT"
                ));
            }
            let hazard = (!removed.is_empty()).then(|| Hazard {
                description: format!(
                    "converts {}.{} to the new {}: rows holding {} make it fail",
                    table.name,
                    column.name,
                    new.name,
                    removed.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
                ),
                count_sql: {
                    let gone = labels(&removed.iter().map(|v| (*v).clone()).collect::<Vec<_>>());
                    if array.is_empty() {
                        format!("SELECT count(*) FROM {table_name} WHERE {column_name}::text IN ({gone})")
                    } else {
                        format!("SELECT count(*) FROM {table_name} WHERE {column_name}::text[] && ARRAY[{gone}]")
                    }
                },
            });
            self.push_with(
                format!(
                    "ALTER TABLE {table_name} ALTER COLUMN {column_name} TYPE {name}{array} USING {column_name}::text{array}::{name}{array}"
                ),
                hazard,
                Vec::new(),
            );
            if let Some(default) = &column.default {
                self.push(format!(
                    "ALTER TABLE {table_name} ALTER COLUMN {column_name} SET DEFAULT {}",
                    default.replace(&format!("::{}", old.name), &format!("::{name}"))
                ));
            }
        }
        self.push(format!("DROP TYPE {retired}"));
    }

    fn alter_columns(&mut self, pair: &Pair<'a>) {
        let table = quote_ident(&pair.new.name);
        for new in &pair.new.columns {
            let old = pair
                .old
                .columns
                .iter()
                .find(|c| self.renames.new_column_name(&pair.new.name, &c.name) == new.name);
            let col = quote_ident(&new.name);
            let Some(old) = old else {
                let required = !new.nullable
                    && new.default.is_none()
                    && new.identity.is_none()
                    && new.generated.is_none();
                let (hazard, lints) = if required {
                    (
                        Some(Hazard {
                            description: format!("adds NOT NULL column {}.{} without a default: fails on a table with rows", pair.new.name, new.name),
                            count_sql: format!("SELECT count(*) FROM {table}"),
                        }),
                        vec![Lint {
                            rule: "adding-required-field",
                            message: format!("{}.{} is NOT NULL without a default: give it a default, or add it nullable, backfill, then set NOT NULL", pair.new.name, new.name),
                        }],
                    )
                } else if new.generated.is_some() {
                    (
                        None,
                        vec![Lint {
                            rule: "adding-stored-generated-column",
                            message: format!(
                                "{}.{} is computed for every existing row: the table is rewritten under an exclusive lock",
                                pair.new.name, new.name
                            ),
                        }],
                    )
                } else {
                    (None, Vec::new())
                };
                self.push_with(
                    format!("ALTER TABLE {table} ADD COLUMN {}", column_definition(new)),
                    hazard,
                    lints,
                );
                continue;
            };
            let old_default = old
                .default
                .as_ref()
                .map(|d| self.renamed(&pair.old.name, d));
            if old.data_type != new.data_type {
                if old_default.is_some() {
                    self.push(format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT"
                    ));
                }
                let hazard = (!is_safe_widening(&old.data_type, &new.data_type)).then(|| Hazard {
                    description: format!(
                        "changes {}.{} from {} to {}: values may fail to convert or lose precision",
                        pair.new.name, new.name, old.data_type, new.data_type
                    ),
                    count_sql: format!("SELECT count({col}) FROM {table}"),
                });
                self.push_with(
                    format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} TYPE {} USING {col}::{}",
                        new.data_type, new.data_type
                    ),
                    hazard,
                    vec![Lint {
                        rule: "changing-column-type",
                        message: format!(
                            "changing {}.{} to {} may rewrite the table under an exclusive lock",
                            pair.new.name, new.name, new.data_type
                        ),
                    }],
                );
                if let Some(default) = &new.default {
                    self.push(format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default}"
                    ));
                }
            } else if old_default != new.default {
                match &new.default {
                    Some(default) => self.push(format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default}"
                    )),
                    None => self.push(format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT"
                    )),
                }
            }
            if old.nullable && !new.nullable {
                self.push_with(
                    format!("ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL"),
                    Some(Hazard {
                        description: format!("makes {}.{} NOT NULL: fails while a row holds NULL there", pair.new.name, new.name),
                        count_sql: format!("SELECT count(*) FROM {table} WHERE {col} IS NULL"),
                    }),
                    vec![Lint {
                        rule: "adding-not-nullable-field",
                        message: format!("SET NOT NULL on {}.{} scans the whole table under an exclusive lock; a CHECK (… IS NOT NULL) NOT VALID, validated first, avoids it", pair.new.name, new.name),
                    }],
                );
            } else if !old.nullable && new.nullable {
                self.push(format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} DROP NOT NULL"
                ));
            }
        }
    }

    /// Which objects of `pair.old` survive as which objects of `pair.new`: same name and same
    /// definition, or (after a rename) another name with the same definition.
    fn matches(&self, pair: &Pair) -> Matches {
        let renamed = |def: &str, own_name: &str| {
            replace_word(&self.renamed(&pair.old.name, def), own_name, "\u{0}")
        };
        let plain = |def: &str, own_name: &str| replace_word(def, own_name, "\u{0}");
        Matches {
            constraints: match_objects(
                constraints(pair.old).map(|c| (c.name.as_str(), renamed(&c.definition, &c.name))),
                constraints(pair.new).map(|c| (c.name.as_str(), plain(&c.definition, &c.name))),
            ),
            foreign_keys: match_objects(
                pair.old
                    .foreign_keys
                    .iter()
                    .map(|f| (f.name.as_str(), renamed(&f.definition, &f.name))),
                pair.new
                    .foreign_keys
                    .iter()
                    .map(|f| (f.name.as_str(), plain(&f.definition, &f.name))),
            ),
            indexes: match_objects(
                pair.old
                    .indexes
                    .iter()
                    .filter(|i| i.constraint.is_none())
                    .map(|i| (i.name.as_str(), renamed(&i.definition, &i.name))),
                pair.new
                    .indexes
                    .iter()
                    .filter(|i| i.constraint.is_none())
                    .map(|i| (i.name.as_str(), plain(&i.definition, &i.name))),
            ),
            triggers: match_objects(
                pair.old
                    .triggers
                    .iter()
                    .map(|t| (t.name.as_str(), renamed(&t.definition, &t.name))),
                pair.new
                    .triggers
                    .iter()
                    .map(|t| (t.name.as_str(), plain(&t.definition, &t.name))),
            ),
        }
    }
}

/// Objects of one kind matched between the old and the new table: (old name, new name).
#[derive(Default)]
struct Matches {
    constraints: Vec<(String, String)>,
    foreign_keys: Vec<(String, String)>,
    indexes: Vec<(String, String)>,
    triggers: Vec<(String, String)>,
}

/// `'a', 'b'`: enum labels as SQL literals.
fn labels(values: &[String]) -> String {
    values
        .iter()
        .map(|v| literal(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn kept_old(matched: &[(String, String)], name: &str) -> bool {
    matched.iter().any(|(old, _)| old == name)
}

fn kept_new(matched: &[(String, String)], name: &str) -> bool {
    matched.iter().any(|(_, new)| new == name)
}

/// Pair old and new objects by (name, normalised definition) first, then by definition alone.
fn match_objects<'n>(
    old: impl Iterator<Item = (&'n str, String)>,
    new: impl Iterator<Item = (&'n str, String)>,
) -> Vec<(String, String)> {
    let mut old: Vec<(&str, String)> = old.collect();
    let mut new: Vec<(&str, String)> = new.collect();
    let mut matched = Vec::new();
    old.retain(
        |(name, def)| match new.iter().position(|(n, d)| n == name && d == def) {
            Some(i) => {
                new.remove(i);
                matched.push((name.to_string(), name.to_string()));
                false
            }
            None => true,
        },
    );
    for (name, def) in old {
        if let Some(i) = new.iter().position(|(_, d)| *d == def) {
            let (new_name, _) = new.remove(i);
            matched.push((name.to_owned(), new_name.to_owned()));
        }
    }
    matched
}

/// Primary key, uniques and checks of a table.
fn constraints(table: &Table) -> impl Iterator<Item = &Constraint> {
    table
        .primary_key
        .iter()
        .chain(&table.uniques)
        .chain(&table.checks)
}

/// A new UNIQUE or CHECK on a table that may hold rows violating it.
fn constraint_hazard(table: &Table, constraint: &Constraint) -> Option<Hazard> {
    let name = quote_ident(&table.name);
    if let Some(expression) = constraint.definition.strip_prefix("CHECK ") {
        let expression = expression.trim_end_matches(" NOT VALID");
        return Some(Hazard {
            description: format!(
                "adds check {} on {}: fails while a row violates it",
                constraint.name, table.name
            ),
            count_sql: format!("SELECT count(*) FROM {name} WHERE ({expression}) IS FALSE"),
        });
    }
    if constraint.definition.starts_with("UNIQUE")
        || constraint.definition.starts_with("PRIMARY KEY")
    {
        let columns: Vec<String> = constraint.columns.iter().map(|c| quote_ident(c)).collect();
        let columns = columns.join(", ");
        return Some(Hazard {
            description: format!("adds {} on {} ({columns}): fails while rows share a value", constraint.name, table.name),
            count_sql: format!("SELECT count(*) FROM (SELECT 1 FROM {name} GROUP BY {columns} HAVING count(*) > 1) duplicates"),
        });
    }
    None
}

/// `name type [GENERATED …] [DEFAULT …] [NOT NULL]` for CREATE TABLE and ADD COLUMN.
fn column_definition(column: &Column) -> String {
    let mut text = format!("{} {}", quote_ident(&column.name), column.data_type);
    if let Some(expression) = &column.generated {
        text.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
    }
    if let Some(identity) = &column.identity {
        text.push_str(&format!(
            " GENERATED {} AS IDENTITY",
            identity.to_uppercase()
        ));
    }
    if let Some(default) = &column.default {
        text.push_str(&format!(" DEFAULT {default}"));
    }
    if !column.nullable {
        text.push_str(" NOT NULL");
    }
    text
}

/// Type changes that never fail nor lose anything.
fn is_safe_widening(from: &str, to: &str) -> bool {
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        "numeric" => Some(4),
        _ => None,
    };
    if let (Some(a), Some(b)) = (rank(from), rank(to)) {
        return a < b;
    }
    let varchar_len = |t: &str| {
        t.strip_prefix("character varying(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|n| n.parse::<u32>().ok())
    };
    match (varchar_len(from), varchar_len(to)) {
        (Some(a), Some(b)) => a <= b,
        (Some(_), None) => to == "text" || to == "character varying",
        _ => from == "character varying" && to == "text",
    }
}

/// Replace `old` by `new` wherever it stands as a whole identifier.
fn replace_word(text: &str, old: &str, new: &str) -> String {
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

/// Compare two schemas as the diff sees them (column order is not compared: PostgreSQL can
/// only append columns). Returns a description of each difference.
pub fn differences(a: &Schema, b: &Schema) -> Vec<String> {
    let normalise = |s: &Schema| -> BTreeMap<String, String> {
        let mut items = BTreeMap::new();
        for e in &s.extensions {
            items.insert(format!("extension {}", e.name), e.version.clone());
        }
        for e in &s.enums {
            items.insert(format!("enum {}", e.name), e.values.join(", "));
        }
        for v in &s.views {
            items.insert(format!("view {}", v.name), v.definition.clone());
        }
        for f in &s.functions {
            items.insert(
                format!("function {}({})", f.name, f.arguments),
                f.definition.clone(),
            );
        }
        for t in &s.tables {
            items.insert(format!("table {}", t.name), String::new());
            for c in &t.columns {
                items.insert(format!("column {}.{}", t.name, c.name), format!("{c:?}"));
            }
            for c in constraints(t) {
                items.insert(
                    format!("constraint {}.{}", t.name, c.name),
                    c.definition.clone(),
                );
            }
            for fk in &t.foreign_keys {
                items.insert(
                    format!("foreign key {}.{}", t.name, fk.name),
                    fk.definition.clone(),
                );
            }
            for i in &t.indexes {
                items.insert(format!("index {}", i.name), i.definition.clone());
            }
            for tr in &t.triggers {
                items.insert(
                    format!("trigger {}.{}", t.name, tr.name),
                    tr.definition.clone(),
                );
            }
        }
        items
    };
    let (a, b) = (normalise(a), normalise(b));
    let mut out = Vec::new();
    for (key, value) in &a {
        match b.get(key) {
            None => out.push(format!("- {key}")),
            Some(other) if other != value => out.push(format!("~ {key}: {value} => {other}")),
            Some(_) => {}
        }
    }
    for key in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("+ {key}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("CamelCase"), "\"CamelCase\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("9lives"), "\"9lives\"");
    }

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
    fn widening_is_recognised() {
        assert!(is_safe_widening("integer", "bigint"));
        assert!(!is_safe_widening("bigint", "integer"));
        assert!(is_safe_widening("character varying(20)", "text"));
        assert!(is_safe_widening(
            "character varying(20)",
            "character varying(40)"
        ));
        assert!(!is_safe_widening(
            "character varying(40)",
            "character varying(20)"
        ));
        assert!(!is_safe_widening("text", "integer"));
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
