//! Views and enum types rebuilt around the changes they would block.

use sambung_sql::quote_ident;

use super::renames::mentions_word;
use super::{labels, Differ, Hazard, Lint};
use crate::introspect::{Column, EnumType, Table, View};

impl<'a> Differ<'a> {
    /// Views go first and come back last: a view pins the columns it reads, so a view is
    /// rebuilt when its query changed or when a table it reads (by name in its query) changes
    /// its columns, goes or is renamed; any change of types or functions rebuilds them all.
    /// A view that reads another view is rebuilt with it: dropped before it, made after it.
    pub(super) fn views_around_tables(&mut self) {
        let types_or_functions_change = self.from.enums != self.to.enums
            || self.from.functions != self.to.functions
            || self.from.extensions != self.to.extensions;
        let changed_tables: Vec<&str> = self
            .from
            .tables
            .iter()
            .filter(|old| {
                let new_name = self.renames.new_table_name(&old.name);
                self.to
                    .table(new_name)
                    .is_none_or(|new| new.name != old.name || new.columns != old.columns)
            })
            .map(|t| t.name.as_str())
            .collect();
        let mut rebuilt: Vec<&str> = self
            .from
            .views
            .iter()
            .filter(|old| {
                types_or_functions_change
                    || changed_tables
                        .iter()
                        .any(|table| mentions_word(&old.definition, table))
                    || self
                        .to
                        .views
                        .iter()
                        .find(|v| v.name == old.name)
                        .is_none_or(|new| new.definition != old.definition)
            })
            .map(|v| v.name.as_str())
            .collect();
        // Those that read a rebuilt view, until no more do.
        while let Some(reader) = self.from.views.iter().find(|old| {
            !rebuilt.contains(&old.name.as_str())
                && rebuilt
                    .iter()
                    .any(|view| mentions_word(&old.definition, view))
        }) {
            rebuilt.push(&reader.name);
        }
        let mut first = Vec::new();
        for old in in_reading_order(&self.from.views).into_iter().rev() {
            if rebuilt.contains(&old.name.as_str()) {
                first.push(format!("DROP VIEW {}", quote_ident(&old.name)));
            }
        }
        let mut last = Vec::new();
        for new in in_reading_order(&self.to.views) {
            let old = self.from.views.iter().find(|v| v.name == new.name);
            if old.is_none_or(|old| rebuilt.contains(&old.name.as_str())) {
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
    pub(super) fn enums_before_tables(&mut self) {
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
                        Some(next) => format!(" BEFORE {}", sambung_sql::quote_literal(next)),
                        None => String::new(),
                    };
                    self.push_with(
                        format!("ALTER TYPE {} ADD VALUE {}{place}", quote_ident(&new.name), sambung_sql::quote_literal(value)),
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
}

/// `views` each after those it reads (by name in its query); in their given order otherwise.
fn in_reading_order(views: &[View]) -> Vec<&View> {
    let mut ordered: Vec<&View> = Vec::with_capacity(views.len());
    let mut waiting: Vec<&View> = views.iter().collect();
    while !waiting.is_empty() {
        let ready = waiting.iter().position(|view| {
            !waiting.iter().any(|other| {
                other.name != view.name && mentions_word(&view.definition, &other.name)
            })
        });
        // A cycle cannot be made in PostgreSQL; should one appear, keep the given order.
        ordered.push(waiting.remove(ready.unwrap_or(0)));
    }
    ordered
}
