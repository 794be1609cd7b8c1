//! The verdict for a whole history: each key checked on its own, smallest first, and a failure
//! turned into evidence a reader can follow.
//!
//! Linearizability is compositional (Herlihy and Wing): a history is linearizable iff the
//! sub-history of every object is. Each key is an independent register with append, so each
//! key is searched on its own (`search.rs`), which keeps the memo tables small and the
//! search exponential only in the concurrency of one key rather than of the whole history.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_impl::kv::KvOp;

use super::history::{History, Operation};
use super::search::{search, Search};

/// The answer for a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    NotLinearizable(Violation),
    /// The time budget ran out before these keys were decided, and no other key failed.
    Unknown {
        undecided: Vec<String>,
    },
}

/// Why the history of one key has no linearization, as evidence a reader can follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    /// Every operation on `key`, by invoke time; the indices below point into it.
    pub operations: Vec<Operation>,
    /// An order in which some of the operations can take effect (respecting real time and the
    /// values read) that places the most completed operations; no linearization gets further.
    pub linearized: Vec<usize>,
    /// The value of `key` after `linearized`.
    pub value: String,
    /// The earliest return among the operations not in `linearized`: one of them had to take
    /// effect by then. `None` only if nothing remains to place, which the search never reports.
    pub stuck_before: Option<u64>,
    /// The reads that would have to come next (invoked no later than `stuck_before`) but read
    /// something other than `value`.
    pub unplaceable: Vec<usize>,
}

/// Checks every key of `history` within `budget`. Keys are checked smallest history first and
/// the first failing key is reported, so the violation shown is the smallest one available.
pub fn check(history: &History, budget: Duration) -> Outcome {
    let deadline = Instant::now().checked_add(budget);
    let mut keys: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in history.operations() {
        keys.entry(op.op.key()).or_default().push(op.clone());
    }
    let mut keys: Vec<(&str, Vec<Operation>)> = keys.into_iter().collect();
    for (_, ops) in &mut keys {
        ops.sort_by_key(|op| op.invoked);
    }
    keys.sort_by_key(|(key, ops)| (ops.len(), *key));

    let mut undecided = Vec::new();
    for (key, operations) in keys {
        match search(&operations, deadline) {
            Search::Linearizable => {}
            Search::OutOfTime => undecided.push(key.to_owned()),
            Search::Stuck { linearized } => {
                let value = replay(&operations, &linearized);
                let (stuck_before, unplaceable) = unplaceable(&operations, &linearized, &value);
                return Outcome::NotLinearizable(Violation {
                    key: key.to_owned(),
                    operations,
                    linearized,
                    value,
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

/// The register value after applying `order` from the empty value; `order` is a prefix the
/// search accepted, so every read in it matches and only writes matter.
fn replay(operations: &[Operation], order: &[usize]) -> String {
    let mut value = String::new();
    for &i in order {
        match &operations[i].op {
            KvOp::Put { value: v, .. } => v.clone_into(&mut value),
            KvOp::Append { value: v, .. } => value.push_str(v),
            KvOp::Get { .. } => {}
        }
    }
    value
}

/// The earliest return among the operations not yet placed, and the completed reads invoked no
/// later than it (so they must be placed right after `linearized`) that do not read `value`.
fn unplaceable(
    operations: &[Operation],
    linearized: &[usize],
    value: &str,
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
    let reads = remaining()
        .filter(|&i| operations[i].invoked <= deadline)
        .filter(|&i| operations[i].read_value().is_some_and(|read| read != value))
        .collect();
    (Some(deadline), reads)
}
