//! Symmetry reduction is only sound if renaming servers is faithful: a renamed state must be a
//! state of the same system that behaves exactly like the original up to the renaming. And it
//! only reduces if a state is identified with its renamings: they must hash alike.

use std::hash::{DefaultHasher, Hash, Hasher};

use raft_impl::NodeId;
use raft_model::kv::Status;
use raft_model::symmetry::Renaming;
use raft_model::{Bounds, KvBounds, RaftModel, State};
use stateright::Model;

/// States along a pseudo-random but fixed walk that elects leaders, replicates and crashes.
/// It keeps to steps whose sends all fit: a step that loses some (an election whose votes are
/// lost, say) is as faithful to renaming as any, but a walk full of them uses up the terms in a
/// few steps with nobody elected.
fn walk(model: &RaftModel, steps: usize) -> Vec<State> {
    let mut state = model.init_states().remove(0);
    let mut seen = vec![state.clone()];
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let mut actions = Vec::new();
    for _ in 0..steps {
        actions.clear();
        model.actions(&state, &mut actions);
        let mut next: Vec<State> = actions
            .iter()
            .filter(|a| a.lost() == 0)
            .filter_map(|a| model.next_state(&state, *a))
            .filter(|s| model.within_boundary(s))
            .collect();
        if next.is_empty() {
            break;
        }
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        state = next.swap_remove((random % next.len() as u64) as usize);
        seen.push(state.clone());
    }
    seen
}

#[test]
fn renaming_back_and_forth_is_the_identity_and_keeps_behaviour() {
    let model = RaftModel::new(Bounds::default());
    let states = walk(&model, 200);
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
        proposals: 0,
        max_log: 3,
        ..Bounds::default()
    };
    let model = RaftModel::with_kv(
        bounds,
        KvBounds {
            clients: 2,
            timeouts: 1,
            expiries: 0,
        },
    );
    let states = walk(&model, 300);
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

fn hash_of(state: &State) -> u64 {
    let mut h = DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

/// Every renaming of every state: renamed and renamed back it is itself, it has as many
/// successors and the same property values as the original, and it is identified with the
/// original: a symmetric state hashes as its canonical renaming does without symmetry, and a
/// state with no ties in the canonical order hashes as every renaming of it.
fn assert_faithful(model: &RaftModel, states: Vec<State>) {
    let permutations: [[NodeId; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let ordered = model.bounds.network.ordered;
    let successors = |s: &State| {
        let mut actions = Vec::new();
        model.actions(s, &mut actions);
        actions.len()
    };
    let properties = model.properties();
    let mut without_ties = 0;
    for state in &states {
        assert!(state.symmetric, "models are symmetric by default");
        let mut canonical = state.renamed(&Renaming::canonical(state), ordered);
        canonical.symmetric = false;
        assert_eq!(hash_of(state), hash_of(&canonical));
        let mut all_alike = true;
        for p in &permutations {
            let rename = Renaming::from_new_ids(p);
            let back = Renaming::from_new_ids(&std::array::from_fn::<_, 3, _>(|new| {
                p.iter().position(|&n| n as usize == new).unwrap() as NodeId
            }));
            let renamed = state.renamed(&rename, ordered);
            assert_eq!(&renamed.renamed(&back, ordered), state);
            assert_eq!(successors(&renamed), successors(state));
            for p in &properties {
                assert_eq!(
                    (p.condition)(model, &renamed),
                    (p.condition)(model, state),
                    "{}",
                    p.name
                );
            }
            all_alike &= hash_of(&renamed) == hash_of(state);
        }
        without_ties += usize::from(all_alike);
    }
    // Ties are the exception: most states along a walk are identified with all their renamings.
    assert!(
        2 * without_ties > states.len(),
        "only {without_ties} of {} states hash alike under every renaming",
        states.len()
    );
}
