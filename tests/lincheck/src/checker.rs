//! The verdict for a whole history: each partition checked on its own, smallest first, and a
//! failure turned into evidence a reader can follow.
//!
//! Linearizability is compositional (Herlihy and Wing): a history is linearizable iff the
//! sub-history of every object is. Each partition (for the KV store, each key) is searched on
//! its own (`search.rs`), which keeps the memo tables small and the search exponential only in
//! the concurrency of one partition rather than of the whole history.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::history::{History, Operation};
use crate::kv::Kv;
use crate::search::{search, Search};
use crate::spec::Specification;

/// The answer for a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<S: Specification = Kv> {
    Linearizable,
    NotLinearizable(Violation<S>),
    /// The time budget ran out before these partitions were decided, and no other failed.
    Unknown {
        undecided: Vec<S::Key>,
    },
}

/// Why the history of one partition has no linearization, as evidence a reader can follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<S: Specification = Kv> {
    pub key: S::Key,
    /// Every operation on `key`, by invoke time; the indices below point into it.
    pub operations: Vec<Operation<S>>,
    /// An order in which some of the operations can take effect (respecting real time and the
    /// replies) that places the most completed operations; no linearization gets further.
    pub linearized: Vec<usize>,
    /// The state of the partition after `linearized`.
    pub state: S::State,
    /// The earliest return among the operations not in `linearized`: one of them had to take
    /// effect by then. `None` only if nothing remains to place, which the search never reports.
    pub stuck_before: Option<u64>,
    /// The completed operations that would have to come next (invoked no later than
    /// `stuck_before`) but whose reply `state` does not give.
    pub unplaceable: Vec<usize>,
}

/// Checks every partition of `history` within `budget`. Partitions are checked smallest
/// history first and the first failing one is reported, so the violation shown is the
/// smallest one available.
pub fn check<S: Specification>(history: &History<S>, budget: Duration) -> Outcome<S> {
    let deadline = Instant::now().checked_add(budget);
    let mut undecided = Vec::new();
    for (key, operations) in partitions(history) {
        match search(&operations, deadline) {
            Search::Linearizable => {}
            Search::OutOfTime => undecided.push(key),
            Search::Stuck { linearized } => {
                let state = replay::<S>(&operations, &linearized);
                let (stuck_before, unplaceable) = unplaceable(&operations, &linearized, &state);
                return Outcome::NotLinearizable(Violation {
                    key,
                    operations,
                    linearized,
                    state,
                    stuck_before,
                    unplaceable,
                });
            }
        }
    }
    if undecided.is_empty() {
        Outcome::Linearizable
    } else {
        Outcome::Unknown { undecided }
    }
}

/// The operations of each partition by invoke time, smallest partition first.
fn partitions<S: Specification>(history: &History<S>) -> Vec<(S::Key, Vec<Operation<S>>)> {
    let mut keys: BTreeMap<S::Key, Vec<Operation<S>>> = BTreeMap::new();
    for op in history.operations() {
        keys.entry(S::partition(&op.op))
            .or_default()
            .push(op.clone());
    }
    let mut keys: Vec<(S::Key, Vec<Operation<S>>)> = keys.into_iter().collect();
    for (_, ops) in &mut keys {
        ops.sort_by_key(|op| op.invoked);
    }
    keys.sort_by(|(a, x), (b, y)| (x.len(), a).cmp(&(y.len(), b)));
    keys
}

/// The number of partitions `history` touches.
pub fn partition_count<S: Specification>(history: &History<S>) -> usize {
    let mut keys: Vec<S::Key> = history
        .operations()
        .iter()
        .map(|o| S::partition(&o.op))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// The state after applying `order` from the initial state, and after each step of it.
pub(crate) fn states<'a, S: Specification>(
    operations: &'a [Operation<S>],
    order: &'a [usize],
) -> impl Iterator<Item = S::State> + 'a {
    order.iter().scan(S::initial(), |state, &i| {
        *state = S::step(state, &operations[i].op).1;
        Some(state.clone())
    })
}

/// The state after applying `order` from the initial state; `order` is a prefix the search
/// accepted, so every reply in it matches.
fn replay<S: Specification>(operations: &[Operation<S>], order: &[usize]) -> S::State {
    states(operations, order).last().unwrap_or_else(S::initial)
}

/// The earliest return among the operations not yet placed, and the completed operations
/// invoked no later than it (so they must be placed right after `linearized`) whose reply
/// `state` does not give.
fn unplaceable<S: Specification>(
    operations: &[Operation<S>],
    linearized: &[usize],
    state: &S::State,
) -> (Option<u64>, Vec<usize>) {
    let mut placed = vec![false; operations.len()];
    for &i in linearized {
        placed[i] = true;
    }
    let remaining = || (0..operations.len()).filter(|&i| !placed[i]);
    let Some(deadline) = remaining()
        .filter_map(|i| operations[i].returned.as_ref().map(|r| r.time))
        .min()
    else {
        return (None, Vec::new());
    };
    let stuck = remaining()
        .filter(|&i| operations[i].invoked <= deadline)
        .filter(|&i| {
            let op = &operations[i];
            op.reply()
                .is_some_and(|reply| *reply != S::step(state, &op.op).0)
        })
        .collect();
    (Some(deadline), stuck)
}
