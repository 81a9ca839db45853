//! The public, read-only page of a shared chat: HTML rendered on the server, no script, a
//! page of messages at a time, in the reader's language.

use sambung_i18n::{text, Locale};

use crate::escape;

/// One message as the page shows it.
pub struct SharedMessage<'a> {
    /// `user`, `assistant` or `system`.
    pub role: &'a str,
    /// The message rendered by [`crate::markdown::to_html`].
    pub html: &'a str,
    /// The model that wrote a reply, as its metadata names it.
    pub model: Option<&'a str>,
    /// The files it carries.
    pub files: Vec<SharedFile>,
}

/// A file a shared message carries, as the page links it.
pub struct SharedFile {
    /// Where it is read (under the share's own address).
    pub url: String,
    /// An image's thumbnail, when it has one.
    pub thumbnail: Option<String>,
    pub name: String,
    pub size: i64,
}

/// One page of a shared chat; `later`: the address of the next page, when there is one.
pub fn page(
    locale: Locale,
    title: &str,
    messages: &[SharedMessage<'_>],
    later: Option<&str>,
) -> String {
    let mut items = String::new();
    for message in messages {
        let role = match message.role {
            "user" | "assistant" | "system" => message.role,
            _ => "system",
        };
        let model = message
            .model
            .filter(|m| !m.is_empty())
            .map(|m| format!("<p class=\"meta\">{}</p>", escape(m)))
            .unwrap_or_default();
        let files: String = message
            .files
            .iter()
            .map(|file| match &file.thumbnail {
                Some(thumbnail) => format!(
                    "<li><a href=\"{}\"><img class=\"thumb\" src=\"{}\" alt=\"{}\"></a></li>",
                    escape(&file.url),
                    escape(thumbnail),
                    escape(&file.name)
                ),
                None => format!(
                    "<li class=\"file\"><a href=\"{}\" download=\"{}\">{} · {}</a></li>",
                    escape(&file.url),
                    escape(&file.name),
                    escape(&file.name),
                    escape(&size_of(locale, file.size))
                ),
            })
            .collect();
        let files = match files.is_empty() {
            true => String::new(),
            false => format!("<ul class=\"files\">{files}</ul>"),
        };
        items.push_str(&format!(
            "<li class=\"message {role}\"><div class=\"body\">{}</div>{files}{model}</li>\n",
            message.html
        ));
    }
    if let Some(later) = later {
        items.push_str(&format!(
            "<li class=\"later\"><a href=\"{}\">{}</a></li>\n",
            escape(later),
            escape(&text(locale, "share.later", &[]))
        ));
    }
    let title = escape(title);
    let lang = locale.code();
    let read_only = escape(&text(locale, "share.read_only", &[]));
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n<meta name=\"robots\" content=\"noindex\">\n\
         <title>{title} · SambungChat</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n\
         <link rel=\"stylesheet\" href=\"/assets/highlight.css\">\n</head>\n\
         <body class=\"shared\">\n<main id=\"shared\">\n<header><h1 id=\"shared-title\">{title}</h1>\
         <p class=\"meta\">{read_only}</p></header>\n\
         <ol id=\"messages\">\n{items}</ol>\n</main>\n</body>\n</html>\n"
    )
}

/// A size for people: "820 kB", "4.2 MB" ("4,2 MB" in Indonesian).
fn size_of(locale: Locale, bytes: i64) -> String {
    let (value, unit) = match bytes {
        b if b >= 1_000_000 => (b as f64 / 1e6, "MB"),
        b if b >= 1_000 => (b as f64 / 1e3, "kB"),
        b => (b as f64, "byte"),
    };
    let number = format!("{value:.1}");
    let number = number.strip_suffix(".0").unwrap_or(&number);
    let number = match locale {
        Locale::En => number.to_owned(),
        Locale::Id => number.replace('.', ","),
    };
    format!("{number} {unit}")
}

/// The page of a link that shares nothing (never was, or no longer).
pub fn not_shared(locale: Locale) -> String {
    let [title, heading, why] = [
        "share.not_shared.title",
        "share.not_shared",
        "share.not_shared.why",
    ]
    .map(|key| escape(&text(locale, key, &[])));
    let lang = locale.code();
    format!(
    "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
     <title>{title} · SambungChat</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n\
     <body class=\"shared\">\n<main id=\"shared\"><h1>{heading}</h1>\
     <p>{why}</p></main>\n</body>\n</html>\n"
    )
}
