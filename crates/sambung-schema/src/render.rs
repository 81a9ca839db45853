//! Showing a [`Schema`] to people: readable text, and a Mermaid `erDiagram` for docs.

use std::fmt::Write as _;

use crate::introspect::{Schema, Table};

/// The schema as readable text: each table with its columns, keys, indexes and triggers.
pub fn to_text(schema: &Schema) -> String {
    let mut out = String::new();
    if schema.is_empty() {
        let _ = writeln!(
            out,
            "Schema {:?} is empty (run `sambung db migrate`).",
            schema.name
        );
        return out;
    }
    for extension in &schema.extensions {
        let _ = writeln!(out, "extension {} {}", extension.name, extension.version);
    }
    for enum_type in &schema.enums {
        let _ = writeln!(
            out,
            "enum {} ({})",
            enum_type.name,
            enum_type.values.join(", ")
        );
    }
    for function in &schema.functions {
        let _ = writeln!(
            out,
            "function {}({}) returns {}",
            function.name, function.arguments, function.result
        );
    }
    for table in &schema.tables {
        out.push('\n');
        write_table(&mut out, table);
    }
    for view in &schema.views {
        let _ = writeln!(out, "\nview {} AS {}", view.name, view.definition);
    }
    out
}

fn write_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "table {}", table.name);
    let name_width = table
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let type_width = table
        .columns
        .iter()
        .map(|c| c.data_type.len())
        .max()
        .unwrap_or(0);
    for column in &table.columns {
        let mut line = format!(
            "  {:name_width$}  {:type_width$}  {}",
            column.name,
            column.data_type,
            if column.nullable {
                "null    "
            } else {
                "not null"
            }
        );
        if let Some(default) = &column.default {
            let _ = write!(line, "  default {default}");
        }
        if let Some(identity) = &column.identity {
            let _ = write!(line, "  generated {identity} as identity");
        }
        if let Some(generated) = &column.generated {
            let _ = write!(line, "  generated always as ({generated}) stored");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let Some(pk) = &table.primary_key {
        let _ = writeln!(out, "  primary key {}: {}", pk.name, pk.definition);
    }
    for fk in &table.foreign_keys {
        let _ = writeln!(
            out,
            "  foreign key {}: ({}) -> {}({}) on delete {}",
            fk.name,
            fk.columns.join(", "),
            fk.referenced_table,
            fk.referenced_columns.join(", "),
            fk.on_delete
        );
    }
    for unique in &table.uniques {
        let _ = writeln!(out, "  unique {}: {}", unique.name, unique.definition);
    }
    for check in &table.checks {
        let _ = writeln!(out, "  check {}: {}", check.name, check.definition);
    }
    for index in &table.indexes {
        let _ = writeln!(out, "  index {}", index.definition);
    }
    for trigger in &table.triggers {
        let _ = writeln!(out, "  trigger {}", trigger.definition);
    }
    if !table.options.is_empty() {
        let _ = writeln!(out, "  with ({})", table.options.join(", "));
    }
}

/// A Mermaid entity relationship diagram: every table with its columns (PK, FK, UK marked)
/// and one relationship per foreign key, optional (`o|`) where the column may be NULL.
pub fn to_mermaid(schema: &Schema) -> String {
    let mut out = String::from("erDiagram\n");
    for table in &schema.tables {
        let _ = writeln!(out, "    {} {{", table.name);
        for column in &table.columns {
            let mut keys = Vec::new();
            if table
                .primary_key
                .as_ref()
                .is_some_and(|pk| pk.columns.contains(&column.name))
            {
                keys.push("PK");
            }
            if table
                .foreign_keys
                .iter()
                .any(|fk| fk.columns.contains(&column.name))
            {
                keys.push("FK");
            }
            if table
                .uniques
                .iter()
                .any(|u| u.columns == [column.name.clone()])
            {
                keys.push("UK");
            }
            // Mermaid attribute types are single words.
            let data_type: String = column
                .data_type
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '_' })
                .collect();
            let _ = writeln!(
                out,
                "        {} {} {}",
                data_type,
                column.name,
                keys.join(", ")
            )
            .map(|_| ());
        }
        let _ = writeln!(out, "    }}");
    }
    for table in &schema.tables {
        for fk in &table.foreign_keys {
            let optional = fk
                .columns
                .iter()
                .any(|c| table.column(c).is_some_and(|col| col.nullable));
            let parent_side = if optional { "|o" } else { "||" };
            let _ = writeln!(
                out,
                "    {} {}--o{{ {} : \"{}\"",
                fk.referenced_table,
                parent_side,
                table.name,
                fk.columns.join(", ")
            );
        }
    }
    // Trailing spaces (columns without keys) are noise in committed docs.
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
