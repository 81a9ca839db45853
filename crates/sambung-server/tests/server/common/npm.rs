//! The original platform's own client libraries, installed from npm (pinned by a lockfile in
//! `tests/NAME/`) into the build directory, never into the source tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/NAME` copied under the target directory with its packages installed.
pub fn installed(name: &str) -> PathBuf {
    // Two tests of one package must not install it into one directory at once.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let installed_lock = dir.join("node_modules/.package-lock.json");
    let fresh = std::fs::read(dir.join(".installed-from")).is_ok_and(|l| l == lock)
        && installed_lock.exists();
    if !fresh {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed (scripts/test installs it)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
        std::fs::write(dir.join(".installed-from"), lock).unwrap();
    }
    dir
}
