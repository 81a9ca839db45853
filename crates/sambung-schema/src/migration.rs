//! A versioned migration: an up and a down SQL script, named `NNNN_name`.

use sha2::{Digest, Sha256};

/// The migrations embedded in this binary (generated from `migrations/` by build.rs).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub(crate) use embedded::SCHEMA_FILES;

/// One migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The number its directory name starts with; migrations apply in this order.
    pub version: i64,
    /// The directory name, e.g. `0001_initial`.
    pub name: String,
    pub up: String,
    pub down: String,
}

impl Migration {
    /// A migration from its directory name (`NNNN_description`) and scripts.
    pub fn new(name: &str, up: &str, down: &str) -> Result<Self, String> {
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        let version = digits
            .parse()
            .map_err(|_| format!("migration {name:?} does not start with its version number"))?;
        Ok(Migration {
            version,
            name: name.to_owned(),
            up: up.to_owned(),
            down: down.to_owned(),
        })
    }

    /// SHA-256 of the up script: an applied migration whose script changed is detected.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.up.as_bytes()))
    }

    /// Every migration embedded in this binary, in version order.
    pub fn embedded() -> Vec<Migration> {
        embedded::MIGRATIONS
            .iter()
            .map(|(name, up, down)| {
                Migration::new(name, up, down).expect("build.rs embeds well-named migrations")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_ordered_and_unique() {
        let migrations = Migration::embedded();
        assert!(!migrations.is_empty());
        assert_eq!(migrations[0].name, "0001_initial");
        assert!(migrations.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn names_must_start_with_a_version() {
        assert_eq!(Migration::new("0042_x", "", "").unwrap().version, 42);
        assert!(Migration::new("x_0042", "", "").is_err());
    }

    #[test]
    fn the_checksum_follows_the_up_script() {
        let a = Migration::new("1_a", "SELECT 1;", "").unwrap();
        let b = Migration::new("1_a", "SELECT 2;", "").unwrap();
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum().len(), 64);
    }
}
