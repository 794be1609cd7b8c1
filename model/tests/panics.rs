//! A core that panics is a violation of "no step panics" with a replayable path to the step,
//! under every strategy, not a crash of the checker (`raft_model::panics`). The panicking core
//! is the `panic-on-stale-reply` probe in its configuration from `raft_model::probes`.

use raft_impl::Mutation;
use raft_model::check::{self, CheckOptions, Strategy, Until};
use raft_model::properties::NO_STEP_PANICS;
use raft_model::{probes, Action, RaftModel, State};
use stateright::{Model, Path};

fn model() -> RaftModel {
    probes::probe(Mutation::PanicOnStaleReply)
        .expect("the panicking probe has a configuration")
        .model()
}

/// The counterexample to "no step panics" that `strategy` finds, after checking it is the
/// violation the check stopped at.
fn counterexample(strategy: Strategy) -> Path<State, Action> {
    let options = CheckOptions {
        strategy,
        threads: 1,
        until: Until::AnyViolation,
        max_states: matches!(strategy, Strategy::Simulation { .. }).then_some(100_000),
        progress: None,
    };
    let report = check::run(model(), &options);
    let (name, path) = report
        .first_violation()
        .unwrap_or_else(|| panic!("{strategy:?}: no violation in {report:?}"));
    assert_eq!(name, NO_STEP_PANICS, "{strategy:?}");
    path.clone()
}

/// The path ends at its only panicked state, which says what panicked where, and replaying its
/// actions on the model reproduces every state, the panic included.
fn assert_replays_to_the_panic(path: &Path<State, Action>) {
    let steps = path.clone().into_vec();
    let (last, before) = steps.split_last().unwrap();
    assert!(before.iter().all(|(s, _)| s.panicked.is_none()));
    let panic = last.0.panicked.as_deref().expect("the last step panicked");
    assert!(panic.message.contains("index out of bounds"), "{panic}");
    assert!(
        panic.location.starts_with("impl/src/mutation.rs:"),
        "{panic}"
    );

    let model = model();
    assert_eq!(model.init_states(), vec![steps[0].0.clone()]);
    for pair in steps.windows(2) {
        let (state, action) = (&pair[0].0, pair[0].1.unwrap());
        let mut enabled = Vec::new();
        model.actions(state, &mut enabled);
        assert!(enabled.contains(&action), "{action:?}");
        assert_eq!(model.next_state(state, action).as_ref(), Some(&pair[1].0));
    }
    // A panicked state is the end of its path.
    let mut after = Vec::new();
    model.actions(&last.0, &mut after);
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn breadth_first_finds_the_shortest_path_to_the_panic() {
    let path = counterexample(Strategy::Bfs);
    assert_replays_to_the_panic(&path);
    // Elect s0 (timeout, vote, grant), heartbeat and its acknowledgement, s1 times out and s0
    // grants it a vote in term 2, then the term-1 acknowledgement arrives.
    assert_eq!(path.into_actions().len(), 7);
}

#[test]
fn depth_first_finds_a_path_to_the_panic() {
    assert_replays_to_the_panic(&counterexample(Strategy::Dfs));
}

#[test]
fn simulation_finds_a_path_to_the_panic() {
    assert_replays_to_the_panic(&counterexample(Strategy::Simulation { seed: 0 }));
}

#[test]
fn the_explorer_shows_the_panicking_step() {
    let path = counterexample(Strategy::Bfs);
    let steps = path.into_vec();
    let (state, action) = &steps[steps.len() - 2];
    let text = model().format_step(state, action.unwrap()).unwrap();
    assert!(text.contains("panicked at impl/src/mutation.rs:"), "{text}");
}

/// A server restarts only from a state a server of its cluster could have written, as raftd
/// checks on start ([`raft_impl::HardState::check`]). `term-not-persisted` writes term 0 beside
/// an entry of term 1, which no correct server can; the model reports the restart from it as a
/// step that panics, with the reason, rather than restart the server from it.
#[test]
fn a_restart_from_an_implausible_state_is_a_violation() {
    let bug = raft_model::catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == Mutation::TermNotPersisted)
        .expect("in the catalog");
    // The catalog configuration, with one entry to write.
    let model = RaftModel::new(raft_model::Bounds {
        max_log: 1,
        proposals: 1,
        ..bug.bounds()
    });
    let options = CheckOptions {
        strategy: Strategy::Bfs,
        threads: 1,
        until: Until::Found(NO_STEP_PANICS),
        max_states: None,
        progress: None,
    };
    let report = check::run(model, &options);
    let path = report
        .properties
        .iter()
        .find(|p| p.name == NO_STEP_PANICS)
        .and_then(|p| p.path.clone())
        .unwrap_or_else(|| panic!("no panic in {report:?}"));
    let steps = path.into_vec();
    let panic = steps[steps.len() - 1].0.panicked.as_deref();
    let panic = panic.expect("the last step panicked");
    // A panic carries text: the reason's own, from the typed error.
    let reason = raft_impl::Implausible::EntryPastTerm {
        entry_term: 1,
        current_term: 0,
    };
    assert!(panic.message.contains(&reason.to_string()), "{panic}");
    let action = steps[steps.len() - 2].1;
    assert!(matches!(action, Some(Action::Restart(_))), "{action:?}");
}
