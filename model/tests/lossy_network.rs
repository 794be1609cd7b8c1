//! A lossy network under `--max-in-flight`: a step whose sends do not all fit happens anyway
//! and the network loses the ones that do not fit. The model explores only the choices that
//! lose exactly as many sends as needed (`RaftModel::fit`); these tests compare that with the
//! plain exploration, where any subset of any step's sends may be lost (`reduce_loss` off).

use raft_impl::{Mutation, MutationSet};
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy};
use raft_model::{properties, Action, Bounds, Persistence, RaftModel};

/// Small enough to explore without symmetry reduction in seconds: no crash.
fn bounds(servers: u8, max_in_flight: usize, persistence: Persistence) -> Bounds {
    Bounds {
        servers,
        max_term: 2,
        max_log: 1,
        proposals: 1,
        max_crashes: 0,
        max_in_flight,
        persistence,
        ..Bounds::default()
    }
}

/// Breadth first on one thread, every state its own (no symmetry), so counts are exact.
fn run(bounds: Bounds, reduce_loss: bool) -> CheckReport {
    let mut model = RaftModel::new(bounds).without_symmetry();
    model.reduce_loss = reduce_loss;
    let options = CheckOptions::exhaustive(Strategy::Bfs, 1);
    check::run(model, &options)
}

fn outcomes(report: &CheckReport) -> Vec<(&'static str, PropertyOutcome)> {
    let outcome = |p: &check::PropertyResult| (p.name, p.outcome);
    report.properties.iter().map(outcome).collect()
}

/// With atomic persistence a lost send is in the network at once, so `Drop` can lose any more
/// of them right away: both explorations reach exactly the same states.
#[test]
fn losing_only_what_does_not_fit_reaches_the_same_states() {
    for (servers, in_flight) in [(2, 1), (3, 1), (3, 2)] {
        let b = bounds(servers, in_flight, Persistence::Atomic);
        let (reduced, plain) = (run(b, true), run(b, false));
        assert!(reduced.exhaustive && plain.exhaustive);
        assert_eq!(outcomes(&reduced), outcomes(&plain), "{b}");
        assert_eq!(reduced.unique_states, plain.unique_states, "{b}");
    }
}

/// With deferred or WAL storage a send waiting behind a record can be dropped only once flushed,
/// so the plain exploration has more states (fewer sends waiting); every verdict is the same.
#[test]
fn deferred_and_wal_storage_get_the_same_verdicts() {
    for persistence in [Persistence::Deferred, Persistence::Wal] {
        let b = bounds(3, 1, persistence);
        let (reduced, plain) = (run(b, true), run(b, false));
        assert!(reduced.exhaustive && plain.exhaustive);
        assert_eq!(outcomes(&reduced), outcomes(&plain), "{b}");
        assert!(reduced.unique_states <= plain.unique_states, "{b}");
    }
}

/// A bug that needs a stale vote in flight while its candidate starts the next election:
/// caught both ways. The reduced counterexample may be longer by the `Drop` steps that stand
/// for sends the plain exploration loses as they are sent.
#[test]
fn a_stale_vote_is_caught_the_same_way() {
    let b = Bounds {
        max_log: 0,
        proposals: 0,
        max_crashes: 0,
        max_in_flight: 2,
        mutations: MutationSet::NONE.with(Mutation::StaleVoteCount),
        ..bounds(3, 2, Persistence::Atomic)
    };
    let (reduced, plain) = (run(b, true), run(b, false));
    let (name, path) = reduced
        .first_violation()
        .expect("caught by the reduced exploration");
    let (plain_name, plain_path) = plain.first_violation().expect("caught by the plain one");
    assert_eq!(
        (name, plain_name),
        (properties::ELECTION_SAFETY, properties::ELECTION_SAFETY)
    );
    let (steps, plain_steps) = (
        path.clone().into_actions(),
        plain_path.clone().into_actions(),
    );
    let drops = steps
        .iter()
        .filter(|a| matches!(a, Action::Drop { .. }))
        .count();
    assert!(plain_steps.len() <= steps.len() && steps.len() <= plain_steps.len() + drops);
}
