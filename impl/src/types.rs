//! The vocabulary shared by every part of the core: ids, terms, indices, log entries and the
//! persistent state of Figure 2.

use serde::{Deserialize, Serialize};

/// A server's id: its position in the cluster, `0..n`. Small so that model states hash fast.
pub type NodeId = u8;
/// A Raft term. Term 0 is the state of a node that has never seen an election.
pub type Term = u64;
/// A log index. Entries are numbered from 1; index 0 is the empty prefix.
pub type Index = u64;

/// The bound every command replicated by the core satisfies: cloneable, comparable (so that
/// checkers can tell two commands apart), hashable (so that model states can be fingerprinted)
/// and serialisable (so that it can be persisted in the log).
pub trait Command:
    Clone + Eq + std::hash::Hash + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>
{
}

impl<T> Command for T where
    T: Clone + Eq + std::hash::Hash + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>
{
}

/// One log entry: the term of the leader that created it and the client's command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub command: C,
}

/// Figure 2's persistent state: what a server must have on stable storage before it answers
/// any RPC. Everything else a node holds is rebuilt after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HardState<C> {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    /// `log[i]` holds the entry at index `i + 1`.
    pub log: Vec<Entry<C>>,
}

impl<C> Default for HardState<C> {
    fn default() -> Self {
        HardState {
            current_term: 0,
            voted_for: None,
            log: Vec::new(),
        }
    }
}

/// One write to stable storage, as a step of the core emits it ([`crate::Effect::Persist`]):
/// only what changed. Every store (the model's, the simulator's memory store, raftd's
/// write-ahead log) keeps these as records and rebuilds the state with [`HardState::apply`], the
/// one rule for what a record means.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Record<C> {
    /// `current_term` or `voted_for` changed; both are written, as one record.
    TermVote {
        term: Term,
        voted_for: Option<NodeId>,
    },
    /// The log changed from index `from` on: every entry from `from` is dropped, then `entries`
    /// are appended, the first at index `from`.
    Log { from: Index, entries: Vec<Entry<C>> },
}

/// A log record that starts past the end of the log it is applied to: the records between were
/// lost, which no store that keeps a prefix of what was written can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log record starts at index {from}, but the log ends at index {last}")]
pub struct LogGap {
    pub from: Index,
    pub last: Index,
}

impl<C> HardState<C> {
    /// Applies one record: what recovery replays and what every store means by a write. It
    /// costs O(what the record holds and what it truncates), never O(log).
    pub fn apply(&mut self, write: Record<C>) -> Result<(), LogGap> {
        match write {
            Record::TermVote { term, voted_for } => {
                self.current_term = term;
                self.voted_for = voted_for;
            }
            Record::Log { from, entries } => {
                let last = self.last_index();
                if from == 0 || from > last.saturating_add(1) {
                    return Err(LogGap { from, last });
                }
                self.log.truncate((from - 1) as usize);
                self.log.extend(entries);
            }
        }
        Ok(())
    }

    /// Index of the last entry, 0 for an empty log.
    pub fn last_index(&self) -> Index {
        self.log.len() as Index
    }

    /// Term of the last entry, 0 for an empty log.
    pub fn last_term(&self) -> Term {
        self.log.last().map_or(0, |e| e.term)
    }

    /// Term of the entry at `index`; 0 for index 0; `None` past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            Some(0)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index` (1-based), if the log reaches that far.
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        if index == 0 {
            return None;
        }
        self.log.get((index - 1) as usize)
    }
}
