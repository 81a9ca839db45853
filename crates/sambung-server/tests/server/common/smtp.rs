//! A real SMTP server on loopback (`aiosmtpd` from PyPI, installed once into a virtual
//! environment in the build directory), storing what it receives in a Maildir the tests read.

use std::path::PathBuf;
use std::time::Duration;

/// The aiosmtpd release the tests install.
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The Python of a virtual environment holding aiosmtpd.
fn python() -> PathBuf {
    super::pip::python_with("aiosmtpd-venv", AIOSMTPD)
}

pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    /// Start one, accepting connections when this returns.
    pub async fn start() -> SmtpServer {
        let python = tokio::task::spawn_blocking(python).await.unwrap();
        let maildir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Mailbox"])
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .arg(maildir.path().join("mail"))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpServer {
                    port,
                    maildir,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// `SMTP_URL` for it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, decoded (quoted-printable undone), oldest first.
    pub fn received(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| decode_quoted_printable(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    /// The first message to `to` (waiting up to ten seconds for it).
    pub async fn mail_to(&self, to: &str) -> String {
        for _ in 0..200 {
            if let Some(mail) = self
                .received()
                .into_iter()
                .find(|m| m.contains(&format!("To: {to}")))
            {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail to {to} arrived; received: {:?}", self.received());
    }
}

/// Quoted-printable undone: soft line breaks joined, `=XX` read as bytes.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first `http(s)://` link in a mail.
pub fn link_in(mail: &str) -> String {
    let start = mail.find("http").expect("a link in the mail");
    mail[start..].split_whitespace().next().unwrap().to_owned()
}
