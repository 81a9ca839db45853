//! Every other list of providers agrees with [`Provider::ALL`]: a provider added here and
//! forgotten in the database's CHECKs (or written again into the web UI) fails here.

use std::collections::BTreeSet;

use sambung_providers::Provider;

fn names() -> BTreeSet<String> {
    Provider::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

/// The names in `CONSTRAINT {constraint} CHECK (provider IN ('a', 'b', ...))`.
fn check_list(sql: &str, constraint: &str) -> BTreeSet<String> {
    let at = sql
        .find(&format!("CONSTRAINT {constraint} CHECK (provider IN ("))
        .unwrap_or_else(|| panic!("{constraint} is not a provider list"));
    let list = &sql[at..];
    let list = &list[list.find("IN (").unwrap() + 4..list.find("))").unwrap()];
    list.split(',')
        .map(|name| name.trim().trim_matches('\'').to_owned())
        .collect()
}

#[test]
fn the_databases_checks_allow_exactly_the_known_providers() {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../sambung-schema/schema");
    for (file, constraint) in [
        ("09_api_key.sql", "api_keys_provider_check"),
        ("10_model.sql", "models_provider_check"),
    ] {
        let sql = std::fs::read_to_string(format!("{schema}/{file}")).unwrap();
        assert_eq!(
            check_list(&sql, constraint),
            names(),
            "{file}: widen {constraint} (in the schema file, then `sambung db generate`)"
        );
    }
}

#[test]
fn the_web_ui_takes_its_list_from_the_server() {
    let page = include_str!("../../sambung-web/assets/index.html");
    for provider in Provider::ALL {
        assert!(
            !page.contains(&format!("<option>{}</option>", provider.as_str())),
            "index.html lists {provider} itself: the forms fill in GET /api/v1/providers"
        );
    }
}
