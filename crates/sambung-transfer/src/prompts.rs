//! Prompts as JSON in upstream SambungChat's own format: its `exportPrompts` answers a bare
//! list of `{id, name, content, variables, category, isPublic, createdAt, updatedAt}`, and its
//! `importPrompts` takes `{prompts: [...]}` of the same items (ids and times ignored). Both
//! forms are read here; the list is written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Upstream's categories; any other is read as `custom`.
pub const CATEGORIES: [&str; 7] = [
    "general", "coding", "writing", "analysis", "creative", "business", "custom",
];

/// Most prompts in one file, and the longest name (upstream's limit).
pub const MAX_PROMPTS: usize = 10_000;
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub content: String,
    #[serde(default)]
    pub variables: Vec<String>,
    #[serde(default = "general")]
    pub category: String,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

fn general() -> String {
    "general".to_owned()
}

enum PromptFile {
    List(Vec<PromptItem>),
    Wrapped { prompts: Vec<PromptItem> },
}

#[derive(Deserialize)]
struct Wrapped {
    prompts: Vec<PromptItem>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PromptFileError {
    #[error("the file is not a list of prompts as SambungChat exports them: {0}")]
    NotPrompts(String),
    #[error("the file holds more than {MAX_PROMPTS} prompts")]
    TooMany,
    #[error("prompt {index}: {reason}")]
    Invalid { index: usize, reason: &'static str },
}

/// The prompts of a file in upstream's format, checked as upstream checks them.
pub fn read(json: &[u8]) -> Result<Vec<PromptItem>, PromptFileError> {
    let json = crate::surrogates::mended(json);
    let json = json.as_ref();
    // Its own shape by its first character (serde's untagged enums would hold the file twice).
    let list = json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let file = if list {
        serde_json::from_slice(json).map(PromptFile::List)
    } else {
        serde_json::from_slice(json).map(|w: Wrapped| PromptFile::Wrapped { prompts: w.prompts })
    };
    let file: PromptFile = file.map_err(|e| {
        PromptFileError::NotPrompts(
            e.to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        )
    })?;
    let mut prompts = match file {
        PromptFile::List(list) | PromptFile::Wrapped { prompts: list } => list,
    };
    if prompts.len() > MAX_PROMPTS {
        return Err(PromptFileError::TooMany);
    }
    for (index, prompt) in prompts.iter_mut().enumerate() {
        let invalid = |reason| PromptFileError::Invalid { index, reason };
        if prompt.name.trim().is_empty() || prompt.name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid("a name of 1 to 200 characters is needed"));
        }
        if prompt.content.trim().is_empty() {
            return Err(invalid("its content is empty"));
        }
        if !CATEGORIES.contains(&prompt.category.as_str()) {
            prompt.category = "custom".to_owned();
        }
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_of_upstreams_forms_are_read_and_bad_items_named() {
        let list = br#"[{"id":"01hq","name":"Review","content":"Review {code}","variables":["code"],"category":"coding","isPublic":false,"createdAt":"2026-01-20T10:00:00.000Z","updatedAt":"2026-01-21T10:00:00.000Z"}]"#;
        let wrapped =
            br#"{"prompts":[{"name":"Review","content":"Review {code}","category":"astrology"}]}"#;
        assert_eq!(read(list).unwrap()[0].category, "coding");
        assert_eq!(read(wrapped).unwrap()[0].category, "custom");
        let cut = br#"[{"name":"Smile \ud83d","content":"x"}]"#;
        assert_eq!(read(cut).unwrap()[0].name, "Smile \u{fffd}");
        assert_eq!(
            read(br#"[{"name":" ","content":"x"}]"#),
            Err(PromptFileError::Invalid {
                index: 0,
                reason: "a name of 1 to 200 characters is needed"
            })
        );
        assert!(matches!(
            read(b"{\"x\":1}"),
            Err(PromptFileError::NotPrompts(_))
        ));
    }
}
