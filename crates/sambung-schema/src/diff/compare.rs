//! Whether two schemas are the same, as the diff sees them.

use std::collections::BTreeMap;

use super::constraints;
use crate::introspect::Schema;

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
            items.insert(format!("table {}", t.name), t.options.join(", "));
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
