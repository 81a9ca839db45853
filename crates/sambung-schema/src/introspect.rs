//! Reading a live schema from PostgreSQL's catalog into a [`Schema`]: the model that
//! `sambung db schema` prints, and that schema diffs and Studio build on.
//!
//! Everything is ordered by name (columns by position) so that the same schema always gives
//! the same value, whatever order its objects were created in. The migrations table is the
//! tool's own bookkeeping and is left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::MIGRATIONS_TABLE;

/// A schema (by default `current_schema()`, normally `public`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub extensions: Vec<Extension>,
    /// Enum types, with their labels in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enums: Vec<EnumType>,
    pub functions: Vec<Function>,
    pub tables: Vec<Table>,
    /// Views, with their queries as PostgreSQL prints them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<View>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    /// The `SELECT …` after `CREATE VIEW name AS`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    /// The argument list, e.g. `a integer, b text`.
    pub arguments: String,
    pub result: String,
    /// `CREATE OR REPLACE FUNCTION …` as PostgreSQL prints it.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Option<Constraint>,
    pub foreign_keys: Vec<ForeignKey>,
    pub uniques: Vec<Constraint>,
    pub checks: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub triggers: Vec<Trigger>,
    /// Storage parameters (`WITH (…)`) as PostgreSQL keeps them, `name=value`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// As PostgreSQL names it: `uuid`, `timestamp with time zone`, `character varying(20)`.
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    /// `always` or `by default` for identity columns.
    pub identity: Option<String>,
    /// The expression of a stored generated column.
    pub generated: Option<String>,
}

/// A primary key, unique or check constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    pub columns: Vec<String>,
    /// As PostgreSQL prints it: `UNIQUE (slug)`, `CHECK (…)`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
    /// `no action`, `restrict`, `cascade`, `set null` or `set default`.
    pub on_delete: String,
    pub on_update: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// `CREATE [UNIQUE] INDEX … USING method (…) [WHERE …]` as PostgreSQL prints it.
    pub definition: String,
    pub method: String,
    pub unique: bool,
    pub primary: bool,
    /// The partial index's predicate.
    pub predicate: Option<String>,
    /// The constraint this index backs (primary key, unique), if any.
    pub constraint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub function: String,
    pub definition: String,
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Whether the schema holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.extensions.is_empty()
            && self.enums.is_empty()
            && self.functions.is_empty()
            && self.tables.is_empty()
            && self.views.is_empty()
    }
}

