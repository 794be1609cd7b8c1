//! `check --distributed`: the breadth-first search on timely dataflow, each worker owning a
//! hash partition of the visited states, compared with Stateright's own breadth-first search.
//!
//! With symmetry off, every exhaustive search reaches exactly the same set of states, so the
//! counts must be equal whatever the number of workers. With symmetry on they may differ: a
//! state is kept under the fingerprint of its canonical renaming, but the renaming sorts
//! servers by a key that can tie, and ties keep their order, so the representative is not a
//! canonical form. Which concrete state of a class is reached first (it depends on the order
//! in which successors arrive at their owner) decides which twins survive, so with symmetry on
//! only the verdicts and property outcomes are compared. The tests here run the workers as
//! threads of one process; `tests/distributed_cli.rs` runs them as processes.

use raft_impl::Mutation;
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy, Until};
use raft_model::distributed::{self, Cluster};
use raft_model::{catalog, Bounds, KvBounds, Network, Persistence, RaftModel};
use stateright::Model;

/// Small configurations, each explored without symmetry in about a second: crashes, each
/// storage mode, lossy and lossless, ordered and unordered networks, KV clients.
fn configurations() -> Vec<(&'static str, RaftModel)> {
    let base = Bounds {
        servers: 2,
        max_term: 2,
        max_log: 1,
        proposals: 1,
        max_crashes: 1,
        max_in_flight: 1,
        ..Bounds::default()
    };
    let lossless_ordered = Network {
        ordered: true,
        lossy: false,
        duplicating: false,
    };
    vec![
        (
            "3 servers, a crash, lossy",
            RaftModel::new(Bounds {
                servers: 3,
                max_term: 1,
                max_in_flight: 2,
                ..base
            }),
        ),
        (
            "deferred storage",
            RaftModel::new(Bounds {
                persistence: Persistence::Deferred,
                ..base
            }),
        ),
        (
            "write-ahead log, ordered lossless network",
            RaftModel::new(Bounds {
                persistence: Persistence::Wal,
                max_in_flight: 2,
                network: lossless_ordered,
                ..base
            }),
        ),
        (
            "a KV client",
            RaftModel::with_kv(
                Bounds {
                    max_term: 1,
                    max_log: 3,
                    proposals: 0,
                    max_crashes: 0,
                    network: lossless_ordered,
                    ..base
                },
                KvBounds {
                    clients: 1,
                    ..KvBounds::default()
                },
            ),
        ),
    ]
}

fn outcomes(report: &CheckReport) -> Vec<(&'static str, PropertyOutcome)> {
    (report.properties.iter())
        .map(|p| (p.name, p.outcome))
        .collect()
}

fn distributed(model: &RaftModel, workers: usize) -> CheckReport {
    let options = CheckOptions::exhaustive(Strategy::Bfs, workers);
    distributed::run(model.clone(), &options, &Cluster::local(workers))
        .expect("a run in one process starts")
}

#[test]
fn without_symmetry_every_worker_count_reaches_stateright_bfs_states() {
    for (name, model) in configurations() {
        let model = model.without_symmetry();
        let single = check::run(model.clone(), &CheckOptions::exhaustive(Strategy::Bfs, 1));
        assert!(single.exhaustive, "{name}");
        for workers in [1, 2, 4] {
            let run = distributed(&model, workers);
            let at = format!("{name}, {workers} workers");
            assert!(run.exhaustive, "{at}");
            assert_eq!(run.unique_states, single.unique_states, "{at}");
            assert_eq!(run.total_states, single.total_states, "{at}");
            assert_eq!(run.max_depth, single.max_depth, "{at}");
            assert_eq!(run.removed_by_bound, single.removed_by_bound, "{at}");
            assert_eq!(outcomes(&run), outcomes(&single), "{at}");
            assert_eq!(run.verdict(), single.verdict(), "{at}");
        }
    }
}

#[test]
fn with_symmetry_every_worker_count_has_the_same_verdicts() {
    for (name, model) in configurations() {
        let single = check::run(model.clone(), &CheckOptions::exhaustive(Strategy::Bfs, 1));
        for workers in [1, 2, 4] {
            let run = distributed(&model, workers);
            let at = format!("{name}, {workers} workers");
            assert!(run.exhaustive, "{at}");
            assert_eq!(outcomes(&run), outcomes(&single), "{at}");
            assert_eq!(run.verdict(), single.verdict(), "{at}");
        }
    }
}

/// Catalog bugs are caught, on 2 workers, by the property the catalog names, with a
/// counterexample as short as Stateright's one-thread BFS finds, which replays: each action is
/// enabled in the state before it, and the last state violates the property. A bug of each
/// kind whose configuration is quick (votes, logs, deferred storage, KV clients); `bugs --run`
/// is the test of the whole catalog.
#[test]
fn catalog_bugs_are_caught_with_shortest_traces_that_replay() {
    let quick = [
        Mutation::VoteNotPersisted,
        Mutation::TruncateOnMatch,
        Mutation::AckBeforePersist,
        Mutation::KvNoDedup,
    ];
    for bug in catalog::catalog()
        .into_iter()
        .filter(|b| quick.contains(&b.mutation))
    {
        let model = bug.model();
        let options = CheckOptions {
            until: Until::Found(bug.expected),
            ..CheckOptions::exhaustive(Strategy::Bfs, 2)
        };
        let run = distributed::run(model.clone(), &options, &Cluster::local(2))
            .expect("a run in one process starts");
        let path = (run.properties.iter())
            .find(|p| p.name == bug.expected)
            .and_then(|p| p.path.clone())
            .unwrap_or_else(|| panic!("{}: {} not violated", bug.mutation, bug.expected));
        let single = catalog::run(&bug, Strategy::Bfs);
        let steps = path.clone().into_actions();
        assert_eq!(Some(steps.len()), single.trace_len(), "{}", bug.mutation);

        let mut state = model.init_states()[0].clone();
        for action in steps {
            let mut actions = Vec::new();
            model.actions(&state, &mut actions);
            assert!(actions.contains(&action), "{}", bug.mutation);
            state = model.next_state(&state, action).expect("enabled");
        }
        assert!(&state == path.last_state(), "{}", bug.mutation);
        let property = (model.properties().into_iter())
            .find(|p| p.name == bug.expected)
            .expect("the catalog names a property");
        assert!(!(property.condition)(&model, &state), "{}", bug.mutation);
        assert!(!run.exhaustive, "{}", bug.mutation);
        assert_eq!(run.verdict(), check::Verdict::Fail, "{}", bug.mutation);
    }
}
