//! What one state costs: unique states per second and peak memory per unique state, for the
//! default configuration (exhaustive) and for `--max-term 3` cut at a state budget, each run as
//! its own `raftcheck check --json` process so that its peak RSS is its own. One checker thread,
//! so that every run explores the same states in the same order (with two, symmetry ties make
//! the count vary by a few thousand).
//!
//! With `RAFTCHECK_BEFORE=<absolute path to an older raftcheck binary>` (benches run in
//! `model/`) each configuration also runs on that binary, alternately with this one (before,
//! after, before, after, …), and the ratios are printed: figures from one session on one
//! machine, which is what the README compares. Asserts nothing about time (this machine is
//! shared); it does check that both binaries explored the same states, since a change of
//! per-state cost must not change the state space.
//!
//! A reduction changes the state space, so the two binaries are compared on the plain one:
//! `RAFTCHECK_AFTER_ARGS` gives this build the flags that turn off what the older one lacks
//! (`--no-stale-reduction` against a build before it). What a reduction buys is measured apart,
//! by this build alone: each configuration of [`REDUCED`] runs with the reduction and without it,
//! alternately, and the ratios of states and of seconds to the end are printed.
//!
//! `cargo bench -p raft-model --bench per_state`, or with a filter naming the configurations to
//! run (`default`, `max-term-3`, `stale`) and `RAFTCHECK_ROUNDS=<n>` pairs of runs (1 by
//! default).

use std::path::Path;
use std::process::Command;

/// `--max-term 3` does not finish in minutes: it is cut after this many generated states (total,
/// not unique: the budget `--max-states` counts), which on one thread is the same prefix of the
/// search on every run and every binary.
const MAX_TERM_3_BUDGET: &str = "12000000";

/// The configurations measured, by name, as `raftcheck check` arguments.
const CONFIGURATIONS: [(&str, &[&str]); 2] = [
    ("default", &["--threads", "1"]),
    (
        "max-term-3",
        &[
            "--max-term",
            "3",
            "--threads",
            "1",
            "--max-states",
            MAX_TERM_3_BUDGET,
        ],
    ),
];

/// The configurations, exhaustive, on which the stale reduction (`--no-stale-reduction`
/// turns it off) is timed against the plain exploration: the default bounds, and three terms
/// with one entry, which ends in minutes without it.
const REDUCED: [(&str, &[&str]); 2] = [
    ("stale/default", &["--threads", "1"]),
    (
        "stale/max-term-3-one-entry",
        &[
            "--max-term",
            "3",
            "--max-log",
            "1",
            "--proposals",
            "1",
            "--threads",
            "1",
        ],
    ),
];

/// One run's figures, from its `--json` document.
struct Run {
    unique: f64,
    total: f64,
    seconds: f64,
    peak_rss: f64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.unique / self.seconds
    }

    fn bytes_per_state(&self) -> f64 {
        self.peak_rss / self.unique
    }
}

fn run(binary: &Path, args: &[&str]) -> Run {
    let output = Command::new(binary)
        .arg("check")
        .args(args)
        .arg("--json")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON document ({e}): {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let stats = &doc["statistics"];
    let number = |key: &str| {
        stats[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in the statistics of {}", binary.display()))
    };
    assert_ne!(
        doc["verdict"],
        "fail",
        "{} found a violation",
        binary.display()
    );
    Run {
        unique: number("unique_states"),
        total: number("total_states"),
        seconds: number("seconds"),
        peak_rss: number("peak_rss_bytes"),
    }
}

fn describe(who: &str, name: &str, r: &Run) {
    println!(
        "{name}/{who}: {:.0} unique states ({:.0} total), {:.2} s, {:.0} unique states/s, \
         peak RSS {:.1} MB, {:.1} bytes/state",
        r.unique,
        r.total,
        r.seconds,
        r.per_second(),
        r.peak_rss / 1e6,
        r.bytes_per_state()
    );
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let after = Path::new(env!("CARGO_BIN_EXE_raftcheck"));
    let before = std::env::var_os("RAFTCHECK_BEFORE");
    let after_args = std::env::var("RAFTCHECK_AFTER_ARGS").unwrap_or_default();
    let after_args: Vec<&str> = after_args.split_whitespace().collect();
    let rounds: usize = std::env::var("RAFTCHECK_ROUNDS").map_or(1, |r| {
        r.parse().expect("RAFTCHECK_ROUNDS is a number of rounds")
    });
    for (name, args) in CONFIGURATIONS
        .into_iter()
        .filter(|(name, _)| selected(name))
    {
        println!("raftcheck check {}", args.join(" "));
        for round in 1..=rounds {
            let Some(before) = &before else {
                describe("this build", name, &run(after, args));
                continue;
            };
            let old = run(Path::new(before), args);
            describe("before", name, &old);
            let new = run(after, &[args, &after_args].concat());
            describe("after", name, &new);
            assert_eq!(
                (old.unique, old.total),
                (new.unique, new.total),
                "the two binaries explored different states"
            );
            println!(
                "{name}, round {round}: after/before {:.3}x unique states/s, {:.3}x bytes/state",
                new.per_second() / old.per_second(),
                new.bytes_per_state() / old.bytes_per_state()
            );
        }
    }
    for (name, args) in REDUCED.into_iter().filter(|(name, _)| selected(name)) {
        println!("raftcheck check {} [--no-stale-reduction]", args.join(" "));
        for round in 1..=rounds {
            let plain = run(after, &[args, &["--no-stale-reduction"]].concat());
            describe("plain", name, &plain);
            let reduced = run(after, args);
            describe("reduced", name, &reduced);
            println!(
                "{name}, round {round}: reduced/plain {:.3}x unique states, {:.3}x seconds to \
                 the end, {:.3}x peak RSS",
                reduced.unique / plain.unique,
                reduced.seconds / plain.seconds,
                reduced.peak_rss / plain.peak_rss
            );
        }
    }
}
