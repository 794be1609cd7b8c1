//! Checks shared by the catalog's tests (`bugs.rs`) and the probes' (`probes.rs`): both hold
//! entries of the same [`Bug`] shape, and both must show the same two things about each.

use raft_model::catalog::{self, Bug};
use raft_model::check::{self, CheckOptions, PropertyOutcome, Strategy};
use raft_model::RaftModel;
use stateright::Model;

/// Checks `bug` in its configuration with `search` and asserts the expected property is
/// violated with a counterexample that actually takes steps and ends at its first violation.
pub fn assert_caught(bug: &Bug, search: Strategy) {
    let mutation = bug.mutation;
    let run = catalog::run(bug, search);
    assert!(
        run.caught(),
        "{mutation}: expected \"{}\" to be violated, found {:?} in {} states",
        bug.expected,
        run.violated,
        run.unique_states
    );
    assert!(run.violated.contains(&bug.expected));
    assert!(run.trace_len().is_some_and(|n| n > 0));
    // The counterexample ends at its first violation of the property: no state before the last
    // violates it (the checker reports the first discovery, not a later one).
    let model = bug.model();
    let property = model
        .properties()
        .into_iter()
        .find(|p| p.name == bug.expected)
        .unwrap();
    let states = run.trace.unwrap().into_states();
    let (last, before) = states.split_last().unwrap();
    assert!(!(property.condition)(&model, last));
    for (i, state) in before.iter().enumerate() {
        assert!(
            (property.condition)(&model, state),
            "{mutation}: state {i} of the trace already violates {}",
            bug.expected
        );
    }
}

/// Asserts every safety property holds, exhaustively, in each entry's configuration without
/// its bug: the counterexample is the bug's doing, not the configuration's.
pub fn assert_holds_without_the_bug(bugs: &[Bug]) {
    // DFS with symmetry reduction: exhaustive like BFS, on a fraction of the states.
    let options = CheckOptions::exhaustive(Strategy::Dfs, 2);
    for bug in bugs {
        let report = check::run(RaftModel::with_kv(bug.config, bug.kv), &options);
        assert!(report.exhaustive, "{}", bug.mutation);
        for p in report.properties.iter().filter(|p| p.safety) {
            assert_eq!(
                p.outcome,
                PropertyOutcome::Holds,
                "{} configuration without the bug: {}",
                bug.mutation,
                p.name
            );
        }
    }
}
