//! The RPCs of Figure 2, as values. A reply carries what the leader needs to act on it without
//! remembering which request it answers, so reordered and duplicated replies are harmless.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, Snapshot, Term};

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
    AppendEntries(AppendEntries<C>),
    AppendEntriesReply {
        term: Term,
        outcome: AppendOutcome,
    },
    /// PreVote (dissertation §9.6): "would you vote for me in `term`?", asked by a
    /// pre-candidate before it raises its own term. `term` is the term it would stand in, its
    /// current term + 1; the receiver neither adopts it nor records anything.
    PreVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    /// The answer to a [`Message::PreVote`]. A grant carries the term asked about (so the
    /// pre-candidate, still one term below it, does not take it for a stale reply); a refusal
    /// carries the voter's current term, which a pre-candidate behind it adopts.
    PreVoteReply {
        term: Term,
        granted: bool,
    },
    /// Figure 13's InstallSnapshot, whole: a leader sends it to a follower whose next index it
    /// compacted away. The follower answers with an [`Message::AppendEntriesReply`] success at
    /// the snapshot's last index (its log now matches the leader's up to there), so the leader
    /// handles the answer by the one rule it has for acknowledgements: the match only grows, and
    /// a reply of an older term is ignored. Chunking (Figure 13, steps 2 to 5) is a transport's
    /// affair: see [`Snapshot`].
    InstallSnapshot {
        term: Term,
        snapshot: Snapshot,
    },
}

/// A leader's AppendEntries RPC (Figure 2), one struct so that the handler takes it whole.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppendEntries<C> {
    pub term: Term,
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    pub entries: Vec<Entry<C>>,
    pub leader_commit: Index,
}

impl<C> AppendEntries<C> {
    /// Index of the last entry this request carries (`prev_log_index` when it carries none).
    /// Saturating: a forged request may claim any `prev_log_index`.
    pub fn last_new(&self) -> Index {
        self.prev_log_index
            .saturating_add(self.entries.len() as Index)
    }
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
    /// Whether this message answers a request rather than asking something.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Message::RequestVoteReply { .. }
                | Message::AppendEntriesReply { .. }
                | Message::PreVoteReply { .. }
        )
    }

    /// The sender's term, carried by every message.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteReply { term, .. }
            | Message::AppendEntries(AppendEntries { term, .. })
            | Message::AppendEntriesReply { term, .. }
            | Message::PreVote { term, .. }
            | Message::PreVoteReply { term, .. }
            | Message::InstallSnapshot { term, .. } => *term,
        }
    }
}

/// How many entries the plain form of an AppendEntries shows at most.
const ENTRIES_SHOWN: usize = 4;

/// One line of a trace, the one format every renderer of a message uses (the model checker's
/// counterexamples, Explorer and sequence diagrams; the simulator's `RAFT_TRACE`), so that a
/// step reads the same wherever it is found:
///
/// ```text
/// RequestVote t2 last 1:1
/// RequestVoteReply t2 granted            (or: denied)
/// AppendEntries t2 prev 1:1 [2:2:x] commit 1
/// AppendEntriesReply t2 success match 2
/// AppendEntriesReply t2 conflict xterm 1 xindex 1 xlen 3   (xterm - when the log is too short)
/// PreVote t3 last 1:1                    (t3: the term the pre-candidate would stand in)
/// PreVoteReply t3 granted                (or: denied)
/// InstallSnapshot t2 last 5:1 (40 bytes)
/// ```
///
/// The variant name comes first so a line can be grepped for the RPC, then the term, since a
/// receiver looks at it before anything else (a stale term is ignored, a newer one makes it step
/// down). A log position is `index:term`, the pair the consistency check and the up-to-date check
/// compare, and an entry is `index:term:command`, as the model checker prints a log: an
/// AppendEntries shows where each entry lands. Commands are written with their `Debug`
/// (a model checker's compact command type gives itself a compact `Debug`).
///
/// A real leader sends long batches, so the plain form shows at most four entries, eliding the
/// middle of a longer batch (`[2:1:a 3:1:b 4:1:c … 9:2:h]`: the indices say how many are left
/// out, the last entry where the batch ends). The alternate form `{:#}` shows every entry, for
/// the model checker, whose bounded logs are short and whose states must read exactly.
impl<C: fmt::Debug> fmt::Display for Message<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => write!(
                f,
                "RequestVote t{term} last {last_log_index}:{last_log_term}"
            ),
            Message::RequestVoteReply { term, granted } => {
                let verdict = if *granted { "granted" } else { "denied" };
                write!(f, "RequestVoteReply t{term} {verdict}")
            }
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => write!(f, "PreVote t{term} last {last_log_index}:{last_log_term}"),
            Message::PreVoteReply { term, granted } => {
                let verdict = if *granted { "granted" } else { "denied" };
                write!(f, "PreVoteReply t{term} {verdict}")
            }
            Message::AppendEntries(AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }) => {
                write!(
                    f,
                    "AppendEntries t{term} prev {prev_log_index}:{prev_log_term} ["
                )?;
                // `write!` with `{:?}` rather than `Debug::fmt`, so that `{:#}` does not
                // pretty-print commands over several lines.
                let entry = |f: &mut fmt::Formatter<'_>, i: usize| {
                    let e = &entries[i];
                    let index = prev_log_index + 1 + i as Index;
                    write!(f, "{index}:{}:{:?}", e.term, e.command)
                };
                let elide = !f.alternate() && entries.len() > ENTRIES_SHOWN;
                let head = if elide {
                    ENTRIES_SHOWN - 1
                } else {
                    entries.len()
                };
                for i in 0..head {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    entry(f, i)?;
                }
                if elide {
                    f.write_str(" … ")?;
                    entry(f, entries.len() - 1)?;
                }
                write!(f, "] commit {leader_commit}")
            }
            Message::InstallSnapshot { term, snapshot } => write!(
                f,
                "InstallSnapshot t{term} last {}:{} ({} bytes)",
                snapshot.last_index,
                snapshot.last_term,
                snapshot.data.len()
            ),
            Message::AppendEntriesReply { term, outcome } => match outcome {
                AppendOutcome::Success { match_index } => {
                    write!(f, "AppendEntriesReply t{term} success match {match_index}")
                }
                AppendOutcome::Conflict(hint) => {
                    write!(f, "AppendEntriesReply t{term} conflict xterm ")?;
                    match hint.x_term {
                        Some(x_term) => write!(f, "{x_term}")?,
                        None => f.write_str("-")?,
                    }
                    write!(f, " xindex {} xlen {}", hint.x_index, hint.x_len)
                }
            },
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
