//! Exhaustive exploration by hand, state by state, for the tests that compare a reduction's
//! state set with the plain exploration's (`lossy_network.rs`, `stale_replies.rs`): the
//! checker reports counts and verdicts, not which states it saw.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use raft_model::{RaftModel, State};
use stateright::Model;

/// A state's identity as the checker sees it: the hash it fingerprints.
pub fn fingerprint(state: &State) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(state)
}

/// Calls `visit` once on every reachable state of `model`, breadth first.
pub fn explore(model: &RaftModel, mut visit: impl FnMut(&State)) {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<State> = model.init_states().into();
    for state in &queue {
        seen.insert(fingerprint(state));
        visit(state);
    }
    let mut actions = Vec::new();
    while let Some(state) = queue.pop_front() {
        actions.clear();
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action) {
                if seen.insert(fingerprint(&next)) {
                    visit(&next);
                    queue.push_back(next);
                }
            }
        }
    }
}

/// Every reachable state of `model`, by fingerprint.
pub fn reachable(model: &RaftModel) -> HashSet<u64> {
    let mut seen = HashSet::new();
    explore(model, |state| {
        seen.insert(fingerprint(state));
    });
    seen
}
