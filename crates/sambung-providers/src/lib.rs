//! The AI providers SambungChat knows, named once. The database's CHECKs on `api_keys` and
//! `models` are tested against [`Provider::ALL`]; the OpenAPI document's enum and the web UI's
//! lists are made from it (`GET /api/v1/providers`). Adding a provider: a variant here (its
//! name, label, wire format and default base URL), a migration widening the CHECKs (a test
//! says so), and, for a new wire format, its file in `sambung-ai`.

use std::fmt;

/// Which wire format a provider speaks (one file each in `sambung-ai`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI's Chat Completions, which OpenAI, Groq, OpenRouter, Ollama's `/v1` and most
    /// self-hosted servers speak.
    OpenAiCompatible,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API.
    Gemini,
}

/// A provider SambungChat knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Openai,
    Anthropic,
    Google,
    Groq,
    Ollama,
    Openrouter,
    Custom,
}

impl Provider {
    /// Every provider, in the order lists show them.
    pub const ALL: [Provider; 7] = [
        Provider::Openai,
        Provider::Anthropic,
        Provider::Google,
        Provider::Groq,
        Provider::Openrouter,
        Provider::Ollama,
        Provider::Custom,
    ];

    /// The name stored and sent (`openai`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Google => "google",
            Provider::Groq => "groq",
            Provider::Ollama => "ollama",
            Provider::Openrouter => "openrouter",
            Provider::Custom => "custom",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Openai => "OpenAI",
            Provider::Anthropic => "Anthropic",
            Provider::Google => "Google Gemini",
            Provider::Groq => "Groq",
            Provider::Ollama => "Ollama",
            Provider::Openrouter => "OpenRouter",
            Provider::Custom => "Custom (OpenAI-compatible)",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn wire(self) -> Wire {
        match self {
            Provider::Anthropic => Wire::Anthropic,
            Provider::Google => Wire::Gemini,
            Provider::Openai
            | Provider::Groq
            | Provider::Ollama
            | Provider::Openrouter
            | Provider::Custom => Wire::OpenAiCompatible,
        }
    }

    /// The base URL when a model names none (`custom` has none).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::Openai => Some("https://api.openai.com/v1"),
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::Google => Some("https://generativelanguage.googleapis.com"),
            Provider::Groq => Some("https://api.groq.com/openai/v1"),
            Provider::Ollama => Some("http://127.0.0.1:11434/v1"),
            Provider::Openrouter => Some("https://openrouter.ai/api/v1"),
            Provider::Custom => None,
        }
    }

    /// Whether calls need an API key (Ollama and custom endpoints may run without).
    pub fn needs_key(self) -> bool {
        !matches!(self, Provider::Ollama | Provider::Custom)
    }
}

/// What a model takes beside text: images it sees, PDFs it reads as documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub vision: bool,
    pub pdf: bool,
}

impl Capabilities {
    /// What a model is known to take, by its provider and its id as the provider names it:
    /// the vision families of each (GPT-4o, 4.1, 5 and the o-series; Claude 3 and later;
    /// every Gemini; open models whose names say so: LLaVA, Llama 3.2 Vision and 4, Pixtral,
    /// Qwen-VL, Gemma 3). PDFs natively: OpenAI's vision models (file input), Claude 3.5 and
    /// later (document blocks), Gemini (inline data). A model's own setting wins over this.
    pub fn known(provider: Provider, model_id: &str) -> Capabilities {
        let id = model_id.to_ascii_lowercase();
        let named = |words: &[&str]| words.iter().any(|w| id.contains(w));
        let openai = named(&["gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "chatgpt-4o"])
            || ["o1", "o3", "o4"]
                .iter()
                .any(|o| id.starts_with(o) || id.contains(&format!("/{o}")));
        let claude = named(&[
            "claude-3",
            "claude-sonnet",
            "claude-opus",
            "claude-haiku",
            "claude-4",
        ]);
        let claude_documents =
            claude && !named(&["claude-3-opus", "claude-3-sonnet", "claude-3-haiku"]);
        let gemini = named(&["gemini"]);
        let open_vision = named(&[
            "llava",
            "vision",
            "pixtral",
            "-vl",
            "qwen2.5vl",
            "gemma3",
            "llama-4",
            "llama4",
            "bakllava",
            "minicpm-v",
        ]);
        match provider {
            Provider::Openai => Capabilities {
                vision: openai,
                pdf: openai,
            },
            Provider::Anthropic => Capabilities {
                vision: claude,
                pdf: claude_documents,
            },
            Provider::Google => Capabilities {
                vision: true,
                pdf: true,
            },
            // Gateways carry others' models under their names (`openai/gpt-4o`).
            Provider::Openrouter => Capabilities {
                vision: openai || claude || gemini || open_vision,
                pdf: false,
            },
            Provider::Groq | Provider::Ollama | Provider::Custom => Capabilities {
                vision: open_vision || openai,
                pdf: false,
            },
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_listed_once_and_reads_back() {
        for (i, provider) in Provider::ALL.iter().enumerate() {
            assert_eq!(Provider::parse(provider.as_str()), Some(*provider));
            assert!(!Provider::ALL[..i].contains(provider), "{provider} twice");
        }
        assert_eq!(Provider::parse("OpenAI"), None);
        // Every provider but a custom one has somewhere to go.
        assert_eq!(
            Capabilities::known(Provider::Anthropic, "claude-3-opus-20240229"),
            Capabilities {
                vision: true,
                pdf: false
            }
        );
        assert_eq!(
            Capabilities::known(Provider::Anthropic, "claude-sonnet-4-5"),
            Capabilities {
                vision: true,
                pdf: true
            }
        );
        assert_eq!(
            Capabilities::known(Provider::Openai, "gpt-4o-mini"),
            Capabilities {
                vision: true,
                pdf: true
            }
        );
        assert_eq!(
            Capabilities::known(Provider::Openai, "gpt-3.5-turbo"),
            Capabilities::default()
        );
        assert!(Capabilities::known(Provider::Ollama, "llava:13b").vision);
        assert!(!Capabilities::known(Provider::Ollama, "llama3.1:8b").vision);
        for provider in Provider::ALL {
            assert_eq!(
                provider.default_base_url().is_none(),
                provider == Provider::Custom
            );
        }
    }
}
