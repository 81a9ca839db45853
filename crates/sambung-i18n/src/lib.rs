//! SambungChat's words in the languages it speaks, English and Bahasa Indonesia, and the choice
//! of one for a reader: the user's setting, else their browser's `Accept-Language`.
//!
//! The catalogues are plain JSON maps, one file per part of the product and language under
//! `locales/` (`{"key": "text with {placeholders}"}`), compiled into the binary. A plain map
//! rather than Fluent: the browser reads the same files with a dozen lines of script, and the
//! two languages need nothing Fluent adds (Indonesian has no plural forms; the few English
//! ones are `.one`/`.other` keys).
//!
//! The server's errors are written in English where they happen; [`error`] translates the
//! finished sentence by the templates of `locales/id/errors.json` (English sentence →
//! Indonesian, `{name}` matching any text), the way gettext keys on the English message. A
//! sentence no template matches stays English.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::LazyLock;

/// A language the product speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    En,
    Id,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Id];

    /// Its code, as `users.locale` and the catalogues' directories name it.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Id => "id",
        }
    }

    /// The language of a code or language tag (`id`, `id-ID`, `en-GB`; `in` is Indonesian's
    /// old code, still sent by some systems).
    pub fn parse(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Locale::En),
            "id" | "in" => Some(Locale::Id),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header prefers among ours: the highest `q` wins, the
    /// first listed among equals; none of ours (or `*` alone): none.
    pub fn negotiate(accept_language: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        // A header is short; a hostile one is read no further than its first 32 entries.
        for entry in accept_language.split(',').take(32) {
            let mut parts = entry.split(';');
            let Some(locale) = parts.next().and_then(Locale::parse) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q));
            match quality {
                Some(q) if q > 0.0 && best.is_none_or(|(b, _)| q > b) => best = Some((q, locale)),
                _ => {}
            }
        }
        best.map(|(_, locale)| locale)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The parts of the catalogues, one file each per language: the browser's (`page`, `app`,
/// `admin`) and the server's own pages and mail (`server`).
const PARTS: [(&str, [&str; 2]); 4] = [
    (
        "page",
        [
            include_str!("../locales/en/page.json"),
            include_str!("../locales/id/page.json"),
        ],
    ),
    (
        "app",
        [
            include_str!("../locales/en/app.json"),
            include_str!("../locales/id/app.json"),
        ],
    ),
    (
        "admin",
        [
            include_str!("../locales/en/admin.json"),
            include_str!("../locales/id/admin.json"),
        ],
    ),
    (
        "server",
        [
            include_str!("../locales/en/server.json"),
            include_str!("../locales/id/server.json"),
        ],
    ),
];

/// The parts the browser loads.
const BROWSER_PARTS: [&str; 3] = ["page", "app", "admin"];

/// Server errors in Indonesian: English sentence (template) → Indonesian.
const INDONESIAN_ERRORS: &str = include_str!("../locales/id/errors.json");

type Catalogue = HashMap<String, String>;

fn parse(part: &str, locale: Locale, json: &str) -> Vec<(String, String)> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("locales/{}/{part}.json: {e}", locale.code()));
    map.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => (key, text),
            other => panic!(
                "locales/{}/{part}.json: {key} is {other}, not text",
                locale.code()
            ),
        })
        .collect()
}

/// Every key of every part, per language.
static CATALOGUES: LazyLock<[Catalogue; 2]> = LazyLock::new(|| {
    Locale::ALL.map(|locale| {
        PARTS
            .iter()
            .flat_map(|(part, files)| parse(part, locale, files[locale.index()]))
            .collect()
    })
});

/// The browser's catalogue of each language, one JSON object.
static BROWSER_CATALOGUES: LazyLock<[String; 2]> = LazyLock::new(|| {
    Locale::ALL.map(|locale| {
        let merged: serde_json::Map<String, serde_json::Value> = PARTS
            .iter()
            .filter(|(part, _)| BROWSER_PARTS.contains(part))
            .flat_map(|(part, files)| parse(part, locale, files[locale.index()]))
            .map(|(key, text)| (key, serde_json::Value::String(text)))
            .collect();
        serde_json::Value::Object(merged).to_string()
    })
});

/// What the web UI loads as `/assets/locales/{code}.json`.
pub fn browser_catalogue(locale: Locale) -> &'static str {
    &BROWSER_CATALOGUES[locale.index()]
}

/// The text of `key` in `locale`, its `{name}` placeholders filled from `args`. A key no
/// catalogue has is a bug the catalogue tests catch; it shows as itself.
pub fn text(locale: Locale, key: &str, args: &[(&str, &dyn Display)]) -> String {
    let template = CATALOGUES[locale.index()]
        .get(key)
        .map_or(key, String::as_str);
    fill(template, |name| {
        args.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.to_string())
    })
}

