//! A lossy network under `--max-in-flight`: a step whose sends do not all fit happens anyway
//! and the network loses the ones that do not fit. The model explores only the choices that
//! lose exactly as many sends as needed (`RaftModel::fit`); these tests compare that with the
//! plain exploration, where any subset of any step's sends may be lost (`reduce_loss` off):
//! state by state where the two must agree (atomic storage), state set inclusion and verdicts
//! where the reduced one is smaller (deferred and WAL storage), with and without crashes, and
//! with the storage bugs on. The reduced counts are pinned, so that a change of which losses
//! the model explores is seen even where no verdict changes.

mod reach;

use raft_impl::{Mutation, MutationSet};
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy};
use raft_model::{properties, Action, Bounds, Persistence, RaftModel};
use reach::reachable;

/// Small enough to explore without symmetry reduction in seconds.
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

/// Without symmetry, and without the stale reduction (`stale_replies.rs` compares that
/// one), so that the two explorations differ by the loss reduction alone.
fn model(bounds: Bounds, reduce_loss: bool) -> RaftModel {
    let mut model = RaftModel::new(bounds).without_symmetry();
    model.reduce_loss = reduce_loss;
    model.reduce_stale = false;
    model
}

/// Breadth first on one thread, every state its own (no symmetry), so counts are exact.
fn run(bounds: Bounds, reduce_loss: bool) -> CheckReport {
    let options = CheckOptions::exhaustive(Strategy::Bfs, 1);
    check::run(model(bounds, reduce_loss), &options)
}

fn outcomes(report: &CheckReport) -> Vec<(&'static str, PropertyOutcome)> {
    let outcome = |p: &check::PropertyResult| (p.name, p.outcome);
    report.properties.iter().map(outcome).collect()
}

/// With atomic storage a lost send is in the network at once, so `Drop` can lose any more of
/// them right away: both explorations reach exactly the same states, with a crash too.
#[test]
fn losing_only_what_does_not_fit_reaches_the_same_states() {
    let crash = |b: Bounds| Bounds {
        max_crashes: 1,
        ..b
    };
    for b in [
        bounds(2, 1, Persistence::Atomic),
        bounds(3, 1, Persistence::Atomic),
        bounds(3, 2, Persistence::Atomic),
        crash(bounds(3, 1, Persistence::Atomic)),
    ] {
        let (reduced, plain) = (run(b, true), run(b, false));
        assert!(reduced.exhaustive && plain.exhaustive);
        assert_eq!(outcomes(&reduced), outcomes(&plain), "{b}");
        assert_eq!(reduced.unique_states, plain.unique_states, "{b}");
    }
}

/// With deferred or WAL storage a send waiting behind a record holds its place under
/// `--max-in-flight` until the record is flushed, and can be dropped only then. The plain
/// exploration may also lose a send that fits at once, freeing its place while the record is
/// still pending, so it reaches more states (about twice as many here): the reduced one is a
/// subset of it. The verdicts agree, with a crash (which loses queued sends with their records)
/// and with the bugs that only these storage modes show, and the reduced counts are pinned.
#[test]
fn deferred_and_wal_storage_reach_a_subset_with_the_same_verdicts() {
    let mut cases = Vec::new();
    for (persistence, pinned) in [
        (Persistence::Deferred, DEFERRED_PINNED),
        (Persistence::Wal, WAL_PINNED),
    ] {
        let b = bounds(3, 1, persistence);
        let crash = Bounds {
            max_crashes: 1,
            max_term: 1,
            ..b
        };
        let bug = |m| Bounds {
            max_term: 1,
            mutations: MutationSet::NONE.with(m),
            ..b
        };
        let ack = bug(Mutation::AckBeforePersist);
        let hardstate = bug(Mutation::HardStateBeforeEntriesSynced);
        cases.extend([b, crash, ack, hardstate].into_iter().zip(pinned));
    }
    for (b, pinned) in cases {
        let reduced = reachable(&model(b, true));
        let plain = reachable(&model(b, false));
        assert!(reduced.is_subset(&plain), "{b}");
        let (reduced_run, plain_run) = (run(b, true), run(b, false));
        if b.mutations == MutationSet::NONE {
            assert!(reduced_run.exhaustive && plain_run.exhaustive);
            assert_eq!(outcomes(&reduced_run), outcomes(&plain_run), "{b}");
        } else {
            // Breadth first, each stops at its first (shortest) counterexample.
            let violated = |r: &CheckReport| r.first_violation().map(|(name, _)| name);
            assert!(violated(&reduced_run).is_some(), "{b}");
            assert_eq!(violated(&reduced_run), violated(&plain_run), "{b}");
        }
        assert_eq!(
            (reduced_run.unique_states, plain_run.unique_states),
            pinned,
            "{b}"
        );
    }
}

/// Unique states (reduced, plain) of the deferred cases above: 2 terms; 1 term with a crash;
/// 1 term with ack-before-persist; 1 term with hardstate-before-entries-synced.
const DEFERRED_PINNED: [(usize, usize); 4] = [
    (56_938, 110_742),
    (9_275, 14_851),
    (1_802, 3_684),
    (1_683, 1_809),
];
/// The same with a write-ahead log.
const WAL_PINNED: [(usize, usize); 4] = [
    (56_866, 104_298),
    (9_275, 14_203),
    (1_801, 3_669),
    (1_683, 1_800),
];

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
