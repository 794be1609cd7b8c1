//! The vocabulary shared by every part of the core: ids, terms, indices, log entries and the
//! persistent state of Figure 2.

use serde::{Deserialize, Serialize};

/// A server's id: its position in the cluster, `0..n`. Small so that model states hash fast.
pub type NodeId = u8;
/// A Raft term. Term 0 is the state of a node that has never seen an election.
pub type Term = u64;
/// A log index. Entries are numbered from 1; index 0 is the empty prefix.
pub type Index = u64;

/// The term after `term`, if there is one: a server at `Term::MAX` could never start another
/// election, so no message, no timeout and no recovered state may take a server there.
pub fn next_term(term: Term) -> Option<Term> {
    term.checked_add(1)
}

/// Whether `id` is another server of server `me`'s cluster of `servers`: the only sender whose
/// messages the core handles and whose peer connection the runtime accepts.
pub fn is_peer(me: NodeId, servers: usize, id: NodeId) -> bool {
    id != me && usize::from(id) < servers
}

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

/// Why a state whose records passed their checksums cannot have been written by a server of
/// this cluster: written by another cluster's server, or forged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    #[error("a vote for server {voted_for} in a cluster of {servers}")]
    VoteOutsideCluster { voted_for: NodeId, servers: usize },
    #[error("term {term}, which leaves no term to elect in")]
    NoNextTerm { term: Term },
    #[error("an entry of term {entry_term} past the current term {current_term}")]
    EntryPastTerm {
        entry_term: Term,
        current_term: Term,
    },
}

impl<C> HardState<C> {
    /// Checks that a server of a cluster of `servers` could have reached this state: it voted
    /// for a server of the cluster, its term has a successor, and no entry is of a later term.
    /// The records a state is replayed from carry checksums, which say that the bytes are what
    /// was written, not that this cluster wrote them.
    pub fn check(&self, servers: usize) -> Result<(), Implausible> {
        if let Some(voted_for) = self.voted_for.filter(|v| usize::from(*v) >= servers) {
            return Err(Implausible::VoteOutsideCluster { voted_for, servers });
        }
        if next_term(self.current_term).is_none() {
            return Err(Implausible::NoNextTerm {
                term: self.current_term,
            });
        }
        match self.log.iter().find(|e| e.term > self.current_term) {
            Some(e) => Err(Implausible::EntryPastTerm {
                entry_term: e.term,
                current_term: self.current_term,
            }),
            None => Ok(()),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_no_server_of_the_cluster_could_write_is_implausible() {
        let plausible = HardState {
            current_term: 3,
            voted_for: Some(2),
            log: vec![Entry {
                term: 3,
                command: 'x',
            }],
        };
        assert_eq!(plausible.check(3), Ok(()));
        let vote = HardState {
            voted_for: Some(3),
            ..plausible.clone()
        };
        assert_eq!(
            vote.check(3),
            Err(Implausible::VoteOutsideCluster {
                voted_for: 3,
                servers: 3
            })
        );
        let last_term = HardState {
            current_term: Term::MAX,
            ..plausible.clone()
        };
        assert_eq!(
            last_term.check(3),
            Err(Implausible::NoNextTerm { term: Term::MAX })
        );
        let ahead = HardState {
            current_term: 2,
            ..plausible
        };
        assert_eq!(
            ahead.check(3),
            Err(Implausible::EntryPastTerm {
                entry_term: 3,
                current_term: 2
            })
        );
    }

    #[test]
    fn a_peer_is_another_server_of_the_cluster() {
        assert!(is_peer(0, 3, 2));
        assert!(!is_peer(0, 3, 0));
        assert!(!is_peer(0, 3, 3));
    }
}
