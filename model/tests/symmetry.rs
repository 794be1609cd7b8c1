//! Symmetry reduction is only sound if renaming servers is faithful: a renamed state must be a
//! state of the same system that behaves exactly like the original up to the renaming.

use raft_model::kv::Status;
use raft_model::{Bounds, KvBounds, RaftModel, State};
use stateright::Model;

/// States along a deterministic walk that elects leaders, replicates and crashes.
fn walk(model: &RaftModel, steps: usize) -> Vec<State> {
    let mut state = model.init_states().remove(0);
    let mut seen = vec![state.clone()];
    for i in 0..steps {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let Some(action) = actions.get((i * 7) % actions.len().max(1)).copied() else {
            break;
        };
        if let Some(next) = model.next_state(&state, action) {
            state = next;
            seen.push(state.clone());
        }
    }
    seen
}

#[test]
fn renaming_back_and_forth_is_the_identity_and_keeps_behaviour() {
    let model = RaftModel::new(Bounds::default());
    let states = walk(&model, 60);
    assert!(
        states
            .iter()
            .any(|s| s.ghost.leaders.iter().any(|l| *l != 0)),
        "the walk should elect a leader"
    );
    assert_faithful(&model, states);
}

/// With KV clients a renaming also moves the server a client waits on, and leaves the client
/// ids (and so the linearizability history) alone.
#[test]
fn renaming_keeps_kv_clients_behaviour() {
    let bounds = Bounds {
        clients: 0,
        max_log: 3,
        ..Bounds::default()
    };
    let model = RaftModel::with_kv(
        bounds,
        KvBounds {
            clients: 2,
            timeouts: 1,
        },
    );
    let states = walk(&model, 120);
    let waiting = |s: &State| {
        s.clients.as_ref().is_some_and(|c| {
            c.slots
                .iter()
                .any(|slot| matches!(slot.status, Status::Waiting { .. }))
        })
    };
    assert!(
        states.iter().any(waiting),
        "the walk should have a client wait on a server (which every renaming moves)"
    );
    assert_faithful(&model, states);
}

/// Every state renamed and renamed back is itself, and a renamed state has as many successors
/// and the same property values as the original.
fn assert_faithful(model: &RaftModel, states: Vec<State>) {
    let rename = [2, 0, 1];
    let back = [1, 2, 0];
    for state in states {
        let renamed = state.renamed(&rename, false);
        assert_eq!(renamed.renamed(&back, false), state);
        let successors = |s: &State| {
            let mut actions = Vec::new();
            model.actions(s, &mut actions);
            actions.len()
        };
        assert_eq!(successors(&renamed), successors(&state));
        let properties = model.properties();
        for p in &properties {
            assert_eq!(
                (p.condition)(model, &renamed),
                (p.condition)(model, &state),
                "{}",
                p.name
            );
        }
    }
}
