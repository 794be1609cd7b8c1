//! Running the `raftcheck` binary from a test, shared by `cli.rs` and `html_page.rs`.

use std::process::{Command, Output};

pub fn raftcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftcheck"))
        .args(args)
        .output()
        .expect("raftcheck runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A configuration whose exhaustive check takes a moment and finds every property holding.
pub const SMALL: [&str; 8] = [
    "--servers",
    "2",
    "--max-term",
    "2",
    "--max-log",
    "1",
    "--proposals",
    "1",
];
