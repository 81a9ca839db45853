//! Better Auth's own client (`better-auth/client`, pinned in `better-auth-client/`) against
//! the server: the contract as its users' code sees it. Needs Node.js and npm (scripts/test
//! installs them); the package is installed from npm into the build directory, never into
//! the source tree.

use crate::common;

use common::TestApp;

/// Run one of the client's scripts (in `better-auth-client/`) against a fresh server.
async fn run_check(script: &str, expect: &str) {
    let dir = tokio::task::spawn_blocking(|| common::npm::installed("better-auth-client"))
        .await
        .unwrap();
    let app = TestApp::start().await;
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(&app.url)
        .current_dir(&dir)
        .output()
        .await
        .expect("node must be installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(expect), "{stdout}");
}

#[tokio::test]
async fn better_auths_own_client_works_unchanged() {
    run_check("check.mjs", "every step as expected").await;
}

#[tokio::test]
async fn better_auths_admin_client_works_unchanged() {
    run_check("admin.mjs", "admin: every step as expected").await;
}

#[tokio::test]
async fn better_auths_two_factor_client_works_unchanged() {
    run_check("two-factor.mjs", "two-factor: every step as expected").await;
}
