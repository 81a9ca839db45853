//! `sambung db drop`: every object of the schema, the migrations table included, in one
//! transaction.

use serde::Serialize;
use sqlx::{Connection, PgConnection};

/// An object `drop_all` removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaObject {
    /// `extension`, `view`, `table`, `sequence`, `function`, `procedure` or `type`.
    pub kind: &'static str,
    /// Its name (functions with their argument types, as DROP needs them).
    pub name: String,
}

/// What `drop_all` would drop, in the order it drops it.
pub async fn objects_to_drop(conn: &mut PgConnection) -> Result<Vec<SchemaObject>, sqlx::Error> {
    // Objects that belong to an extension go with it; owned sequences go with their table.
    let rows = sqlx::query_as::<_, (String, String)>(
        "WITH schema_oid AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema()),
         extension_members AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
         SELECT 'view', quote_ident(c.relname) FROM pg_class c
          WHERE c.relnamespace = (SELECT oid FROM schema_oid) AND c.relkind IN ('v', 'm')
            AND c.oid NOT IN (SELECT objid FROM extension_members)
         UNION ALL
         SELECT 'table', quote_ident(c.relname) FROM pg_class c
          WHERE c.relnamespace = (SELECT oid FROM schema_oid) AND c.relkind IN ('r', 'p', 'f')
            AND NOT c.relispartition AND c.oid NOT IN (SELECT objid FROM extension_members)
         UNION ALL
         SELECT 'sequence', quote_ident(c.relname) FROM pg_class c
          WHERE c.relnamespace = (SELECT oid FROM schema_oid) AND c.relkind = 'S'
            AND c.oid NOT IN (SELECT objid FROM extension_members)
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
         UNION ALL
         SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
                quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')'
           FROM pg_proc p
          WHERE p.pronamespace = (SELECT oid FROM schema_oid) AND p.prokind IN ('f', 'p')
            AND p.oid NOT IN (SELECT objid FROM extension_members)
         UNION ALL
         SELECT 'type', quote_ident(t.typname) FROM pg_type t
          WHERE t.typnamespace = (SELECT oid FROM schema_oid) AND t.typtype IN ('e', 'd', 'r', 'c')
            AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
            AND t.oid NOT IN (SELECT objid FROM extension_members)
         UNION ALL
         SELECT 'extension', quote_ident(e.extname) FROM pg_extension e
          WHERE e.extnamespace = (SELECT oid FROM schema_oid)",
    )
    .fetch_all(&mut *conn)
    .await?;
    let order = [
        "view",
        "table",
        "sequence",
        "function",
        "procedure",
        "type",
        "extension",
    ];
    let mut objects: Vec<SchemaObject> = rows
        .into_iter()
        .filter_map(|(kind, name)| {
            let kind = order.iter().copied().find(|k| *k == kind)?;
            Some(SchemaObject { kind, name })
        })
        .collect();
    objects.sort_by_key(|o| (order.iter().position(|k| *k == o.kind), o.name.clone()));
    Ok(objects)
}

/// Drop every object of the current schema in one transaction; returns what it dropped.
pub async fn drop_all(conn: &mut PgConnection) -> Result<Vec<SchemaObject>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let objects = objects_to_drop(&mut tx).await?;
    for object in &objects {
        // IF EXISTS: a CASCADE of an earlier drop may have taken it already.
        let kind = object.kind.to_uppercase();
        sqlx::raw_sql(&format!("DROP {kind} IF EXISTS {} CASCADE", object.name))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(objects)
}
