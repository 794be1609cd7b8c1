//! `raftcheck check --html`: the page of three short catalog counterexamples, and of a passing
//! run, loads in headless Chromium with its script run to the end (no exception: the script's
//! last statement marks the page `data-loaded`, and the console shows no uncaught error) and
//! shows one row per step of the trace the CLI printed. Every catalog bug's page names the bug
//! and the property, and fits a 1400 px window whole: the document is no wider than the
//! window, and no part of the diagram is hidden in its box.
//!
//! The browser is Debian's `chromium` package, which the README's test command (`bash
//! .ci/test`) installs when it is missing. Without it these tests fail, saying how to install
//! it, rather than pass unseen: a page that no browser ever opened is the untested part of this
//! feature.

use std::path::{Path, PathBuf};

use raft_impl::Mutation;
use raft_model::catalog;

mod browser;
mod run_cli;

use run_cli::{raftcheck, stderr, stdout, SMALL};

/// A fresh path for this test's files (cargo's scratch directory for integration tests).
fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("html_page-{name}"))
}

/// The page's DOM after its script ran, and the browser's log (console messages included).
fn render(page: &Path, name: &str) -> (String, String) {
    let profile = scratch(&format!("{name}-profile"));
    let url = format!("file://{}", page.display());
    browser::chromium(&url, &profile, &["--dump-dom"])
}

/// Checks that the page at `page` loaded without a script error and shows `steps` steps.
fn assert_renders(page: &Path, name: &str, steps: usize) -> String {
    let (dom, log) = render(page, name);
    assert!(
        dom.contains("data-loaded=\"yes\""),
        "{name}: the page's script did not run to its end\n{log}"
    );
    let errors: Vec<_> = log.lines().filter(|l| l.contains("Uncaught")).collect();
    assert!(errors.is_empty(), "{name}: script errors: {errors:?}");
    assert!(
        dom.contains(&format!("data-steps=\"{steps}\"")),
        "{name}: the page does not show {steps} steps"
    );
    dom
}

/// The number in the CLI's `Counterexample to "..." (N steps):` line.
fn steps_printed(stdout: &str) -> usize {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Counterexample to"))
        .unwrap_or_else(|| panic!("no counterexample printed:\n{stdout}"));
    let count = line.rsplit('(').next().and_then(|s| s.split(' ').next());
    count.and_then(|n| n.parse().ok()).expect("a step count")
}

fn counterexample_page(mutation: Mutation) -> String {
    let bug = catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == mutation)
        .expect("the bug is in the catalog");
    let page = scratch(&format!("{}.html", mutation.name()));
    let command = bug.command();
    // The catalog's own command line, on one thread so that the trace is the shortest one.
    let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let path = page.display().to_string();
    args.extend(["--threads", "1", "--html", &path]);
    let out = raftcheck(&args);
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", stderr(&out));
    assert!(stdout.contains(&format!("Wrote {path}")), "{stdout}");
    let steps = steps_printed(&stdout);
    let dom = assert_renders(&page, mutation.name(), steps);
    // The last step's row exists, and is where the property is named as violated.
    assert!(dom.contains(&format!("data-row=\"{steps}\"")), "{dom}");
    assert!(
        !dom.contains(&format!("data-row=\"{}\"", steps + 1)),
        "{dom}"
    );
    assert!(dom.contains("class=\"step broken"), "{dom}");
    assert!(dom.contains("is violated in this state"), "{dom}");
    dom
}

/// A number the page's script noted in attribute `name` of the body.
fn noted(dom: &str, name: &str) -> u32 {
    let key = format!("{name}=\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("the script noted no {name}"))
        + key.len();
    let digits: String = dom[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a number")
}

/// The width the page's script found the laid-out document to have.
fn scroll_width(dom: &str) -> u32 {
    noted(dom, "data-scroll-width")
}

/// Every catalog bug's page names the bug and says what the violated property means, and
/// does not make a 1400 px window scroll sideways.
#[test]
fn every_catalog_page_names_its_bug_and_fits_1400_px() {
    for bug in catalog::catalog() {
        let dom = counterexample_page(bug.mutation);
        let name = bug.mutation.name();
        assert!(
            dom.contains(&format!("Deliberate bug switched on: <b>{name}</b>")),
            "{name}"
        );
        assert!(dom.contains("class=\"meaning\""), "{name}: no meaning");
        assert!(dom.contains("verdict: FAIL"), "{name}: no verdict");
        let width = scroll_width(&dom);
        assert!(width <= 1400, "{name}: the page is {width} px wide");
        // Nor is any of the diagram hidden in its box, to be scrolled to.
        let hidden = noted(&dom, "data-diagram-hidden");
        assert_eq!(
            hidden, 0,
            "{name}: {hidden} px of the diagram are out of view"
        );
    }
}

#[test]
fn a_passing_run_writes_the_summary() {
    let page = scratch("passing.html");
    let path = page.display().to_string();
    let out = raftcheck(&[&["check", "--html", &path], &SMALL[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dom = assert_renders(&page, "passing", 0);
    assert!(dom.contains("every property holds"), "{dom}");
    assert!(dom.contains("verdict: PASS"), "{dom}");
    assert!(scroll_width(&dom) <= 1400, "{dom}");
    assert!(dom.contains("election safety"), "{dom}");
}

#[test]
fn an_unwritable_page_exits_2_before_the_run() {
    let out = raftcheck(&["check", "--html", "/nonexistent-dir/page.html"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--html /nonexistent-dir/page.html"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}
