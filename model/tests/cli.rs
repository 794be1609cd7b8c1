//! The `raftcheck` command line: exit codes and what a user sees.

mod run_cli;

use run_cli::{raftcheck, stderr, stdout, SMALL};

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
    assert!(text.contains("http://127.0.0.1:3000/#/steps/0/"), "{text}");
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
        // The trace's last step is the stale acknowledgement and says where the core panicked.
        let step = text
            .lines()
            .find(|l| l.contains("panicked at impl/src/node.rs:"));
        assert!(
            step.is_some_and(|l| l.contains("receives AppendEntriesReply t1 success match 0")),
            "{strategy}: {text}"
        );
        assert!(text.contains("index out of bounds"), "{strategy}: {text}");
        assert!(
            text.contains("http://127.0.0.1:3000/#/steps/0/"),
            "{strategy}: {text}"
        );
        assert!(!err.contains("panicked"), "{strategy}: {err}");
    }
}
