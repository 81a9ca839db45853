//! Finding the PostgreSQL server binaries and their version.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ClusterError;

/// The oldest PostgreSQL major version `sambung` runs (the schema uses 15's features).
pub const MIN_MAJOR_VERSION: u32 = 15;

/// The tools the managed cluster needs in one directory.
const REQUIRED_TOOLS: [&str; 3] = ["postgres", "initdb", "pg_ctl"];

/// A directory of PostgreSQL server binaries, with the version they report.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    dir: PathBuf,
    version: String,
    major: u32,
}

impl PgBinaries {
    /// Find the server binaries: `explicit` (`SAMBUNG_PG_BIN`), then `pg_config --bindir`,
    /// then the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ClusterError> {
        let pg_config_bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        Self::discover_in(
            explicit,
            pg_config_bindir,
            Path::new("/usr/lib/postgresql"),
            std::env::var_os("PATH"),
        )
    }

    /// [`PgBinaries::discover`] with every place it looks made explicit (for tests).
    pub fn discover_in(
        explicit: Option<&Path>,
        pg_config_bindir: Option<PathBuf>,
        versioned_root: &Path,
        path_var: Option<OsString>,
    ) -> Result<Self, ClusterError> {
        if let Some(dir) = explicit {
            // An explicit choice is never silently replaced by another installation.
            let missing: Vec<&str> = REQUIRED_TOOLS
                .into_iter()
                .filter(|tool| !is_executable(&dir.join(tool)))
                .collect();
            if !missing.is_empty() {
                return Err(ClusterError::BadBinDir {
                    dir: dir.to_owned(),
                    missing: missing.join(", "),
                });
            }
            return Self::at(dir);
        }

        let mut candidates: Vec<PathBuf> = pg_config_bindir.into_iter().collect();
        candidates.extend(versioned_dirs(versioned_root));
        if let Some(path_var) = &path_var {
            candidates.extend(std::env::split_paths(path_var));
        }
        let searched = candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match candidates.iter().find(|dir| has_server_tools(dir)) {
            Some(dir) => Self::at(dir),
            None => Err(ClusterError::BinariesNotFound { searched }),
        }
    }

    /// Read the version of the binaries in `dir`, refusing one older than 15.
    fn at(dir: &Path) -> Result<Self, ClusterError> {
        let postgres = dir.join("postgres");
        // ETXTBSY: a binary just written (an installer, a test) may still be open for writing
        // in a process another thread is forking; it clears within moments.
        let mut attempts = 0;
        let output = loop {
            match Command::new(&postgres).arg("--version").output() {
                Err(e)
                    if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                        && attempts < 20 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => {
                    break result.map_err(|e| ClusterError::Tool {
                        tool: postgres.display().to_string(),
                        detail: e.to_string(),
                    })?
                }
            }
        };
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let major = parse_major_version(&text).ok_or_else(|| ClusterError::Tool {
            tool: postgres.display().to_string(),
            detail: format!("cannot read a version from {text:?}"),
        })?;
        if major < MIN_MAJOR_VERSION {
            return Err(ClusterError::TooOld {
                dir: dir.to_owned(),
                version: text,
            });
        }
        Ok(PgBinaries {
            dir: dir.to_owned(),
            version: text,
            major,
        })
    }

    /// The path of one of the tools, e.g. `tool("pg_ctl")`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `postgres --version` said, e.g. `postgres (PostgreSQL) 15.18`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn major(&self) -> u32 {
        self.major
    }
}

/// `…/15/bin`, `…/16/bin` under `root`, newest first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

fn has_server_tools(dir: &Path) -> bool {
    REQUIRED_TOOLS
        .iter()
        .all(|tool| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `postgres (PostgreSQL) 15.18 (Debian …)` → 15; `… 9.6.24` → 9.
fn parse_major_version(text: &str) -> Option<u32> {
    let after = text.split("(PostgreSQL)").nth(1)?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory of fake tools whose `postgres --version` prints `version`.
    fn fake_bin_dir(root: &Path, name: &str, version: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for tool in REQUIRED_TOOLS {
            let path = dir.join(tool);
            std::fs::write(
                &path,
                format!("#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n"),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn versions_are_parsed() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major_version("postgres (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 17beta1"),
            Some(17)
        );
        assert_eq!(parse_major_version("something else"), None);
    }

    #[test]
    fn explicit_directory_wins_and_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let explicit = fake_bin_dir(tmp.path(), "explicit", "16.2");
        let other = fake_bin_dir(tmp.path(), "other", "17.0");
        let found =
            PgBinaries::discover_in(Some(&explicit), Some(other), tmp.path(), None).unwrap();
        assert_eq!(found.dir(), explicit);
        assert_eq!(found.major(), 16);

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err =
            PgBinaries::discover_in(Some(&empty), Some(explicit), tmp.path(), None).unwrap_err();
        assert!(
            matches!(&err, ClusterError::BadBinDir { missing, .. } if missing == "postgres, initdb, pg_ctl"),
            "{err}"
        );
    }

    #[test]
    fn search_order_is_pg_config_then_newest_versioned_then_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        fake_bin_dir(&root, "15/bin", "15.1");
        let newest = fake_bin_dir(&root, "16/bin", "16.1");
        let from_config = fake_bin_dir(tmp.path(), "config", "15.4");
        let on_path = fake_bin_dir(tmp.path(), "path", "18.0");
        let path_var = Some(std::env::join_paths([&on_path]).unwrap());

        let found =
            PgBinaries::discover_in(None, Some(from_config.clone()), &root, path_var.clone())
                .unwrap();
        assert_eq!(found.dir(), from_config);
        // pg_config of a client-only install points at a directory without a server.
        let client_only = tmp.path().join("client-only");
        std::fs::create_dir(&client_only).unwrap();
        let found =
            PgBinaries::discover_in(None, Some(client_only), &root, path_var.clone()).unwrap();
        assert_eq!(found.dir(), newest);
        let found =
            PgBinaries::discover_in(None, None, &tmp.path().join("nowhere"), path_var).unwrap();
        assert_eq!(found.dir(), on_path);
    }

    #[test]
    fn no_binaries_and_too_old_binaries_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = PgBinaries::discover_in(None, None, tmp.path(), Some("/nonexistent".into()))
            .unwrap_err();
        assert!(matches!(err, ClusterError::BinariesNotFound { .. }));
        assert!(err.hint().unwrap().contains("apt-get install postgresql"));

        let old = fake_bin_dir(tmp.path(), "old", "14.9");
        let err = PgBinaries::discover_in(Some(&old), None, tmp.path(), None).unwrap_err();
        assert!(matches!(err, ClusterError::TooOld { .. }), "{err}");
        assert!(
            err.to_string().contains("14.9") && err.to_string().contains("15"),
            "{err}"
        );
    }
}
