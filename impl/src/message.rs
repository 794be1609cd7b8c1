//! The RPCs of Figure 2, as values. A reply carries what the leader needs to act on it without
//! remembering which request it answers, so reordered and duplicated replies are harmless.

use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, Term};

/// A message between two servers, in the order Figure 2 lists the RPCs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Message<C> {
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteReply {
        term: Term,
        granted: bool,
    },
    AppendEntries {
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry<C>>,
        leader_commit: Index,
    },
    AppendEntriesReply {
        term: Term,
        outcome: AppendOutcome,
    },
}

/// The result of an AppendEntries at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to and including `match_index`, which is
    /// `prev_log_index + entries.len()` of the request being answered (not the follower's
    /// log length, which may hold more from an older leader).
    Success { match_index: Index },
    /// The consistency check failed; the fast-backup hint of the 6.5840 lab.
    Conflict(ConflictHint),
}

/// Fast log backup (6.5840's XTerm / XIndex / XLen): lets the leader skip a whole term of
/// conflicting entries in one round trip instead of one index at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConflictHint {
    /// Term of the follower's entry at `prev_log_index`, or `None` if its log is too short.
    pub x_term: Option<Term>,
    /// First index the follower holds with term `x_term` (meaningful when `x_term` is set).
    pub x_index: Index,
    /// Length of the follower's log.
    pub x_len: Index,
}

impl<C> Message<C> {
    /// The sender's term, carried by every message.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteReply { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesReply { term, .. } => *term,
        }
    }
}

/// A message with its addressing, as a network carries it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Envelope<C> {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message<C>,
}
