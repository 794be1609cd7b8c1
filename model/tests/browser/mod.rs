//! Headless Chromium, shared by the tests that look at a page as a reader would: the `--html`
//! page (`html_page.rs`) and the Explorer's (`explorer.rs`).
//!
//! The browser is Debian's `chromium` package, which the README's test command (`bash
//! .ci/test`) installs when it is missing. Without it these tests fail, saying how to install
//! it, rather than pass unseen.

use std::path::Path;
use std::process::Command;

/// Opens `url` in a 1400 × 1000 window with its own profile at `profile`, with `extra`
/// arguments (`--dump-dom`, say), and returns what the browser printed and its log.
pub fn chromium(url: &str, profile: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}): these tests render pages in headless Chromium; \
                 install it with `apt-get update && apt-get install -y chromium` (`bash .ci/test` \
                 does)"
            )
        });
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {log}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), log)
}
