//! The suite's checks are not vacuous: with a known bug switched on in the core, a scenario
//! fails, with the failure the bug should cause, and the run reports it instead of panicking.

use raft_impl::{Mutation, MutationSet};
use raft_tests::suite;
use raft_tests::Failure;

/// Granting votes by log length alone lets a server with a longer log of stale entries win an
/// election and overwrite a committed entry: two servers apply different commands at index 2.
#[test]
fn up_to_date_by_length_breaks_state_machine_safety_in_rejoin() {
    let bug = MutationSet::NONE.with(Mutation::UpToDateByLength);
    let outcome = suite::find("rejoin_3b").unwrap().check(0, bug);
    assert!(
        matches!(outcome, Err(Failure::ApplyMismatch { index: 2, .. })),
        "{outcome:?}"
    );
}

/// A leader that ignores a higher term keeps leading: two leaders in one term.
#[test]
fn leader_ignoring_higher_term_gives_two_leaders() {
    let bug = MutationSet::NONE.with(Mutation::LeaderIgnoresHigherTerm);
    let outcome = suite::find("re_election_3a").unwrap().check(0, bug);
    assert!(
        matches!(outcome, Err(Failure::TwoLeaders { .. })),
        "{outcome:?}"
    );
}

/// Forgetting the term across a crash lets a restarted server apply a different command.
#[test]
fn term_not_persisted_is_caught_by_persist2() {
    let bug = MutationSet::NONE.with(Mutation::TermNotPersisted);
    let outcome = suite::find("persist2_3c").unwrap().check(0, bug);
    assert!(
        matches!(outcome, Err(Failure::ApplyMismatch { .. })),
        "{outcome:?}"
    );
}

/// The correct core passes the same runs.
#[test]
fn correct_core_passes_those_runs() {
    for name in ["rejoin_3b", "re_election_3a", "persist2_3c"] {
        assert_eq!(
            suite::find(name).unwrap().check(0, MutationSet::NONE),
            Ok(()),
            "{name}"
        );
    }
}
