//! The nondeterministic steps of the model. Kept apart from the model that takes them so that
//! what only names a step (traces, the renderer, the checker's paths) need not depend on how
//! steps are taken.

use raft_impl::NodeId;

use crate::bounds::SERVER_LIMIT;

/// Per server, how many of its pending records a crash keeps (all 0 but with `--storage wal`).
pub type Kept = [u8; SERVER_LIMIT as usize];

/// One nondeterministic step. Network actions name a slot of the (canonically ordered) network
/// plus its endpoints so that traces and the Explorer can show them without the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver the message at `slot`. On a lossy network, not enabled when the receiver
    /// ignores the message: that is the same step as `Drop`. `lost`: see [`Action::Timeout`].
    Deliver {
        slot: u8,
        from: NodeId,
        to: NodeId,
        lost: u8,
    },
    /// The network loses the message at `slot`.
    Drop { slot: u8, from: NodeId, to: NodeId },
    /// The network duplicates the message at `slot`.
    Duplicate { slot: u8, from: NodeId, to: NodeId },
    /// The election timer of a follower or candidate fires. `lost` is the set of peers (a
    /// bitmask) whose messages from this step a lossy network loses because they do not fit
    /// under `--max-in-flight`: empty when they all fit (see `RaftModel::fit`).
    Timeout { id: NodeId, lost: u8 },
    /// A leader sends AppendEntries (a heartbeat when it has nothing new) to one peer,
    /// carrying at most `most` entries (`--max-batch`; 0: no bound, the tail to its end).
    Replicate {
        leader: NodeId,
        peer: NodeId,
        most: u8,
    },
    /// A client proposes the next command to a leader.
    Propose(NodeId),
    /// Deferred persistence: the oldest pending persist of a server becomes durable and the
    /// sends queued behind it leave.
    Flush(NodeId),
    /// A crash event, of one server or of every running server at once (a power cut): every
    /// server in the bitmask `mask` stops, losing its volatile state and anything not yet
    /// durable, except (`--storage wal`) the first `kept[id]` of server `id`'s pending records,
    /// which the disk had written before power went. On a lossy network they restart in the
    /// same step (see `RaftModel::next_state`).
    Crash { mask: u8, kept: Kept },
    /// A crashed server starts again from its durable state.
    Restart(NodeId),
    /// A KV client sends its current request (a first try or a retry of the same
    /// `(client, seq)`) to a server. A server that is not the leader refuses, which changes
    /// nothing: the client simply tries another, so a refusal is not a step.
    Request { client: u8, server: NodeId },
    /// A waiting KV client gives up on its server and may send the same request again, to any
    /// server; a reply that comes later is lost.
    ClientTimeout(u8),
    /// Log time passes more than the KV session timeout: leaders stamp the later time into
    /// what they propose from now on, and each store expires every session idle since before
    /// at the next such command it applies (see `crate::kv`).
    Expire,
    /// `--check-quorum`: a follower's contact with its leader expires (the minimum election
    /// timeout passed since it last heard from it), ending its lease (§4.2.3). The model has no
    /// clock, so this may happen at any moment after the contact, as it may in time.
    ContactExpires(NodeId),
    /// `--check-quorum`: a leader's check-quorum interval ends; it steps down unless it heard
    /// from a majority since the last one (§6.2). Any moment may be the end of an interval.
    CheckQuorum(NodeId),
    /// `--max-snapshots`: the server's service snapshots its state machine at its applied
    /// index, and the core compacts its log up to there (`Node::snapshot`).
    Snapshot(NodeId),
}

impl Action {
    /// The peers whose messages from this step the network loses for lack of room (see
    /// [`Action::Timeout`]): none for most actions.
    pub fn lost(&self) -> u8 {
        match *self {
            Action::Deliver { lost, .. } | Action::Timeout { lost, .. } => lost,
            _ => 0,
        }
    }

    /// The server that acts in this step, if one does: its core handles an event (a delivery,
    /// a timer, a proposal or request), or (`Flush`) its pending writes complete. What it
    /// persists, sends and applies is what a trace reports besides the action itself.
    pub fn acting_server(&self) -> Option<NodeId> {
        match *self {
            Action::Deliver { to, .. } => Some(to),
            Action::Timeout { id, .. }
            | Action::Propose(id)
            | Action::Flush(id)
            | Action::ContactExpires(id)
            | Action::CheckQuorum(id)
            | Action::Snapshot(id) => Some(id),
            Action::Request { server, .. } => Some(server),
            Action::Replicate { leader, .. } => Some(leader),
            Action::Drop { .. }
            | Action::Duplicate { .. }
            | Action::Crash { .. }
            | Action::Restart(_)
            | Action::ClientTimeout(_)
            | Action::Expire => None,
        }
    }
}
