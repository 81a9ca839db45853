//! The difference between two introspected schemas as ordered DDL, with what each step
//! risks (data loss) and what a careful reviewer would say about it (lint, after squawk).
//!
//! Order: extensions, functions, then everything that goes (triggers, foreign keys, indexes,
//! constraints) while the old names still hold, renames, dropped columns and tables, new
//! tables and columns, constraints (foreign keys last), indexes, triggers and storage
//! parameters, and finally the functions and extensions nothing needs any more.
//!
//! By job: [`renames`] (hints, ambiguities and rewriting definitions), [`rebuild`] (views and
//! enum types rebuilt around a change), [`hazards`] (what a step may destroy or refuse, and
//! column definitions), [`compare`] (whether two schemas are the same); this module orders
//! the steps.

use sambung_sql::quote_ident;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::introspect::{Constraint, Schema, Table};
use crate::migrator::NO_TRANSACTION;
mod compare;
mod hazards;
mod rebuild;
mod renames;

pub use compare::differences;
pub use renames::{ambiguities, Ambiguity, Renames};

use hazards::{column_definition, constraint_hazard, is_safe_widening};
use renames::replace_word;

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
        // A function is created before the tables it reads (they may be new too): its body is
        // checked when it is first called, not now, as pg_dump has it.
        let replaced = self.to.functions.iter().any(|function| {
            !self.from.functions.iter().any(|f| {
                f.name == function.name
                    && f.arguments == function.arguments
                    && f.definition == function.definition
            })
        });
        if replaced {
            self.push("SET LOCAL check_function_bodies = off".to_owned());
        }
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
            let old_options = pairs
                .iter()
                .find(|p| p.new.name == table.name)
                .map_or(&[][..], |p| &p.old.options[..]);
            self.storage_options(&table.name, old_options, &table.options);
        }

        // What nothing needs any more (one whose result changed was dropped and made again
        // above).
        for function in &self.from.functions {
            let still = self
                .to
                .functions
                .iter()
                .any(|f| f.name == function.name && f.arguments == function.arguments);
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

    /// Set the storage parameters (`name=value`) that are new or changed, reset the ones
    /// that went.
    fn storage_options(&mut self, table: &str, old: &[String], new: &[String]) {
        let name_of = |option: &String| option.split('=').next().unwrap_or_default().to_owned();
        let set: Vec<&str> = new
            .iter()
            .filter(|o| !old.contains(o))
            .map(String::as_str)
            .collect();
        let reset: Vec<String> = old
            .iter()
            .map(name_of)
            .filter(|name| !new.iter().any(|o| name_of(o) == *name))
            .collect();
        if !set.is_empty() {
            self.push(format!(
                "ALTER TABLE {} SET ({})",
                quote_ident(table),
                set.join(", ")
            ));
        }
        if !reset.is_empty() {
            self.push(format!(
                "ALTER TABLE {} RESET ({})",
                quote_ident(table),
                reset.join(", ")
            ));
        }
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
            if old.generated != new.generated {
                match &new.generated {
                    // The values stay; from now on they are written, not computed.
                    None => self.push(format!(
                        "ALTER TABLE {table} ALTER COLUMN {col} DROP EXPRESSION"
                    )),
                    // PostgreSQL cannot give an existing column an expression (before 17):
                    // the column is made again, computed for every row. Its indexes went
                    // before it (`regenerated_columns`) and are made again after.
                    Some(_) => {
                        self.push(format!("ALTER TABLE {table} DROP COLUMN {col}"));
                        self.push_with(
                            format!("ALTER TABLE {table} ADD COLUMN {}", column_definition(new)),
                            None,
                            vec![Lint {
                                rule: "adding-stored-generated-column",
                                message: format!(
                                    "{}.{} is computed again for every existing row: the table is rewritten under an exclusive lock",
                                    pair.new.name, new.name
                                ),
                            }],
                        );
                        continue;
                    }
                }
            }
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
        let regenerated = regenerated_columns(pair);
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
                    .map(|i| {
                        let definition = renamed(&i.definition, &i.name);
                        // An index on a column made again goes with it: never kept.
                        let on_regenerated = regenerated
                            .iter()
                            .any(|column| replace_word(&definition, column, "\u{1}") != definition);
                        (
                            i.name.as_str(),
                            definition + if on_regenerated { "\u{1}" } else { "" },
                        )
                    }),
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
/// The (old) names of the columns of `pair` that are made again: those given a new generation
/// expression (see `alter_columns`).
fn regenerated_columns<'t>(pair: &Pair<'t>) -> Vec<&'t str> {
    pair.old
        .columns
        .iter()
        .filter(|old| {
            pair.new.columns.iter().any(|new| {
                new.name == old.name && new.generated.is_some() && new.generated != old.generated
            })
        })
        .map(|c| c.name.as_str())
        .collect()
}

fn labels(values: &[String]) -> String {
    values
        .iter()
        .map(|v| sambung_sql::quote_literal(v))
        .collect::<Vec<_>>()
        .join(", ")
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
