//! A seed is a complete description of a run: the same seed gives the same event trace, and
//! the trace is readable.

use raft_impl::MutationSet;
use raft_tests::suite;

/// Scenarios that exercise every source of randomness: unreliable delivery, long reordering,
/// crashes and restarts, concurrent clients, snapshots taken, sent, installed and restarted from.
const SCENARIOS: [&str; 4] = [
    "figure8_unreliable_3c",
    "unreliable_churn_3c",
    "figure8_3c",
    "snapshot_install_uncrash_3d",
];

#[test]
fn same_seed_gives_identical_trace() {
    for name in SCENARIOS {
        let scenario = suite::find(name).unwrap();
        let first = scenario.run(7, MutationSet::NONE, true);
        let second = scenario.run(7, MutationSet::NONE, true);
        assert_eq!(first.outcome, Ok(()), "{name}");
        assert!(first.trace.len() > 1000, "{name}: trace was not recorded");
        assert_eq!(first.elapsed, second.elapsed, "{name}");
        assert!(
            first.trace == second.trace,
            "{name}: seed 7 replayed differently"
        );
    }
}

#[test]
fn another_seed_gives_another_trace() {
    let scenario = suite::find("unreliable_churn_3c").unwrap();
    let a = scenario.run(7, MutationSet::NONE, true);
    let b = scenario.run(8, MutationSet::NONE, true);
    assert!(a.trace != b.trace);
}

/// Each of `expected` is a set of fragments that must stand together on one line of `text`.
fn assert_lines(text: &[String], expected: &[&[&str]]) {
    for fragments in expected {
        assert!(
            text.iter()
                .any(|line| fragments.iter().all(|part| line.contains(part))),
            "no line with all of {fragments:?} in the trace"
        );
    }
}

#[test]
fn trace_reads_as_a_raft_story() {
    let scenario = suite::find("persist1_3c").unwrap();
    let run = scenario.run(1, MutationSet::NONE, true);
    let text: Vec<String> = run.trace.iter().map(ToString::to_string).collect();
    // Each entry: fragments that must stand together on one line of the trace. The messages are
    // in the format of `Message`'s `Display`; what they say holds whatever the seed: the first
    // election is in term 1 from an empty log, a leader won a vote, and entry 1 (command 11)
    // went out after the empty prefix and was acknowledged.
    let expected: [&[&str]; 9] = [
        &["is Leader in term"],
        &["RequestVote t1 last 0:0"],
        &["RequestVoteReply t", " granted"],
        &["AppendEntries t", " prev 0:0 [1:", ":11", "] commit "],
        &["AppendEntriesReply t", " success match "],
        &["CRASHED"],
        &["started from saved term="],
        &["persisted term="],
        &["applied 1: 11"],
    ];
    assert_lines(&text, &expected);
}

/// The 3D tests do what they are for: servers snapshot every 10 applies, a crashed follower
/// that fell behind is sent an InstallSnapshot and its service restores it, and a restarted
/// server's service starts from its saved snapshot.
#[test]
fn a_3d_trace_shows_snapshots_taken_sent_and_restored() {
    let scenario = suite::find("snapshot_install_crash_3d").unwrap();
    let run = scenario.run(1, MutationSet::NONE, true);
    assert_eq!(run.outcome, Ok(()));
    let text: Vec<String> = run.trace.iter().map(ToString::to_string).collect();
    let expected: [&[&str]; 4] = [
        &["snapshot at 10"],
        &["<- S", "InstallSnapshot t", " last "],
        &["restored its snapshot at"],
        &["started from saved term="],
    ];
    assert_lines(&text, &expected);
    // A restart restores before the core applies: the line after a start with a snapshot.
    let restarts_from_snapshot = text.windows(2).filter(|w| {
        w[0].contains("started from saved") && w[1].contains("restored its snapshot at")
    });
    assert!(restarts_from_snapshot.count() > 0);
}

#[test]
fn tracing_does_not_change_the_run() {
    let scenario = suite::find("figure8_unreliable_3c").unwrap();
    let traced = scenario.run(3, MutationSet::NONE, true);
    let untraced = scenario.run(3, MutationSet::NONE, false);
    assert_eq!(traced.elapsed, untraced.elapsed);
    assert!(untraced.trace.is_empty());
}
