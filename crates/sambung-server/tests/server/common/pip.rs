//! Python packages from PyPI (pinned), installed once into a virtual environment in the build
//! directory, never into the source tree or the system.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python of the virtual environment `name`, holding `requirement` (made and filled once).
pub fn python_with(name: &str, requirement: &str) -> PathBuf {
    // Two tests must not fill one environment at once.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == requirement) {
        return python;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 must be installed (scripts/test installs it)");
    assert!(made.success(), "cannot make a virtual environment");
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ])
        .status()
        .unwrap();
    assert!(installed.success(), "pip cannot install {requirement}");
    std::fs::write(&marker, requirement).unwrap();
    python
}
