//! The `raftcheck` command line: exit codes and what a user sees.

mod run_cli;

use run_cli::{raftcheck, stderr, stdout, SMALL, VACUOUS};

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let cases: [(&[&str], &str); 7] = [
        (&["check", "--no-such-flag"], "--no-such-flag"),
        (&["check", "--servers", "0"], "--servers"),
        (&["check", "--max-term", "0"], "--max-term"),
        (&["check", "--max-log", "256"], "--max-log"),
        (&["check", "--strategy", "sideways"], "sideways"),
        (&["check", "--bug", "no-such-bug"], "figure8-commit"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, mention) in cases {
        let out = raftcheck(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(mention), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_holding_check_exits_0_and_prints_bounds_and_the_table() {
    let out = raftcheck(&[&["check"], &SMALL[..]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("max term         2"), "{text}");
    assert!(text.contains("proposals        1"), "{text}");
    assert!(text.contains("(exhaustive)"), "{text}");
    assert!(text.contains("election safety"), "{text}");
    assert!(!text.contains("VIOLATED"), "{text}");
}

/// `--proposals` was first called `--clients`: the old name still works but is not advertised
/// next to `--kv-clients`, which counts something else.
#[test]
fn the_old_clients_flag_still_sets_proposals() {
    let old: Vec<_> = SMALL
        .iter()
        .map(|a| if *a == "--proposals" { "--clients" } else { a })
        .collect();
    let out = raftcheck(&[&["check"], &old[..]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("proposals        1"), "{text}");
    let help = stdout(&raftcheck(&["check", "--help"]));
    assert!(help.contains("--proposals"), "{help}");
    assert!(!help.contains("--clients"), "{help}");
}

#[test]
fn symmetry_reduction_can_be_switched_off_and_changes_no_verdict() {
    let unique = |extra: &[&str]| {
        let out = raftcheck(&[&["check", "--threads", "1"], &SMALL[..], extra].concat());
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
        let line = text
            .lines()
            .find(|l| l.contains("unique states,"))
            .unwrap_or_else(|| panic!("no summary line: {text}"));
        let count: usize = line.split(' ').next().unwrap().parse().unwrap();
        (count, text)
    };
    let (reduced, text) = unique(&[]);
    assert!(
        text.contains("symmetry         one state per renaming"),
        "{text}"
    );
    let (all, text) = unique(&["--no-symmetry"]);
    assert!(text.contains("symmetry         off"), "{text}");
    // Two servers: most states have a twin with the ids swapped.
    assert!(reduced < all * 2 / 3, "{reduced} vs {all}");
}

/// The other two reductions can be switched off too: `check` says which are off and its
/// Explorer link carries the switch (the reductions change which actions a state offers, so a
/// path's step numbers), and `bugs` takes them only with `--run`.
#[test]
fn the_loss_and_timing_reductions_can_be_switched_off() {
    let off = ["--no-loss-reduction", "--no-timing-reduction"];
    let out = raftcheck(&[&["check", "--bug", "figure8-commit"], &off[..]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("reductions off   loss-reduction, timing-reduction"),
        "{text}"
    );
    let url = (text.lines())
        .find(|l| l.contains("/path?"))
        .unwrap_or_else(|| panic!("no Explorer link: {text}"));
    assert!(
        url.contains("&no-loss-reduction&no-timing-reduction"),
        "{url}"
    );
    let out = raftcheck(&["bugs", "--no-symmetry"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--run"), "{}", stderr(&out));
}

#[test]
fn a_violation_exits_1_with_a_trace_and_an_explorer_url() {
    let args = [
        "check",
        "--bug",
        "vote-not-persisted",
        "--max-term",
        "1",
        "--max-log",
        "0",
        "--proposals",
        "0",
        "--strategy",
        "bfs",
    ];
    let out = raftcheck(&args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("Counterexample to \"election safety\""),
        "{text}"
    );
    assert!(text.contains("crash"), "{text}");
    assert!(text.contains("RequestVoteReply t1 granted"), "{text}");
    // The URL carries the flags, so that an Explorer under other flags refuses it.
    assert!(
        text.contains("http://127.0.0.1:3000/path?servers=3&"),
        "{text}"
    );
    assert!(text.contains("&bug=vote-not-persisted&steps=0/"), "{text}");
}

/// A core that panics is reported like any other violation, under every strategy: exit 1, the
/// panic's message and source location with the trace, and no backtrace of the checker's
/// threads.
#[test]
fn a_panicking_core_exits_1_with_the_panic_and_a_trace() {
    for strategy in ["bfs", "dfs", "simulation"] {
        let args = [
            "check",
            "--bug",
            "panic-on-stale-reply",
            "--servers",
            "2",
            "--max-term",
            "2",
            "--max-log",
            "0",
            "--proposals",
            "0",
            "--max-crashes",
            "0",
            "--lossless",
            "--strategy",
            strategy,
            "--max-states",
            "100000",
        ];
        let out = raftcheck(&args);
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{strategy}: {text}{err}");
        assert!(
            text.contains("Counterexample to \"no step panics\""),
            "{strategy}: {text}"
        );
        // The trace's last step is the stale acknowledgement and says where the core panicked:
        // in the probe's rule (`impl Rules for MutationSet`).
        let step = text
            .lines()
            .find(|l| l.contains("panicked at impl/src/mutation.rs:"));
        assert!(
            step.is_some_and(|l| l.contains("receives AppendEntriesReply t1 success match 0")),
            "{strategy}: {text}"
        );
        assert!(text.contains("index out of bounds"), "{strategy}: {text}");
        assert!(
            text.contains("&bug=panic-on-stale-reply&steps=0/"),
            "{strategy}: {text}"
        );
        assert!(!err.contains("panicked"), "{strategy}: {err}");
    }
}

/// `--bug NAME` and nothing else runs the bug's catalog configuration, says so, and shows the
/// bug: exit 1 with a trace, for every bug of the catalog.
#[test]
fn a_bug_alone_runs_its_catalog_configuration_and_is_caught() {
    for bug in raft_model::catalog::catalog() {
        let name = bug.mutation.name();
        let out = raftcheck(&["check", "--bug", name, "--threads", "1"]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        assert!(
            text.contains(&format!("the catalog configuration of {name}")),
            "{name}: {text}"
        );
        assert!(text.contains("Counterexample to"), "{name}: {text}");
    }
}

/// With a preset or bounds, `--bug` keeps them, and a bug that cannot show under them is
/// named before the run.
#[test]
fn a_bug_that_cannot_show_under_the_bounds_is_named() {
    let out = raftcheck(&[
        "check",
        "--preset",
        "default",
        "--bug",
        "kv-no-dedup",
        "--max-states",
        "1000",
    ]);
    let text = stdout(&out);
    assert!(text.contains("preset default"), "{text}");
    assert!(
        text.contains("warning: kv-no-dedup needs KV clients"),
        "{text}"
    );
    let out = raftcheck(&["check", "--bug", "ack-before-persist", "--servers", "2"]);
    assert!(
        stdout(&out).contains("warning: ack-before-persist needs --storage deferred or wal"),
        "{}",
        stdout(&out)
    );
}

/// `--storage wal` on the catalog configuration of a storage bug finds it, and the trace
/// shows the records a step left pending; `--persistence` is still accepted.
#[test]
fn storage_wal_shows_records_in_traces() {
    let out = raftcheck(&[
        "check",
        "--bug",
        "hardstate-before-entries-synced",
        "--servers",
        "3",
        "--max-term",
        "1",
        "--max-log",
        "1",
        "--proposals",
        "1",
        "--max-crashes",
        "0",
        "--max-in-flight",
        "2",
        "--ordered",
        "--storage",
        "wal",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("storage          wal"), "{text}");
    assert!(
        text.contains("writes term 1 vote -, log from 1 [1:1:1] (pending)"),
        "{text}"
    );
    let out = raftcheck(&["check", "--persistence", "wal", "--max-term", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// "Not explored" is said for every run and comes from the bounds used, not from a preset's
/// text: a flag that adds WAL storage, duplication, KV clients or crashes takes it off the list.
#[test]
fn not_explored_follows_the_bounds_used() {
    let out = raftcheck(&["check", "--preset", "five", "--max-states", "1000"]);
    let text = stdout(&out);
    assert!(text.contains("bounds from      preset five"), "{text}");
    assert!(text.contains("servers          5"), "{text}");
    let said = |text: &str| {
        let line = text.lines().find(|l| l.contains("not explored"));
        line.unwrap_or_else(|| panic!("no not-explored line: {text}"))
            .to_string()
    };
    assert!(said(&text).contains("crashes"), "{text}");
    let out = raftcheck(&[
        "check",
        "--storage",
        "wal",
        "--duplicates",
        "1",
        "--kv-clients",
        "1",
        "--max-crashes",
        "2",
        "--max-states",
        "1000",
    ]);
    let line = said(&stdout(&out));
    for gone in ["durable", "duplication", "KV clients", "second crash"] {
        assert!(!line.contains(gone), "{gone}: {line}");
    }
    assert!(line.contains("a third crash event"), "{line}");
}

/// A run in which no election can complete proves nothing: it exits 4, "vacuous", never 0.
#[test]
fn a_vacuous_configuration_does_not_pass() {
    let out = raftcheck(&[&["check"], &VACUOUS[..]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("verdict: VACUOUS"), "{text}");
}

/// Every run ends with a one-line verdict: a pass names what the bounds kept it from showing,
/// a search stopped early exits 3.
#[test]
fn every_run_ends_with_a_verdict() {
    let out = raftcheck(&[&["check"], &SMALL[..]].concat());
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("verdict: PASS"), "{text}");
    let out = raftcheck(&["check", "--max-states", "500"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("verdict: INCOMPLETE"),
        "{}",
        stdout(&out)
    );
    let out = raftcheck(&["bugs"]);
    let last = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("verdict: LISTED"), "{last}");
    let history = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/lincheck/examples-data/stale-read.jsonl"
    );
    let out = raftcheck(&["lincheck", history]);
    assert_eq!(out.status.code(), Some(1));
    let last = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("verdict: NOT LINEARIZABLE"), "{last}");
}

/// `--help` is for people: no rustdoc link syntax leaks into it.
#[test]
fn help_shows_no_doc_links() {
    for command in ["check", "explore", "bugs", "lincheck"] {
        let help = stdout(&raftcheck(&[command, "--help"]));
        assert!(!help.contains("[`"), "{command}: {help}");
    }
}

/// The example CI workflow runs the script that `.ci/run` runs too, and keeps the page.
#[test]
fn the_example_workflow_runs_the_ci_script() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ci");
    let workflow = std::fs::read_to_string(format!("{dir}/github-workflow.yml")).expect("workflow");
    assert!(
        workflow.contains("run: bash examples/ci/raftcheck-ci.sh"),
        "{workflow}"
    );
    assert!(workflow.contains("upload-artifact"), "{workflow}");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/run"))
        .expect(".ci/run");
    assert!(ci.contains("bash examples/ci/raftcheck-ci.sh"), "{ci}");
}

/// The default bounds, not only the bug's own configuration, show a stale vote counted: an
/// election starts while the older term's vote is still in flight.
#[test]
fn the_default_preset_catches_a_stale_vote_count() {
    let out = raftcheck(&[
        "check",
        "--preset",
        "default",
        "--bug",
        "stale-vote-count",
        "--threads",
        "1",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Counterexample to \"election safety\""),
        "{text}"
    );
}