/// Read the current schema of the connection's database.
pub async fn introspect(conn: &mut PgConnection) -> Result<Schema, sqlx::Error> {
    let name: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await?;

    let extensions = sqlx::query_as::<_, (String, String)>(
        "SELECT e.extname::text, e.extversion
           FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
          WHERE n.nspname = current_schema()
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(name, version)| Extension { name, version })
    .collect();

    let enums = sqlx::query_as::<_, (String, Vec<String>)>(
        "SELECT t.typname::text,
                ARRAY(SELECT e.enumlabel::text FROM pg_enum e
                       WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = current_schema() AND t.typtype = 'e'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(name, values)| EnumType { name, values })
    .collect();

    let functions = sqlx::query_as::<_, (String, String, String, String)>(
        "SELECT p.proname::text, pg_get_function_identity_arguments(p.oid),
                pg_get_function_result(p.oid), pg_get_functiondef(p.oid)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(name, arguments, result, definition)| Function { name, arguments, result, definition })
    .collect();

    let table_rows = sqlx::query_as::<_, (i64, String, Vec<String>)>(
        "SELECT c.oid::int8, c.relname::text,
                ARRAY(SELECT o FROM unnest(c.reloptions) o ORDER BY o)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> $1
          ORDER BY 2",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let oids: Vec<i64> = table_rows.iter().map(|(oid, _, _)| *oid).collect();
    let mut tables: BTreeMap<i64, Table> = table_rows
        .into_iter()
        .map(|(oid, name, options)| {
            let table = Table {
                name,
                columns: Vec::new(),
                primary_key: None,
                foreign_keys: Vec::new(),
                uniques: Vec::new(),
                checks: Vec::new(),
                indexes: Vec::new(),
                triggers: Vec::new(),
                options,
            };
            (oid, table)
        })
        .collect();

    let columns = sqlx::query_as::<_, (i64, String, String, bool, Option<String>, String, String)>(
        "SELECT a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
           FROM pg_attribute a
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = ANY($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attrelid, a.attnum",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await?;
    for (oid, name, data_type, nullable, expression, identity, generated) in columns {
        let (default, generated) = if generated == "s" {
            (None, expression)
        } else {
            (expression, None)
        };
        let identity = match identity.as_str() {
            "a" => Some("always".to_owned()),
            "d" => Some("by default".to_owned()),
            _ => None,
        };
        if let Some(table) = tables.get_mut(&oid) {
            table.columns.push(Column {
                name,
                data_type,
                nullable,
                default,
                identity,
                generated,
            });
        }
    }

    let constraints = sqlx::query_as::<_, ConstraintRow>(
        "SELECT con.conrelid::int8 AS table_oid, con.conname::text AS name, con.contype::text AS kind,
                pg_get_constraintdef(con.oid, true) AS definition,
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                       ORDER BY k.ord) AS columns,
                fc.relname::text AS referenced_table,
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
                       ORDER BY k.ord) AS referenced_columns,
                con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
           FROM pg_constraint con LEFT JOIN pg_class fc ON fc.oid = con.confrelid
          WHERE con.conrelid = ANY($1::int8[]::oid[])
          ORDER BY con.conrelid, con.conname",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await?;
    for row in constraints {
        let Some(table) = tables.get_mut(&row.table_oid) else {
            continue;
        };
        let constraint = Constraint {
            name: row.name,
            columns: row.columns,
            definition: row.definition,
        };
        match row.kind.as_str() {
            "p" => table.primary_key = Some(constraint),
            "u" => table.uniques.push(constraint),
            "c" => table.checks.push(constraint),
            "f" => table.foreign_keys.push(ForeignKey {
                name: constraint.name,
                columns: constraint.columns,
                referenced_table: row.referenced_table.unwrap_or_default(),
                referenced_columns: row.referenced_columns,
                on_delete: referential_action(&row.on_delete),
                on_update: referential_action(&row.on_update),
                definition: constraint.definition,
            }),
            // PostgreSQL 18 names each NOT NULL as a constraint of its own: it is the column's
            // nullability, read above, and the same schema on 15 has none.
            "n" => {}
            // Exclusion and other constraints show as checks with their definition.
            _ => table.checks.push(constraint),
        }
    }

    let indexes = sqlx::query_as::<_, (i64, String, String, String, bool, bool, Option<String>, Option<String>)>(
        "SELECT i.indrelid::int8, ic.relname::text, pg_get_indexdef(i.indexrelid), am.amname::text,
                i.indisunique, i.indisprimary, pg_get_expr(i.indpred, i.indrelid), con.conname::text
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_am am ON am.oid = ic.relam
           LEFT JOIN pg_constraint con
             ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
          WHERE i.indrelid = ANY($1::int8[]::oid[])
          ORDER BY i.indrelid, ic.relname",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await?;
    for (oid, name, definition, method, unique, primary, predicate, constraint) in indexes {
        if let Some(table) = tables.get_mut(&oid) {
            table.indexes.push(Index {
                name,
                definition,
                method,
                unique,
                primary,
                predicate,
                constraint,
            });
        }
    }

    let triggers = sqlx::query_as::<_, (i64, String, String, String)>(
        "SELECT t.tgrelid::int8, t.tgname::text, p.proname::text, pg_get_triggerdef(t.oid, true)
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgrelid = ANY($1::int8[]::oid[]) AND NOT t.tgisinternal
          ORDER BY t.tgrelid, t.tgname",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await?;
    for (oid, name, function, definition) in triggers {
        if let Some(table) = tables.get_mut(&oid) {
            table.triggers.push(Trigger {
                name,
                function,
                definition,
            });
        }
    }

    let mut tables: Vec<Table> = tables.into_values().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let views = sqlx::query_as::<_, (String, String)>(
        "SELECT c.relname::text, pg_get_viewdef(c.oid, true)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind = 'v'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(name, definition)| View {
        name,
        definition: definition.trim().trim_end_matches(';').to_owned(),
    })
    .collect();
    Ok(Schema {
        name,
        extensions,
        enums,
        functions,
        tables,
        views,
    })
}

#[derive(sqlx::FromRow)]
struct ConstraintRow {
    table_oid: i64,
    name: String,
    kind: String,
    definition: String,
    columns: Vec<String>,
    referenced_table: Option<String>,
    referenced_columns: Vec<String>,
    on_delete: String,
    on_update: String,
}

fn referential_action(code: &str) -> String {
    match code {
        "r" => "restrict",
        "c" => "cascade",
        "n" => "set null",
        "d" => "set default",
        _ => "no action",
    }
    .to_owned()
}
