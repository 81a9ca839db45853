use std::collections::{BTreeSet, HashMap};

use super::*;

fn keys(part: &str, locale: Locale) -> Vec<(String, String)> {
    let (_, files) = PARTS.iter().find(|(p, _)| *p == part).unwrap();
    parse(part, locale, files[locale.index()])
}

#[test]
fn every_key_is_in_both_languages_with_the_same_placeholders() {
    let mut missing = Vec::new();
    for (part, _) in PARTS {
        let english: HashMap<_, _> = keys(part, Locale::En).into_iter().collect();
        let indonesian: HashMap<_, _> = keys(part, Locale::Id).into_iter().collect();
        for key in english.keys().filter(|k| !indonesian.contains_key(*k)) {
            missing.push(format!("{part}: {key} has no Indonesian"));
        }
        for key in indonesian.keys().filter(|k| !english.contains_key(*k)) {
            missing.push(format!("{part}: {key} has no English"));
        }
        for (key, text) in &english {
            if let Some(translated) = indonesian.get(key) {
                let wanted: BTreeSet<_> = placeholders(text).into_iter().collect();
                let got: BTreeSet<_> = placeholders(translated).into_iter().collect();
                if wanted != got {
                    missing.push(format!(
                        "{part}: {key} uses {wanted:?} in English, {got:?} in Indonesian"
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn a_key_lives_in_one_part_and_counts_have_both_forms() {
    for locale in Locale::ALL {
        let mut seen = HashMap::new();
        for (part, _) in PARTS {
            for (key, _) in keys(part, locale) {
                if let Some(other) = seen.insert(key.clone(), part) {
                    panic!("{key} is in both {other} and {part} ({})", locale.code());
                }
            }
        }
        for key in seen.keys() {
            for (form, twin) in [(".one", ".other"), (".other", ".one")] {
                if let Some(stem) = key.strip_suffix(form) {
                    assert!(
                        seen.contains_key(&format!("{stem}{twin}")),
                        "{key} without {stem}{twin}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_browser_gets_its_parts_and_not_the_servers() {
    let catalogue: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(browser_catalogue(Locale::Id)).unwrap();
    assert_eq!(catalogue["settings.language"], "Bahasa");
    let server_only = keys("server", Locale::Id);
    assert!(server_only.iter().all(|(k, _)| !catalogue.contains_key(k)));
}

#[test]
fn text_fills_placeholders_and_keeps_unknown_ones() {
    assert_eq!(
        fill("{a} and {b}", |n| (n == "a").then(|| "1".into())),
        "1 and {b}"
    );
    assert_eq!(
        fill("{not a name} {}", |_| Some("x".into())),
        "{not a name} {}"
    );
    assert_eq!(placeholders("{n} of {total}, {n}"), ["n", "total", "n"]);
    assert_eq!(text(Locale::Id, "no.such.key", &[]), "no.such.key");
}

#[test]
fn accept_language_picks_the_best_of_ours() {
    let cases = [
        ("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7", Some(Locale::Id)),
        ("en-GB,en;q=0.9,id;q=0.8", Some(Locale::En)),
        ("fr-FR,fr;q=0.9,id;q=0.5", Some(Locale::Id)),
        ("de, en;q=0.1, in;q=0.2", Some(Locale::Id)),
        ("id;q=0", None),
        ("*", None),
        ("", None),
        ("id;q=2", None),
        ("en;q=0.5, id;q=0.5", Some(Locale::En)),
    ];
    for (header, wanted) in cases {
        assert_eq!(Locale::negotiate(header), wanted, "{header}");
    }
    assert_eq!(Locale::negotiate(&"fr,".repeat(10_000)), None);
}

#[test]
fn error_templates_translate_whole_sentences_and_their_parts() {
    assert_eq!(error(Locale::En, "chat not found"), "chat not found");
    assert_eq!(
        error(Locale::Id, "chat not found"),
        "obrolan tidak ditemukan"
    );
    assert_eq!(
        error(Locale::Id, "Unauthorized"),
        "Tidak diizinkan: masuk dulu"
    );
    // A placeholder's value is translated when the catalogue knows it.
    assert_eq!(
        error(Locale::Id, "invalid name: must not be empty"),
        "nama tidak valid: tidak boleh kosong"
    );
    assert_eq!(
        error(Locale::Id, "not allowed to change this chat"),
        "Anda tidak diizinkan mengubah obrolan ini"
    );
    // A sentence of two known halves is told half by half.
    assert_eq!(
        error(
            Locale::Id,
            "the base URL is not allowed: https://10.0.0.1/v1: no port"
        ),
        "base URL tidak diizinkan: https://10.0.0.1/v1: tidak ada port"
    );
    // Something nobody wrote a template for stays as it was.
    assert_eq!(error(Locale::Id, "zzz unknown zzz"), "zzz unknown zzz");
}

#[test]
fn error_templates_have_matching_placeholders_and_some_words_of_their_own() {
    for (english, indonesian) in keys_of_errors() {
        let wanted: BTreeSet<_> = placeholders(&english).into_iter().collect();
        let got: BTreeSet<_> = placeholders(&indonesian).into_iter().collect();
        assert_eq!(wanted, got, "{english:?} → {indonesian:?}");
        // A template of placeholders alone would match every sentence.
        assert!(
            ErrorTemplate::new(&english, &indonesian).literal_len > 0,
            "{english:?}"
        );
        // Two placeholders side by side cannot be told apart.
        assert!(!english.contains("}{"), "{english:?}");
    }
}

fn keys_of_errors() -> Vec<(String, String)> {
    parse("errors", Locale::Id, INDONESIAN_ERRORS)
}

#[test]
fn a_template_matches_only_what_it_says() {
    let template = ErrorTemplate::new("invalid {field}: {reason}", "x");
    assert_eq!(
        template.captures("invalid name: too long: really"),
        Some(vec!["name", "too long: really"])
    );
    assert_eq!(template.captures("invalid : empty"), None);
    assert_eq!(template.captures("not invalid name: x"), None);
    let exact = ErrorTemplate::new("Unauthorized", "x");
    assert_eq!(exact.captures("Unauthorized"), Some(vec![]));
    assert_eq!(exact.captures("Unauthorized!"), None);
    let suffix = ErrorTemplate::new("{entity} not found", "x");
    assert_eq!(suffix.captures("chat not found"), Some(vec!["chat"]));
    assert_eq!(suffix.captures("chat not found here"), None);
}
