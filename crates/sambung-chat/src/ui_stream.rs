//! The AI SDK's UI message stream, protocol v1: JSON chunks as Server-Sent Events
//! (`data: {...}\n\n`), ended by `data: [DONE]`. The AI SDK versions the original platform
//! ships (ai 6.0.x) validate each chunk against a strict schema (`uiMessageChunkSchema`): no
//! field beyond the chunk type's own, so usage and model travel as `messageMetadata`.

use serde::Serialize;
use serde_json::Value;

use sambung_ai::FinishReason;

/// The headers of a UI message stream response.
pub const HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("connection", "keep-alive"),
    ("x-vercel-ai-ui-message-stream", "v1"),
    ("x-accel-buffering", "no"),
];

/// The stream's last line.
pub const DONE: &str = "data: [DONE]\n\n";

/// One chunk (only the types a text reply needs).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Chunk {
    #[serde(rename_all = "camelCase")]
    Start {
        message_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    StartStep,
    TextStart {
        id: String,
    },
    TextDelta {
        id: String,
        delta: String,
    },
    TextEnd {
        id: String,
    },
    FinishStep,
    #[serde(rename_all = "camelCase")]
    MessageMetadata {
        message_metadata: Value,
    },
    #[serde(rename_all = "camelCase")]
    Finish {
        finish_reason: FinishReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    Error {
        error_text: String,
    },
    Abort,
}

impl Chunk {
    /// `data: {json}\n\n`.
    pub fn to_sse(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        format!("data: {json}\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_have_exactly_the_protocols_fields() {
        let cases = [
            (
                Chunk::Start {
                    message_id: "m1".into(),
                    message_metadata: None,
                },
                r#"{"type":"start","messageId":"m1"}"#,
            ),
            (Chunk::StartStep, r#"{"type":"start-step"}"#),
            (
                Chunk::TextStart { id: "t".into() },
                r#"{"type":"text-start","id":"t"}"#,
            ),
            (
                Chunk::TextDelta {
                    id: "t".into(),
                    delta: "Hi".into(),
                },
                r#"{"type":"text-delta","id":"t","delta":"Hi"}"#,
            ),
            (
                Chunk::TextEnd { id: "t".into() },
                r#"{"type":"text-end","id":"t"}"#,
            ),
            (Chunk::FinishStep, r#"{"type":"finish-step"}"#),
            (
                Chunk::Finish {
                    finish_reason: FinishReason::ContentFilter,
                    message_metadata: Some(serde_json::json!({"outputTokens": 3})),
                },
                r#"{"type":"finish","finishReason":"content-filter","messageMetadata":{"outputTokens":3}}"#,
            ),
            (
                Chunk::Error {
                    error_text: "boom".into(),
                },
                r#"{"type":"error","errorText":"boom"}"#,
            ),
            (Chunk::Abort, r#"{"type":"abort"}"#),
        ];
        for (chunk, json) in cases {
            assert_eq!(chunk.to_sse(), format!("data: {json}\n\n"));
        }
    }
}
