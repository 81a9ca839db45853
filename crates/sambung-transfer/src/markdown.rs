//! A chat as Markdown, to read: its title, then each message of the shown branch with who
//! wrote it, the model and the time, and its files as links.

use std::fmt::Write;

use crate::ours::ChatExport;

/// `chat` as Markdown; a file's link is `link(file)` (a path in the account's zip, or the
/// file's address on the server).
pub fn chat(chat: &ChatExport, link: impl Fn(&crate::ours::FileExport) -> String) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", one_line(&chat.title));
    let _ = writeln!(
        out,
        "- Model: {} ({})\n- Created: {}\n- Updated: {}\n",
        one_line(&chat.model),
        one_line(&chat.provider),
        chat.created_at.to_rfc3339(),
        chat.updated_at.to_rfc3339()
    );
    for message in chat.messages.iter().filter(|m| m.on_path) {
        let who = match message.role.as_str() {
            "user" => "User",
            "assistant" => "Assistant",
            _ => "System",
        };
        let model = message
            .metadata
            .as_ref()
            .and_then(|m| m.get("model"))
            .and_then(|m| m.as_str())
            .map(|m| format!(" · {}", one_line(m)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "## {who}{model} · {}\n\n{}\n",
            message.created_at.to_rfc3339(),
            message.content.trim_end()
        );
        for file in &message.files {
            let _ = writeln!(out, "- [{}](<{}>)", escape_label(&file.name), link(file));
        }
        if !message.files.is_empty() {
            out.push('\n');
        }
    }
    out
}

/// A heading's text on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A link's label that cannot close the link or open another.
fn escape_label(name: &str) -> String {
    name.chars()
        .flat_map(|c| match c {
            '[' | ']' | '\\' | '<' | '>' | '`' | '*' | '_' => vec!['\\', c],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect()
}
