//! The deliberate-bug catalog, checked: each bug is caught by the property the catalog
//! names, in the catalog's configuration, and the same configurations hold without any bug —
//! so the counterexample is the bug's doing, not the configuration's.

mod common;

use raft_impl::Mutation;
use raft_model::catalog::{self, Bug};
use raft_model::check::Strategy;
use raft_model::{properties, Bounds, Persistence};

fn entry(mutation: Mutation) -> Bug {
    catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == mutation)
        .expect("every mutation is in the catalog")
}

/// Checks the bug in its catalog configuration breadth first, as `raftcheck bugs --run`.
fn assert_caught(mutation: Mutation) {
    assert_caught_by(mutation, Strategy::Bfs);
}

fn assert_caught_by(mutation: Mutation, search: Strategy) {
    common::assert_caught(&entry(mutation), search);
}

#[test]
fn figure8_commit() {
    // The shortest overwrite is 34 steps deep: BFS needs millions of states (tens of seconds),
    // DFS with symmetry reduction finds one on a fraction of them.
    assert_caught_by(Mutation::Figure8Commit, Strategy::Dfs);
}

/// Random walks too report a path that really leads to the violation (the walks take many
/// disabled actions here: replies past the in-flight bound, deliveries that change nothing).
#[test]
fn simulation_reports_replayable_counterexamples() {
    for seed in 0..8 {
        assert_caught_by(Mutation::MatchIndexRegress, Strategy::Simulation { seed });
        assert_caught_by(Mutation::KvNoDedup, Strategy::Simulation { seed });
    }
}

#[test]
fn vote_not_persisted() {
    assert_caught(Mutation::VoteNotPersisted);
}

#[test]
fn term_not_persisted() {
    assert_caught(Mutation::TermNotPersisted);
}

#[test]
fn ack_before_persist() {
    assert_caught(Mutation::AckBeforePersist);
}

#[test]
fn truncate_on_match() {
    assert_caught(Mutation::TruncateOnMatch);
}

#[test]
fn up_to_date_by_length() {
    assert_caught(Mutation::UpToDateByLength);
}

#[test]
fn no_up_to_date_check() {
    assert_caught(Mutation::NoUpToDateCheck);
}

#[test]
fn leader_ignores_higher_term() {
    assert_caught(Mutation::LeaderIgnoresHigherTerm);
}

#[test]
fn leader_accepts_append() {
    assert_caught(Mutation::LeaderAcceptsAppend);
}

#[test]
fn vote_reset_on_append() {
    assert_caught(Mutation::VoteResetOnAppend);
}

#[test]
fn stale_vote_count() {
    assert_caught(Mutation::StaleVoteCount);
}

#[test]
fn match_index_regress() {
    assert_caught(Mutation::MatchIndexRegress);
}

#[test]
fn commit_index_regress() {
    assert_caught(Mutation::CommitIndexRegress);
}

#[test]
fn commit_beyond_last_new() {
    assert_caught(Mutation::CommitBeyondLastNew);
}

#[test]
fn purge_before_snapshot_durable() {
    assert_caught(Mutation::PurgeBeforeSnapshotDurable);
}

#[test]
fn snapshot_discards_matching_suffix() {
    assert_caught(Mutation::SnapshotDiscardsMatchingSuffix);
}

#[test]
fn snapshot_regress() {
    assert_caught(Mutation::SnapshotRegress);
}

#[test]
fn snapshot_term_as_current() {
    assert_caught(Mutation::SnapshotTermAsCurrent);
}

#[test]
fn kv_no_dedup() {
    assert_caught(Mutation::KvNoDedup);
}

#[test]
fn stale_read() {
    assert_caught(Mutation::StaleRead);
}

#[test]
fn hardstate_before_entries_synced() {
    assert_caught(Mutation::HardStateBeforeEntriesSynced);
}

#[test]
fn append_without_truncate() {
    assert_caught(Mutation::AppendWithoutTruncate);
}

#[test]
fn prevote_counted_as_vote() {
    assert_caught(Mutation::PreVoteCountedAsVote);
}

/// The storage bugs of the second catalog, in their catalog configurations but with a
/// write-ahead log: caught there too, and so are the other persistence bugs.
#[test]
fn storage_bugs_are_caught_with_a_write_ahead_log() {
    for mutation in [
        Mutation::HardStateBeforeEntriesSynced,
        Mutation::AppendWithoutTruncate,
        Mutation::AckBeforePersist,
        Mutation::VoteNotPersisted,
        Mutation::TermNotPersisted,
    ] {
        let mut bug = entry(mutation);
        bug.config.persistence = Persistence::Wal;
        common::assert_caught(&bug, Strategy::Bfs);
    }
}

/// A lone server with non-atomic storage is refused: it would lead and commit on records a
/// crash may still lose, and the properties, which read its memory, would report that.
#[test]
fn a_lone_server_needs_atomic_storage() {
    let bounds = Bounds {
        servers: 1,
        persistence: Persistence::Wal,
        ..Bounds::default()
    };
    assert!(bounds.validate().is_err());
    let atomic = Bounds {
        persistence: Persistence::Atomic,
        ..bounds
    };
    assert!(atomic.validate().is_ok());
}

#[test]
fn catalog_lists_every_mutation_once_and_only_kv_bugs_need_clients() {
    let bugs = catalog::catalog();
    let listed: Vec<Mutation> = bugs.iter().map(|b| b.mutation).collect();
    assert_eq!(listed, Mutation::ALL);
    for bug in &bugs {
        let kv = matches!(bug.mutation, Mutation::KvNoDedup | Mutation::StaleRead);
        assert_eq!(bug.kv.enabled(), kv, "{}", bug.mutation);
        assert_eq!(
            bug.expected == properties::LINEARIZABLE,
            kv,
            "{}",
            bug.mutation
        );
        let bounds = bug.bounds();
        assert!(bounds.validate().is_ok(), "{}", bug.mutation);
        assert!(bounds.mutations.contains(bug.mutation));
    }
}

#[test]
fn without_the_bug_every_catalog_configuration_holds() {
    common::assert_holds_without_the_bug(&catalog::catalog());
}