/// `template` with each `{name}` replaced by `value(name)` (left as it is when there is none).
fn fill(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((name, close)) if is_name(name) => {
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{names}` a template uses, in order.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    fill(template, |name| {
        names.push(name.to_owned());
        None
    });
    names
}

/// One error template: its literal pieces between placeholders, and the translation.
struct ErrorTemplate {
    /// `"invalid {field}: {reason}"` → `["invalid ", ": ", ""]` with names `[field, reason]`.
    pieces: Vec<String>,
    names: Vec<String>,
    translation: String,
    /// How much literal text it matches: more specific templates are tried first.
    literal_len: usize,
}

impl ErrorTemplate {
    fn new(english: &str, translation: &str) -> ErrorTemplate {
        let mut pieces = vec![String::new()];
        let mut names = Vec::new();
        let mut rest = english;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}').filter(|&close| is_name(&after[..close])) {
                Some(close) => {
                    push_last(&mut pieces, &rest[..open]);
                    names.push(after[..close].to_owned());
                    pieces.push(String::new());
                    rest = &after[close + 1..];
                }
                None => {
                    push_last(&mut pieces, &rest[..=open]);
                    rest = after;
                }
            }
        }
        push_last(&mut pieces, rest);
        let literal_len = pieces.iter().map(String::len).sum();
        ErrorTemplate {
            pieces,
            names,
            translation: translation.to_owned(),
            literal_len,
        }
    }

    /// The placeholders' values when `message` is this template filled in.
    fn captures<'m>(&self, message: &'m str) -> Option<Vec<&'m str>> {
        let (first, rest) = self.pieces.split_first()?;
        let mut at = message.strip_prefix(first.as_str())?;
        let mut values = Vec::with_capacity(self.names.len());
        for (i, piece) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            let end = if last {
                at.len()
                    .checked_sub(piece.len())
                    .filter(|_| at.ends_with(piece.as_str()))?
            } else {
                at.find(piece.as_str())?
            };
            let value = &at[..end];
            if value.is_empty() {
                return None;
            }
            values.push(value);
            at = &at[end + piece.len()..];
        }
        // Without placeholders the message is the template itself.
        (!rest.is_empty() || at.is_empty()).then_some(values)
    }
}

fn push_last(pieces: &mut [String], text: &str) {
    if let Some(last) = pieces.last_mut() {
        last.push_str(text);
    }
}

static ERROR_TEMPLATES: LazyLock<Vec<ErrorTemplate>> = LazyLock::new(|| {
    let mut templates: Vec<ErrorTemplate> = parse("errors", Locale::Id, INDONESIAN_ERRORS)
        .iter()
        .map(|(english, indonesian)| ErrorTemplate::new(english, indonesian))
        .collect();
    // Templates anchored at the sentence's start first (`invalid {field}: {reason}` before
    // `{theme} is not one of …`, which would take the whole start as its value), then the
    // more specific.
    templates.sort_by_key(|t| std::cmp::Reverse((!t.pieces[0].is_empty(), t.literal_len)));
    templates
});

/// The placeholders whose values are sentences or words of ours, told in turn: `{reason}` of
/// `invalid {field}: {reason}`, `{entity}` of `{entity} not found`. Any other value (a name,
/// an address, a provider's own words) is the user's or the world's, and kept as it is.
const TOLD_IN_TURN: [&str; 6] = ["reason", "detail", "what", "action", "field", "entity"];

/// An error sentence longer than this stays as it is: the sentences of ours are short, and a
/// long one carries someone's input, which is not worth the work (nor is it ours to tell).
const MAX_TOLD_BYTES: usize = 2048;

/// An error sentence written in English, in `locale`. The values of a few placeholders
/// (`TOLD_IN_TURN`) are told too, a few levels deep; everything else is kept as written.
pub fn error(locale: Locale, english: &str) -> Cow<'_, str> {
    match locale {
        Locale::En => Cow::Borrowed(english),
        Locale::Id => translate_error(english, 3),
    }
}

fn translate_error(english: &str, depth: u8) -> Cow<'_, str> {
    let Some(depth) = depth.checked_sub(1) else {
        return Cow::Borrowed(english);
    };
    if english.len() > MAX_TOLD_BYTES {
        return Cow::Borrowed(english);
    }
    for template in ERROR_TEMPLATES.iter() {
        if let Some(values) = template.captures(english) {
            return Cow::Owned(fill(&template.translation, |name| {
                let at = template.names.iter().position(|n| n == name)?;
                Some(match TOLD_IN_TURN.contains(&name) {
                    true => translate_error(values[at], depth).into_owned(),
                    false => values[at].to_owned(),
                })
            }));
        }
    }
    Cow::Borrowed(english)
}

#[cfg(test)]
mod tests;
