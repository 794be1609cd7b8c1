//! Running the `raftcheck` binary from a test, and the configurations the command-line tests
//! share: one module for every test file that runs it.

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

/// A configuration in which no election can complete (one message in flight, three servers):
/// its check proves nothing and says so. (Not every test file that includes this module uses
/// it; each is its own crate.)
#[allow(dead_code)]
pub const VACUOUS: [&str; 11] = [
    "--servers",
    "3",
    "--max-term",
    "1",
    "--max-log",
    "0",
    "--max-crashes",
    "0",
    "--max-in-flight",
    "1",
    "--lossless",
];
