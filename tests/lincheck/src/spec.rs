//! What a history is checked against: a sequential specification of the object, as a small
//! trait that the checker is generic over.
//!
//! The trait asks only what a linearizability search needs: where the object starts, what one
//! operation returns and leaves behind, and which operations touch independent parts of it.
//! The KV register ([`crate::Kv`]) is one implementation; a model checker's own sequential
//! spec can delegate to the same one, so the semantics are written once.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential object: its states, its operations and their replies.
///
/// A specification is a type, not a value (a unit struct will do): the histories, verdicts
/// and violations that mention it are generic over it, and derive `Clone`, `Debug` and `Eq`,
/// which the derives require of the specification type itself, hence the supertraits.
pub trait Specification: Clone + Debug + Eq {
    /// The object's state. The search remembers every (placed operations, state) pair it has
    /// explored, so equal states must compare and hash equal.
    type State: Clone + Debug + Eq + Hash;
    /// An operation as invoked.
    type Op: Clone + Debug + Eq;
    /// What an operation returns.
    type Reply: Clone + Debug + Eq;
    /// The independent part of the object an operation touches. Linearizability is
    /// compositional (Herlihy and Wing): a history is linearizable iff the sub-history of every
    /// partition is, so each partition is searched on its own. Use `()` for a single partition.
    type Key: Clone + Debug + Ord;

    /// The state before any operation.
    fn initial() -> Self::State;

    /// Applies `op` to `state`: the reply it returns and the state it leaves.
    fn step(state: &Self::State, op: &Self::Op) -> (Self::Reply, Self::State);

    /// The partition `op` belongs to.
    fn partition(op: &Self::Op) -> Self::Key;

    /// Whether `reply` has the form of an answer to `op` in some state (a read answers with a
    /// value, a write without), so that a recorder can reject a malformed return up front
    /// instead of the check reporting it as a violation. The default accepts every reply.
    fn reply_fits(_op: &Self::Op, _reply: &Self::Reply) -> Result<(), ReplyMismatch> {
        Ok(())
    }

    /// Whether an operation that never returned can change the verdict, given every reply
    /// recorded in its partition. One that cannot is left out of the search: each pending
    /// operation kept doubles the configurations to tell apart (taken effect or not). Answer
    /// `false` only when that is sound for every history; the default keeps them all.
    fn pending_may_matter(_op: &Self::Op, _replies: &[&Self::Reply]) -> bool {
        true
    }
}

/// Why a reply cannot answer an operation, whatever the state (see
/// [`Specification::reply_fits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMismatch {
    /// The operation reads a value, and the reply carries none.
    MissingValue,
    /// The operation reads nothing, and the reply carries a value.
    UnexpectedValue,
}
