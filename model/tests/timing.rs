//! The timing events of `--check-quorum` (a leader checks its quorum, a follower's leader
//! contact expires) are explored with two reductions (`RaftModel::reduce_timing`); these tests
//! compare them with the plain exploration, where a contact may expire at any moment and a
//! leader checks its quorum one `check_quorum()` call at a time, keeping its record in the
//! state.

use raft_impl::{Mutation, MutationSet};
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy};
use raft_model::{Bounds, RaftModel};

/// Small enough to explore without symmetry reduction in seconds: two servers with an entry,
/// or three with one message in flight and none.
fn bounds(servers: u8, pre_vote: bool) -> Bounds {
    let entries = if servers == 2 { 1 } else { 0 };
    Bounds {
        servers,
        max_term: 2,
        max_log: entries,
        proposals: entries as u8,
        max_crashes: 0,
        max_in_flight: 1,
        pre_vote,
        check_quorum: true,
        ..Bounds::default()
    }
}

/// Breadth first on one thread, every state its own (no symmetry), so counts are exact; without
/// the stale-reply reduction (`stale_replies.rs` compares that one), so that the two
/// explorations differ by the timing reductions alone.
fn run(bounds: Bounds, reduce_timing: bool) -> CheckReport {
    let mut model = RaftModel::new(bounds).without_symmetry();
    model.reduce_timing = reduce_timing;
    model.reduce_stale = false;
    check::run(model, &CheckOptions::exhaustive(Strategy::Bfs, 1))
}

fn outcomes(report: &CheckReport) -> Vec<(&'static str, PropertyOutcome)> {
    let outcome = |p: &check::PropertyResult| (p.name, p.outcome);
    report.properties.iter().map(outcome).collect()
}

#[test]
fn the_reduced_timing_events_get_the_verdicts_of_the_plain_ones() {
    for (servers, pre_vote) in [(2, false), (2, true), (3, true)] {
        let b = bounds(servers, pre_vote);
        let (reduced, plain) = (run(b, true), run(b, false));
        assert!(reduced.exhaustive && plain.exhaustive, "{b}");
        assert_eq!(outcomes(&reduced), outcomes(&plain), "{b}");
        assert!(reduced.unique_states < plain.unique_states, "{b}");
    }
}

/// The catalog's PreVote bug with the lease and CheckQuorum on: caught both ways.
#[test]
fn a_prevote_bug_is_caught_the_same_way() {
    let b = Bounds {
        max_term: 1,
        max_in_flight: 2,
        mutations: MutationSet::NONE.with(Mutation::PreVoteCountedAsVote),
        ..bounds(3, true)
    };
    let (reduced, plain) = (run(b, true), run(b, false));
    let (name, _) = reduced.first_violation().expect("caught reduced");
    let (plain_name, _) = plain.first_violation().expect("caught plain");
    assert_eq!(name, plain_name);
}
