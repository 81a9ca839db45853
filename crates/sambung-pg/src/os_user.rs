//! The unprivileged system user the server runs as when `sambung` runs as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Uid, User};

use crate::ClusterError;

/// The user PostgreSQL runs as by default on Debian and most distributions.
pub const DEFAULT_OS_USER: &str = "postgres";

/// A system user to run the server processes as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl OsUser {
    /// The user to switch to: `None` when not root (the server runs as whoever we are);
    /// as root, `requested` (`SAMBUNG_PG_USER`) or `postgres`, which must exist and not be root.
    pub fn for_server(requested: Option<&str>) -> Result<Option<Self>, ClusterError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        let name = requested.unwrap_or(DEFAULT_OS_USER);
        let no_such_user = || ClusterError::NoSuchOsUser {
            user: name.to_owned(),
        };
        let user = User::from_name(name)
            .map_err(|_| no_such_user())?
            .ok_or_else(no_such_user)?;
        if user.uid.is_root() {
            // PostgreSQL refuses any uid 0, whatever the name.
            return Err(no_such_user());
        }
        Ok(Some(OsUser {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))
    }

    /// Give `path` to this user.
    pub fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        nix::unistd::chown(
            path,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(|e| ClusterError::Io {
            action: "change the owner of",
            path: path.to_owned(),
            source: e.into(),
        })
    }

    /// Check that this user can enter `dir` and every directory above it, so that a
    /// root-only home directory is an error up front rather than a cryptic initdb failure.
    pub fn check_can_enter(&self, dir: &Path) -> Result<(), ClusterError> {
        for ancestor in dir.ancestors() {
            let Ok(meta) = ancestor.metadata() else {
                continue;
            };
            let mode = meta.mode();
            let bit = if meta.uid() == self.uid {
                0o100
            } else if meta.gid() == self.gid {
                0o010
            } else {
                0o001
            };
            if mode & bit == 0 {
                return Err(ClusterError::Unreachable {
                    user: self.name.clone(),
                    dir: ancestor.to_owned(),
                });
            }
        }
        Ok(())
    }
}
