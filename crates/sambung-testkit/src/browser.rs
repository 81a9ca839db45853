//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub struct Browser {
    pub client: Client,
    driver: Child,
    /// chromedriver and Chromium work in here (their profile too): whatever survives a test
    /// is found by its working directory and killed.
    dir: tempfile::TempDir,
}

const CHROMIUM: &str = "/usr/bin/chromium";

impl Browser {
    /// Chromium in the light theme.
    pub async fn start() -> Browser {
        Browser::launch(false, "en-US").await
    }

    /// Chromium in the dark theme (`prefers-color-scheme: dark`).
    pub async fn start_dark() -> Browser {
        Browser::launch(true, "en-US").await
    }

    /// Chromium set up for people who read `language` (`id`): its `navigator.languages`
    /// and the `Accept-Language` it sends.
    pub async fn start_in(language: &str) -> Browser {
        Browser::launch(false, language).await
    }

    async fn launch(dark: bool, language: &str) -> Browser {
        let dir = tempfile::Builder::new()
            .prefix("sambung-test-chromium-")
            .tempdir()
            .unwrap();
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: install Debian's chromium and chromium-driver (`bash scripts/test` does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.path().join("profile");
        let downloads = dir.path().join("downloads");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--lang={language}"),
                    format!("--accept-lang={language}"),
                    // Headless Chromium is light unless told otherwise.
                    if dark { "--force-dark-mode" } else { "--no-default-browser-check" },
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "intl.accept_languages": language,
                },
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("start a Chromium session");
        Browser {
            client,
            driver,
            dir,
        }
    }

    /// Wait (10 s at most) for an element to be there.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Click the element; if the page re-rendered it meanwhile (a stale reference), or has
    /// not shown it yet (not interactable), find it again and retry, for 5 s at most.
    pub async fn click(&self, css: &str) {
        for attempt in 0.. {
            match self.element(css).await.click().await {
                Ok(_) => return,
                Err(e) if attempt < 100 && not_ready(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Replace the text of an input with `text`, retrying as [`Browser::click`] does.
    pub async fn type_into(&self, css: &str, text: &str) {
        for attempt in 0.. {
            let input = self.element(css).await;
            match input.clear().await {
                Ok(_) => {
                    input.send_keys(text).await.unwrap();
                    return;
                }
                Err(e) if attempt < 100 && not_ready(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("type into {css}: {e}"),
            }
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Wait until `check` holds for the script's result (10 s at most).
    pub async fn until(&self, what: &str, script: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap();
            if check(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}: last saw {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the element's text contains `wanted`.
    pub async fn until_text(&self, css: &str, wanted: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            serde_json::to_string(css).unwrap()
        );
        self.until(&format!("{css} to say {wanted:?}"), &script, |v| {
            v.as_str().is_some_and(|t| t.contains(wanted))
        })
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.innerText);",
            serde_json::to_string(css).unwrap()
        );
        let value = self.client.execute(&script, vec![]).await.unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Wait (10 s at most) for a finished download of this name and read it.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.dir.path().join("downloads").join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            assert!(Instant::now() < deadline, "no download {name}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn screenshot(&self, path: PathBuf) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
    }

    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element re-rendered meanwhile (a stale reference) or not shown yet: worth another try.
fn not_ready(error: &fantoccini::error::CmdError) -> bool {
    let text = error.to_string();
    text.contains("stale element") || text.contains("not interactable")
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for pid in sambung_pg::processes_working_in(self.dir.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
