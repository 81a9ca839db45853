//! Better Auth's own client (`better-auth/client`, pinned in `better-auth-client/`) against
//! the server: the contract as its users' code sees it. Needs Node.js and npm (scripts/test
//! installs them); the package is installed from npm into the build directory, never into
//! the source tree.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestApp;

fn installed_client() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/better-auth-client");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("better-auth-client");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["package.json", "package-lock.json", "check.mjs"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    if !dir.join("node_modules/better-auth/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed (scripts/test installs it)");
        assert!(status.success(), "npm ci failed");
    }
    dir
}

#[tokio::test]
async fn better_auths_own_client_works_unchanged() {
    let dir = tokio::task::spawn_blocking(installed_client).await.unwrap();
    let app = TestApp::start().await;
    let output = tokio::process::Command::new("node")
        .arg("check.mjs")
        .arg(&app.url)
        .current_dir(&dir)
        .output()
        .await
        .expect("node must be installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every step as expected"), "{stdout}");
}
