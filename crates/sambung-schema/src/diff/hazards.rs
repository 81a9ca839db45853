//! What a step may destroy or refuse, and how a column is written.

use sambung_sql::quote_ident;

use super::Hazard;
use crate::introspect::{Column, Constraint, Table};

/// A new UNIQUE or CHECK on a table that may hold rows violating it.
pub(super) fn constraint_hazard(table: &Table, constraint: &Constraint) -> Option<Hazard> {
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
pub(super) fn column_definition(column: &Column) -> String {
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
pub(super) fn is_safe_widening(from: &str, to: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
