//! The page, its script and its style, compiled into the binary: the UI fetches nothing from
//! another site, and building it needs no Node toolchain.

/// One file of the UI.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
    /// A library vendored at a pinned version (it changes only with the binary's release).
    pub vendored: bool,
}

/// The application's page, served for `/` (its routes live after `#`).
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
    vendored: false,
};

/// The installable app's manifest, served at `/manifest.webmanifest`.
pub const MANIFEST: Asset = Asset {
    content_type: "application/manifest+json",
    body: include_str!("../assets/manifest.webmanifest"),
    vendored: false,
};

/// The service worker, served at `/sw.js` (its scope is the whole site): it keeps the
/// application's shell for the installed app, never an API answer.
pub const SERVICE_WORKER: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../assets/sw.js"),
    vendored: false,
};

/// The UI's files under `/assets/`, by name.
pub fn asset(name: &str) -> Option<Asset> {
    match name {
        "app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/app.js"),
            vendored: false,
        }),
        "ui.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/ui.js"),
            vendored: false,
        }),
        "i18n.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/i18n.js"),
            vendored: false,
        }),
        "admin.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/admin.js"),
            vendored: false,
        }),
        "app.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../assets/app.css"),
            vendored: false,
        }),
        // Mermaid, vendored from its npm package (scripts/refresh-mermaid; MIT, its licence
        // beside it): loaded by the page only when a message holds a diagram.
        "mermaid.min.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/vendor/mermaid/mermaid.min.js"),
            vendored: true,
        }),
        "icon.svg" => Some(Asset {
            content_type: "image/svg+xml",
            body: include_str!("../assets/icon.svg"),
            vendored: false,
        }),
        "highlight.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: crate::highlight::STYLESHEET.as_str(),
            vendored: false,
        }),
        _ => None,
    }
}

/// The UI's words in a language, `/assets/locales/{code}.json` (`sambung-i18n`).
pub fn catalogue(file: &str) -> Option<Asset> {
    let locale = sambung_i18n::Locale::ALL
        .into_iter()
        .find(|locale| file.strip_suffix(".json") == Some(locale.code()))?;
    Some(Asset {
        content_type: "application/json",
        body: sambung_i18n::browser_catalogue(locale),
        vendored: false,
    })
}

/// What the UI's pages may load: only this server's own script, style and API; no inline
/// script, no frames, no plugins, no form posts elsewhere. A message rendered in the page is
/// sanitised already; this is the second wall.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sambung_i18n::Locale;

    use super::*;

    /// The UI's own files that speak.
    fn sources() -> Vec<(&'static str, &'static str)> {
        ["app.js", "ui.js", "admin.js"]
            .into_iter()
            .map(|name| (name, asset(name).unwrap().body))
            .chain([("index.html", INDEX.body)])
            .collect()
    }

    /// The quoted strings in `text`.
    fn literals(text: &str) -> Vec<&str> {
        text.split('"').skip(1).step_by(2).collect()
    }

    /// The keys the UI asks for: the first argument of `t(…)` and `plural(…)` (each dotted
    /// quoted word in it, for `t(cond ? "a.b" : "a.c")`), and the values of `data-i18n*`
    /// attributes.
    fn keys_asked_for(source: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (call, suffixes) in [("t(", &[""][..]), ("plural(", &[".one", ".other"][..])] {
            for (at, _) in source.match_indices(call) {
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let argument = &source[at + call.len()..];
                let end = argument.find([',', ')']).unwrap_or(argument.len());
                // Keys have dots; other quoted words there are what a condition compares.
                for key in literals(&argument[..end])
                    .into_iter()
                    .filter(|l| l.contains('.'))
                {
                    for suffix in suffixes {
                        keys.insert(format!("{key}{suffix}"));
                    }
                }
            }
        }
        for (at, _) in source.match_indices("data-i18n") {
            let rest = &source[at..];
            if let Some(value) = rest
                .split_once("=\"")
                .filter(|(name, _)| !name.contains([' ', '>']))
                .and_then(|(_, value)| value.split('"').next())
            {
                keys.insert(value.to_owned());
            }
        }
        keys
    }

    /// The keys a script builds, by what their names begin with: `t(`message.status.${s}`)`.
    fn key_prefixes(source: &str) -> Vec<&str> {
        source
            .match_indices("t(`")
            .filter_map(|(at, _)| source[at + 3..].split_once("${").map(|(prefix, _)| prefix))
            .filter(|prefix| prefix.ends_with('.') && !prefix.contains('`'))
            .collect()
    }

    #[test]
    fn every_key_the_ui_asks_for_is_in_the_catalogue_and_every_key_is_asked_for() {
        for locale in Locale::ALL {
            let catalogue: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(sambung_i18n::browser_catalogue(locale)).unwrap();
            let asked: BTreeSet<String> = sources()
                .iter()
                .flat_map(|(_, source)| keys_asked_for(source))
                .collect();
            let missing: Vec<_> = asked
                .iter()
                .filter(|k| !catalogue.contains_key(*k))
                .collect();
            assert!(
                missing.is_empty(),
                "{}: no text for {missing:?}",
                locale.code()
            );
            // A key no file names is dead, unless a script builds its name (it names it whole
            // somewhere still: `t(cond ? "a" : "b")` is covered above).
            let named: BTreeSet<&str> = sources().iter().flat_map(|(_, s)| literals(s)).collect();
            let built: Vec<&str> = sources()
                .iter()
                .flat_map(|(_, s)| key_prefixes(s))
                .collect();
            let unused: Vec<_> = catalogue
                .keys()
                .filter(|key| {
                    let stem = key
                        .strip_suffix(".one")
                        .or_else(|| key.strip_suffix(".other"))
                        .unwrap_or(key);
                    !asked.contains(*key)
                        && !named.contains(stem)
                        && !built.iter().any(|prefix| key.starts_with(prefix))
                })
                .collect();
            assert!(
                unused.is_empty(),
                "{}: keys nothing uses: {unused:?}",
                locale.code()
            );
        }
    }

    /// A script that does not parse leaves a blank page, whatever else is right: each module
    /// is parsed by Node, as a browser would (the suite's machine has Node for the client
    /// libraries' tests).
    #[test]
    fn every_script_parses_as_a_module() {
        use std::io::Write;
        for name in ["app.js", "ui.js", "i18n.js", "admin.js"] {
            let mut node = std::process::Command::new("node")
                .args(["--input-type=module", "--check"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("node must be installed (scripts/test installs it)");
            let mut stdin = node.stdin.take().unwrap();
            stdin
                .write_all(asset(name).unwrap().body.as_bytes())
                .unwrap();
            drop(stdin);
            let checked = node.wait_with_output().unwrap();
            assert!(
                checked.status.success(),
                "{name} does not parse: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }

    #[test]
    fn the_catalogues_are_served_by_language_code() {
        assert!(catalogue("id.json")
            .unwrap()
            .body
            .contains("\"settings.language\":\"Bahasa\""));
        assert!(catalogue("en.json").is_some());
        for bad in ["fr.json", "id", "../id.json", "id.json.json", ""] {
            assert!(catalogue(bad).is_none(), "{bad}");
        }
    }
}
